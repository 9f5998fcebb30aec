// E-mail alert when a connection stops refreshing. The broker logs `refresh.needs_reauth connection=<name> ...`
// and `refresh.failed connection=<name> code=<code> ...` through context.log; they land in App Insights `traces`.
@description('Action group name.')
param actionGroupName string

@description('Scheduled query rule name.')
param alertRuleName string

@description('Azure region of the query rule.')
param location string

@description('Tags for both resources.')
param tags object

@description('Application Insights component whose traces are queried.')
param appInsightsId string

@description('Where alert e-mails go.')
@minLength(3)
param alertEmail string

@description('How often the query runs and how far back it looks (ISO 8601 duration).')
param evaluationFrequency string = 'PT15M'

var query = '''
traces
| where message startswith "refresh.needs_reauth" or message startswith "refresh.failed"
| extend connection = extract(@"connection=([a-z0-9-]+)", 1, message)
| extend code = extract(@"code=([A-Za-z0-9_.-]+)", 1, message)
| project timestamp, connection, code, message
'''

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'tokenbroker'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource refreshAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: alertRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Token broker: refresh failing or re-consent needed'
    description: 'A connection failed to refresh or needs the account owner to sign in again (needs_reauth). Open a new connect link for it.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: evaluationFrequency
    criteria: {
      allOf: [
        {
          query: query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          // One alert per connection, so a single broken mailbox doesn't hide behind another.
          dimensions: [
            {
              name: 'connection'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
output alertRuleId string = refreshAlert.id
