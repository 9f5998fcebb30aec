/**
 * @module console/explain
 * Turns a connection's status and last error (the manage API's `status` and `lastError`: broker code, OAuth
 * `error`, Microsoft AADSTS numbers) into words for the person at the console: what happened, what it means,
 * what to do. Pure and shared by the console's browser bundle and its tests.
 *
 * Decisions follow the codes, never description text, which Microsoft says is for humans and may change.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */

export type ConnectionStatus = 'pending' | 'active' | 'needs_reauth' | 'error';

export interface LastError {
  code: string;
  providerError?: string;
  providerCodes?: number[];
  at: string;
}

export type Tone = 'ok' | 'idle' | 'warn' | 'bad';

export interface StatusBadge {
  label: string;
  tone: Tone;
}

const BADGES: Record<ConnectionStatus, StatusBadge> = {
  active: { label: 'Active', tone: 'ok' },
  pending: { label: 'Not connected', tone: 'idle' },
  needs_reauth: { label: 'Needs sign-in', tone: 'warn' },
  error: { label: 'Error', tone: 'bad' },
};

export function statusBadge(status: string): StatusBadge {
  return own(BADGES, status) ?? { label: status, tone: 'bad' };
}

export type Action = 'send_link' | 'fix_config' | 'wait' | 'check_logs' | 'none';

export interface Explanation {
  /** One line: what happened. */
  title: string;
  /** What it means for the connection and its callers. */
  meaning: string;
  /** What the admin should do next. */
  todo: string;
  action: Action;
  /** The codes behind it, for a support ticket (`invalid_grant`, `AADSTS70008`). */
  codes: string[];
}

interface Entry {
  title: string;
  meaning: string;
  todo: string;
  action: Action;
}

const SEND_LINK = 'The account must sign in again: send its owner a new connect link.';
const FIX_CONFIG =
  "Fix the broker's app registration or provider settings, then force a refresh (no new sign-in is needed).";

/** Microsoft AADSTS numbers the broker meets on the token endpoint, in the words of Microsoft's reference. */
const AADSTS: Readonly<Record<number, Entry>> = {
  50173: {
    title: 'The sign-in was revoked',
    meaning:
      "The account's sessions were revoked (a password change or reset, or an admin revoked them), so the stored grant is gone.",
    todo: SEND_LINK,
    action: 'send_link',
  },
  70008: {
    title: 'The refresh token has expired',
    meaning:
      'The stored refresh token expired or was revoked; Microsoft will not issue new access tokens with it.',
    todo: SEND_LINK,
    action: 'send_link',
  },
  700082: {
    title: 'The refresh token expired after being unused',
    meaning: 'Microsoft refresh tokens die after 90 days without use; this one was not refreshed in time.',
    todo: SEND_LINK,
    action: 'send_link',
  },
  50076: {
    title: 'Multi-factor authentication is now required',
    meaning: 'A Conditional Access policy requires the account to complete MFA interactively.',
    todo: SEND_LINK,
    action: 'send_link',
  },
  50079: {
    title: 'The account must register for multi-factor authentication',
    meaning: 'The account has to enrol in MFA before Microsoft issues tokens again.',
    todo: 'Ask the account owner to set up MFA, then send a new connect link.',
    action: 'send_link',
  },
  53003: {
    title: 'Blocked by Conditional Access',
    meaning: "A Conditional Access policy blocks this sign-in (for example the broker's location or app).",
    todo: "Ask the tenant's admin to review the Conditional Access policy, then send a new connect link.",
    action: 'send_link',
  },
  65001: {
    title: 'Consent is missing',
    meaning: 'The account or its admin has not consented to a permission the connection asks for.',
    todo: 'Grant consent (admin consent if the tenant requires it), then send a new connect link.',
    action: 'send_link',
  },
  50126: {
    title: 'Wrong credentials',
    meaning: 'The username or password was not accepted.',
    todo: SEND_LINK,
    action: 'send_link',
  },
  70000: {
    title: 'The grant is invalid',
    meaning: 'The provider no longer accepts the stored grant (revoked, reused or malformed).',
    todo: SEND_LINK,
    action: 'send_link',
  },
  7000215: {
    title: 'The client secret is wrong',
    meaning: "Microsoft rejected the broker's client secret: it is wrong, expired or belongs to another app.",
    todo: 'Create a new client secret for the app registration, update MICROSOFT_CLIENT_SECRET, then force a refresh.',
    action: 'fix_config',
  },
  7000222: {
    title: 'The client secret has expired',
    meaning: "The app registration's client secret has expired.",
    todo: 'Create a new client secret, update MICROSOFT_CLIENT_SECRET, then force a refresh.',
    action: 'fix_config',
  },
  700016: {
    title: 'The app registration was not found',
    meaning:
      "The tenant does not know the broker's client id (wrong MICROSOFT_CLIENT_ID or MICROSOFT_TENANT).",
    todo: 'Check MICROSOFT_CLIENT_ID and MICROSOFT_TENANT, then force a refresh.',
    action: 'fix_config',
  },
  700027: {
    title: 'The client certificate was not accepted',
    meaning: 'The signed client assertion does not match a certificate registered on the app.',
    todo: 'Upload the current certificate to the app registration, then force a refresh.',
    action: 'fix_config',
  },
  70011: {
    title: 'A scope is not valid',
    meaning: 'The provider refused one of the scopes this connection asks for.',
    todo: "Edit the connection's scopes, then send a new connect link.",
    action: 'fix_config',
  },
  650053: {
    title: 'A scope does not exist',
    meaning: 'One scope names a permission the resource does not define.',
    todo: "Edit the connection's scopes, then send a new connect link.",
    action: 'fix_config',
  },
  90055: {
    title: 'The tenant is throttled',
    meaning: 'Microsoft is limiting requests for this tenant; the broker retries with back-off.',
    todo: 'Nothing to do: the broker retries on its own. Force a refresh later if it persists.',
    action: 'wait',
  },
  90033: {
    title: 'A transient error at Microsoft',
    meaning: 'Microsoft reported a temporary problem; the broker retries with back-off.',
    todo: 'Nothing to do: the broker retries on its own.',
    action: 'wait',
  },
};

/** Standard OAuth `error` values (RFC 6749 §5.2 and OpenID Connect), used when no AADSTS number explains it. */
const OAUTH: Readonly<Record<string, Entry>> = {
  invalid_grant: {
    title: 'The provider rejected the refresh token',
    meaning: 'The stored grant is no longer valid (expired, revoked or the password changed).',
    todo: SEND_LINK,
    action: 'send_link',
  },
  interaction_required: {
    title: 'The account must sign in interactively',
    meaning: 'The provider needs the person to act (MFA, new terms, a policy) before it issues tokens again.',
    todo: SEND_LINK,
    action: 'send_link',
  },
  consent_required: {
    title: 'Consent is required',
    meaning: 'The account has to consent again to the permissions this connection asks for.',
    todo: SEND_LINK,
    action: 'send_link',
  },
  login_required: {
    title: 'The account must sign in again',
    meaning: 'The provider ended the session behind this grant.',
    todo: SEND_LINK,
    action: 'send_link',
  },
  invalid_client: {
    title: "The provider rejected the broker's credentials",
    meaning: 'The client id, secret or certificate configured for this provider is not accepted.',
    todo: FIX_CONFIG,
    action: 'fix_config',
  },
  unauthorized_client: {
    title: 'The app may not use this grant',
    meaning: 'The app registration is not allowed to use refresh tokens or this flow.',
    todo: FIX_CONFIG,
    action: 'fix_config',
  },
  invalid_scope: {
    title: 'A scope is not valid',
    meaning: 'The provider refused one of the scopes this connection asks for.',
    todo: "Edit the connection's scopes, then send a new connect link.",
    action: 'fix_config',
  },
  temporarily_unavailable: {
    title: 'The provider is temporarily unavailable',
    meaning: 'The broker retries with back-off and keeps serving a still-valid token meanwhile.',
    todo: 'Nothing to do unless it persists; then check the provider status page.',
    action: 'wait',
  },
  server_error: {
    title: 'The provider had an internal error',
    meaning: 'The broker retries with back-off and keeps serving a still-valid token meanwhile.',
    todo: 'Nothing to do unless it persists.',
    action: 'wait',
  },
};

/** Broker error codes (`lastError.code`) when the provider gave nothing more specific. */
const BROKER: Readonly<Record<string, Entry>> = {
  connection_needs_reauth: {
    title: 'The account must sign in again',
    meaning: 'The provider rejected the stored grant; callers get 409 connection_needs_reauth.',
    todo: SEND_LINK,
    action: 'send_link',
  },
  provider_misconfigured: {
    title: "The provider rejected the broker's configuration",
    meaning: 'Refreshing fails because of the broker side (credentials, scopes), not the account.',
    todo: FIX_CONFIG,
    action: 'fix_config',
  },
  connection_error: {
    title: "The provider rejected the broker's configuration",
    meaning: 'Refreshing fails because of the broker side (credentials, scopes), not the account.',
    todo: FIX_CONFIG,
    action: 'fix_config',
  },
  provider_unavailable: {
    title: 'The provider could not be reached',
    meaning: 'A timeout, throttling or a 5xx answer; the broker retries with back-off.',
    todo: 'Nothing to do unless it persists; then check the network and the provider status.',
    action: 'wait',
  },
  provider_error: {
    title: 'The provider gave an unexpected answer',
    meaning: 'The token endpoint answered in a way the broker does not understand.',
    todo: 'Check the logs with the time shown, and the provider settings.',
    action: 'check_logs',
  },
  store_unavailable: {
    title: 'The token store was unavailable',
    meaning: 'Key Vault (or the local store) did not answer; the broker retries.',
    todo: 'Nothing to do unless it persists; then check Key Vault access and throttling.',
    action: 'wait',
  },
  lock_timeout: {
    title: 'Another refresh held the lock too long',
    meaning: 'Refreshes of one connection are serialised; this one gave up waiting.',
    todo: 'Force a refresh; check the logs if it keeps happening.',
    action: 'wait',
  },
};

const FALLBACK_BY_STATUS: Record<ConnectionStatus, Entry> = {
  needs_reauth: BROKER.connection_needs_reauth as Entry,
  error: BROKER.connection_error as Entry,
  active: {
    title: 'The last refresh failed',
    meaning: 'The connection is still active; the broker retries with back-off.',
    todo: 'Force a refresh, or check the logs with the time shown.',
    action: 'check_logs',
  },
  pending: {
    title: 'The connection is not connected',
    meaning: 'No account has signed in yet.',
    todo: 'Create a connect link and send it to the account owner.',
    action: 'send_link',
  },
};

// Codes come from providers: `error=constructor` must not find Object.prototype's members in a table.
function own<T>(table: Readonly<Record<string | number, T>>, key: string | number): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

/**
 * Explains a connection's last error: the most specific known AADSTS number wins, then the OAuth `error`, then
 * the broker's code, then what the status alone says. Unknown codes are still listed in `codes`.
 */
export function explainError(status: string, lastError: LastError | undefined): Explanation | undefined {
  if (!lastError) {
    if (status === 'pending') return { ...FALLBACK_BY_STATUS.pending, codes: [] };
    return undefined;
  }
  const codes = [
    ...(lastError.providerError ? [lastError.providerError] : []),
    ...(lastError.providerCodes ?? []).map((n) => `AADSTS${n}`),
    lastError.code,
  ];
  const entry =
    (lastError.providerCodes ?? []).map((n) => own(AADSTS, n)).find((e) => e !== undefined) ??
    (lastError.providerError ? own(OAUTH, lastError.providerError) : undefined) ??
    own(BROKER, lastError.code) ??
    own(FALLBACK_BY_STATUS, status) ??
    FALLBACK_BY_STATUS.active;
  return { ...entry, codes: [...new Set(codes)] };
}
