/**
 * @module oauth/classify
 * Classifies a failed token-endpoint call from the provider's `error` / `suberror` values and the HTTP
 * status — never from description text, which Microsoft says is for humans and subject to change.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
 */

export type FailureKind = 'reauth' | 'config' | 'transient' | 'protocol';

export interface FailureClass {
  kind: FailureKind;
  /** OAuth `error` value, when the provider sent one. */
  providerError?: string;
  suberror?: string;
  /** Microsoft AADSTS numbers from `error_codes`. */
  codes?: number[];
  traceId?: string;
  correlationId?: string;
  httpStatus?: number;
  retryAfterSeconds?: number;
}

export interface FailureInput {
  httpStatus?: number;
  body?: unknown;
  retryAfterHeader?: string | null;
  /** Set for timeouts, resets and refused connections (no HTTP response at all). */
  network?: boolean;
}

const REAUTH_ERRORS = new Set([
  'invalid_grant',
  'interaction_required',
  'consent_required',
  'login_required',
]);
const CONFIG_ERRORS = new Set([
  'invalid_client',
  'unauthorized_client',
  'invalid_scope',
  'invalid_resource',
  'unsupported_grant_type',
  'invalid_request',
]);
const TRANSIENT_ERRORS = new Set(['temporarily_unavailable', 'server_error']);
/** AADSTS codes that Microsoft documents as retryable server-side conditions. */
const TRANSIENT_AADSTS = new Set([90055, 50033, 50087, 90006, 90024, 90033, 90090, 40010, 70012, 50196]);

/** Parses a Retry-After header given in seconds or as an HTTP date. */
export function parseRetryAfter(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed), 3600);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, Math.ceil((at - now) / 1000)), 3600);
}

export function classifyFailure(input: FailureInput): FailureClass {
  const retryAfterSeconds = parseRetryAfter(input.retryAfterHeader);
  if (input.network) return { kind: 'transient' };
  const status = input.httpStatus;
  const body = isRecord(input.body) ? input.body : undefined;
  const out: FailureClass = { kind: 'protocol' };
  if (status !== undefined) out.httpStatus = status;
  if (retryAfterSeconds !== undefined) out.retryAfterSeconds = retryAfterSeconds;
  if (body) {
    if (typeof body.error === 'string') out.providerError = body.error.slice(0, 64);
    if (typeof body.suberror === 'string') out.suberror = body.suberror.slice(0, 64);
    if (Array.isArray(body.error_codes))
      out.codes = body.error_codes.filter((c): c is number => typeof c === 'number').slice(0, 8);
    if (typeof body.trace_id === 'string') out.traceId = body.trace_id.slice(0, 64);
    if (typeof body.correlation_id === 'string') out.correlationId = body.correlation_id.slice(0, 64);
  }
  // Throttling and server trouble first: a 429/5xx is transient whatever body came with it.
  if (status === 429 || (status !== undefined && status >= 500)) return { ...out, kind: 'transient' };
  if (out.codes?.some((c) => TRANSIENT_AADSTS.has(c))) return { ...out, kind: 'transient' };
  const error = out.providerError;
  if (error === undefined) return { ...out, kind: status === undefined ? 'transient' : 'protocol' };
  if (TRANSIENT_ERRORS.has(error)) return { ...out, kind: 'transient' };
  if (REAUTH_ERRORS.has(error)) return { ...out, kind: 'reauth' };
  if (CONFIG_ERRORS.has(error)) return { ...out, kind: 'config' };
  return { ...out, kind: 'protocol' };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
