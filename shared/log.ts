/**
 * @module log
 * Structured log lines with named, allow-listed fields only. There is deliberately no way to log a URL with
 * its query, a header, a body or an arbitrary object: those are where tokens and codes hide.
 *
 * Inside a function invocation ({@link runInInvocation}) every logger without its own sink writes through the
 * host's per-invocation logger (`InvocationContext.info/warn/error`), which Application Insights correlates
 * with the invocation; `console` lines land in `Host.Function.Console` without that correlation
 * (https://learn.microsoft.com/azure/azure-functions/functions-reference-node#logging). So broker, store and
 * lock lines carry the invocation id without being handed a logger.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

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
  /** The provider's HTTP status, kept apart from `httpStatus` (the broker's own answer). */
  'providerHttpStatus',
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
  'sink',
  'eventType',
  'eventId',
  'waitSeconds',
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

/** C0/C1 controls (ANSI escapes start with ESC), line and paragraph separators, bidi overrides and isolates:
 * values come from request input (a callback's `error`), and raw, they could recolour or forge terminal and
 * log-viewer lines. */
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Whitespace folded to one space, then every unsafe character written as a visible `\uXXXX` escape. */
export function escapeLogValue(value: string): string {
  return value
    .replace(/\s+/g, ' ')
    .replace(UNSAFE_CHARS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Renders `event key=value …`; unknown keys are dropped, control characters escaped, long values cut. */
export function formatLine(event: string, fields: LogFields): string {
  const parts = [event];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || !allowed.has(key)) continue;
    let text = escapeLogValue(String(value));
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

interface InvocationScope {
  fields: LogFields;
  sink: LogSink;
}

const invocation = new AsyncLocalStorage<InvocationScope>();

/** The part of the host's `InvocationContext` that logging needs. */
export interface InvocationLogTarget {
  readonly invocationId: string;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/**
 * Runs `fn` as one invocation: `fn`'s logger, and every logger without its own sink used while `fn` runs (the
 * broker's, the store's, the lock's), write through `context` with `fields` and the invocation id.
 */
export function runInInvocation<T>(
  context: InvocationLogTarget,
  fields: LogFields,
  fn: (log: Logger) => T,
): T {
  const scope: InvocationScope = {
    fields: { ...fields, invocationId: context.invocationId },
    sink: (level, line) => context[level](line),
  };
  return invocation.run(scope, () => fn(createLogger()));
}

export function createLogger(base: LogFields = {}, sink?: LogSink): Logger {
  const write = (level: LogLevel, event: string, fields: LogFields = {}) => {
    const scope = sink ? undefined : invocation.getStore();
    (sink ?? scope?.sink ?? defaultSink)(level, formatLine(event, { ...scope?.fields, ...base, ...fields }));
  };
  return {
    info: (event, fields) => write('info', event, fields),
    warn: (event, fields) => write('warn', event, fields),
    error: (event, fields) => write('error', event, fields),
    child: (fields) => createLogger({ ...base, ...fields }, sink),
  };
}
