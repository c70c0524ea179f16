// What the identity needs on one AKS cluster, deployed into the cluster's resource group.
//  - Azure Kubernetes Service Cluster User Role: listClusterUserCredential, which the app reads for
//    the API server's CA (remediation/actions/kubernetes/connect.py).
//  - With Azure RBAC for Kubernetes, the custom "Kubernetes Remediator" role (main.bicep); with
//    Kubernetes RBAC, the ClusterRoleBinding of deploy/kubernetes/rbac.yaml is applied by hand.
param clusterName string
param principalId string
@description('Resource id of the custom Kubernetes role; empty: Kubernetes RBAC (kubectl binding).')
param kubernetesRoleDefinitionId string = ''

var clusterUserRole = '4abbcc35-e782-43d8-92c5-2d3f1bd2253f' // Azure Kubernetes Service Cluster User Role

resource cluster 'Microsoft.ContainerService/managedClusters@2024-05-01' existing = {
  name: clusterName
}

resource clusterUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, principalId, clusterUserRole)
  scope: cluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', clusterUserRole)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource kubernetesRemediator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(kubernetesRoleDefinitionId)) {
  name: guid(cluster.id, principalId, 'kubernetes-remediator')
  scope: cluster
  properties: {
    roleDefinitionId: kubernetesRoleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
