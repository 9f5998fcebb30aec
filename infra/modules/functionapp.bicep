// Flex Consumption plan + Linux function app (Node 22) + its app settings. The app settings below are the ONLY
// place settings are defined (test/infra/parity.test.ts parses this file and checks them against SETTINGS in
// shared/config.ts). Settings that Flex owns itself (FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE, content share, node version) are deliberately absent: functionAppConfig replaces them.
@description('Function app name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the plan; the app additionally gets azd-service-name.')
param tags object

@description('Service name in azure.yaml; azd finds the app by this tag.')
param serviceName string = 'api'

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity.')
param identityClientId string

@description('Blob endpoint of the host storage account (ends with a slash).')
param storageBlobEndpoint string

@description('Table endpoint of the host storage account (diagnostic events).')
param storageTableEndpoint string

@description('Queue endpoint of the host storage account (the notification outbox lives there).')
param storageQueueEndpoint string

@description('Name of the notification outbox queue in that account.')
param notifyQueueName string

@description('Blob container Flex deploys the package into.')
param deploymentContainerName string

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound for scale-out.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Application Insights connection string (not a secret).')
param appInsightsConnectionString string

@description('Key Vault URI, e.g. https://kv-x.vault.azure.net/.')
param keyVaultUri string

@description('Versionless URI of the BROKER_KEYS secret.')
param brokerKeysSecretUri string

@description('Versionless URI of the Entra client secret; empty when no secret is used.')
param microsoftClientSecretUri string = ''

@description('Application (client) id of the Entra app registration; empty until it is registered.')
param microsoftClientId string = ''

@description('Entra tenant for sign-in: common, organizations, consumers, a tenant id or a domain.')
param microsoftTenant string = 'common'

@description('How the broker authenticates to Entra: secret, certificate, managed_identity (federated credential) or none.')
@allowed([
  'secret'
  'certificate'
  'managed_identity'
  'none'
])
param microsoftCredential string

@description('Versionless secret URI of the Key Vault certificate used for private_key_jwt; empty when not used.')
param microsoftCertificateSecretUri string = ''

@description('Who may call token and manage endpoints: function keys only, or also Entra bearer tokens.')
@allowed([
  'function_key'
  'entra'
])
param brokerAuthMode string = 'function_key'

@description('Audience (application id URI or client id) of the broker API registration; used when brokerAuthMode is entra.')
param brokerAuthAudience string = ''

@description('NCRONTAB schedule of the refresh sweep.')
param refreshSchedule string = '0 */5 * * * *'

@description('Standard Webhooks endpoint for connection events; empty = no webhooks.')
param brokerWebhookUrl string = ''

@description('Versionless URI of the webhook signing secret in Key Vault; empty when none is stored.')
param brokerWebhookSecretUri string = ''

@description('Connection (holding Mail.Send) that mails account owners a fresh link; empty = no mail.')
param brokerNotifyConnection string = ''

@description('Fallback recipient of those mails when a connection has no pinned username; empty = none.')
param brokerNotifyTo string = ''

@description('Subnet (delegated to Microsoft.App/environments) for VNet integration; empty = no VNet.')
param virtualNetworkSubnetId string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Outbound through the VNet (private endpoints of storage and Key Vault); inbound stays public (callers, sign-in).
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    // Key Vault references resolve as the user-assigned identity (default would be a system identity we don't have).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// FTP and basic-auth publishing off: azd deploys with an Entra token, nothing needs a publishing password.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  // Without location ARM has answered error 51008 (Azure/bicep#5531; Azure/bicep-types-az#1317, #1526, #1529,
  // #1571); Azure Verified Modules (avm/res/web/site) send it, and templates exported from Azure carry it. The
  // Bicep type definitions still lack the property (those issues), hence the one suppressed BCP187 per policy.
  #disable-next-line BCP187
  location: location
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  #disable-next-line BCP187
  location: location
  properties: {
    allow: false
  }
}

var publicBaseUrl = 'https://${site.properties.defaultHostName}'

// Host platform settings: identity-based AzureWebJobsStorage (no plain AzureWebJobsStorage on Flex) and
// Entra-authenticated Application Insights.
var platformSettings = {
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  // Not used by the host (no queue triggers): the broker's notification outbox reads it, with __clientId.
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// The broker's own settings (shared/config.ts SETTINGS).
var brokerSettings = {
  BROKER_PUBLIC_BASE_URL: publicBaseUrl
  BROKER_KEYS: '@Microsoft.KeyVault(SecretUri=${brokerKeysSecretUri})'
  KEY_VAULT_URL: keyVaultUri
  AZURE_CLIENT_ID: identityClientId
  BROKER_LOCK: 'blob'
  MICROSOFT_CLIENT_ID: microsoftClientId
  MICROSOFT_TENANT: microsoftTenant
  MICROSOFT_AUTHORITY_HOST: environment().authentication.loginEndpoint
  MICROSOFT_CREDENTIAL: microsoftCredential
  BROKER_REFRESH_SCHEDULE: refreshSchedule
  BROKER_AUTH_MODE: brokerAuthMode
  BROKER_NOTIFY_QUEUE: notifyQueueName
}

var clientSecretSettings = empty(microsoftClientSecretUri)
  ? {}
  : {
      MICROSOFT_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${microsoftClientSecretUri})'
    }

var certificateSettings = empty(microsoftCertificateSecretUri)
  ? {}
  : {
      MICROSOFT_CLIENT_CERTIFICATE: '@Microsoft.KeyVault(SecretUri=${microsoftCertificateSecretUri})'
    }

var federatedCredentialSettings = microsoftCredential == 'managed_identity'
  ? {
      MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: identityClientId
    }
  : {}

var entraAuthSettings = brokerAuthMode == 'entra'
  ? {
      BROKER_AUTH_TENANT_ID: tenant().tenantId
      BROKER_AUTH_AUDIENCE: brokerAuthAudience
    }
  : {}

// Notifications (README "Notifications"): each setting only when its parameter is given. The signing secret is
// a Key Vault reference like the other secrets, never the value.
var webhookUrlSettings = empty(brokerWebhookUrl)
  ? {}
  : {
      BROKER_WEBHOOK_URL: brokerWebhookUrl
    }

var webhookSecretSettings = empty(brokerWebhookSecretUri)
  ? {}
  : {
      BROKER_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${brokerWebhookSecretUri})'
    }

var notifyConnectionSettings = empty(brokerNotifyConnection)
  ? {}
  : {
      BROKER_NOTIFY_CONNECTION: brokerNotifyConnection
    }

var notifyToSettings = empty(brokerNotifyTo)
  ? {}
  : {
      BROKER_NOTIFY_TO: brokerNotifyTo
    }

// A separate config resource (not siteConfig.appSettings) so the identity and its roles exist before the first
// Key Vault reference is resolved. An ARM write replaces the whole collection: settings added by hand are dropped.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(
    platformSettings,
    brokerSettings,
    clientSecretSettings,
    certificateSettings,
    federatedCredentialSettings,
    entraAuthSettings,
    webhookUrlSettings,
    webhookSecretSettings,
    notifyConnectionSettings,
    notifyToSettings
  )
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
output publicBaseUrl string = publicBaseUrl
