/**
 * Microsoft-shaped bearer tokens signed with our own keys, and a tiny JWKS server on loopback that serves their
 * public halves (and can rotate them, fail, or count fetches). Lets caller-authentication tests cover claim
 * variants Entra would never hand us on demand: v1/v2 issuers, expiry and skew, unknown `kid`, foreign algs.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export async function newSigningKey(kid = randomUUID().slice(0, 8)): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  // Entra's JWKS entries carry kty/use/kid/n/e (no alg), which is what we publish too.
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, use: 'sig' };
  return { kid, privateKey, publicKey, publicJwk };
}

export interface JwksServer {
  url: string;
  /** JWKS downloads so far. */
  readonly fetches: number;
  /** Replaces the published keys (a key rotation on the issuer's side). */
  publish(keys: readonly SigningKey[]): void;
  /** Answer every request with this status (e.g. 500), or serve normally again with `undefined`. */
  failWith(status: number | undefined): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: readonly SigningKey[]): Promise<JwksServer> {
  let published = [...keys];
  let failure: number | undefined;
  let fetches = 0;
  const server: Server = createServer((_req, res) => {
    fetches++;
    if (failure !== undefined) {
      res.writeHead(failure, { 'content-type': 'text/plain' }).end('unavailable');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify({ keys: published.map((k) => k.publicJwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/common/discovery/v2.0/keys`,
    get fetches() {
      return fetches;
    },
    publish(next) {
      published = [...next];
    },
    failWith(status) {
      failure = status;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface EntraClaimsOptions {
  version: '1.0' | '2.0';
  tenantId: string;
  /** v1: usually the App ID URI; v2: the API's client id. */
  audience: string;
  appId: string;
  roles?: string[];
  /** Epoch seconds; default now. */
  now?: number;
  lifetimeSeconds?: number;
  authorityHost?: string;
}

/** App-only access-token claims as Entra issues them for client credentials (v1 or v2 shape). */
export function entraAppClaims(o: EntraClaimsOptions): Record<string, unknown> {
  const now = o.now ?? Math.floor(Date.now() / 1000);
  const common = {
    aud: o.audience,
    iat: now,
    nbf: now,
    exp: now + (o.lifetimeSeconds ?? 3600),
    oid: randomUUID(),
    sub: randomUUID(),
    tid: o.tenantId,
    uti: randomUUID().replace(/-/g, '').slice(0, 22),
    rh: '0.AAAA-demo.',
    ver: o.version,
    ...(o.roles ? { roles: o.roles } : {}),
  };
  return o.version === '1.0'
    ? {
        ...common,
        iss: `https://sts.windows.net/${o.tenantId}/`,
        idp: `https://sts.windows.net/${o.tenantId}/`,
        appid: o.appId,
        appidacr: '1',
      }
    : {
        ...common,
        iss: `${o.authorityHost ?? 'https://login.microsoftonline.com'}/${o.tenantId}/v2.0`,
        azp: o.appId,
        azpacr: '1',
      };
}

/** Signs `claims` with `key` (RS256, its `kid` unless `kid` overrides it). */
export function sign(
  claims: Record<string, unknown>,
  key: SigningKey,
  kid: string = key.kid,
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(key.privateKey);
}

/** An unsecured JWT (`alg: none`), as an attacker would hand-craft it. */
export function unsecured(claims: Record<string, unknown>, kid: string): string {
  const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT', kid })}.${part(claims)}.`;
}

/** HS256 with a chosen secret, e.g. the RSA public key itself (the classic algorithm-confusion attack). */
export function hmacSigned(
  claims: Record<string, unknown>,
  secret: Uint8Array,
  kid: string,
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid }).sign(secret);
}
