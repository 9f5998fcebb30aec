/**
 * A malicious (or just broken) Microsoft-shaped token endpoint on loopback: it answers any code with whatever
 * token response the test scripts — id_tokens from another issuer or tenant, signed by a stranger's key, for
 * another audience, with the wrong nonce. Its JWKS publishes one key, so a correctly built answer does verify
 * and each refusal can be pinned on the one claim that was bent.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { newSigningKey, type SigningKey } from './entraTokens.ts';

/** Microsoft's personal-account (MSA) tenant, whose issuer `consumers` discovery publishes. */
export const MSA_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';

export type TokenAnswer = (form: URLSearchParams) => { status?: number; body: Record<string, unknown> };

export interface RogueProvider {
  /** Use as MICROSOFT_AUTHORITY_HOST. */
  origin: string;
  /** The key its JWKS publishes. */
  key: SigningKey;
  /** Every token request received (form bodies), oldest first. */
  tokenRequests: URLSearchParams[];
  /** Every refresh token it handed out, so tests can look for them where they must not be. */
  issuedRefreshTokens: string[];
  answerWith(answer: TokenAnswer): void;
  /** The `issuer` its JWKS lists on the key, as Microsoft's does (undefined: none listed). */
  keyIssuer: string | undefined;
  close(): Promise<void>;
}

export async function startRogueProvider(): Promise<RogueProvider> {
  const key = await newSigningKey('rogue-key');
  const tokenRequests: URLSearchParams[] = [];
  const issuedRefreshTokens: string[] = [];
  let keyIssuer: string | undefined;
  let answer: TokenAnswer = () => ({ status: 400, body: { error: 'invalid_grant' } });
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const discovery = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
    if (req.method === 'GET' && discovery?.[1]) {
      // Microsoft's shape: the `{tenantid}` template for common/organizations, the tenant's issuer otherwise.
      const tenant = discovery[1];
      const origin = `http://${req.headers.host ?? '127.0.0.1'}`;
      // `consumers` publishes the personal-account tenant's own issuer.
      const issuerTenant =
        tenant === 'common' || tenant === 'organizations'
          ? '{tenantid}'
          : tenant === 'consumers'
            ? MSA_TENANT
            : tenant;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          issuer: `${origin}/${issuerTenant}/v2.0`,
          authorization_endpoint: `${origin}/${tenant}/oauth2/v2.0/authorize`,
          token_endpoint: `${origin}/${tenant}/oauth2/v2.0/token`,
          jwks_uri: `${origin}/${tenant}/discovery/v2.0/keys`,
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      );
      return;
    }
    if (req.method === 'GET' && /^\/[^/]+\/discovery\/v2\.0\/keys$/.test(path)) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          keys: [keyIssuer ? { ...key.publicJwk, issuer: keyIssuer } : key.publicJwk],
        }),
      );
      return;
    }
    if (req.method === 'POST' && /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(path)) {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(text);
        tokenRequests.push(form);
        const out = answer(form);
        if (typeof out.body.refresh_token === 'string') issuedRefreshTokens.push(out.body.refresh_token);
        res
          .writeHead(out.status ?? 200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          .end(JSON.stringify(out.body));
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    key,
    tokenRequests,
    issuedRefreshTokens,
    answerWith(next) {
      answer = next;
    },
    get keyIssuer() {
      return keyIssuer;
    },
    set keyIssuer(value) {
      keyIssuer = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A successful Microsoft-shaped token response around `idToken` (fresh random access and refresh tokens). */
export function tokenResponse(
  idToken: string | undefined,
  scope = 'https://graph.microsoft.com/Mail.Send',
): Record<string, unknown> {
  return {
    token_type: 'Bearer',
    scope,
    expires_in: 3600,
    access_token: `rogue-at-${randomBytes(16).toString('base64url')}`,
    refresh_token: `rogue-rt-${randomBytes(16).toString('base64url')}`,
    ...(idToken ? { id_token: idToken } : {}),
  };
}
