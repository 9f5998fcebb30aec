// Private networking (VNET_ENABLED=true), shaped like the official Flex Consumption azd template
// (Azure-Samples/functions-quickstart-typescript-azd infra/app/vnet.bicep, storage-PrivateEndpoint.bicep), with
// plain resources instead of registry modules so it compiles offline:
// - a VNet with a subnet delegated to Microsoft.App/environments (what Flex Consumption VNet integration needs)
//   and a subnet for private endpoints;
// - private endpoints + private DNS zones (linked to the VNet, A records through zone groups) for every storage
//   service the host and the broker use: blob (host keys, timer singleton leases, the Flex deployment package,
//   the broker's lease locks), table (host diagnostic events) and queue (the broker's notification outbox);
//   file is not used by this app;
// - a private endpoint + zone for Key Vault (connection records, Key Vault references).
@description('Virtual network name.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Storage account that gets blob, table and queue private endpoints.')
param storageAccountName string

@description('Key Vault that gets a private endpoint.')
param keyVaultName string

@description('Address space of the VNet.')
param addressPrefix string = '10.0.0.0/16'

@description('Subnet of the app (Flex Consumption VNet integration).')
param appSubnetPrefix string = '10.0.1.0/24'

@description('Subnet of the private endpoints.')
param endpointSubnetPrefix string = '10.0.2.0/24'

var appSubnetName = 'app'
var endpointSubnetName = 'private-endpoints'

// Zone names per cloud: privatelink.<service>.<storage suffix> and privatelink.vaultcore.<...> (the Key Vault DNS
// suffix is ".vault.<cloud domain>"), so no cloud host name is written out here.
var storageZones = {
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  table: 'privatelink.table.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
}
var vaultZone = 'privatelink${replace(environment().suffixes.keyvaultDns, '.vault.', '.vaultcore.')}'

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          // The app reaches its identity provider, Microsoft Entra and App Insights on the internet through
          // this subnet. Explicit, because subnets of new VNets are moving to private-by-default; for a fixed
          // egress IP put a NAT gateway on this subnet instead (docs/deploy.md).
          defaultOutboundAccess: true
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: endpointSubnetName
        properties: {
          addressPrefix: endpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
          defaultOutboundAccess: false
        }
      }
    ]
  }
}

resource appSubnet 'Microsoft.Network/virtualNetworks/subnets@2024-05-01' existing = {
  parent: vnet
  name: appSubnetName
}

resource endpointSubnet 'Microsoft.Network/virtualNetworks/subnets@2024-05-01' existing = {
  parent: vnet
  name: endpointSubnetName
}

var endpoints = [
  {
    key: 'blob'
    serviceId: storage.id
    groupId: 'blob'
    zone: storageZones.blob
  }
  {
    key: 'table'
    serviceId: storage.id
    groupId: 'table'
    zone: storageZones.table
  }
  {
    key: 'queue'
    serviceId: storage.id
    groupId: 'queue'
    zone: storageZones.queue
  }
  {
    key: 'vault'
    serviceId: vault.id
    groupId: 'vault'
    zone: vaultZone
  }
]

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [
  for e in endpoints: {
    name: e.zone
    location: 'global'
    tags: tags
  }
]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [
  for (e, i) in endpoints: {
    parent: zones[i]
    name: '${name}-link'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: vnet.id
      }
    }
  }
]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [
  for e in endpoints: {
    name: 'pe-${e.key}-${name}'
    location: location
    tags: tags
    properties: {
      subnet: {
        id: endpointSubnet.id
      }
      privateLinkServiceConnections: [
        {
          name: '${e.key}-connection'
          properties: {
            privateLinkServiceId: e.serviceId
            groupIds: [
              e.groupId
            ]
          }
        }
      ]
    }
  }
]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [
  for (e, i) in endpoints: {
    parent: privateEndpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: e.key
          properties: {
            privateDnsZoneId: zones[i].id
          }
        }
      ]
    }
  }
]

output vnetId string = vnet.id
output appSubnetId string = appSubnet.id
output privateDnsZones array = [for (e, i) in endpoints: zones[i].name]
