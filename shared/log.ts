/**
 * @module log
 * Structured log lines with named, allow-listed fields only. There is deliberately no way to log a URL with
 * its query, a header, a body or an arbitrary object: those are where tokens and codes hide.
 */

export const LOG_FIELDS = [
  'function',
  'invocationId',
  'connection',
  'provider',
  'outcome',
  'code',
  'reason',
  'status',
  'httpStatus',
  'providerError',
  'providerCodes',
  'traceId',
  'correlationId',
  'attempt',
  'retryAfterSeconds',
  'durationMs',
  'count',
  'due',
  'refreshed',
  'failed',
  'skipped',
  'store',
  'lock',
  'route',
  'method',
  'kid',
  'caller',
  'detail',
] as const;

export type LogField = (typeof LOG_FIELDS)[number];
export type LogFields = Partial<Record<LogField, string | number | boolean | undefined>>;
export type LogLevel = 'info' | 'warn' | 'error';

export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger whose lines also carry `fields`. */
  child(fields: LogFields): Logger;
}

export type LogSink = (level: LogLevel, line: string) => void;

const allowed = new Set<string>(LOG_FIELDS);
const MAX_VALUE_LENGTH = 200;

/** Renders `event key=value …`; unknown keys are dropped, long values cut, whitespace folded. */
export function formatLine(event: string, fields: LogFields): string {
  const parts = [event];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || !allowed.has(key)) continue;
    let text = String(value).replace(/\s+/g, ' ');
    if (text.length > MAX_VALUE_LENGTH) text = `${text.slice(0, MAX_VALUE_LENGTH)}…`;
    parts.push(`${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`);
  }
  return parts.join(' ');
}

const consoleSink: LogSink = (level, line) => {
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
};

let defaultSink: LogSink = consoleSink;

/** Test seam: route every logger that uses the default sink elsewhere (e.g. into a capture buffer). */
export function setDefaultLogSink(sink: LogSink | undefined): void {
  defaultSink = sink ?? consoleSink;
}

export function createLogger(base: LogFields = {}, sink?: LogSink): Logger {
  const write = (level: LogLevel, event: string, fields: LogFields = {}) =>
    (sink ?? defaultSink)(level, formatLine(event, { ...base, ...fields }));
  return {
    info: (event, fields) => write('info', event, fields),
    warn: (event, fields) => write('warn', event, fields),
    error: (event, fields) => write('error', event, fields),
    child: (fields) => createLogger({ ...base, ...fields }, sink),
  };
}
