/**
 * @module errors
 * One error model for the whole broker: every failure is a {@link BrokerError} with a stable `code`, an HTTP
 * status, a public message (safe to return) and a private `detail` (logged, never returned). `shared/http.ts`
 * turns any error into `application/problem+json` in exactly one place.
 */

export const ERROR_CODES = {
  invalid_request: 400,
  unknown_connection: 404,
  connection_not_connected: 409,
  connection_needs_reauth: 409,
  /** One resource (`?scope=`) needs the account owner to sign in (MFA, Conditional Access); others still serve. */
  resource_needs_reauth: 409,
  connection_error: 409,
  provider_unavailable: 503,
  provider_error: 502,
  provider_denied: 400,
  provider_misconfigured: 502,
  invalid_link: 403,
  invalid_state: 400,
  identity_mismatch: 403,
  unauthorized: 401,
  invalid_token: 401,
  forbidden: 403,
  insufficient_scope: 403,
  scope_not_granted: 403,
  payload_too_large: 413,
  length_required: 411,
  unsupported_media_type: 415,
  store_unavailable: 503,
  record_too_large: 507,
  secret_disabled: 409,
  lock_timeout: 503,
  config_error: 500,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface BrokerErrorOptions {
  /** Private diagnostic text: logged, never sent to a client. Must not contain secrets either. */
  detail?: string;
  /** Seconds a client should wait before retrying (503/429). */
  retryAfterSeconds?: number;
  /** Named, non-secret fields for the log line (provider error code, AADSTS numbers, trace ids). */
  fields?: Record<string, string | number | boolean | undefined>;
  /** Response headers that belong to this error (e.g. `WWW-Authenticate` for RFC 6750 answers). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class BrokerError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly fields: Record<string, string | number | boolean | undefined>;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, publicMessage: string, options: BrokerErrorOptions = {}) {
    // The cause may hold a provider response or SDK request. The Error constructor installs it non-enumerable,
    // so it stays out of JSON.stringify; util.inspect still prints it (log.ts writes named fields only).
    super(publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BrokerError';
    this.code = code;
    this.status = ERROR_CODES[code];
    this.detail = options.detail;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.fields = options.fields ?? {};
    this.headers = options.headers ?? {};
  }
}

export function isBrokerError(err: unknown): err is BrokerError {
  return err instanceof BrokerError;
}

/** Turns anything thrown into an Error without copying properties that might carry secrets. */
export function ensureError(err: unknown): Error {
  return err instanceof Error ? err : new Error(typeof err === 'string' ? err : 'non-error thrown');
}
