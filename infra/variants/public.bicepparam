// The default variant (VNET_ENABLED unset): public endpoints, Entra-only access. tools/bicep.sh compiles it with
// `bicep build-params` so both network variants are type-checked against infra/main.bicep. Values are
// placeholders; azd fills the real ones from main.parameters.json.
using '../main.bicep'

param environmentName = 'ci'
param location = 'swedencentral'
param brokerKeys = 'placeholder-not-a-key-placeholder-not-a-key-placeholder-not-a-k'
param alertEmail = 'ops@example.com'
param vnetEnabled = false
