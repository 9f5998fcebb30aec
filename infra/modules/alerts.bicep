// Three e-mail alerts on the Application Insights data:
// - refresh failing: the broker logs `refresh.needs_reauth connection=<name> ...` and
//   `refresh.failed connection=<name> code=<code> ...` (App Insights `traces`);
// - sweep silent: no successful execution of the timer function `refresh` (App Insights `requests`, one row per
//   execution, written by the host's Host.Results category) for three schedule periods. On the real host a timer
//   that fails indexing (bad schedule, missing storage role for its singleton lease) is disabled while HTTP keeps
//   working (azure-functions-host FunctionIndexer.cs / ScriptHost.cs): nothing fails, the sweep just never runs;
// - notifications failing (shared/notify/notifier.ts, error level): `notify.gave_up` (a webhook or owner mail
//   given up after its last retry), `notify.emit_failed` (an event could not be stored in the outbox queue) and
//   `notify.drain_failed` (the outbox queue unreachable, e.g. its role or private endpoint missing).
// host.json keeps both visible: Host.Results and Function at Information, and Request/Exception/Trace excluded
// from adaptive sampling, so the counts below are never estimates.
@description('Action group name.')
param actionGroupName string

@description('Scheduled query rule name of the refresh-failure alert.')
param alertRuleName string

@description('Scheduled query rule name of the silent-sweep alert.')
param sweepAlertRuleName string

@description('Scheduled query rule name of the notification-failure alert.')
param notifyAlertRuleName string

@description('NCRONTAB schedule of the sweep (BROKER_REFRESH_SCHEDULE), to derive its period.')
param refreshSchedule string

@description('Minutes without a completed sweep before alerting; 0 = three schedule periods derived from refreshSchedule.')
@minValue(0)
@maxValue(2880)
param sweepAlertMinutes int = 0

@description('Azure region of the query rule.')
param location string

@description('Tags for both resources.')
param tags object

@description('Application Insights component whose traces are queried.')
param appInsightsId string

@description('Where alert e-mails go.')
@minLength(3)
param alertEmail string

@description('How often the refresh-failure query runs and how far back it looks (ISO 8601 duration).')
param evaluationFrequency string = 'PT15M'

// --- the sweep's period, from the schedule -------------------------------------------------------------------
// Recognised (6 fields with seconds or 5 without; day, month and day-of-week all `*`): `*/N` minutes, `*` minutes
// (every minute), a fixed minute with `*` hours (hourly), with `*/N` hours, or with a fixed hour (daily). Any other
// shape falls back to the longest window a log alert allows (2 days); set sweepAlertMinutes
// (BROKER_SWEEP_ALERT_MINUTES) for it. Written so that no sub-expression can fail whatever ARM evaluates: fields are
// padded (no index out of range), skip() instead of substring(), int() only of digits (toInt).
func isNumber(text string) bool => !empty(text) && empty(join(split(text, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']), ''))

func toInt(text string) int => int(isNumber(text) ? text : '0')

var given = filter(split(trim(refreshSchedule), ' '), f => !empty(f))
var fields = concat(given, ['', '', '', '', '', ''])
var offset = length(given) == 6 ? 1 : 0
var minuteField = fields[offset]
var hourField = fields[offset + 1]
var everyDay = length(given) >= 5 && fields[offset + 2] == '*' && fields[offset + 3] == '*' && fields[offset + 4] == '*'
var minuteStep = startsWith(minuteField, '*/') ? toInt(skip(minuteField, 2)) : 0
var hourStep = startsWith(hourField, '*/') ? toInt(skip(hourField, 2)) : 0
var scheduleMinutes = !everyDay
  ? 0
  : minuteField == '*'
      ? 1
      : minuteStep > 0 && hourField == '*'
          ? minuteStep
          : !isNumber(minuteField)
              ? 0
              : hourField == '*' ? 60 : hourStep > 0 ? 60 * hourStep : isNumber(hourField) ? 1440 : 0
// Three periods, within what a log alert can look back (2 days).
var silenceMinutes = sweepAlertMinutes > 0
  ? sweepAlertMinutes
  : (scheduleMinutes == 0 ? 2880 : min(3 * scheduleMinutes, 2880))
// The rule's window must be one of the sizes Azure Monitor offers; the query itself cuts at exactly silenceMinutes.
var windowSizes = [5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440, 2880]
var windowMinutes = first(filter(windowSizes, w => w >= silenceMinutes)) ?? 2880
var windowSize = windowMinutes < 60
  ? 'PT${windowMinutes}M'
  : windowMinutes < 1440 ? 'PT${windowMinutes / 60}H' : 'P${windowMinutes / 1440}D'
var sweepEvaluationFrequency = windowMinutes <= 60 ? 'PT5M' : 'PT15M'

// Successful executions of the timer function (operation_Name is the function name).
var sweepQuery = 'requests\n| where operation_Name =~ "refresh" and success == true\n| where timestamp > ago(${silenceMinutes}m)\n'

var query = '''
traces
| where message startswith "refresh.needs_reauth" or message startswith "refresh.failed"
| extend connection = extract(@"connection=([a-z0-9-]+)", 1, message)
| extend code = extract(@"code=([A-Za-z0-9_.-]+)", 1, message)
| project timestamp, connection, code, message
'''

// Every failed notification: the message names the event, the sink (webhook or mail) and the reason.
var notifyQuery = '''
traces
| where message startswith "notify.gave_up" or message startswith "notify.emit_failed" or message startswith "notify.drain_failed"
| extend event = extract(@"^(notify\.[a-z_]+)", 1, message)
| project timestamp, event, message
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

resource sweepAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: sweepAlertRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Token broker: refresh sweep has not completed'
    description: 'No successful run of the timer function "refresh" for ${silenceMinutes} minutes. Look for "failed indexing" in traces (bad BROKER_REFRESH_SCHEDULE, missing storage role for the timer lease) or failed runs in requests.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: sweepEvaluationFrequency
    windowSize: windowSize
    criteria: {
      allOf: [
        {
          query: sweepQuery
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    // Resolves by itself once sweeps complete again.
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource notifyAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: notifyAlertRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Token broker: a notification was not delivered'
    description: 'A webhook or owner mail was given up after its last retry (notify.gave_up), or the outbox queue could not be written or read (notify.emit_failed, notify.drain_failed). The traces name the sink and the reason.'
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
          query: notifyQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          // One alert per kind of failure: an unreachable queue must not hide behind a receiver that is down.
          dimensions: [
            {
              name: 'event'
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
output sweepAlertRuleId string = sweepAlert.id
output notifyAlertRuleId string = notifyAlert.id
output sweepSilenceMinutes int = silenceMinutes
output sweepWindowSize string = windowSize
