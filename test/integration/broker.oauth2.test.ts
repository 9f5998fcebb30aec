import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../shared/config.ts';
import { BrokerError } from '../../shared/errors.ts';
import { createLogger } from '../../shared/log.ts';
import { buildRuntime, type Runtime } from '../../shared/runtime.ts';
import { driveAuthorization } from '../../tools/demo-idp/driver.ts';
import { type DemoIdp, startDemoIdp } from '../../tools/demo-idp/server.ts';
import { SecretScanner } from '../support/secrets.ts';

// The generic `oauth2` provider kind, pointed at the demo IdP's tenant endpoints as if it were any RFC 6749
// server: explicit URLs, client_secret_basic, an issuer + JWKS for id_token checks, extra authorize params.
const caller = { kind: 'function_key' as const };
let idp: DemoIdp;
let runtime: Runtime;
let dir: string;
const logs: string[] = [];
const secrets = new SecretScanner();

before(async () => {
  const secret = randomBytes(24).toString('base64url');
  secrets.add('client secret', secret);
  idp = await startDemoIdp({
    quiet: true,
    clients: [
      {
        clientId: 'generic-client',
        clientSecret: secret,
        authMethod: 'client_secret_basic',
        redirectUris: ['https://broker.test/api/callback'],
      },
    ],
  });
  dir = await mkdtemp(join(tmpdir(), 'oauth2-'));
  const ep = idp.endpoints();
  const config = parseConfig({
    BROKER_DATA_DIR: dir,
    BROKER_PUBLIC_BASE_URL: 'https://broker.test',
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    ACME_CLIENT_SECRET: secret,
    BROKER_PROVIDERS: JSON.stringify({
      acme: {
        kind: 'oauth2',
        authorizationUrl: ep.authorization,
        tokenUrl: ep.token,
        issuer: ep.issuer,
        jwksUrl: ep.jwks,
        clientId: 'generic-client',
        clientSecretSetting: 'ACME_CLIENT_SECRET',
        clientAuthMethod: 'client_secret_basic',
        defaultScopes: ['profile', 'offline_access', 'https://graph.microsoft.com/Mail.Send'],
        extraAuthorizeParams: { domain_hint: 'demo.example' },
      },
    }),
  });
  runtime = await buildRuntime(
    config,
    createLogger({}, (_l, line) => logs.push(line)),
  );
});

after(async () => {
  const r = await runtime.broker.store.get('acme-account');
  secrets.add('refresh token', r?.tokens?.refreshToken);
  secrets.add('access token', r?.tokens?.primary?.accessToken);
  // Close first, assert after: a failed scan must not leave the IdP running until the runner's timeout.
  await idp.close();
  await rm(dir, { recursive: true, force: true });
  secrets.assertAbsent(logs.join('\n'), 'logs');
});

describe('generic oauth2 provider', () => {
  it('connects, pins the identity from the verified id_token, and refreshes with client_secret_basic', async () => {
    const { broker } = runtime;
    await broker.upsertConnection('acme-account', { provider: 'acme', scopes: [] });
    const { url } = await broker.createLink('acme-account');
    const start = await broker.beginConnect('acme-account', new URL(url).searchParams.get('link') ?? '');
    const authorize = new URL(start.redirectUrl);
    assert.equal(authorize.searchParams.get('domain_hint'), 'demo.example');
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorize.searchParams.get('response_mode'), null, 'Microsoft-only parameters are not sent');
    const drive = await driveAuthorization(start.redirectUrl, {
      username: 'adele@demo.example',
      password: 'demo',
    });
    secrets.add('code', drive.params.get('code'));
    const result = await broker.completeCallback(drive.params, start.cookie.value);
    assert.equal(result.username, 'adele@demo.example');
    const record = await broker.store.get('acme-account');
    assert.equal(record?.identity?.issuer, idp.issuer);
    assert.equal(idp.tokenLog.at(-1)?.clientAuth, 'client_secret_basic');

    idp.stats.reset();
    const view = await broker.forceRefresh('acme-account');
    assert.equal(view.status, 'active');
    assert.equal(idp.stats.refreshGrants, 1);
    assert.equal(idp.tokenLog.at(-1)?.clientAuth, 'client_secret_basic');
    const token = await broker.getAccessToken('acme-account', caller);
    assert.equal(token.token_type, 'Bearer');
  });

  it('refuses an unknown provider name', async () => {
    await assert.rejects(
      runtime.broker.upsertConnection('nope', { provider: 'unknown', scopes: [] }),
      (e) => e instanceof BrokerError && e.code === 'invalid_request',
    );
  });
});
