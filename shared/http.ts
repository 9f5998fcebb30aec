/**
 * @module http
 * The one place that turns errors into `application/problem+json`, plus strict parsing of query strings and
 * JSON bodies. Parsing never echoes received values back: zod issues are reduced to path + message.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { parseCookie } from 'cookie';
import type { z } from 'zod';
import { BrokerError, ensureError, isBrokerError } from './errors.ts';
import { HTTP_STREAMS } from './httpStreams.ts';
import type { Logger } from './log.ts';

export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;
/** On every JSON and problem answer: a browser must never sniff a token answer into something it renders. */
export const NO_SNIFF = { 'x-content-type-options': 'nosniff' } as const;
export const MAX_JSON_BODY_BYTES = 64 * 1024;

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  411: 'Length Required',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  507: 'Insufficient Storage',
};

export interface ProblemOptions {
  /** Extra response headers, e.g. `WWW-Authenticate` for RFC 6750 answers. */
  headers?: Record<string, string>;
}

/**
 * Maps any error to a problem response. Known {@link BrokerError}s expose their code and public message;
 * anything else is logged and answered with a fixed 500.
 */
export function problemResponse(err: unknown, log: Logger, options: ProblemOptions = {}): HttpResponseInit {
  const error: BrokerError = isBrokerError(err)
    ? err
    : new BrokerError('internal_error', 'The broker hit an unexpected error.', {
        detail: ensureError(err).name,
      });
  const level = error.status >= 500 ? 'error' : 'warn';
  log[level]('request.failed', {
    code: error.code,
    httpStatus: error.status,
    detail: error.detail ?? (isBrokerError(err) ? undefined : describeUnknown(err)),
    ...error.fields,
  });
  const headers: Record<string, string> = {
    'content-type': 'application/problem+json',
    ...NO_STORE,
    ...NO_SNIFF,
    ...error.headers,
    ...options.headers,
  };
  if (error.retryAfterSeconds !== undefined)
    headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterSeconds)));
  return {
    status: error.status,
    headers,
    body: JSON.stringify({
      type: `urn:token-broker:problem:${error.code}`,
      title: TITLES[error.status] ?? 'Error',
      status: error.status,
      detail: error.message,
      code: error.code,
    }),
  };
}

function describeUnknown(err: unknown): string {
  // Name and first stack frame only: messages of foreign errors can embed request data.
  const e = ensureError(err);
  const frame = e.stack?.split('\n')[1]?.trim() ?? '';
  return `${e.name} ${frame}`;
}

export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponseInit {
  return { status, jsonBody: body, headers: { ...NO_STORE, ...NO_SNIFF, ...headers } };
}

function zodProblem(error: z.ZodError, where: string): BrokerError {
  const issue = error.issues[0];
  const path = issue && issue.path.length > 0 ? issue.path.join('.') : where;
  const reason =
    issue?.code === 'unrecognized_keys'
      ? `unexpected ${where} field(s): ${issue.keys.join(', ')}`
      : `${path}: ${issue?.message ?? 'invalid'}`;
  return new BrokerError('invalid_request', `Invalid ${where}: ${reason}`.slice(0, 300));
}

/**
 * Parses the query string with a strict schema. Repeated parameters are rejected outright: the real host
 * joins them with commas, so a duplicated `link` or `state` would otherwise be silently merged.
 */
export function parseQuery<T extends z.ZodType>(
  request: HttpRequest,
  schema: T,
  options: { functionKeyInQuery?: boolean } = {},
): z.infer<T> {
  const url = new URL(request.url);
  const seen = new Set<string>();
  const raw: Record<string, string> = {};
  for (const [key, value] of url.searchParams) {
    if (seen.has(key))
      throw new BrokerError('invalid_request', `Invalid query: parameter ${safeName(key)} is repeated`);
    seen.add(key);
    raw[key] = value;
  }
  // On function-level routes the platform reads the key from ?code=; it is not ours to validate.
  if (options.functionKeyInQuery) delete raw.code;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw zodProblem(parsed.error, 'query');
  return parsed.data;
}

function safeName(key: string): string {
  return /^[A-Za-z0-9_.-]{1,40}$/.test(key) ? key : '(unprintable)';
}

/**
 * Reads the body up to `maxBytes` without buffering more (a streamed body can be far larger than it declares).
 * A chunked body the host dropped is refused with 411, never read as "no body": without HTTP streams the host
 * copies a body only when Content-Length > 0 (azure-functions-host `GrpcMessageConversionExtensions.ToRpcHttp`)
 * yet forwards the `transfer-encoding` header, so an empty body beside that header means the bytes were lost.
 */
async function readBodyBytes(request: HttpRequest, maxBytes: number): Promise<Buffer> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  if (request.body !== null) {
    // past the bound the rest is read and dropped, not cancelled: cancelling a streamed request would tear down
    // the connection the answer has to go back on
    for await (const chunk of request.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size <= maxBytes) chunks.push(Buffer.from(chunk));
    }
    if (size > maxBytes) throw tooLarge(maxBytes);
  }
  if (size === 0 && !HTTP_STREAMS && request.headers.has('transfer-encoding')) {
    throw new BrokerError(
      'length_required',
      'Send the body with a Content-Length header: this host does not pass chunked request bodies on.',
    );
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(maxBytes: number): BrokerError {
  return new BrokerError('payload_too_large', `The body may be at most ${maxBytes} bytes.`);
}

function parseJsonBytes<T extends z.ZodType>(request: HttpRequest, bytes: Buffer, schema: T): z.infer<T> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/(?:[a-z0-9.+-]*\+)?json\s*(?:;|$)/i.test(type)) {
    throw new BrokerError('unsupported_media_type', 'Send the body as application/json.');
  }
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BrokerError('invalid_request', 'The body is not valid JSON.');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw zodProblem(parsed.error, 'body');
  return parsed.data;
}

/** Reads and validates a JSON body: content type, size bound and strict schema. */
export async function parseJsonBody<T extends z.ZodType>(
  request: HttpRequest,
  schema: T,
  maxBytes = MAX_JSON_BODY_BYTES,
): Promise<z.infer<T>> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/(?:[a-z0-9.+-]*\+)?json\s*(?:;|$)/i.test(type)) {
    throw new BrokerError('unsupported_media_type', 'Send the body as application/json.');
  }
  return parseJsonBytes(request, await readBodyBytes(request, maxBytes), schema);
}

/**
 * For routes whose JSON body is optional: undefined when the request carried no bytes at all, decided from the
 * bytes read (never from Content-Length, which a chunked request does not send).
 */
export async function parseOptionalJsonBody<T extends z.ZodType>(
  request: HttpRequest,
  schema: T,
  maxBytes = MAX_JSON_BODY_BYTES,
): Promise<z.infer<T> | undefined> {
  const bytes = await readBodyBytes(request, maxBytes);
  return bytes.length === 0 ? undefined : parseJsonBytes(request, bytes, schema);
}

/**
 * Reads and validates an HTML form post (`application/x-www-form-urlencoded`): size bound, repeated fields
 * refused, strict schema. For the connect page's continue button.
 */
export async function parseFormBody<T extends z.ZodType>(
  request: HttpRequest,
  schema: T,
  maxBytes = 8 * 1024,
): Promise<z.infer<T>> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/x-www-form-urlencoded\s*(?:;|$)/i.test(type)) {
    throw new BrokerError('unsupported_media_type', 'Send the form as application/x-www-form-urlencoded.');
  }
  const raw: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams((await readBodyBytes(request, maxBytes)).toString('utf8'))) {
    if (Object.hasOwn(raw, key))
      throw new BrokerError('invalid_request', `Invalid form: field ${safeName(key)} is repeated`);
    raw[key] = value;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw zodProblem(parsed.error, 'form');
  return parsed.data;
}

/** Rejects any body on routes that take none (a stray body is a client bug worth surfacing). */
export async function requireEmptyBody(request: HttpRequest): Promise<void> {
  if (request.body === null && !request.headers.has('transfer-encoding')) return;
  const bytes = await readBodyBytes(request, MAX_JSON_BODY_BYTES).catch((err: unknown) => {
    if (isBrokerError(err) && err.code === 'payload_too_large') return Buffer.alloc(1);
    throw err;
  });
  if (bytes.byteLength > 0) throw new BrokerError('invalid_request', 'This request takes no body.');
}

/**
 * Parses route params with a strict schema (e.g. the connection name rule). Only the schema's own keys are
 * taken: with HTTP streams the library fills `params` from the host's trigger metadata, which also holds every
 * query parameter and a JSON body's top-level values (`@azure/functions` `createStreamRequest`; the HTTP
 * extension's `GetRequestBindingData`). Route values win over both there.
 */
export function parseParams<T extends z.ZodType>(request: HttpRequest, schema: T): z.infer<T> {
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.params)) {
    if (!shape || Object.hasOwn(shape, key)) raw[key] = value;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw zodProblem(parsed.error, 'path');
  return parsed.data;
}

/**
 * Reads one cookie by name from the Cookie header, parsed by the `cookie` library. A cookie sent twice is
 * refused rather than guessed at. Only the wanted value is percent-decoded, strictly: broken encoding
 * (`%E0%A4%A`, a lone `%`) is a 400, never an exception the host turns into a 500, and a foreign cookie with
 * bad encoding does not disturb ours.
 */
export function readCookie(request: HttpRequest, name: string): string | undefined {
  const header = request.headers.get('cookie');
  if (!header) return undefined;
  const raw = parseCookie(header, { decode: (value) => value })[name];
  if (raw === undefined) return undefined;
  // The parser keeps the first of repeated names; a second one means someone else set a cookie of ours.
  const pattern = new RegExp(`(?:^|;)\\s*${name.replace(/[^A-Za-z0-9_-]/g, '\\$&')}=`, 'g');
  if ((header.match(pattern) ?? []).length > 1) return undefined;
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new BrokerError('invalid_request', 'A cookie sent with this request is malformed.', {
      detail: 'cookie percent-encoding invalid',
    });
  }
}
