// Key Vault in RBAC mode. It holds the broker's connection records (written by the app at run time, `conn-*`)
// and the configuration secrets written here, which app settings reach through Key Vault references.
@description('Key Vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the vault.')
param tags object

@description('Turn on purge protection. Once on it can never be turned off, and a deleted vault keeps its name reserved for the whole retention period.')
param enablePurgeProtection bool = false

// Creation-only: Key Vault keeps the retention chosen when the vault was created and refuses a different value
// later (learn.microsoft.com/azure/key-vault/general/soft-delete-overview). infra/hooks/preprovision.js stops a
// re-provision that would change it, comparing with the value the last provision recorded (output below).
@description('Days a deleted vault or secret stays recoverable. Set once, at creation.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('BROKER_KEYS: comma-separated base64url keys (first signs, the rest still verify).')
@secure()
@minLength(43)
param brokerKeys string

@description('Client secret of the Entra app registration; empty = no secret stored.')
@secure()
param microsoftClientSecret string = ''

@description('Standard Webhooks signing secret (BROKER_WEBHOOK_SECRET); empty = no secret stored.')
@secure()
param brokerWebhookSecret string = ''

@description('Private networking: refuse the public endpoint (reached through a private endpoint in the VNet only).')
param privateOnly bool = false

// Secret names outside the `conn-` namespace the token store uses for connection records.
var brokerKeysSecretName = 'broker-keys'
var clientSecretName = 'microsoft-client-secret'
var webhookSecretName = 'broker-webhook-secret'

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // The service rejects `false` (purge protection cannot be switched off), so "off" means "not sent".
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: privateOnly ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateOnly ? 'Deny' : 'Allow'
    }
  }
}

resource brokerKeysSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = {
  parent: vault
  name: brokerKeysSecretName
  properties: {
    value: brokerKeys
    contentType: 'text/plain; broker link and cookie keys'
  }
}

resource clientSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(microsoftClientSecret)) {
  parent: vault
  name: clientSecretName
  properties: {
    value: microsoftClientSecret
    contentType: 'text/plain; Entra app client secret'
  }
}

resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(brokerWebhookSecret)) {
  parent: vault
  name: webhookSecretName
  properties: {
    value: brokerWebhookSecret
    contentType: 'text/plain; Standard Webhooks signing secret'
  }
}

output id string = vault.id
output softDeleteRetentionInDays int = vault.properties.softDeleteRetentionInDays
output name string = vault.name
output vaultUri string = vault.properties.vaultUri
// Versionless URIs: a Key Vault reference then follows the latest version (re-read within 24 h or on restart).
output brokerKeysSecretUri string = brokerKeysSecret.properties.secretUri
// Where the client secret lives when one is given; the caller decides whether it was (it knows its own input).
output microsoftClientSecretUri string = '${vault.properties.vaultUri}secrets/${clientSecretName}'
output brokerWebhookSecretUri string = '${vault.properties.vaultUri}secrets/${webhookSecretName}'
