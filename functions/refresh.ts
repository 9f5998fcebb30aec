import { app, type InvocationContext, type Timer } from '@azure/functions';
import { type Logger, runInInvocation } from '../shared/log.ts';
import { getRuntime } from '../shared/runtime.ts';
import { ncrontabProblem } from '../shared/schedule.ts';

/** The sweep: refreshes every connection that is due, from metadata only. A past-due run is a normal run. */
export function refresh(timer: Timer, context: InvocationContext): Promise<void> {
  return runInInvocation(context, { function: 'refresh' }, (log) => sweep(timer, log));
}

async function sweep(timer: Timer, log: Logger): Promise<void> {
  const { broker, notifier } = await getRuntime();
  try {
    const result = await broker.refreshDue();
    log.info('refresh.done', {
      due: result.due,
      refreshed: result.refreshed,
      failed: result.failed,
      skipped: result.skipped,
      reason: timer.isPastDue ? 'past_due' : 'scheduled',
    });
  } finally {
    // Notifications whose first delivery failed are retried here, on their schedule (shared/notify), even
    // when the sweep itself failed (a Key Vault outage must not hold back a needs_reauth mail).
    if (notifier) await notifier.drain();
  }
}

// A schedule the host cannot read would only disable this function ("failed indexing"), leaving grants to lapse
// unnoticed; failing the load instead stops the app at start-up with the setting named.
const scheduleProblem = process.env.BROKER_REFRESH_SCHEDULE
  ? ncrontabProblem(process.env.BROKER_REFRESH_SCHEDULE)
  : undefined;
if (scheduleProblem) throw new Error(`BROKER_REFRESH_SCHEDULE: ${scheduleProblem}`);

app.timer('refresh', {
  // The host resolves %BROKER_REFRESH_SCHEDULE%; it fails on a missing setting, so fall back when unset.
  schedule: process.env.BROKER_REFRESH_SCHEDULE ? '%BROKER_REFRESH_SCHEDULE%' : '0 */5 * * * *',
  handler: refresh,
});
