// VNET_ENABLED=true: VNet integration, private endpoints + private DNS for storage (blob, table) and Key Vault,
// public network access to both disabled. tools/bicep.sh compiles it with `bicep build-params`. Values are
// placeholders; azd fills the real ones from main.parameters.json.
using '../main.bicep'

param environmentName = 'ci'
param location = 'swedencentral'
param brokerKeys = 'placeholder-not-a-key-placeholder-not-a-key-placeholder-not-a-k'
param alertEmail = 'ops@example.com'
param refreshSchedule = '0 0 */2 * * *'
param vnetEnabled = true
