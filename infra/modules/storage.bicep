// Host storage for the Functions runtime, the Flex deployment package, the broker's blob-lease locks and the
// notification outbox (a queue).
// Shared-key access is off: every consumer (host, deployment, lock code) authenticates with Entra.
@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the account.')
param tags object

@description('Blob container the Flex Consumption platform deploys the app package into.')
param deploymentContainerName string

@description('Blob container for the broker\'s per-connection refresh leases.')
param lockContainerName string = 'token-broker-locks'

// The broker's notification outbox (shared/notify/queueOutbox.ts): undelivered webhooks and owner mails wait
// here, their backoff kept as the message's visibility timeout. Created here so it is visible from the first
// provision; the app still calls createIfNotExists (a no-op then) and reads the name from BROKER_NOTIFY_QUEUE.
@description('Queue for undelivered notifications (3-63 lowercase letters, digits and single hyphens).')
@minLength(3)
@maxLength(63)
param notifyQueueName string = 'broker-events'

@description('Private networking: refuse the public endpoint (reached through private endpoints in the VNet only).')
param privateOnly bool = false

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: privateOnly ? 'Disabled' : 'Enabled'
    supportsHttpsTrafficOnly: true
    // As the official Flex template: with private networking no bypass at all, every consumer comes through the VNet.
    networkAcls: privateOnly
      ? {
          bypass: 'None'
          defaultAction: 'Deny'
        }
      : {
          bypass: 'AzureServices'
          defaultAction: 'Allow'
        }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource lockContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: lockContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource notifyQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = {
  parent: queueService
  name: notifyQueueName
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = storage.properties.primaryEndpoints.table
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output notifyQueueName string = notifyQueue.name
output deploymentContainerName string = deploymentContainer.name
