/**
 * @module demo-idp/microsoft
 * The Microsoft identity platform v2 shapes the demo IdP imitates: tenant path segments and issuers, resource-
 * prefixed scope strings, and token-endpoint error bodies (`error_codes`, `trace_id`, AADSTS text).
 * Pure functions only, so the mapping can be unit-tested without a server.
 * Sources: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow (tenants, endpoints,
 * token responses), .../scopes-oidc (resource-prefixed scopes), .../reference-error-codes (error bodies),
 * .../id-tokens and .../access-tokens (issuers and claims); the demo IdP README lists them per behaviour.
 */
import { randomUUID } from 'node:crypto';

export interface TenantInfo {
  /** Directory (tenant) id, a GUID; the `tid` claim. */
  tenantId: string;
  /** Verified domain that may be used instead of the GUID in paths, e.g. `demo.example`. */
  domain: string;
  displayName: string;
}

export const DEMO_TENANT: TenantInfo = Object.freeze({
  tenantId: '0d5e6f70-1a2b-4c3d-8e9f-a0b1c2d3e4f5',
  domain: 'demo.example',
  displayName: 'Demo Identity',
});

/** A second directory for "signed in to the wrong tenant" tests. */
export const OTHER_TENANT: TenantInfo = Object.freeze({
  tenantId: 'b7e3a9c2-4f61-4d0a-9c3b-2e8f5a1d6c47',
  domain: 'other.example',
  displayName: 'Other Org',
});

/** Multi-tenant aliases. Like Microsoft, `common`/`organizations` publish an issuer template. */
const TEMPLATE_ALIASES = new Set(['common', 'organizations']);
/** `consumers` publishes a concrete issuer at Microsoft (the MSA tenant); here it is the demo tenant's. */
const CONCRETE_ALIASES = new Set(['consumers']);

export interface ResolvedTenant {
  tenant: TenantInfo;
  /** What discovery publishes as `issuer` for this path segment. */
  issuerKind: 'template' | 'concrete';
  /** Stable key for "same authority" checks: the alias name, or the tenant id for GUID/domain segments. */
  authorityKey: string;
}

/**
 * Maps a `{tenant}` path segment to a directory. Aliases resolve to the first (home) tenant, because a demo user
 * signing in at `/common` lands in the demo directory. Unknown GUIDs/domains → undefined (AADSTS90002).
 */
export function resolveTenantSegment(
  segment: string,
  tenants: readonly TenantInfo[],
): ResolvedTenant | undefined {
  const key = segment.toLowerCase();
  const home = tenants[0];
  if (!home) return undefined;
  if (TEMPLATE_ALIASES.has(key)) return { tenant: home, issuerKind: 'template', authorityKey: key };
  if (CONCRETE_ALIASES.has(key)) return { tenant: home, issuerKind: 'concrete', authorityKey: key };
  const tenant = tenants.find((t) => t.tenantId === key || t.domain.toLowerCase() === key);
  return tenant ? { tenant, issuerKind: 'concrete', authorityKey: tenant.tenantId } : undefined;
}

export function issuerFor(origin: string, tenantId: string): string {
  return `${origin}/${tenantId}/v2.0`;
}

/** The literal Microsoft template: clients substitute `{tenantid}` with the token's `tid`. */
export function issuerTemplate(origin: string): string {
  return `${origin}/{tenantid}/v2.0`;
}

// ---------------------------------------------------------------------------------------------------------------
// Scopes

export const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile', 'email', 'offline_access']);
/** Scopes without a resource prefix mean Microsoft Graph (`Mail.Send` ≡ `https://graph.microsoft.com/Mail.Send`). */
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';

export interface ParsedScopes {
  /** OIDC scopes, lower-cased, in request order. */
  oidc: string[];
  /** Resources in the order their first scope appeared. */
  resources: string[];
  /** Resource → scope names (without the prefix), in request order. */
  byResource: Map<string, string[]>;
  /** Tokens that are neither OIDC scopes nor `resource/name` scopes. */
  invalid: string[];
}

/** Splits `https://host/path/Name` into resource `https://host/path` and `Name`; short names mean Graph. */
export function splitScope(token: string): { resource: string; name: string } | undefined {
  const schemeEnd = token.indexOf('://');
  if (schemeEnd === -1) {
    return token.includes('/') ? undefined : { resource: GRAPH_RESOURCE, name: token };
  }
  const slash = token.lastIndexOf('/');
  if (slash <= schemeEnd + 2) return undefined;
  const resource = token.slice(0, slash);
  const name = token.slice(slash + 1);
  if (!name || resource.length <= schemeEnd + 3) return undefined;
  return { resource: normalizeResource(resource), name };
}

/** Scheme and host are case-insensitive; the path of an app id URI is kept as written. */
function normalizeResource(resource: string): string {
  const schemeEnd = resource.indexOf('://');
  const pathStart = resource.indexOf('/', schemeEnd + 3);
  const authority = pathStart === -1 ? resource : resource.slice(0, pathStart);
  const rest = pathStart === -1 ? '' : resource.slice(pathStart);
  return authority.toLowerCase() + rest;
}

/** Parses a space-separated Microsoft scope string; tokens that cannot be a scope land in `invalid`. */
export function parseScopes(scope: string | undefined): ParsedScopes {
  const parsed: ParsedScopes = { oidc: [], resources: [], byResource: new Map(), invalid: [] };
  for (const token of (scope ?? '').split(/\s+/).filter(Boolean)) {
    const lower = token.toLowerCase();
    if (OIDC_SCOPES.has(lower)) {
      if (!parsed.oidc.includes(lower)) parsed.oidc.push(lower);
      continue;
    }
    const split = splitScope(token);
    if (!split) {
      parsed.invalid.push(token);
      continue;
    }
    let names = parsed.byResource.get(split.resource);
    if (!names) {
      names = [];
      parsed.byResource.set(split.resource, names);
      parsed.resources.push(split.resource);
    }
    if (!names.includes(split.name)) names.push(split.name);
  }
  return parsed;
}

export function fullScope(resource: string, name: string): string {
  return `${resource}/${name}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

export interface MicrosoftError {
  status: number;
  error: string;
  /** AADSTS number; Microsoft says clients must not branch on it, only on `error`/`suberror`. */
  code: number;
  message: string;
  suberror?: string;
  /** Claims challenge (JSON text) that comes with some `interaction_required` answers (Conditional Access). */
  claims?: string;
}

export interface MicrosoftErrorBody {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
  error_uri: string;
  suberror?: string;
  claims?: string;
}

/** `2025-01-31 09:15:02Z`, the format Microsoft uses in `timestamp` and in descriptions. */
export function formatTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

export interface ErrorIds {
  traceId?: string;
  /** Microsoft echoes the `client-request-id` request header as `correlation_id`. */
  correlationId?: string;
  now?: Date;
}

export function microsoftErrorBody(
  err: MicrosoftError,
  origin: string,
  ids: ErrorIds = {},
  extraCodes: number[] = [],
): MicrosoftErrorBody {
  const traceId = ids.traceId ?? randomUUID();
  const correlationId = ids.correlationId ?? randomUUID();
  const timestamp = formatTimestamp(ids.now ?? new Date());
  return {
    error: err.error,
    error_description:
      `AADSTS${err.code}: ${err.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}` +
      `\r\nTimestamp: ${timestamp}`,
    error_codes: [err.code, ...extraCodes],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `${origin}/error?code=${err.code}`,
    ...(err.suberror ? { suberror: err.suberror } : {}),
    ...(err.claims ? { claims: err.claims } : {}),
  };
}

/** Short human meanings, shown on `/error?code=` and in the login/consent pages. */
export const AADSTS_TITLES: Readonly<Record<number, string>> = {
  40010: 'A transient error occurred in a dependent service. Please try again.',
  50000: 'There was an error issuing a token.',
  50011: 'The redirect URI does not match the redirect URIs configured for the application.',
  50020: 'The user account does not exist in this directory.',
  50055: 'The password is expired.',
  50057: 'The user account is disabled.',
  50076:
    'Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication.',
  50078:
    'Presented multi-factor authentication has expired due to policies configured by your administrator.',
  50079:
    'Due to a configuration change made by your administrator, you must enroll in multi-factor authentication.',
  50126: 'Error validating credentials due to invalid username or password.',
  50173: 'The provided grant has expired due to it being revoked; a fresh auth token is needed.',
  50196: 'The server terminated an operation because it encountered a client request loop.',
  53000:
    'Device is not in required device state: compliant. Conditional Access policy requires a compliant device.',
  53003: 'Access has been blocked by Conditional Access policies.',
  54005: 'OAuth2 authorization code was already redeemed.',
  65001: 'The user or administrator has not consented to use the application.',
  65004: 'User declined to consent to access the app.',
  70000: 'The provided grant is invalid or malformed.',
  70003: 'The app requested an unsupported grant type.',
  70008: 'The provided authorization code or refresh token has expired.',
  70011: 'The provided value for the input parameter scope is not valid.',
  70021: 'No matching federated identity record found for presented assertion.',
  70043: 'The refresh token has expired or is invalid due to sign-in frequency checks by Conditional Access.',
  90002: 'Tenant not found.',
  90006: 'An internal server error occurred. Please try again.',
  90033: 'A transient error has occurred. Please try again.',
  90055: 'The tenant is being throttled.',
  500011: 'The resource principal was not found in the tenant.',
  501481: 'The code_verifier does not match the code_challenge supplied in the authorization request.',
  650053: 'The application asked for a scope that does not exist on the resource.',
  700005: 'The authorization code is intended for another tenant.',
  700016: 'Application not found in the directory.',
  700024: 'Client assertion is not within its valid time range.',
  700027: 'Client assertion failed signature validation.',
  700082: 'The refresh token has expired due to inactivity.',
  700084: 'The refresh token was issued to a single page app and has a fixed lifetime that has expired.',
  900144: 'The request body must contain a required parameter.',
  901002: "The 'resource' request parameter is not supported.",
  1002012: 'The provided value for scope is not valid for the client credentials flow.',
  7000215: 'Invalid client secret provided.',
  7000222: 'The provided client secret keys are expired.',
  7000218: "The request body must contain 'client_assertion' or 'client_secret'.",
  9002313: 'Invalid request. Request is malformed or invalid.',
  9002326: "Cross-origin token redemption is permitted only for the 'Single-Page Application' client type.",
};

export interface ProviderErrorInput {
  /** oidc-provider's `error` value. */
  error: string;
  /** oidc-provider's internal `error_detail` (never sent to the client). */
  detail?: string;
  grantType?: string;
  clientId?: string;
  tenantName: string;
  /** The refresh token in the request was revoked by `revokeUser`. */
  revoked?: boolean;
}

const consentRequired = (clientId: string | undefined): MicrosoftError => ({
  status: 400,
  error: 'invalid_grant',
  code: 65001,
  suberror: 'consent_required',
  message:
    `The user or administrator has not consented to use the application with ID '${clientId ?? ''}'. ` +
    'Send an interactive authorization request for this user and resource.',
});

/**
 * Turns oidc-provider's token-endpoint error (`error` + internal `error_detail`) into the error Microsoft returns
 * for the same situation. The detail strings are those of oidc-provider 9.13 (pinned in package.json).
 */
export function mapProviderError(input: ProviderErrorInput): MicrosoftError {
  const { error, grantType, clientId, tenantName } = input;
  const detail = input.detail ?? '';
  if (input.revoked) {
    return {
      status: 400,
      error: 'invalid_grant',
      code: 50173,
      message:
        'The provided grant has expired due to it being revoked, a fresh auth token is needed. ' +
        'The user might have changed or reset their password, or their sessions were revoked.',
    };
  }
  switch (error) {
    case 'invalid_client':
      if (detail === 'client not found') {
        return {
          status: 400,
          error: 'unauthorized_client',
          code: 700016,
          message: `Application with identifier '${clientId ?? ''}' was not found in the directory '${tenantName}'.`,
        };
      }
      if (detail === 'invalid secret provided') {
        return {
          status: 401,
          error: 'invalid_client',
          code: 7000215,
          message:
            'Invalid client secret provided. Ensure the secret being sent in the request is the client secret ' +
            `value, not the client secret ID, for a secret added to app '${clientId ?? ''}'.`,
        };
      }
      if (detail.includes('does not match the registered client authentication method')) {
        return {
          status: 401,
          error: 'invalid_client',
          code: 7000218,
          message:
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        };
      }
      if (/"exp"|"nbf"|"iat"|expired|timestamp/i.test(detail)) {
        return {
          status: 401,
          error: 'invalid_client',
          code: 700024,
          message: 'Client assertion is not within its valid time range.',
        };
      }
      return {
        status: 401,
        error: 'invalid_client',
        code: 700027,
        message: 'Client assertion failed signature validation.',
      };
    case 'invalid_grant':
      if (detail === 'authorization code already consumed') {
        return {
          status: 400,
          error: 'invalid_grant',
          code: 54005,
          message:
            'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an ' +
            'existing refresh token.',
        };
      }
      if (/code_verifier/.test(detail)) {
        return {
          status: 400,
          error: 'invalid_grant',
          code: 501481,
          message:
            'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
        };
      }
      if (detail === 'authorization code is expired') {
        return {
          status: 400,
          error: 'invalid_grant',
          code: 70008,
          message:
            'The provided authorization code or refresh token has expired due to inactivity. Send a new ' +
            'interactive authorization request for this user and resource.',
        };
      }
      if (detail === 'refresh token is expired') {
        return {
          status: 400,
          error: 'invalid_grant',
          code: 700082,
          suberror: 'bad_token',
          message: 'The refresh token has expired due to inactivity.',
        };
      }
      if (detail === 'refresh token already used') {
        return {
          status: 400,
          error: 'invalid_grant',
          code: 70000,
          message:
            "The provided value for the 'refresh_token' was already redeemed; every refresh token issued from " +
            'the same grant has been revoked.',
        };
      }
      if (detail === 'authorization code redirect_uri mismatch') {
        return {
          status: 400,
          error: 'invalid_grant',
          code: 70000,
          message: "The 'redirect_uri' does not match the one used in the authorization request.",
        };
      }
      return {
        status: 400,
        error: 'invalid_grant',
        code: 70000,
        message:
          grantType === 'refresh_token'
            ? "The provided value for the input parameter 'refresh_token' is not valid."
            : 'Provided grant is invalid or malformed.',
      };
    case 'invalid_scope':
    case 'invalid_target':
      if (grantType === 'client_credentials') {
        return {
          status: 400,
          error: 'invalid_scope',
          code: 1002012,
          message:
            'The provided value for scope is not valid. Client credential flows must have a scope value ' +
            'with /.default suffixed to the resource identifier (application ID URI).',
        };
      }
      return consentRequired(clientId);
    case 'invalid_resource':
      return {
        status: 400,
        error: 'invalid_resource',
        code: 500011,
        message: `The resource principal was not found in the tenant named ${tenantName}.`,
      };
    case 'unsupported_grant_type':
      return {
        status: 400,
        error: 'unsupported_grant_type',
        code: 70003,
        message: `The app requested an unsupported grant type '${grantType ?? ''}'.`,
      };
    case 'invalid_request': {
      if (detail === 'no client authentication mechanism provided') {
        return {
          status: 401,
          error: 'invalid_client',
          code: 7000218,
          message:
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        };
      }
      if (detail === 'requested grant type is not allowed for this client') {
        return {
          status: 400,
          error: 'unauthorized_client',
          code: 700016,
          message: `The client '${clientId ?? ''}' is not allowed to use grant type '${grantType ?? ''}'.`,
        };
      }
      const missing = /^missing required parameter[s]? (.+)$/.exec(detail);
      if (missing?.[1]) {
        return {
          status: 400,
          error: 'invalid_request',
          code: 900144,
          message: `The request body must contain the following parameter: ${missing[1]}.`,
        };
      }
      return {
        status: 400,
        error: 'invalid_request',
        code: 9002313,
        message: 'Invalid request. Request is malformed or invalid.',
      };
    }
    case 'server_error':
      return {
        status: 500,
        error: 'server_error',
        code: 50000,
        message: 'There was an error issuing a token.',
      };
    default:
      return {
        status: 400,
        error,
        code: 9002313,
        message: 'Invalid request. Request is malformed or invalid.',
      };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Success responses

export interface TokenSuccessOptions {
  grantType: string;
  refreshInSeconds?: number;
}

/**
 * Re-orders oidc-provider's token response into Microsoft's field set: `token_type`, `scope`, `expires_in`,
 * `ext_expires_in` (and `refresh_in` when configured), then the tokens. Client-credentials responses carry no
 * `scope`, like Microsoft's.
 */
export function shapeTokenSuccess(
  body: Record<string, unknown>,
  opts: TokenSuccessOptions,
): Record<string, unknown> {
  const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : undefined;
  const out: Record<string, unknown> = { token_type: 'Bearer' };
  if (opts.grantType !== 'client_credentials' && typeof body.scope === 'string') out.scope = body.scope;
  if (expiresIn !== undefined) {
    out.expires_in = expiresIn;
    out.ext_expires_in = expiresIn;
    if (opts.refreshInSeconds !== undefined && opts.refreshInSeconds < expiresIn)
      out.refresh_in = opts.refreshInSeconds;
  }
  for (const key of ['access_token', 'refresh_token', 'id_token'] as const) {
    if (typeof body[key] === 'string') out[key] = body[key];
  }
  return out;
}
