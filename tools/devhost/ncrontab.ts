/**
 * @module ncrontab
 * NCRONTAB as the Functions timer trigger reads it (NCrontab `CrontabSchedule`/`CrontabFieldImpl`, picked
 * 6-field "with seconds" or 5-field by token count as in the timers extension's `CronSchedule`):
 * `*`, numbers, `a-b` (swapped if reversed), `/step` after `*`, a range or a single start value (`5/15` = 5..max
 * by 15), comma lists, and names for months and week days matched as case-insensitive prefixes (`Jan`,
 * `january`, `Mon`). Day-of-week is 0-6 with 0 = Sunday. Unlike Vixie cron, a day must satisfy BOTH the
 * day-of-month and the day-of-week field. All computation is in UTC.
 */

export class NcrontabError extends Error {
  override name = 'NcrontabError';
}

interface FieldSpec {
  readonly kind: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const SECOND: FieldSpec = { kind: 'Second', min: 0, max: 59 };
const MINUTE: FieldSpec = { kind: 'Minute', min: 0, max: 59 };
const HOUR: FieldSpec = { kind: 'Hour', min: 0, max: 23 };
const DAY: FieldSpec = { kind: 'Day', min: 1, max: 31 };
const MONTH: FieldSpec = {
  kind: 'Month',
  min: 1,
  max: 12,
  names: [
    'January',
    'February',
    'March',
    'April',
    'May',
    'June',
    'July',
    'August',
    'September',
    'October',
    'November',
    'December',
  ],
};
const DAY_OF_WEEK: FieldSpec = {
  kind: 'DayOfWeek',
  min: 0,
  max: 6,
  names: ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'],
};

export interface CronSchedule {
  readonly expression: string;
  readonly hasSeconds: boolean;
  /** Sorted allowed values per field. */
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly days: readonly number[];
  readonly months: readonly number[];
  readonly daysOfWeek: ReadonlySet<number>;
}

function parseValue(text: string, spec: FieldSpec, field: string): number {
  if (text === '') throw new NcrontabError(`A crontab field value cannot be empty ('${field}').`);
  if (/^\d+$/.test(text)) return Number(text);
  if (/^[a-z]+$/i.test(text) && spec.names) {
    const lower = text.toLowerCase();
    const index = spec.names.findIndex((n) => n.toLowerCase().startsWith(lower));
    if (index !== -1) return index + spec.min;
    throw new NcrontabError(
      `'${text}' is not a known ${spec.kind} name. Use one of: ${spec.names.join(', ')}.`,
    );
  }
  throw new NcrontabError(
    `'${text}' is not a valid ${spec.kind} value. It must be a number between ${spec.min} and ${spec.max}.`,
  );
}

function checkRange(value: number, spec: FieldSpec): void {
  if (value < spec.min || value > spec.max) {
    throw new NcrontabError(
      `${value} is outside the ${spec.kind} field. Values must be between ${spec.min} and ${spec.max} (inclusive).`,
    );
  }
}

/** One field (e.g. `1-5,10/15`) into its sorted set of values. */
export function parseField(text: string, spec: FieldSpec): number[] {
  const values = new Set<number>();
  for (const item of text.split(',')) {
    let body = item;
    let step = 1;
    const slash = item.indexOf('/');
    if (slash !== -1) {
      const stepText = item.slice(slash + 1);
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1) {
        throw new NcrontabError(`'${item}' has an invalid step in the ${spec.kind} field.`);
      }
      step = Number(stepText);
      body = item.slice(0, slash);
    }
    let start: number;
    let end: number;
    if (body === '*') {
      start = spec.min;
      end = spec.max;
    } else {
      const dash = body.indexOf('-', 1);
      if (dash !== -1) {
        start = parseValue(body.slice(0, dash), spec, item);
        end = parseValue(body.slice(dash + 1), spec, item);
        if (start > end) [start, end] = [end, start];
        checkRange(start, spec);
        checkRange(end, spec);
      } else {
        start = parseValue(body, spec, item);
        checkRange(start, spec);
        end = slash === -1 ? start : spec.max;
      }
    }
    for (let v = start; v <= end; v += step) values.add(v);
  }
  return [...values].sort((a, b) => a - b);
}

/** Parses a 6-field (`sec min hour day month dow`) or 5-field (`min hour day month dow`) expression. */
export function parseNcrontab(expression: string): CronSchedule {
  const tokens = expression.trim().split(/\s+/).filter(Boolean);
  if (tokens.length !== 5 && tokens.length !== 6) {
    throw new NcrontabError(
      `'${expression}' is not a valid NCRONTAB expression: it needs 6 fields (second minute hour day month ` +
        `day-of-week) or 5 (without seconds), found ${tokens.length}.`,
    );
  }
  const hasSeconds = tokens.length === 6;
  const [sec, min, hour, day, month, dow] = hasSeconds ? tokens : ['0', ...tokens];
  try {
    return {
      expression,
      hasSeconds,
      seconds: parseField(sec as string, SECOND),
      minutes: parseField(min as string, MINUTE),
      hours: parseField(hour as string, HOUR),
      days: parseField(day as string, DAY),
      months: parseField(month as string, MONTH),
      daysOfWeek: new Set(parseField(dow as string, DAY_OF_WEEK)),
    };
  } catch (err) {
    if (err instanceof NcrontabError) {
      throw new NcrontabError(`'${expression}' is not a valid NCRONTAB expression: ${err.message}`);
    }
    throw err;
  }
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Searches far enough to cover Feb 29 falling on a given weekday (a 28-year cycle, with century gaps). */
const MAX_YEARS_AHEAD = 400;

/**
 * The first occurrence strictly after `after` (milliseconds ignored, as NCrontab does), or `undefined` if the
 * schedule can never fire (e.g. `0 0 0 30 2 *`).
 */
export function nextOccurrence(schedule: CronSchedule, after: Date): Date | undefined {
  const base = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
  const y0 = base.getUTCFullYear();
  const mo0 = base.getUTCMonth() + 1;
  const d0 = base.getUTCDate();
  const h0 = base.getUTCHours();
  const mi0 = base.getUTCMinutes();
  const s0 = base.getUTCSeconds();

  for (let year = y0; year <= y0 + MAX_YEARS_AHEAD; year++) {
    for (const month of schedule.months) {
      const sameMonth = year === y0 && month === mo0;
      if (year === y0 && month < mo0) continue;
      const lastDay = daysInMonth(year, month);
      for (const day of schedule.days) {
        if (day > lastDay) break;
        const sameDay = sameMonth && day === d0;
        if (sameMonth && day < d0) continue;
        const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
        if (!schedule.daysOfWeek.has(weekday)) continue;
        for (const hour of schedule.hours) {
          const sameHour = sameDay && hour === h0;
          if (sameDay && hour < h0) continue;
          for (const minute of schedule.minutes) {
            const sameMinute = sameHour && minute === mi0;
            if (sameHour && minute < mi0) continue;
            for (const second of schedule.seconds) {
              if (sameMinute && second < s0) continue;
              return new Date(Date.UTC(year, month - 1, day, hour, minute, second));
            }
          }
        }
      }
    }
  }
  return undefined;
}

/** The next `count` occurrences after `after` (fewer if the schedule runs out). */
export function nextOccurrences(schedule: CronSchedule, after: Date, count: number): Date[] {
  const out: Date[] = [];
  let cursor: Date | undefined = after;
  while (out.length < count) {
    cursor = nextOccurrence(schedule, cursor);
    if (!cursor) break;
    out.push(cursor);
  }
  return out;
}
