/**
 * @module schedule
 * NCRONTAB as the Functions timer trigger reads it, on the maintained `croner` parser: 6 fields with seconds
 * or 5 without, chosen by field count (timers extension `Scheduling/CronSchedule.cs`); day-of-week 0-6 with
 * 0 = Sunday; a day must match BOTH day-of-month and day-of-week (NCrontab, unlike Vixie cron: croner's
 * `domAndDow`); `5/15` start/step accepted (croner's `sloppyRanges`). Croner also knows Quartz extensions
 * NCRONTAB does not (`L`, `W`, `#`, `?`, day 7); those are refused here so that a schedule accepted locally is
 * one the host accepts. Everything is UTC (Flex Consumption has no time zones).
 * Used by the app's config (BROKER_REFRESH_SCHEDULE at start-up) and by the dev host's timers.
 */
import { Cron } from 'croner';

export class NcrontabError extends Error {
  override name = 'NcrontabError';
}

export interface CronSchedule {
  readonly expression: string;
  readonly hasSeconds: boolean;
  readonly cron: Cron;
}

const NAMES = /\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat)\b/gi;
const FIELD = /^[0-9A-Za-z*,/-]+$/;

/** Parses a 5- or 6-field NCRONTAB expression; throws {@link NcrontabError} naming what is wrong. */
export function parseNcrontab(expression: string): CronSchedule {
  const fields = expression.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new NcrontabError(
      `'${expression}' is not a valid NCRONTAB expression: expected 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5 (without seconds), got ${fields.length}.`,
    );
  }
  for (const field of fields) {
    if (!FIELD.test(field) || /[A-Za-z]/.test(field.replace(NAMES, ''))) {
      throw new NcrontabError(`'${expression}' is not a valid NCRONTAB expression: bad field '${field}'.`);
    }
  }
  const dayOfWeek = fields[fields.length - 1] as string;
  if (/(^|[^0-9])7($|[^0-9])/.test(dayOfWeek) || /\d{2,}/.test(dayOfWeek)) {
    throw new NcrontabError(
      `'${expression}' is not a valid NCRONTAB expression: day-of-week is 0-6 (0 = Sunday).`,
    );
  }
  const normalized = fields.join(' ');
  try {
    const cron = new Cron(normalized, {
      paused: true,
      timezone: 'Etc/UTC',
      mode: '5-or-6-parts',
      domAndDow: true,
      sloppyRanges: true,
    });
    return { expression, hasSeconds: fields.length === 6, cron };
  } catch (err) {
    throw new NcrontabError(`'${expression}' is not a valid NCRONTAB expression: ${(err as Error).message}`);
  }
}

/** The first occurrence strictly after `after` (milliseconds ignored), or undefined if there is none. */
export function nextOccurrence(schedule: CronSchedule, after: Date): Date | undefined {
  return schedule.cron.nextRun(after) ?? undefined;
}

export function nextOccurrences(schedule: CronSchedule, after: Date, count: number): Date[] {
  return schedule.cron.nextRuns(count, after);
}

/** Why `expression` is not a valid NCRONTAB schedule, or undefined when it is (for config validation). */
export function ncrontabProblem(expression: string): string | undefined {
  try {
    parseNcrontab(expression);
    return undefined;
  } catch (err) {
    return err instanceof NcrontabError ? err.message : 'is not a valid NCRONTAB expression';
  }
}
