// Reader on one subscription, so Azure Resource Graph returns Defender's findings there
// (remediation/push_policy/findings.py queries `securityresources`; Resource Graph only returns
// what the caller can read).
targetScope = 'subscription'

param principalId string

var readerRole = 'acdd72a7-3385-48ef-bd42-f606fba81ae7' // Reader

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, readerRole)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRole)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
