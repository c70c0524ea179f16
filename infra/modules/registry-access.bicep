// The custom "Registry Remediator" role (deploy/azure/registry-remediator-role.json) on one registry,
// deployed into the registry's own resource group and subscription.
param registryName string
param principalId string
@description('Resource id of the custom role definition (main.bicep).')
param roleDefinitionId string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource remediator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, roleDefinitionId)
  scope: registry
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
