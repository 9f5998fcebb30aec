/**
 * @module demo-idp/directory
 * Demo users and client (app) registrations, and their translation into oidc-provider client metadata.
 */
import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import { DEMO_TENANT, OTHER_TENANT } from './microsoft.ts';

export interface DemoUserConfig {
  username: string;
  password: string;
  name?: string;
  /** Defaults to a GUID derived from the username, stable across restarts. */
  objectId?: string;
  /** Defaults to the demo tenant. */
  tenantId?: string;
}

export interface DemoUser {
  username: string;
  password: string;
  name: string;
  objectId: string;
  tenantId: string;
}

export const DEFAULT_USERS: readonly DemoUserConfig[] = [
  { username: 'adele@demo.example', password: 'demo', name: 'Adele Vance' },
  { username: 'megan@demo.example', password: 'demo', name: 'Megan Bowen' },
  { username: 'alex@other.example', password: 'demo', name: 'Alex Wilber', tenantId: OTHER_TENANT.tenantId },
];

/** A version-4-shaped GUID from a hash, so ids are stable across restarts (handy for pinning tests). */
export function stableGuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  const variant = ((parseInt(h[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function toDemoUser(config: DemoUserConfig): DemoUser {
  const username = config.username.trim().toLowerCase();
  return {
    username,
    password: config.password,
    name: config.name ?? username.split('@')[0] ?? username,
    objectId: (config.objectId ?? stableGuid(`demo-idp user ${username}`)).toLowerCase(),
    tenantId: (config.tenantId ?? DEMO_TENANT.tenantId).toLowerCase(),
  };
}

export function passwordMatches(user: DemoUser, password: string): boolean {
  const a = createHash('sha256').update(user.password).digest();
  const b = createHash('sha256').update(password).digest();
  return timingSafeEqual(a, b);
}

export type ClientAuthMethod = 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt' | 'none';

export interface DemoClientConfig {
  clientId: string;
  clientSecret?: string;
  redirectUris: string[];
  /**
   * Defaults: `private_key_jwt` when keys are given, else `client_secret_post` when a secret is given, else `none`.
   * Like Microsoft, a secret client may send its secret either in the body or with HTTP Basic.
   */
  authMethod?: ClientAuthMethod;
  /** Public keys for `private_key_jwt`. */
  jwks?: { keys: JsonWebKey[] };
  /** PEM certificates for `private_key_jwt` ("certificate credentials"); their public keys are registered. */
  certificates?: string[];
  /** App roles put into client-credentials access tokens (`roles` claim), e.g. `['Tokens.Read']`. */
  roles?: string[];
  /** Display name on the sign-in and consent pages. */
  name?: string;
  /** Defaults to authorization_code + refresh_token (+ client_credentials for confidential clients). */
  grantTypes?: string[];
}

export interface RegisteredClient {
  config: DemoClientConfig;
  authMethod: ClientAuthMethod;
  name: string;
  metadata: AdapterPayload;
}

export class ClientConfigError extends Error {
  constructor(clientId: string, reason: string) {
    super(`demo-idp client '${clientId}': ${reason}`);
    this.name = 'ClientConfigError';
  }
}

function certificateJwk(pem: string): JsonWebKey {
  const cert = new X509Certificate(pem);
  const jwk = cert.publicKey.export({ format: 'jwk' });
  return {
    ...jwk,
    x5c: [cert.raw.toString('base64')],
    'x5t#S256': createHash('sha256').update(cert.raw).digest('base64url'),
  } as JsonWebKey;
}

/** Builds oidc-provider metadata. Subjects are pairwise like Microsoft's `sub`. */
export function registerClient(config: DemoClientConfig): RegisteredClient {
  const { clientId } = config;
  if (!clientId) throw new ClientConfigError(String(clientId), 'clientId is required');
  const keys = [...(config.jwks?.keys ?? []), ...(config.certificates ?? []).map(certificateJwk)];
  const authMethod: ClientAuthMethod =
    config.authMethod ??
    (keys.length ? 'private_key_jwt' : config.clientSecret ? 'client_secret_post' : 'none');
  const grantTypes =
    config.grantTypes ??
    (authMethod === 'none'
      ? ['authorization_code', 'refresh_token']
      : ['authorization_code', 'refresh_token', 'client_credentials']);
  const metadata: AdapterPayload = {
    client_id: clientId,
    client_name: config.name ?? clientId,
    redirect_uris: [...config.redirectUris],
    grant_types: grantTypes,
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    // Basic is rewritten to a body secret by the front, so one registration serves both forms.
    token_endpoint_auth_method: authMethod === 'client_secret_basic' ? 'client_secret_post' : authMethod,
    id_token_signed_response_alg: 'RS256',
    subject_type: 'pairwise',
  };
  if (authMethod === 'client_secret_post' || authMethod === 'client_secret_basic') {
    if (!config.clientSecret) throw new ClientConfigError(clientId, `${authMethod} needs clientSecret`);
    metadata.client_secret = config.clientSecret;
  }
  if (authMethod === 'private_key_jwt') {
    if (!keys.length) throw new ClientConfigError(clientId, 'private_key_jwt needs jwks or certificates');
    metadata.jwks = { keys };
  }
  // oidc-provider requires a sector identifier for pairwise clients whose redirect URIs span hosts; it is never
  // fetched (sectorIdentifierUriValidate returns false) and the pairwise value does not depend on it.
  const hosts = new Set(config.redirectUris.map((u) => URL.parse(u)?.host ?? u));
  if (hosts.size > 1)
    metadata.sector_identifier_uri = `https://sector.demo-idp.invalid/${encodeURIComponent(clientId)}`;
  return { config, authMethod, name: config.name ?? clientId, metadata };
}

/** Decodes `Authorization: Basic` per RFC 6749 §2.3.1 (each half form-urlencoded), tolerating raw values. */
export function parseBasicAuth(
  header: string | undefined,
): { clientId: string; clientSecret: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=._-]+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return undefined;
  const unescape = (v: string) => {
    try {
      return decodeURIComponent(v.replace(/\+/g, ' '));
    } catch {
      return v;
    }
  };
  return { clientId: unescape(decoded.slice(0, colon)), clientSecret: unescape(decoded.slice(colon + 1)) };
}
