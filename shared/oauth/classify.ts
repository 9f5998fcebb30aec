/**
 * @module oauth/classify
 * Classifies a failed token-endpoint call the way MSAL does: from the provider's `error` and `suberror` values,
 * the HTTP status and the kind of client credential — never from description text or AADSTS numbers, which
 * Microsoft says are for humans and "subject to change". Numbers only pick a hint for messages.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
 * @see https://github.com/AzureAD/microsoft-authentication-library-for-js/blob/dev/lib/msal-common/src/error/InteractionRequiredAuthError.ts
 */
import { retryAfterMs } from '../retryAfter.ts';

export type FailureKind = 'reauth' | 'config' | 'transient' | 'protocol';

/**
 * Why a person must sign in again (kind `reauth`). It decides what happens to access tokens already issued:
 * - `revoked`: the refresh token is gone (expired, revoked, reset password, `bad_token`). The grant is over.
 * - `interaction`: the grant stands, but Microsoft wants a sign-in step first (MFA, Conditional Access, a claims
 *   challenge, an expired password). Tokens already issued were issued under a satisfied policy.
 * - `consent`: consent for the requested scopes is missing or was withdrawn.
 */
export type ReauthCause = 'revoked' | 'interaction' | 'consent';

export interface FailureClass {
  kind: FailureKind;
  /** Set when `kind` is `reauth`. */
  cause?: ReauthCause;
  /** OAuth `error` value, when the provider sent one. */
  providerError?: string;
  suberror?: string;
  /** Microsoft AADSTS numbers from `error_codes` (diagnostics and message hints only). */
  codes?: number[];
  traceId?: string;
  correlationId?: string;
  httpStatus?: number;
  retryAfterSeconds?: number;
  /** Claims challenge (a JSON object as text) to send with the next authorize request, as MSAL does. */
  claims?: string;
}

export interface FailureInput {
  httpStatus?: number;
  body?: unknown;
  retryAfterHeader?: string | null;
  /** Set for timeouts, resets and refused connections (no HTTP response at all). */
  network?: boolean;
  /** The client authenticated with a federated credential (a managed identity token as client assertion). */
  federatedCredential?: boolean;
}

/** `error` values MSAL treats as "interaction required" (msal-common InteractionRequiredServerErrorMessage). */
const INTERACTION_ERRORS = new Set(['interaction_required', 'login_required', 'ux_not_allowed']);
/** `suberror` values MSAL treats as "interaction required" (InteractionRequiredAuthSubErrorMessage), plus
 * `token_expired`, which Entra pairs with a Conditional Access sign-in-frequency expiry (AADSTS70043). */
const INTERACTION_SUBERRORS = new Set([
  'message_only',
  'additional_action',
  'basic_action',
  'user_password_expired',
  'token_expired',
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
/** Claims challenges are small JSON objects; anything bigger is not one. */
const MAX_CLAIMS_LENGTH = 4096;

/** Seconds from a Retry-After header (seconds or an HTTP date), at most an hour. */
export function parseRetryAfter(header: string | null | undefined, now = Date.now()): number | undefined {
  const ms = retryAfterMs((name) => (name === 'retry-after' ? header : undefined), now);
  return ms === undefined ? undefined : Math.min(Math.ceil(ms / 1000), 3600);
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
    const claims = claimsChallenge(body.claims);
    if (claims !== undefined) out.claims = claims;
  }
  // Throttling and server trouble first: a 429/5xx is transient whatever body came with it (Microsoft's
  // resilience guidance: back off, honour Retry-After).
  if (status === 429 || (status !== undefined && status >= 500)) return { ...out, kind: 'transient' };
  const error = out.providerError;
  const suberror = out.suberror;
  if (error === undefined) return { ...out, kind: status === undefined ? 'transient' : 'protocol' };
  if (TRANSIENT_ERRORS.has(error)) return { ...out, kind: 'transient' };
  // The suberror refines the error, as in MSAL: `bad_token` means the refresh token itself is dead (MSAL
  // removes it from its cache), `consent_required` means consent, the rest ask for an interactive step.
  if (suberror === 'bad_token') return { ...out, kind: 'reauth', cause: 'revoked' };
  if (suberror === 'consent_required' || error === 'consent_required')
    return { ...out, kind: 'reauth', cause: 'consent' };
  if (INTERACTION_ERRORS.has(error) || (suberror !== undefined && INTERACTION_SUBERRORS.has(suberror)))
    return { ...out, kind: 'reauth', cause: 'interaction' };
  if (error === 'invalid_grant') return { ...out, kind: 'reauth', cause: 'revoked' };
  // A federated credential can be refused for a while after it was created or changed (replication), and
  // Microsoft says to retry such failures "even after a token was successfully obtained".
  // https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation-considerations
  if (error === 'invalid_client' && input.federatedCredential) return { ...out, kind: 'transient' };
  if (CONFIG_ERRORS.has(error)) return { ...out, kind: 'config' };
  return { ...out, kind: 'protocol' };
}

/** The `claims` of an error body, when it is a JSON object small enough to be a claims challenge. */
export function claimsChallenge(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_CLAIMS_LENGTH) return undefined;
  try {
    return isRecord(JSON.parse(value)) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Short meanings of AADSTS numbers, for messages and logs only — never for decisions. */
const CODE_HINTS: Readonly<Record<number, string>> = {
  50076: 'multi-factor authentication is required',
  50079: 'the account must register for multi-factor authentication',
  50078: 'the multi-factor authentication presented has expired',
  53003: 'Conditional Access blocked the request',
  53000: 'Conditional Access requires a compliant or managed device',
  50173: 'the grant was revoked (password change or sessions revoked)',
  70008: 'the refresh token or code expired',
  700082: 'the refresh token expired after 90 days without use',
  70043: 'Conditional Access sign-in frequency ended the session',
  50055: 'the password has expired',
  50057: 'the account is disabled',
  65001: 'consent is missing for the requested scopes',
  70021: 'no matching federated identity credential yet (new ones take minutes to replicate)',
  700024: 'the client assertion is outside its validity window',
  7000215: 'the client secret is wrong',
  7000222: 'the client secret has expired',
  50196: 'Microsoft detected a request loop',
};

/** A hint for the first AADSTS number Microsoft sent, e.g. "AADSTS50076: multi-factor authentication is required". */
export function codeHint(codes: readonly number[] | undefined): string | undefined {
  const code = codes?.[0];
  if (code === undefined) return undefined;
  const text = CODE_HINTS[code];
  return text ? `AADSTS${code}: ${text}` : `AADSTS${code}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
