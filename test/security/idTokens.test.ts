/**
 * Mix-up and forged identities at code redemption, against a scripted malicious token endpoint on loopback: the
 * broker must only accept an id_token that its provider's key signed, for its client, for this login (nonce),
 * from the expected issuer — Microsoft's `{tenantid}` template filled from the token's own `tid` for multi-tenant
 * configurations, the one tenant's issuer otherwise. Each refusal leaves the connection as it was.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Broker } from '../../shared/broker/broker.ts';
import { keyIdOf, parseConfig } from '../../shared/config.ts';
import { Keyring } from '../../shared/crypto.ts';
import { BrokerError } from '../../shared/errors.ts';
import { createMemoryLock } from '../../shared/lock/memoryLock.ts';
import { createLogger } from '../../shared/log.ts';
import { createProviderClient } from '../../shared/oauth/provider.ts';
import { createTransport } from '../../shared/oauth/transport.ts';
import { createFileStore } from '../../shared/store/fileStore.ts';
import type { TokenStore } from '../../shared/store/types.ts';
import { hmacSigned, newSigningKey, sign, unsecured } from '../support/entraTokens.ts';
import { type RogueProvider, startRogueProvider, tokenResponse } from '../support/rogueProvider.ts';
import { SecretScanner } from '../support/secrets.ts';

const CLIENT = 'broker-client-id';
const CLIENT_SECRET = randomBytes(24).toString('base64url');
const TENANT_A = '11111111-aaaa-4aaa-8aaa-111111111111';
const TENANT_B = '22222222-bbbb-4bbb-8bbb-222222222222';

let rogue: RogueProvider;
let dir: string;
let store: TokenStore;
const logs: string[] = [];
const transport = createTransport({ timeoutMs: 3000 });
const brokers: Record<'common' | 'pinnedTenant', Broker> = {} as Record<'common' | 'pinnedTenant', Broker>;
let counter = 0;

function newBroker(tenant: string): Broker {
  const config = parseConfig({
    MICROSOFT_CLIENT_ID: CLIENT,
    MICROSOFT_CLIENT_SECRET: CLIENT_SECRET,
    MICROSOFT_TENANT: tenant,
    MICROSOFT_AUTHORITY_HOST: rogue.origin,
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    BROKER_PUBLIC_BASE_URL: 'https://broker.test',
  });
  const providerConfig = config.providers.microsoft;
  assert.ok(providerConfig);
  const provider = createProviderClient(providerConfig, {
    fetch: transport.fetch,
    redirectUri: config.redirectUri,
    allowInsecureHttp: true,
    timeoutMs: 3000,
  });
  const key = randomBytes(32);
  return new Broker({
    store,
    lock: createMemoryLock(),
    providers: new Map([['microsoft', provider]]),
    keyring: new Keyring([{ kid: keyIdOf(key), key }]),
    log: createLogger({}, (_level, line) => logs.push(line)),
    publicBaseUrl: 'https://broker.test',
    linkTtlSeconds: 900,
    policy: { marginMs: 300_000, keepAliveMs: 7 * 24 * 3600_000 },
    sweepConcurrency: 2,
  });
}

/** The id_token claims an honest provider would send for this login. */
function honestClaims(nonce: string, tid = TENANT_A): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: `${rogue.origin}/${tid}/v2.0`,
    aud: CLIENT,
    sub: randomUUID(),
    oid: randomUUID(),
    tid,
    preferred_username: 'owner@contoso.example',
    nonce,
    iat: now,
    nbf: now,
    exp: now + 3600,
    ver: '2.0',
  };
}

/**
 * Runs one sign-in whose token response comes from `answer` (given the login's nonce). Resolves to the error code,
 * or 'connected'. `iss` adds an RFC 9207 issuer to the authorization response.
 */
async function login(
  which: keyof typeof brokers,
  answer: (nonce: string) => Promise<Record<string, unknown> | undefined>,
  iss?: string,
) {
  const broker = brokers[which];
  const name = `c${++counter}`;
  await broker.upsertConnection(name, {
    provider: 'microsoft',
    scopes: ['https://graph.microsoft.com/Mail.Send'],
  });
  const { url } = await broker.createLink(name);
  const start = await broker.beginConnect(name, new URL(url).searchParams.get('link') ?? '');
  const authorize = new URL(start.redirectUrl);
  const nonce = authorize.searchParams.get('nonce') ?? '';
  const body = await answer(nonce);
  rogue.answerWith(() => ({ body: body ?? {} }));
  const params = new URLSearchParams({
    code: `code-${randomUUID()}`,
    state: authorize.searchParams.get('state') ?? '',
  });
  if (iss) params.set('iss', iss);
  const before = rogue.tokenRequests.length;
  let outcome: string;
  try {
    await broker.completeCallback(params, start.cookie.value);
    outcome = 'connected';
  } catch (err) {
    if (!(err instanceof BrokerError)) throw err;
    outcome = err.code;
  }
  const record = await store.get(name);
  return { outcome, record, redeemed: rogue.tokenRequests.length - before };
}

before(async () => {
  rogue = await startRogueProvider();
  dir = await mkdtemp(join(tmpdir(), 'id-tokens-'));
  store = createFileStore({ dataDir: dir });
  brokers.common = newBroker('common');
  brokers.pinnedTenant = newBroker(TENANT_A);
});

after(async () => {
  const scanner = new SecretScanner();
  scanner.add('client secret', CLIENT_SECRET);
  for (const rt of rogue.issuedRefreshTokens) scanner.add('refresh token', rt);
  for (const form of rogue.tokenRequests) scanner.add('code verifier', form.get('code_verifier'));
  try {
    await rogue.close();
    await transport.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // Closed first, asserted after: a failing scan leaves nothing running.
  scanner.assertAbsent(logs.join('\n'), 'broker logs');
});

describe('id_token checks at code redemption (scripted malicious token endpoint)', () => {
  it('control: an honest answer connects, on both the multi-tenant and the single-tenant broker', async () => {
    for (const which of ['common', 'pinnedTenant'] as const) {
      const r = await login(which, async (nonce) =>
        tokenResponse(await sign(honestClaims(nonce), rogue.key)),
      );
      assert.equal(r.outcome, 'connected', which);
      assert.equal(r.record?.identity?.tenantId, TENANT_A);
      assert.equal(r.record?.identity?.issuer, `${rogue.origin}/${TENANT_A}/v2.0`);
    }
  });

  const refused: [
    string,
    keyof typeof brokers,
    (nonce: string) => Promise<Record<string, unknown> | undefined>,
  ][] = [
    [
      'issuer on another host',
      'common',
      async (n) =>
        tokenResponse(
          await sign({ ...honestClaims(n), iss: `https://login.evil.example/${TENANT_A}/v2.0` }, rogue.key),
        ),
    ],
    [
      'issuer of another tenant than its tid',
      'common',
      async (n) =>
        tokenResponse(await sign({ ...honestClaims(n), iss: `${rogue.origin}/${TENANT_B}/v2.0` }, rogue.key)),
    ],
    [
      'tid that is not a GUID (template cannot be filled)',
      'common',
      async (n) =>
        tokenResponse(
          await sign({ ...honestClaims(n), tid: 'common', iss: `${rogue.origin}/common/v2.0` }, rogue.key),
        ),
    ],
    [
      'another tenant on a single-tenant broker',
      'pinnedTenant',
      async (n) => tokenResponse(await sign(honestClaims(n, TENANT_B), rogue.key)),
    ],
    [
      'signed by a key the provider does not publish',
      'common',
      async (n) => tokenResponse(await sign(honestClaims(n), await newSigningKey('stranger'))),
    ],
    [
      'signed by an impostor key under the published kid',
      'common',
      async (n) => tokenResponse(await sign(honestClaims(n), await newSigningKey(rogue.key.kid))),
    ],
    ['alg none', 'common', (n) => Promise.resolve(tokenResponse(unsecured(honestClaims(n), rogue.key.kid)))],
    [
      'HS256 keyed with the client secret',
      'common',
      async (n) =>
        tokenResponse(
          await hmacSigned(honestClaims(n), new TextEncoder().encode(CLIENT_SECRET), rogue.key.kid),
        ),
    ],
    [
      'for another client (aud)',
      'common',
      async (n) => tokenResponse(await sign({ ...honestClaims(n), aud: 'someone-else' }, rogue.key)),
    ],
    [
      'for another login (nonce)',
      'common',
      async () => tokenResponse(await sign(honestClaims('a-nonce-from-another-login'), rogue.key)),
    ],
    [
      'expired',
      'common',
      async (n) =>
        tokenResponse(
          await sign(
            { ...honestClaims(n), iat: 1_600_000_000, nbf: 1_600_000_000, exp: 1_600_003_600 },
            rogue.key,
          ),
        ),
    ],
    ['missing although openid was asked', 'common', () => Promise.resolve(tokenResponse(undefined))],
  ];
  for (const [title, which, answer] of refused) {
    it(`refuses an id_token ${title}; nothing is stored`, async () => {
      const r = await login(which, answer);
      assert.equal(r.redeemed, 1, 'the code went to the token endpoint once');
      // 502: the provider answered with something unusable — not "try again later" (503).
      assert.equal(r.outcome, 'provider_error', title);
      assert.equal(r.record?.status, 'pending');
      assert.equal(r.record?.tokens, undefined);
      assert.equal(r.record?.identity, undefined);
    });
  }

  it('refuses an authorization response whose RFC 9207 iss names another tenant, before redeeming the code', async () => {
    const honest = async (nonce: string) => tokenResponse(await sign(honestClaims(nonce), rogue.key));
    const r = await login('pinnedTenant', honest, `${rogue.origin}/${TENANT_B}/v2.0`);
    assert.deepEqual([r.outcome, r.redeemed, r.record?.status], ['invalid_state', 0, 'pending']);
    const evil = await login('common', honest, `https://login.evil.example/${TENANT_A}/v2.0`);
    assert.deepEqual([evil.outcome, evil.redeemed, evil.record?.status], ['invalid_state', 0, 'pending']);
    // The provider's own issuer for the token's tenant passes.
    const ok = await login('common', honest, `${rogue.origin}/${TENANT_A}/v2.0`);
    assert.equal(ok.outcome, 'connected');
  });
});
