// The Event Grid system topic of one registry, in the registry's resource group and region, with a
// system-assigned identity for dead-lettering. An existing topic (one per source) is reused by name.
param registryName string
@description('Existing system topic name; empty: evgt-<registry>-remediation.')
param topicName string = ''

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: empty(topicName) ? 'evgt-${registryName}-remediation' : topicName
  location: registry.location // a system topic lives in its source's region
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: registry.id
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
}

output name string = topic.name
output principalId string = topic.identity.principalId
