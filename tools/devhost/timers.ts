/**
 * @module timers
 * One listener per timer function, modelled on the timers extension's `TimerListener`, in UTC (Flex
 * Consumption has no time zones):
 * - runs of one timer never overlap: every run (scheduled, runOnStartup, manual) waits for the running one;
 * - after a scheduled run the next occurrence is computed from the run's start, so occurrences missed while a
 *   slow run was going collapse into one immediate run (none are skipped silently, none are queued twice);
 * - `isPastDue` is always false: the host sets it only on the start-up catch-up run of an occurrence its
 *   persisted schedule monitor saw missed while no instance ran (`TimerListener.StartAsync`); a late or slow
 *   run during normal operation is not past due. The dev host keeps the status in memory (a fresh start reports
 *   `last` as .NET's `DateTime.MinValue`, like a first run in Azure), so it has no catch-up run;
 * - `scheduleStatus` is null when the monitor is off (`useMonitor: false`, or the schedule fires more than once
 *   a minute), as the host sends it.
 */
import type { TimerFunction } from './catalog.ts';
import { nextOccurrence } from '../../shared/schedule.ts';
import type { RpcTypedData } from './rpcTypes.ts';

/** A run starting this late is not treated as "fired early" when computing the next occurrence. */
const LATE_TOLERANCE_MS = 1000;
/** setTimeout's ceiling; longer waits are chained. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

const DATETIME_MIN = new Date(Date.UTC(2000, 0, 1));
DATETIME_MIN.setUTCFullYear(1);
const DATETIME_MAX = new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999));

export interface ScheduleStatus {
  readonly last: Date;
  readonly next: Date | undefined;
  readonly lastUpdated: Date;
}

export type TimerRunReason = 'scheduled' | 'runOnStartup' | 'manual';

/** The JSON the host sends for a timer trigger; the library camel-cases it for the handler. */
export function timerPayload(isPastDue: boolean, status: ScheduleStatus | null): RpcTypedData {
  return {
    json: JSON.stringify({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: status && {
        Last: status.last.toISOString(),
        Next: (status.next ?? DATETIME_MAX).toISOString(),
        LastUpdated: status.lastUpdated.toISOString(),
      },
      IsPastDue: isPastDue,
    }),
  };
}

/** Performs one invocation; rejects if the function failed. */
export type TimerInvoke = (payload: RpcTypedData, reason: TimerRunReason) => Promise<void>;

export class TimerListener {
  readonly entry: TimerFunction;
  #invoke: TimerInvoke;
  #now: () => number;
  #status: ScheduleStatus;
  #tail: Promise<void> = Promise.resolve();
  #handle: NodeJS.Timeout | undefined;
  #started = false;
  #stopped = false;

  constructor(entry: TimerFunction, invoke: TimerInvoke, now: () => number = Date.now) {
    this.entry = entry;
    this.#invoke = invoke;
    this.#now = now;
    this.#status = {
      last: DATETIME_MIN,
      next: nextOccurrence(entry.schedule, new Date(now())),
      lastUpdated: DATETIME_MIN,
    };
  }

  get status(): ScheduleStatus {
    return this.#status;
  }

  /** Starts scheduled firing (and the runOnStartup run). Manual runs work without it. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    if (this.entry.runOnStartup) this.#fire('runOnStartup');
    else this.#scheduleNext();
  }

  /** Runs once now (after any running invocation); resolves when done, rejects if the function failed. */
  runManually(): Promise<void> {
    return this.#withLock(() =>
      this.#invoke(timerPayload(false, this.entry.useMonitor ? this.#status : null), 'manual'),
    );
  }

  /** Stops firing and waits for a running invocation to finish. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#handle) clearTimeout(this.#handle);
    this.#handle = undefined;
    await this.#tail;
  }

  #withLock(task: () => Promise<void>): Promise<void> {
    const run = this.#tail.then(task);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #scheduleNext(): void {
    if (this.#stopped || this.#handle) return;
    const next = this.#status.next;
    if (!next) return; // the schedule can never fire again
    const delay = next.getTime() - this.#now();
    if (delay > MAX_TIMEOUT_MS) {
      this.#handle = setTimeout(() => {
        this.#handle = undefined;
        this.#scheduleNext();
      }, MAX_TIMEOUT_MS);
      return;
    }
    this.#handle = setTimeout(() => this.#fire('scheduled'), Math.max(0, delay));
  }

  #fire(reason: 'scheduled' | 'runOnStartup'): void {
    this.#handle = undefined;
    if (this.#stopped) return;
    const scheduledAt = reason === 'scheduled' ? this.#status.next : undefined;
    void this.#withLock(async () => {
      if (this.#stopped) return;
      const start = this.#now();
      const late = scheduledAt !== undefined && start - scheduledAt.getTime() > LATE_TOLERANCE_MS;
      try {
        await this.#invoke(timerPayload(false, this.entry.useMonitor ? this.#status : null), reason);
      } catch {
        // a failed run never stops the schedule; the invocation was already logged
      }
      // a timer that fired a little early must not compute the same occurrence twice
      const early =
        reason === 'scheduled' && !late && scheduledAt !== undefined && scheduledAt.getTime() > start;
      const base = new Date(early && scheduledAt ? scheduledAt.getTime() : start);
      this.#status = { last: base, next: nextOccurrence(this.entry.schedule, base), lastUpdated: base };
    }).then(
      () => this.#scheduleNext(),
      () => this.#scheduleNext(),
    );
  }
}
