import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../shared/config.ts';
import {
  NcrontabError,
  ncrontabProblem,
  nextOccurrence,
  nextOccurrences,
  parseNcrontab,
} from '../../shared/schedule.ts';

const next = (expression: string, after: string): string | undefined =>
  nextOccurrence(parseNcrontab(expression), new Date(after))?.toISOString();

const series = (expression: string, after: string, count: number): string[] =>
  nextOccurrences(parseNcrontab(expression), new Date(after), count).map((d) => d.toISOString());

void describe('ncrontab parsing', () => {
  void it('picks seconds mode by field count', () => {
    assert.equal(parseNcrontab('*/5 * * * * *').hasSeconds, true);
    assert.equal(parseNcrontab('*/5 * * * *').hasSeconds, false);
    assert.deepEqual(series('*/5 * * * *', '2026-03-10T12:03:20Z', 2), [
      '2026-03-10T12:05:00.000Z',
      '2026-03-10T12:10:00.000Z',
    ]);
  });

  void it('expands ranges, steps, lists and start/step', () => {
    assert.deepEqual(series('5/20 1-10/3 9,17 1-3,28 * *', '2026-03-01T09:01:05Z', 4), [
      '2026-03-01T09:01:25.000Z',
      '2026-03-01T09:01:45.000Z',
      '2026-03-01T09:04:05.000Z',
      '2026-03-01T09:04:25.000Z',
    ]);
  });

  void it('reads month and weekday names, Sunday = 0', () => {
    // 2026-03-14 is a Saturday
    assert.equal(next('0 0 0 * jan,Jul Mon-fri', '2026-03-14T00:00:00Z'), '2026-07-01T00:00:00.000Z');
    assert.equal(next('0 0 0 * * Sun,Tue,sat', '2026-03-14T00:00:00Z'), '2026-03-15T00:00:00.000Z');
  });

  void it('rejects malformed expressions and Quartz-only syntax with NcrontabError', () => {
    for (const bad of [
      '* * * *',
      '* * * * * * *',
      '60 * * * * *',
      '* * * * * 7',
      '* * * 0 * *',
      '* * * * 13 *',
      '* * * * Foo *',
      '*/0 * * * * *',
      '*/ * * * * *',
      '1,,2 * * * * *',
      '-1 * * * * *',
      '5a * * * * *',
      '0 0 0 L * *',
      '0 0 0 ? * 1',
      '0 0 0 * * 5#2',
      '0 0 0 15W * *',
      'every 5 minutes',
      '',
    ]) {
      assert.throws(() => parseNcrontab(bad), NcrontabError, bad);
    }
  });
});

void describe('ncrontab next occurrence (UTC)', () => {
  void it('is strictly after the base time, ignoring milliseconds', () => {
    assert.equal(next('*/15 * * * * *', '2026-03-10T12:00:07.500Z'), '2026-03-10T12:00:15.000Z');
    assert.equal(next('*/15 * * * * *', '2026-03-10T12:00:15.000Z'), '2026-03-10T12:00:30.000Z');
    assert.equal(next('*/15 * * * * *', '2026-03-10T12:00:14.999Z'), '2026-03-10T12:00:15.000Z');
  });

  void it('handles 5-field schedules at second zero', () => {
    assert.equal(next('*/5 * * * *', '2026-03-10T12:03:20Z'), '2026-03-10T12:05:00.000Z');
    assert.equal(next('0 */5 * * * *', '2026-03-10T12:55:00Z'), '2026-03-10T13:00:00.000Z');
  });

  void it('rolls hours, days, months and years', () => {
    assert.equal(next('0 0 9-17 * * *', '2026-03-10T17:30:00Z'), '2026-03-11T09:00:00.000Z');
    assert.equal(next('0 0 0 1 1 *', '2026-12-31T23:59:59.500Z'), '2027-01-01T00:00:00.000Z');
    assert.deepEqual(series('0 0 1-10/3 * * *', '2026-03-10T00:00:00Z', 5), [
      '2026-03-10T01:00:00.000Z',
      '2026-03-10T04:00:00.000Z',
      '2026-03-10T07:00:00.000Z',
      '2026-03-10T10:00:00.000Z',
      '2026-03-11T01:00:00.000Z',
    ]);
  });

  void it('skips days a month does not have', () => {
    assert.deepEqual(series('0 0 0 15,31 * *', '2026-01-20T00:00:00Z', 4), [
      '2026-01-31T00:00:00.000Z',
      '2026-02-15T00:00:00.000Z',
      '2026-03-15T00:00:00.000Z',
      '2026-03-31T00:00:00.000Z',
    ]);
    assert.equal(next('0 0 0 29 Feb *', '2026-03-01T00:00:00Z'), '2028-02-29T00:00:00.000Z');
    assert.equal(next('0 0 0 30 2 *', '2026-03-01T00:00:00Z'), undefined);
  });

  void it('uses weekday names and 0 = Sunday', () => {
    // 2026-03-14 is a Saturday
    assert.equal(next('0 30 9 * * Mon-Fri', '2026-03-14T10:00:00Z'), '2026-03-16T09:30:00.000Z');
    assert.equal(next('0 0 12 * * 0', '2026-03-14T10:00:00Z'), '2026-03-15T12:00:00.000Z');
    assert.equal(next('0 0 0 1 Jan,Jul *', '2026-03-14T10:00:00Z'), '2026-07-01T00:00:00.000Z');
  });

  void it('requires both day-of-month and day-of-week to match (NCrontab, not Vixie cron)', () => {
    // Vixie cron would fire on Friday 2026-01-02; NCrontab waits for a Friday the 13th
    assert.equal(next('0 0 0 13 * Fri', '2026-01-01T00:00:00Z'), '2026-02-13T00:00:00.000Z');
  });
});

void describe('BROKER_REFRESH_SCHEDULE in the app config', () => {
  void it('is checked with the same NCRONTAB parser, the error naming the setting', () => {
    for (const bad of ['0 0 0 L * *', '*/5 * * *', '0 */5 * * * 7', '00:05:00']) {
      assert.throws(
        () => parseConfig({ BROKER_REFRESH_SCHEDULE: bad }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.variables.includes('BROKER_REFRESH_SCHEDULE') &&
          /NCRONTAB/.test(err.message),
        bad,
      );
    }
    // Valid schedules pass (the timer function reads the setting itself; the config only checks it).
    parseConfig({ BROKER_REFRESH_SCHEDULE: '0 */5 * * * *' });
    parseConfig({ BROKER_REFRESH_SCHEDULE: '*/10 * * * *' });
  });
});

void describe('ncrontab parsing in detail', () => {
  void it('keeps the expression as written while reading fields split by any whitespace', () => {
    const s = parseNcrontab('  0  */5\t* * * * ');
    assert.equal(s.expression, '  0  */5\t* * * * ');
    assert.equal(s.hasSeconds, true);
    assert.equal(next('  0  */5\t* * * * ', '2026-03-10T12:03:00Z'), '2026-03-10T12:05:00.000Z');
  });

  void it('refuses day-of-week 7 however written, and two-digit days of week', () => {
    for (const dow of ['7', '1-7', '7-1', '1,7', '*/7', '07', '10', '1-10'])
      assert.throws(() => parseNcrontab(`0 0 0 * * ${dow}`), /day-of-week is 0-6 \(0 = Sunday\)/, dow);
    for (const dow of ['0', '6', '0-6', '1,3,5', 'Mon-Fri', '*/2'])
      assert.ok(parseNcrontab(`0 0 0 * * ${dow}`), dow);
    // A 7 in another field is not a day of week.
    assert.ok(parseNcrontab('7 7 7 7 7 *'));
  });

  void it('names the field count or the bad field in the error', () => {
    assert.throws(() => parseNcrontab('* * * *'), /expected 6 fields .* or 5 \(without seconds\), got 4\.$/);
    assert.throws(() => parseNcrontab('* * * * * * *'), /got 7\.$/);
    assert.throws(() => parseNcrontab('0 0 0 * * 5#2'), /bad field '5#2'\.$/);
    assert.throws(() => parseNcrontab('0 0 0 * monday *'), /bad field 'monday'\.$/);
    assert.throws(
      () => parseNcrontab('60 * * * * *'),
      (err: unknown) => {
        assert.ok(err instanceof NcrontabError);
        assert.equal(err.name, 'NcrontabError');
        assert.match(err.message, /^'60 \* \* \* \* \*' is not a valid NCRONTAB expression: ./);
        return true;
      },
    );
  });

  void it('gives the reason as a config problem, or nothing for a valid schedule', () => {
    assert.equal(ncrontabProblem('0 */5 * * * *'), undefined);
    assert.equal(
      ncrontabProblem('* * * *'),
      "'* * * *' is not a valid NCRONTAB expression: expected 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5 (without seconds), got 4.",
    );
  });

  void it('lists no further occurrences for a schedule that never fires', () => {
    assert.deepEqual(series('0 0 0 30 2 *', '2026-03-01T00:00:00Z', 3), []);
  });
});

void describe('ncrontab field counting', () => {
  void it('counts no fields in a blank expression', () => {
    assert.match(ncrontabProblem('') ?? '', /got 0\.$/);
    assert.match(ncrontabProblem('   ') ?? '', /got 0\.$/);
  });
});
