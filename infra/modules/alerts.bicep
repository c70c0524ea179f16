// Azure Monitor log alerts on the app's own telemetry in Application Insights, deployed with the app
// unless alertsEnabled=false (main.bicep). Each rule counts log lines the code writes (the messages
// are quoted in the queries; tests/test_infra.py checks each one against the sources) and fires when
// there is at least one in its window:
//   poison queue not empty  a work message gave up: `last delivery failed: %s` (functions/executor.py,
//                           the executor's 5th delivery), `Slack %s job gave up after %d attempts: %s`
//                           (bot/outbox.py), or the host moving a message to remediation-actions-poison
//                           or slack-outbox-poison
//   incident failed         `incident %s` with the state `failed` (remediation/executor.py `_finish`)
//   invalid playbooks       `invalid playbook: %s` (remediation/compose.py): no incident opens until fixed
// The queries use Application Insights' own tables (traces, exceptions): the rules are scoped to the
// component. Notifications go to an action group with one email receiver when alertEmail is given;
// without it the rules still fire and show in Azure Monitor > Alerts.
param location string
param tags object
param token string
@description('Resource id of the Application Insights component the app sends its telemetry to.')
param appInsightsId string
@description('Where fired alerts are emailed; empty: no action group (alerts show in the portal only).')
param alertEmail string = ''

// The host's own line when it moves a message to a poison queue (WebJobs SDK QueueProcessor, Warning):
//   Message has reached MaxDequeueCount of 5. Moving message to queue '<queue>-poison'.
var poisonQuery = 'union traces, exceptions | where message startswith "last delivery failed: " or (message startswith "Slack " and message contains " job gave up after ") or (message startswith "Message has reached MaxDequeueCount" and (message contains "remediation-actions-poison" or message contains "slack-outbox-poison")) | project timestamp, itemType, message, incident_id = tostring(customDimensions.incident_id), operation_Id'
var incidentFailedQuery = 'traces | where message == "incident failed" and severityLevel >= 3 | project timestamp, message, incident_id = tostring(customDimensions.incident_id), playbook = tostring(customDimensions.playbook), error = tostring(customDimensions.error), operation_Id'
var invalidPlaybooksQuery = 'traces | where message startswith "invalid playbook: " | project timestamp, message, playbooks_dir = tostring(customDimensions.playbooks_dir), operation_Id'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-remediation-${token}'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'remediation'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmail) ? [] : [
  actionGroup.id
]

resource poisonAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-poison-queue-${token}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AKS/ACR remediation: poison queue not empty'
    description: 'A work message gave up after its last delivery (remediation-actions-poison, slack-outbox-poison): the incident was marked failed or a Slack message was not updated. Read the message and operation_Id in the results; docs/deploy.md, "Alerts".'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: poisonQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource incidentFailedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-incident-failed-${token}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AKS/ACR remediation: an incident failed'
    description: 'An approved remediation ended in an error (incident_id, playbook and error in the results); the Slack thread says what was done.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: incidentFailedQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: actionGroups
    }
  }
}

// An invalid playbook set is logged at each load until it is fixed: notify at most once an hour.
resource invalidPlaybooksAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-invalid-playbooks-${token}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AKS/ACR remediation: invalid playbooks'
    description: 'The deployed playbooks do not load: no incident opens, and events are retried until the playbooks are fixed and deployed again.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: invalidPlaybooksQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    muteActionsDuration: 'PT1H'
    actions: {
      actionGroups: actionGroups
    }
  }
}

output actionGroupId string = empty(alertEmail) ? '' : actionGroup.id
output ruleNames array = [
  poisonAlert.name
  incidentFailedAlert.name
  invalidPlaybooksAlert.name
]
