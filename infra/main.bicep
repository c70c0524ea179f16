// The whole installation of the AKS/ACR remediation bot, in one subscription deployment:
//   azd up                         (azure.yaml; parameters from infra/main.parameters.json)
//   az deployment sub create -l <region> -f infra/main.bicep -p environmentName=<name> location=<region> ...
// The Event Grid subscriptions to `registry_events` need the function to exist, so they are a second
// deployment (infra/eventgrid.bicep), run by the postdeploy hook once azd has deployed the code.
//
// Lists are comma-separated strings so that `azd env set NAME value` can carry them. Nothing here
// names a subscription: registries and clusters may live in any subscription of the tenant.
// Local modules only (infra/modules): the public Bicep registry cannot be reached where this is tested.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the environment; it seeds every resource name (azd: AZURE_ENV_NAME).')
param environmentName string

@minLength(1)
@description('Region of the resource group and everything in it (azd: AZURE_LOCATION).')
param location string

@description('Resource group to create or reuse; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Registries the bot acts on: ACR resource ids, comma-separated. Each gets the Registry Remediator role and, after deploy, an Event Grid subscription.')
param registryResourceIds string = ''

@description('Clusters the bot acts on: AKS resource ids, comma-separated (REMEDIATION_CLUSTERS). Each gets the AKS Cluster User Role.')
param clusterResourceIds string = ''

@description('How the identity is authorized inside the clusters: kubernetesRbac (bind deploy/kubernetes/rbac.yaml to its object id with kubectl) or azureRbac (clusters with Azure RBAC for Kubernetes: a custom role with the same permissions is assigned here).')
@allowed([
  'kubernetesRbac'
  'azureRbac'
])
param kubernetesAuthorization string = 'kubernetesRbac'

@description('Subscriptions (ids, comma-separated) where the identity gets Reader so Resource Graph returns Defender findings; empty: the registries\' subscriptions.')
param resourceGraphSubscriptionIds string = ''

@secure()
@description('Slack bot token (xoxb-...). Stored in Key Vault when given; empty keeps the secret already there.')
param slackBotToken string = ''

@secure()
@description('Slack signing secret. Stored in Key Vault when given; empty keeps the secret already there.')
param slackSigningSecret string = ''

@description('The approvers\' channel: incidents whose playbook names no channel go here (SLACK_DEFAULT_CHANNEL).')
param slackApproversChannel string = ''

@description('The one Slack workspace (T...) whose requests are taken (SLACK_TEAM_ID); empty: any.')
param slackTeamId string = ''

@description('The one Slack app (A...) whose requests are taken (SLACK_APP_ID); empty: any.')
param slackAppId string = ''

@description('Who besides approvers may read incidents in Slack: user ids and @user-group handles, comma-separated.')
param incidentViewers string = ''

@description('Namespaces the Kubernetes actions never touch, besides the built-in ones, comma-separated.')
param protectedNamespaces string = ''

@description('JSON {"<repository glob>": ["<tag>", ...]}: pushes marked disallowed_tag.')
param disallowedTagsJson string = ''

@description('JSON {"<repository glob>": ["<actor>", ...]}: pushes by anyone else are marked pusher_not_allowed.')
param pusherAllowlistJson string = ''

@description('Create the Defender for Cloud continuous export of alerts (this subscription) to the Event Hub.')
param defenderExport bool = true

@description('Object id of the "Windows Azure Security Resource Provider" service principal in this tenant (az ad sp show --id 8edd93e1-2103-40b4-bd70-6e34e586362d --query id -o tsv). With it, continuous export sends as a trusted service with Azure Event Hubs Data Sender; without it the export is created but cannot send until that role is granted.')
param defenderExportPrincipalId string = ''

@description('Object id of whoever runs the deployment (azd: AZURE_PRINCIPAL_ID): gets Key Vault Secrets Officer so the postprovision hook can create the audit key. Empty: nobody.')
param deployerPrincipalId string = ''

@description('Kind of that principal (azd: AZURE_PRINCIPAL_TYPE).')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Azure Monitor log alerts on the app\'s telemetry: poison queue not empty, an incident failed, invalid playbooks (infra/modules/alerts.bicep).')
param alertsEnabled bool = true

@description('Email address the alerts are sent to (an action group with one email receiver); empty: no action group, alerts show in Azure Monitor only.')
param alertEmail string = ''

@description('Key Vault purge protection (cannot be turned off once on).')
param keyVaultPurgeProtection bool = true

@description('Flex Consumption instance memory (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex Consumption scale-out limit.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

var tags = {
  'azd-env-name': environmentName
  app: 'aks-acr-remediation'
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var registryIds = empty(registryResourceIds) ? [] : split(registryResourceIds, ',')
var clusterIds = empty(clusterResourceIds) ? [] : split(clusterResourceIds, ',')
var registrySubscriptionIds = [for id in registryIds: split(id, '/')[2]]
var readerSubscriptionIds = empty(resourceGraphSubscriptionIds) ? union(registrySubscriptionIds, []) : split(resourceGraphSubscriptionIds, ',')
var registryScopes = [for id in registryIds: '/subscriptions/${split(id, '/')[2]}']
var clusterScopes = [for id in clusterIds: '/subscriptions/${split(id, '/')[2]}']

// REMEDIATION_REGISTRIES: {"<login server>": "<resource id>"}; the login server is <name><acr suffix>
// (registries with a domain name label hash have another one: set the app setting by hand then).
var registryEntries = [for id in registryIds: '"${toLower(last(split(id, '/')))}${environment().suffixes.acrLoginServer}":"${id}"']
var registriesJson = '{${join(registryEntries, ',')}}'

// The custom registry role, loaded from the file the registry actions generate (a test keeps them equal).
var registryRole = loadJsonContent('../deploy/azure/registry-remediator-role.json')

// The ClusterRole of deploy/kubernetes/rbac.yaml in Azure RBAC for Kubernetes data actions
// (get/list -> read, create/patch -> write, delete -> delete, other verbs -> <verb>/action; a
// subresource such as pods/eviction or deployments/scale is authorized on its resource). The
// break-glass role (deploy/kubernetes/break-glass.yaml) is not here: it is bound only while needed.
// tests/test_infra.py derives this list from rbac.yaml and fails when they drift.
var kubernetesDataActions = [
  'Microsoft.ContainerService/managedClusters/nodes/read'
  'Microsoft.ContainerService/managedClusters/nodes/write'
  'Microsoft.ContainerService/managedClusters/pods/read'
  'Microsoft.ContainerService/managedClusters/pods/write'
  'Microsoft.ContainerService/managedClusters/pods/delete'
  'Microsoft.ContainerService/managedClusters/services/read'
  'Microsoft.ContainerService/managedClusters/services/write'
  'Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/clusterrolebindings/read'
  'Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/clusterrolebindings/delete'
  'Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/rolebindings/read'
  'Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/rolebindings/delete'
  'Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/clusterroles/read'
  'Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/clusterroles/delete'
  'Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/roles/read'
  'Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/roles/delete'
  'Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/read'
  'Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/write'
  'Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/delete'
  'Microsoft.ContainerService/managedClusters/apps/deployments/read'
  'Microsoft.ContainerService/managedClusters/apps/deployments/write'
  'Microsoft.ContainerService/managedClusters/apps/statefulsets/read'
  'Microsoft.ContainerService/managedClusters/apps/statefulsets/write'
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

// Everything of our own: identity, storage, monitoring, Key Vault, Event Hubs, the Function App.
module app 'modules/app.bicep' = {
  name: 'app-${token}'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    registriesJson: registriesJson
    clusters: clusterResourceIds
    slackBotToken: slackBotToken
    slackSigningSecret: slackSigningSecret
    slackApproversChannel: slackApproversChannel
    slackTeamId: slackTeamId
    slackAppId: slackAppId
    incidentViewers: incidentViewers
    protectedNamespaces: protectedNamespaces
    disallowedTagsJson: disallowedTagsJson
    pusherAllowlistJson: pusherAllowlistJson
    defenderExport: defenderExport
    defenderExportPrincipalId: defenderExportPrincipalId
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
    keyVaultPurgeProtection: keyVaultPurgeProtection
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

// Log alerts on what the app logs to Application Insights.
module alerts 'modules/alerts.bicep' = if (alertsEnabled) {
  name: 'alerts-${token}'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    appInsightsId: app.outputs.appInsightsId
    alertEmail: alertEmail
  }
}

// Custom roles are tenant-wide names: the environment name keeps two installations apart.
resource registryRemediatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(registryIds)) {
  name: guid(subscription().id, environmentName, 'registry-remediator')
  properties: {
    roleName: '${registryRole.Name} (${environmentName})'
    description: registryRole.Description
    type: 'CustomRole'
    permissions: [
      {
        actions: registryRole.Actions
        notActions: registryRole.NotActions
        dataActions: registryRole.DataActions
        notDataActions: registryRole.NotDataActions
      }
    ]
    assignableScopes: union(registryScopes, [subscription().id])
  }
}

resource kubernetesRemediatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (kubernetesAuthorization == 'azureRbac' && !empty(clusterIds)) {
  name: guid(subscription().id, environmentName, 'kubernetes-remediator')
  properties: {
    roleName: 'Kubernetes Remediator (${environmentName})'
    description: 'deploy/kubernetes/rbac.yaml (ClusterRole aks-acr-remediation) as Azure RBAC for Kubernetes data actions. Assign on each remediated cluster.'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: kubernetesDataActions
        notDataActions: []
      }
    ]
    assignableScopes: union(clusterScopes, [subscription().id])
  }
}

// The registry role on each registry, wherever it lives.
module registryAccess 'modules/registry-access.bicep' = [for (id, i) in registryIds: {
  name: 'registry-access-${i}-${token}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    registryName: last(split(id, '/'))
    principalId: app.outputs.identityPrincipalId
    roleDefinitionId: registryRemediatorRole.id
  }
}]

// AKS Cluster User Role on each cluster (listClusterUserCredential: the API server's CA), and with
// Azure RBAC for Kubernetes the custom Kubernetes role; otherwise the ClusterRoleBinding of
// deploy/kubernetes/rbac.yaml to the identity's object id is applied with kubectl (docs/deploy.md).
module clusterAccess 'modules/cluster-access.bicep' = [for (id, i) in clusterIds: {
  name: 'cluster-access-${i}-${token}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    clusterName: last(split(id, '/'))
    principalId: app.outputs.identityPrincipalId
    kubernetesRoleDefinitionId: kubernetesAuthorization == 'azureRbac' ? kubernetesRemediatorRole.id : ''
  }
}]

// Reader where Resource Graph must see Defender's findings (it returns only what the caller can read).
module resourceGraphReader 'modules/subscription-reader.bicep' = [for (subscriptionId, i) in readerSubscriptionIds: {
  name: 'graph-reader-${i}-${token}'
  scope: subscription(subscriptionId)
  params: {
    principalId: app.outputs.identityPrincipalId
  }
}]

// azd writes these into the environment; the hooks read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output AZURE_FUNCTION_APP_ID string = app.outputs.functionAppId
output AZURE_STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
output AZURE_KEY_VAULT_NAME string = app.outputs.keyVaultName
output AZURE_KEY_VAULT_URI string = app.outputs.keyVaultUri
output AZURE_APPLICATION_INSIGHTS_NAME string = app.outputs.appInsightsName
output AZURE_IDENTITY_CLIENT_ID string = app.outputs.identityClientId
output AZURE_IDENTITY_PRINCIPAL_ID string = app.outputs.identityPrincipalId
output EVENTGRID_DEAD_LETTER_CONTAINER string = app.outputs.deadLetterContainerName
output REGISTRY_RESOURCE_IDS string = registryResourceIds
output KUBERNETES_AUTHORIZATION string = kubernetesAuthorization
