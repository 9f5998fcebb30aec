/**
 * @module oauth/presets
 * Provider presets: what each provider's public documentation says a confidential web app must send and can
 * expect, so an admin writes `"preset": "google"` plus a client id instead of rediscovering every quirk. Values an
 * admin sets in BROKER_PROVIDERS win over the preset's. Microsoft (including Microsoft Advertising) is the
 * built-in `microsoft` provider, not a preset: see README, "Providers".
 */

/** How the provider treats a refresh token once used (documentation only; the broker stores whatever comes back). */
export type Rotation = 'none' | 'rotating' | 'strict';

export interface ProviderPreset {
  /** Public pages the values below come from. */
  sources: readonly string[];
  /** OpenID issuer; endpoints and keys then come from its discovery document. Undefined = the admin supplies it. */
  issuer?: string;
  authorizationUrl?: string;
  tokenUrl?: string;
  /** The admin must set `issuer` (per-tenant domains such as Auth0's). */
  requiresIssuer?: boolean;
  defaultScopes: readonly string[];
  extraAuthorizeParams: Readonly<Record<string, string>>;
  /** Lifetime assumed when a token response has no `expires_in`. */
  defaultExpiresInSeconds?: number;
  rotation: Rotation;
}

export const PRESETS = {
  google: {
    sources: [
      'https://developers.google.com/identity/protocols/oauth2/web-server',
      'https://accounts.google.com/.well-known/openid-configuration',
    ],
    issuer: 'https://accounts.google.com',
    // Google returns a refresh token only with access_type=offline, and again on a later sign-in only with
    // prompt=consent; it ignores the offline_access scope.
    defaultScopes: ['openid', 'email'],
    extraAuthorizeParams: { access_type: 'offline', prompt: 'consent' },
    // Refresh responses carry no new refresh token; apps in "testing" or with time-based access get
    // refresh_token_expires_in.
    rotation: 'none',
  },
  salesforce: {
    sources: [
      'https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_web_server_flow.htm',
      'https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm',
      'https://help.salesforce.com/s/articleView?id=sf.admin_sessions.htm',
    ],
    issuer: 'https://login.salesforce.com',
    // `refresh_token` (or offline_access) is what makes Salesforce issue a refresh token.
    defaultScopes: ['openid', 'api', 'refresh_token'],
    extraAuthorizeParams: {},
    // Salesforce sends no expires_in: the token lives as long as the org's session timeout. The shortest
    // timeout an org can pick is 15 minutes, so assuming that never serves an expired token.
    defaultExpiresInSeconds: 900,
    rotation: 'none',
  },
  auth0: {
    sources: [
      'https://auth0.com/docs/secure/tokens/refresh-tokens/refresh-token-rotation',
      'https://auth0.com/docs/secure/tokens/refresh-tokens/configure-refresh-token-rotation',
      'https://auth0.com/docs/get-started/apis/scopes/openid-connect-scopes',
    ],
    requiresIssuer: true,
    // Auth0 issues a refresh token only for offline_access (and "Allow Offline Access" on the API).
    defaultScopes: ['openid', 'profile', 'offline_access'],
    extraAuthorizeParams: {},
    // With rotation on, every refresh returns a new token; presenting a rotated one after the reuse interval
    // revokes the whole family (reuse detection).
    rotation: 'strict',
  },
} as const satisfies Record<string, ProviderPreset>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as [PresetName, ...PresetName[]];

export function presetFor(name: PresetName): ProviderPreset {
  return PRESETS[name];
}
