// Everything of our own, in the app's resource group: the user-assigned identity and every role it
// holds here, storage (no shared keys), Log Analytics and Application Insights (no local auth),
// Key Vault (RBAC) with the Slack secrets and the audit key, Event Hubs for Defender's continuous
// export, and the Function App on Flex Consumption (FC1, Python 3.11).
//
// The identity gets exactly what the code does with each resource:
//   storage account  Storage Blob Data Owner (host: deployment package, leases, Event Hub checkpoints;
//                    ours: snapshots), Storage Queue Data Contributor (queue triggers, our queues),
//                    Storage Table Data Contributor (events, incidents, audit, tagindex, slackmessages)
//   event hub        Azure Event Hubs Data Receiver (the defender_alerts_eventhub trigger)
//   key vault        Key Vault Secrets User (Key Vault references)
//   app insights     Monitoring Metrics Publisher (telemetry with Entra auth, local auth off)
// Registries, clusters and Resource Graph are granted in main.bicep, where they live.

param location string
param tags object
param token string
param registriesJson string
param clusters string
@secure()
param slackBotToken string
@secure()
param slackSigningSecret string
param slackApproversChannel string
param slackTeamId string
param slackAppId string
param incidentViewers string
param protectedNamespaces string
param disallowedTagsJson string
param pusherAllowlistJson string
param defenderExport bool
param defenderExportPrincipalId string
param deployerPrincipalId string
param deployerPrincipalType string
param keyVaultPurgeProtection bool
param instanceMemoryMB int
param maximumInstanceCount int

// Built-in role definitions (ids from learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

var functionAppName = 'func-${token}'
var deploymentContainerName = 'app-package-${take(token, 20)}'
var deadLetterContainerName = 'eventgrid-deadletter'
var defenderHubName = 'defender-alerts'
var defenderConsumerGroupName = 'remediation'
// The app's own names, as the code defaults them (remediation/settings/declared.py). The app also
// creates each at first use; creating them here makes the first run quieter and the names visible.
var queueNames = [
  'remediation-actions'
  'slack-outbox'
  'registry-findings'
]
var tableNames = [
  'events'
  'incidents'
  'audit'
  'tagindex'
  'slackmessages'
]
var blobContainerNames = [
  deploymentContainerName
  'snapshots'
  deadLetterContainerName
]

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${token}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------- storage

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches the account over its public endpoint; access is Entra-only (no shared key), and private endpoints are not part of this template (docs/deploy.md)
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: public endpoint, Entra-only access
  // checkov:skip=CKV_AZURE_206: LRS keeps the template deployable in every Flex Consumption region; it is durable (11 nines), and what it holds is re-created (host state, queues) or append-only and hash-chained (audit)
  // checkov:skip=CKV_AZURE_43: false positive: checkov cannot evaluate the interpolated name, 'st' + 13 lowercase letters and digits of uniqueString
  name: 'st${take(token, 22)}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false // identity only: the host and our code use AzureWebJobsStorage__* with the identity
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled' // Flex Consumption without a virtual network reaches it publicly
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = [for name in blobContainerNames: {
  parent: blobService
  name: name
  properties: {
    publicAccess: 'None'
  }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = [for name in queueNames: {
  parent: queueService
  name: name
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2024-01-01' = [for name in tableNames: {
  parent: tableService
  name: name
}]

resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------- monitoring

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${token}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true // telemetry only with an Entra token: APPLICATIONINSIGHTS_AUTHENTICATION_STRING
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------- Key Vault

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Key Vault references of Flex Consumption without VNet integration, and the postprovision hook on the deployer's machine, come over the public endpoint; access is RBAC-only
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109
  // checkov:skip=CKV_AZURE_110: purge protection is on unless keyVaultPurgeProtection=false (throwaway environments); the API takes true or null, so the value is an expression checkov does not evaluate
  // checkov:skip=CKV_AZURE_42: soft delete is on (90 days) and purge protection as for CKV_AZURE_110
  name: 'kv-${take(token, 21)}'
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true // no access policies: roles only
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: keyVaultPurgeProtection ? true : null // null: off; false is refused by the API
    publicNetworkAccess: 'Enabled'
  }
}

// Slack's secrets, written only when given: a later deployment without them keeps what is there.
resource slackBotTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(slackBotToken)) {
  parent: vault
  name: 'slack-bot-token'
  // checkov:skip=CKV_AZURE_41: Slack tokens and signing secrets do not expire; an expiry date would stop the Key Vault reference from resolving and silence Slack (rotation: docs/deploy.md)
  // checkov:skip=CKV_AZURE_114: false positive: contentType is set; checkov 3.3.30 does not look inside conditional (if) resources
  properties: {
    value: slackBotToken
    contentType: 'text/plain'
  }
}

resource slackSigningSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(slackSigningSecret)) {
  parent: vault
  name: 'slack-signing-secret'
  // checkov:skip=CKV_AZURE_41: as for slack-bot-token: the signing secret does not expire
  // checkov:skip=CKV_AZURE_114: false positive: contentType is set; checkov 3.3.30 does not look inside conditional (if) resources
  properties: {
    value: slackSigningSecret
    contentType: 'text/plain'
  }
}
// The audit key (secret `audit-key`) is made by infra/hooks/postprovision.sh, once: Bicep has no
// stable random value, and a new key at each deployment would rotate it without being asked.

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The deployer writes the audit key in the postprovision hook (data plane).
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// ---------------------------------------------------------------- Event Hubs (Defender alerts)

resource eventHubs 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: 'evhns-${token}'
  location: location
  tags: tags
  sku: {
    name: 'Standard' // Basic allows only $Default; we read with a consumer group of our own
    tier: 'Standard'
    capacity: 1
  }
  properties: {
    disableLocalAuth: true // no SAS: the trigger and the export authenticate with Entra
    minimumTlsVersion: '1.2'
  }
}

resource defenderHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: eventHubs
  name: defenderHubName
  properties: {
    partitionCount: 2
    messageRetentionInDays: 1
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: defenderHub
  name: defenderConsumerGroupName
}

resource hubReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(defenderHub.id, identity.id, roles.eventHubsDataReceiver)
  scope: defenderHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Continuous export sends "as a trusted service": Defender's first-party service principal
// (Windows Azure Security Resource Provider) needs Azure Event Hubs Data Sender on the hub.
resource exportSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (defenderExport && !empty(defenderExportPrincipalId)) {
  name: guid(defenderHub.id, defenderExportPrincipalId, roles.eventHubsDataSender)
  scope: defenderHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
    principalId: defenderExportPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Defender for Cloud continuous export of this subscription's security alerts to the hub. Only
// alerts: recommendations sharing a hub would be skipped by the app anyway.
resource defenderExportAutomation 'Microsoft.Security/automations@2023-12-01-preview' = if (defenderExport) {
  name: 'ExportToHub-${token}'
  location: location
  tags: tags
  dependsOn: [
    exportSender
  ]
  properties: {
    description: 'Defender for Cloud alerts to the AKS/ACR remediation bot (Event Hub ${defenderHubName})'
    isEnabled: true
    scopes: [
      {
        description: 'this subscription'
        scopePath: subscription().id
      }
    ]
    sources: [
      {
        eventSource: 'Alerts'
      }
    ]
    actions: [
      {
        actionType: 'EventHub'
        eventHubResourceId: defenderHub.id
        isTrustedServiceEnabled: true // Entra, not a SAS connection string (local auth is off)
      }
    ]
  }
}

// ---------------------------------------------------------------- Function App (Flex Consumption)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions; the bot's work is queued and retried, so a zone outage delays it and loses nothing
  name: 'plan-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

var keyVaultSecrets = '${vault.properties.vaultUri}secrets'

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Slack calls /api/slack/events over the internet (requests are checked against the signing secret) and Logic App routes call /api/defender/alerts with a function key
  // checkov:skip=CKV_AZURE_17: Slack presents no client certificate; its requests are authenticated by their signature
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per trigger; always-ready instances would cost money for no gain, as queued work waits and is retried
  // checkov:skip=CKV_AZURE_213: the app has no health route, and Flex Consumption replaces instances itself; App Service health check does not apply
  name: functionAppName
  location: location
  tags: union(tags, {
    'azd-service-name': 'remediation'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  dependsOn: [
    blobDataOwner
    queueDataContributor
    tableDataContributor
    secretsUser
    hubReceiver
    metricsPublisher
  ]
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id // Key Vault references resolve with the user-assigned identity
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled' // code is deployed by azd (or func publish) with Entra, never over FTP
      http20Enabled: true
      // Flex Consumption takes the runtime from functionAppConfig: FUNCTIONS_WORKER_RUNTIME and
      // FUNCTIONS_EXTENSION_VERSION must not be app settings here.
      appSettings: [
        // Host storage through the identity; our own table, queue and blob clients read the same
        // settings (AzureWebJobsStorage__accountName, __clientId). No connection string, no key.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identity.properties.clientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        // The Event Hub trigger, through the identity.
        {
          name: 'DEFENDER_EVENTHUB__fullyQualifiedNamespace'
          value: split(split(eventHubs.properties.serviceBusEndpoint, '//')[1], ':')[0]
        }
        {
          name: 'DEFENDER_EVENTHUB__credential'
          value: 'managedidentity'
        }
        {
          name: 'DEFENDER_EVENTHUB__clientId'
          value: identity.properties.clientId
        }
        {
          name: 'DEFENDER_EVENTHUB_NAME'
          value: defenderHubName
        }
        {
          name: 'DEFENDER_EVENTHUB_CONSUMER_GROUP'
          value: defenderConsumerGroupName
        }
        // Telemetry with Entra (local auth is off on Application Insights).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
        }
        // The Python worker configures OpenTelemetry (azure-monitor-opentelemetry) for our logs, traces
        // and metrics; with host.json telemetryMode OpenTelemetry. Its exporter authenticates with the
        // authentication string above (local auth is off).
        {
          name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
          value: 'true'
        }
        // Azure SDK clients of our code: the user-assigned identity, this cloud's endpoints.
        {
          name: 'AZURE_CLIENT_ID'
          value: identity.properties.clientId
        }
        {
          name: 'AZURE_RESOURCE_MANAGER_ENDPOINT'
          value: environment().resourceManager
        }
        {
          name: 'AZURE_AUTHORITY_HOST'
          value: environment().authentication.loginEndpoint
        }
        // Secrets: Key Vault references, never values.
        {
          name: 'SLACK_BOT_TOKEN'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultSecrets}/slack-bot-token/)'
        }
        {
          name: 'SLACK_SIGNING_SECRET'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultSecrets}/slack-signing-secret/)'
        }
        {
          name: 'REMEDIATION_AUDIT_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultSecrets}/audit-key/)'
        }
        // What the bot may act on, and for whom.
        {
          name: 'REMEDIATION_REGISTRIES'
          value: registriesJson
        }
        {
          name: 'REMEDIATION_CLUSTERS'
          value: clusters
        }
        {
          name: 'REMEDIATION_VIEWERS'
          value: incidentViewers
        }
        {
          name: 'REMEDIATION_PROTECTED_NAMESPACES'
          value: protectedNamespaces
        }
        {
          name: 'REMEDIATION_DISALLOWED_TAGS'
          value: disallowedTagsJson
        }
        {
          name: 'REMEDIATION_PUSHER_ALLOWLIST'
          value: pusherAllowlistJson
        }
        {
          name: 'SLACK_DEFAULT_CHANNEL'
          value: slackApproversChannel
        }
        {
          name: 'SLACK_TEAM_ID'
          value: slackTeamId
        }
        {
          name: 'SLACK_APP_ID'
          value: slackAppId
        }
      ]
    }
  }
}

output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output identityId string = identity.id
output functionAppName string = functionApp.name
output functionAppId string = functionApp.id
output storageAccountName string = storage.name
output keyVaultName string = vault.name
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output keyVaultUri string = vault.properties.vaultUri
output deadLetterContainerName string = deadLetterContainerName
