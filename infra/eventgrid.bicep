// Second deployment, after the code is deployed: one Event Grid system topic per registry and its
// subscription to the `registry_events` function. An AzureFunction destination is validated against
// the function itself, so this cannot run in the same deployment that creates the Function App
// (the Azure samples use a post-deploy hook for the same reason). Run by infra/hooks/postdeploy.sh:
//   az deployment sub create -l <region> -f infra/eventgrid.bicep -p registryResourceIds=... \
//     functionAppId=... storageAccountName=... appResourceGroupName=... [systemTopicNames=...]
targetScope = 'subscription'

@description('ACR resource ids, comma-separated (as for main.bicep).')
param registryResourceIds string

@description('Names of system topics that already exist on these registries, comma-separated in the same order (Event Grid allows one system topic per source); an empty entry makes a new one.')
param systemTopicNames string = ''

@description('Resource id of the Function App (main.bicep output AZURE_FUNCTION_APP_ID).')
param functionAppId string

@description('Resource group of the app (main.bicep output AZURE_RESOURCE_GROUP).')
param appResourceGroupName string

@description('The app\'s storage account, which holds the dead-letter container.')
param storageAccountName string

@description('Blob container for events Event Grid gave up on.')
param deadLetterContainerName string = 'eventgrid-deadletter'

var registryIds = split(registryResourceIds, ',')
var topicNames = empty(systemTopicNames) ? [] : split(systemTopicNames, ',')

module topics 'modules/registry-topic.bicep' = [for (id, i) in registryIds: {
  name: 'registry-topic-${i}-${uniqueString(id)}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    registryName: last(split(id, '/'))
    topicName: length(topicNames) > i ? topicNames[i] : ''
  }
}]

// The topic's own identity writes dead letters: the account takes no shared key.
module deadLetterAccess 'modules/deadletter-access.bicep' = [for (id, i) in registryIds: {
  name: 'deadletter-access-${i}-${uniqueString(id)}'
  scope: resourceGroup(appResourceGroupName)
  params: {
    storageAccountName: storageAccountName
    containerName: deadLetterContainerName
    principalId: topics[i].outputs.principalId
  }
}]

module subscriptions 'modules/registry-subscription.bicep' = [for (id, i) in registryIds: {
  name: 'registry-subscription-${i}-${uniqueString(id)}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  dependsOn: [
    deadLetterAccess
  ]
  params: {
    topicName: topics[i].outputs.name
    functionAppId: functionAppId
    storageAccountId: resourceId(subscription().subscriptionId, appResourceGroupName, 'Microsoft.Storage/storageAccounts', storageAccountName)
    deadLetterContainerName: deadLetterContainerName
  }
}]
