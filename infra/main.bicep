// Entry point for `azd up`: one resource group with everything the token broker needs on Flex Consumption.
// Plain resources only (no registry modules, no Graph extension), so it compiles offline: `bash tools/bicep.sh`.
targetScope = 'subscription'

@description('azd environment name; seeds resource names and the azd-env-name tag.')
@minLength(1)
@maxLength(64)
param environmentName string

// Regions that offer Flex Consumption, as the official azd Flex template lists them
// (Azure-Samples/functions-quickstart-typescript-azd infra/main.bicep). azd offers only these when it asks for a
// location, and ARM refuses any other value before creating anything; infra/hooks/preprovision.js checks
// AZURE_LOCATION against the same list (infra/flex-regions.json) with a message that says why. Refresh both with
// `az functionapp list-flexconsumption-locations --query "sort_by(@, &name)[].name"`.
@description('Azure region for every resource (must offer Flex Consumption).')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'eastus2euap'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the deploying principal (azd fills AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer.')
param principalId string = ''

@description('Type of principalId; empty lets Azure work it out.')
@allowed([
  ''
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = ''

// azd generates this once (64 letters and digits = 381 random bits, valid base64url of 48 bytes) and keeps it in
// .azure/<env>/config.json (`infra.parameters.brokerKeys`, a reference into azd's local secret store), so no
// `azd up` ever prompts for it and later provisions reuse it (Azure/azure-dev bicep_provider.go ensureParameters).
// A non-empty BROKER_KEYS in the azd environment wins: that is how keys are rotated on purpose (docs/deploy.md).
@description('BROKER_KEYS: comma-separated base64url keys of >= 32 random bytes (first signs, all verify).')
@secure()
@minLength(43)
@metadata({ azd: { type: 'generate', config: { length: 64, noSpecial: true } } })
param brokerKeys string

@description('Application (client) id of the Entra app registration. Empty on the first `azd up` (the redirect URI is not known yet).')
param microsoftClientId string = ''

@description('Entra tenant for sign-in: common, organizations, consumers, a tenant id or a domain.')
param microsoftTenant string = 'common'

@description('Client credential: auto (certificate if named, else secret if one is given, else the managed identity as federated credential), secret, certificate, managed_identity or none.')
@allowed([
  'auto'
  'secret'
  'certificate'
  'managed_identity'
  'none'
])
param microsoftCredential string = 'auto'

@description('Name of a Key Vault certificate (PEM content type, with its private key) used for private_key_jwt. Empty = none. Import it after the first provision: az keyvault certificate import.')
param microsoftCertificateName string = ''

@description('Client secret of the Entra app; stored in Key Vault, never as an app setting value. Empty = none.')
@secure()
param microsoftClientSecret string = ''

@description('Caller authentication: function_key (platform keys) or entra (also Entra bearer tokens with app roles).')
@allowed([
  'function_key'
  'entra'
])
param brokerAuthMode string = 'function_key'

@description('Audience of the broker API registration (required when brokerAuthMode is entra).')
param brokerAuthAudience string = ''

@description('NCRONTAB schedule of the refresh sweep.')
param refreshSchedule string = '0 */5 * * * *'

@description('E-mail for the alerts (refresh failing, sweep silent); empty = no alerts and no action group.')
param alertEmail string = ''

@description('Minutes without a completed sweep before the silent-sweep alert fires; 0 = three schedule periods, derived from refreshSchedule.')
@minValue(0)
@maxValue(2880)
param sweepAlertMinutes int = 0

@description('Private networking: VNet integration for the app, private endpoints + private DNS for storage (blob, table, queue) and Key Vault, public network access to both disabled.')
param vnetEnabled bool = false

// Notifications (README "Notifications"). All optional with empty defaults, so a first `azd up --no-prompt`
// asks for none of them (test/infra/parameters.test.ts); the app checks them together at start-up.
@description('BROKER_WEBHOOK_URL: Standard Webhooks endpoint for connection events. Empty = no webhooks.')
param brokerWebhookUrl string = ''

@description('BROKER_WEBHOOK_SECRET: whsec_ + base64 of 24-64 random bytes; stored in Key Vault, the app setting is a reference. Empty = none.')
@secure()
param brokerWebhookSecret string = ''

@description('BROKER_NOTIFY_CONNECTION: a connection holding Mail.Send that mails account owners a fresh connect link. Empty = no mail.')
param brokerNotifyConnection string = ''

@description('BROKER_NOTIFY_TO: recipient of those mails when the connection has no pinned username. Empty = none.')
param brokerNotifyTo string = ''

@description('Memory per Flex instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex scale-out limit.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Key Vault purge protection. Irreversible; with it on, `azd down` leaves the vault name reserved for the retention period.')
param keyVaultPurgeProtection bool = false

@description('Days a deleted vault or secret stays recoverable.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 90

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var serviceName = 'api'
var functionAppName = '${abbrs.webSitesFunctions}broker-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'
var hasClientSecret = !empty(microsoftClientSecret)
var hasCertificate = !empty(microsoftCertificateName)
// Spelled out per value so the result type is the module's allowed set (Bicep does not narrow `!= 'auto'`).
var effectiveCredential = microsoftCredential == 'secret'
  ? 'secret'
  : microsoftCredential == 'certificate'
      ? 'certificate'
      : microsoftCredential == 'managed_identity'
          ? 'managed_identity'
          : microsoftCredential == 'none'
              ? 'none'
              : (hasCertificate ? 'certificate' : (hasClientSecret ? 'secret' : 'managed_identity'))

// Audience a managed-identity-backed federated credential uses in this cloud (Entra docs, workload identity).
var federatedAudience = environment().name == 'AzureUSGovernment'
  ? 'api://AzureADTokenExchangeUSGov'
  : environment().name == 'AzureChinaCloud' ? 'api://AzureADTokenExchangeChina' : 'api://AzureADTokenExchange'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    privateOnly: vnetEnabled
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    enablePurgeProtection: keyVaultPurgeProtection
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
    brokerKeys: brokerKeys
    microsoftClientSecret: microsoftClientSecret
    brokerWebhookSecret: brokerWebhookSecret
    privateOnly: vnetEnabled
  }
}

module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    name: '${abbrs.networkVirtualNetworks}${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    identityPrincipalId: identity.outputs.principalId
    principalId: principalId
    principalType: principalType
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  // The app's first start resolves Key Vault references and opens host storage as the identity: roles first.
  // With private networking the subnet id below also orders it after the private endpoints and DNS records.
  dependsOn: [
    rbac
  ]
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    serviceName: serviceName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    notifyQueueName: storage.outputs.notifyQueueName
    deploymentContainerName: storage.outputs.deploymentContainerName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: keyVault.outputs.vaultUri
    brokerKeysSecretUri: keyVault.outputs.brokerKeysSecretUri
    microsoftClientSecretUri: hasClientSecret ? keyVault.outputs.microsoftClientSecretUri : ''
    // A Key Vault certificate's private key + chain are readable as the secret of the same name.
    microsoftCertificateSecretUri: hasCertificate ? '${keyVault.outputs.vaultUri}secrets/${microsoftCertificateName}' : ''
    microsoftClientId: microsoftClientId
    microsoftTenant: microsoftTenant
    microsoftCredential: effectiveCredential
    brokerAuthMode: brokerAuthMode
    brokerAuthAudience: brokerAuthAudience
    refreshSchedule: refreshSchedule
    brokerWebhookUrl: brokerWebhookUrl
    brokerWebhookSecretUri: empty(brokerWebhookSecret) ? '' : keyVault.outputs.brokerWebhookSecretUri
    brokerNotifyConnection: brokerNotifyConnection
    brokerNotifyTo: brokerNotifyTo
    virtualNetworkSubnetId: vnetEnabled ? network!.outputs.appSubnetId : ''
  }
}

module alerts 'modules/alerts.bicep' = if (!empty(alertEmail)) {
  name: 'alerts'
  scope: rg
  params: {
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    alertRuleName: '${abbrs.insightsScheduledQueryRules}refresh-${resourceToken}'
    sweepAlertRuleName: '${abbrs.insightsScheduledQueryRules}sweep-${resourceToken}'
    notifyAlertRuleName: '${abbrs.insightsScheduledQueryRules}notify-${resourceToken}'
    refreshSchedule: refreshSchedule
    sweepAlertMinutes: sweepAlertMinutes
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmail: alertEmail
  }
}

// azd writes these into .azure/<env>/.env; infra/hooks/postprovision.js prints the next steps from them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_URL string = functionApp.outputs.publicBaseUrl
output REDIRECT_URI string = '${functionApp.outputs.publicBaseUrl}/api/callback'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.vaultUri
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output FEDERATED_CREDENTIAL_ISSUER string = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
output FEDERATED_CREDENTIAL_AUDIENCE string = federatedAudience
// The vault's creation-only retention, as the last provision left it; infra/hooks/preprovision.js refuses a later
// KEY_VAULT_SOFT_DELETE_RETENTION_DAYS that differs (Key Vault would reject the change).
output AZURE_KEY_VAULT_SOFT_DELETE_RETENTION_DAYS int = keyVault.outputs.softDeleteRetentionInDays
