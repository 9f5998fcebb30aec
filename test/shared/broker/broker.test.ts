import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Broker } from '../../../shared/broker/broker.ts';
import { keyIdOf } from '../../../shared/config.ts';
import { Keyring } from '../../../shared/crypto.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { createLogger } from '../../../shared/log.ts';
import { createFileStore } from '../../../shared/store/fileStore.ts';
import type { ConnectionRecord, TokenStore } from '../../../shared/store/types.ts';
import { SecretScanner } from '../../support/secrets.ts';
import { activeRecord, CountingLock, GatedProvider } from './fixture.ts';

const HOUR = 3600_000;
let dir: string;
let clock: number;
let store: TokenStore;
let provider: GatedProvider;
let lock: CountingLock;
let broker: Broker;
let keyring: Keyring;
const logs: string[] = [];
const secrets = new SecretScanner();
const caller = { kind: 'function_key' as const };

/** A store that forwards to `inner` (whose #private fields need the real receiver). */
function delegateTo(inner: TokenStore): TokenStore {
  return {
    kind: inner.kind,
    get: (c) => inner.get(c),
    put: (r) => inner.put(r),
    listMetadata: () => inner.listMetadata(),
    delete: (c) => inner.delete(c),
  };
}

function brokerDeps(): ConstructorParameters<typeof Broker>[0] {
  return {
    store,
    lock,
    providers: new Map([['microsoft', provider]]),
    keyring,
    log: createLogger({}, (_l, line) => logs.push(line)),
    publicBaseUrl: 'https://broker.example.com',
    linkTtlSeconds: 900,
    policy: { marginMs: 5 * 60_000, keepAliveMs: 7 * 24 * HOUR },
    sweepConcurrency: 4,
    now: () => clock,
    random: () => 1,
  };
}

function code(err: unknown): string {
  return err instanceof BrokerError ? err.code : `not a BrokerError: ${String(err)}`;
}

async function seed(over: Partial<ConnectionRecord> = {}, accessTtlMs = HOUR): Promise<ConnectionRecord> {
  const record = activeRecord(over, accessTtlMs, clock);
  await store.put(record);
  secrets.add('seed refresh token', record.tokens?.refreshToken);
  secrets.add('seed access token', record.tokens?.primary?.accessToken);
  return record;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'broker-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  secrets.assertAbsent(logs.join('\n'), 'broker logs');
});
beforeEach(() => {
  clock = Date.UTC(2026, 10, 27, 12);
  store = createFileStore({ dataDir: join(dir, randomBytes(4).toString('hex')) });
  provider = new GatedProvider();
  lock = new CountingLock();
  const key = randomBytes(32);
  keyring = new Keyring([{ kid: keyIdOf(key), key }]);
  broker = new Broker(brokerDeps());
});

describe('Broker.getAccessToken', () => {
  it('serves a fresh stored token without calling the provider, then from cache without the store', async () => {
    await seed();
    const first = await broker.getAccessToken('sales-mailbox', caller);
    assert.equal(first.access_token, 'at-seed-zzzzzzzzzzzzzzzzzzzzzz');
    assert.equal(first.expires_in, 3600);
    const original = store.get.bind(store);
    let reads = 0;
    store.get = (c) => {
      reads++;
      return original(c);
    };
    await broker.getAccessToken('sales-mailbox', caller);
    assert.equal(reads, 0);
    assert.equal(provider.calls.length, 0);
  });

  it('refreshes inside the margin, persists the rotated refresh token before answering', async () => {
    await seed({}, 4 * 60_000);
    const res = await broker.getAccessToken('sales-mailbox', caller);
    assert.equal(provider.calls.length, 1);
    assert.equal(provider.calls[0]?.refreshToken, 'rt-seed-zzzzzzzzzzzzzzzzzzzzzzzz');
    const stored = await store.get('sales-mailbox');
    assert.equal(stored?.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    assert.equal(stored?.tokens?.primary?.accessToken, res.access_token);
    assert.equal(stored?.refreshedAt, clock);
    assert.equal(stored?.revision, 2);
  });

  it('keeps the old refresh token when the provider returns none', async () => {
    await seed({}, 0);
    provider.queue.push({ ok: { noRefreshToken: true } });
    await broker.getAccessToken('sales-mailbox', caller);
    assert.equal(
      (await store.get('sales-mailbox'))?.tokens?.refreshToken,
      'rt-seed-zzzzzzzzzzzzzzzzzzzzzzzz',
    );
  });

  it('collapses 200 concurrent stale requests into one refresh', async () => {
    await seed({}, 0);
    const original = store.get.bind(store);
    let reads = 0;
    store.get = (c) => {
      reads++;
      return original(c);
    };
    const held = provider.hold();
    const pending = Promise.all(
      Array.from({ length: 200 }, () => broker.getAccessToken('sales-mailbox', caller)),
    );
    await held.entered;
    held.release();
    const results = await pending;
    assert.equal(provider.calls.length, 1);
    assert.equal(new Set(results.map((r) => r.access_token)).size, 1);
    // The lock and the re-read alone would also give one provider call; single flight is what keeps the
    // other 199 requests off the lock and the store.
    assert.equal(lock.acquisitions, 1);
    assert.equal(
      reads,
      3,
      'one read before the lock, one re-read under it, one revision check before the write',
    );
  });

  it('marks needs_reauth on invalid_grant, keeps the record, and answers 409 afterwards', async () => {
    await seed({}, 0);
    provider.queue.push({
      fail: { httpStatus: 400, body: { error: 'invalid_grant', error_codes: [50173] } },
    });
    await assert.rejects(
      broker.getAccessToken('sales-mailbox', caller),
      (e) => code(e) === 'connection_needs_reauth',
    );
    const stored = await store.get('sales-mailbox');
    assert.equal(stored?.status, 'needs_reauth');
    assert.equal(stored?.tokens?.refreshToken, 'rt-seed-zzzzzzzzzzzzzzzzzzzzzzzz');
    assert.deepEqual(stored?.lastError?.providerCodes, [50173]);
    await assert.rejects(
      broker.getAccessToken('sales-mailbox', caller),
      (e) => code(e) === 'connection_needs_reauth',
    );
    assert.equal(provider.calls.length, 1);
  });

  it('does not mark needs_reauth when the store shows a concurrent rotation', async () => {
    await seed({}, 0);
    provider.queue.push({
      fail: { httpStatus: 400, body: { error: 'invalid_grant', error_codes: [70000] } },
    });
    const held = provider.hold();
    const pending = broker.getAccessToken('sales-mailbox', caller);
    // Another instance (not honouring our in-process lock) rotates the token while ours is at the provider.
    await held.entered;
    const current = await store.get('sales-mailbox');
    assert.ok(current?.tokens);
    await store.put({
      ...current,
      tokens: { ...current.tokens, refreshToken: 'rt-other-instance-xxxxxxxxxxx' },
      revision: current.revision + 1,
    });
    held.release();
    await assert.rejects(pending, (e) => code(e) === 'provider_unavailable');
    assert.equal((await store.get('sales-mailbox'))?.status, 'active');
  });

  it('serves a still-valid token when the early refresh fails transiently, and backs off', async () => {
    await seed({}, 2 * 60_000);
    provider.queue.push({ fail: { httpStatus: 503 } });
    const res = await broker.getAccessToken('sales-mailbox', caller);
    assert.equal(res.access_token, 'at-seed-zzzzzzzzzzzzzzzzzzzzzz');
    const stored = await store.get('sales-mailbox');
    assert.equal(stored?.status, 'active');
    assert.equal(stored?.failures, 1);
    // Microsoft: no retry before 5 s after a 5xx.
    assert.ok((stored?.nextAttemptAt ?? 0) >= clock + 5_000);
  });

  it('never serves an expired token: 503 with Retry-After while the provider is down', async () => {
    await seed({}, -1);
    provider.queue.push({ fail: { httpStatus: 429, retryAfterHeader: '30' } });
    await assert.rejects(
      broker.getAccessToken('sales-mailbox', caller),
      (e) => code(e) === 'provider_unavailable' && (e as BrokerError).retryAfterSeconds === 30,
    );
    // Still inside the backoff window: no provider call, same answer.
    await assert.rejects(
      broker.getAccessToken('sales-mailbox', caller),
      (e) => code(e) === 'provider_unavailable',
    );
    assert.equal(provider.calls.length, 1);
    clock += 31_000;
    const ok = await broker.getAccessToken('sales-mailbox', caller);
    assert.equal(ok.access_token.startsWith('at-1-'), true);
  });

  it('sets status error on invalid_client', async () => {
    await seed({}, 0);
    provider.queue.push({
      fail: { httpStatus: 401, body: { error: 'invalid_client', error_codes: [7000222] } },
    });
    await assert.rejects(
      broker.getAccessToken('sales-mailbox', caller),
      (e) => code(e) === 'provider_misconfigured',
    );
    assert.equal((await store.get('sales-mailbox'))?.status, 'error');
    await assert.rejects(
      broker.getAccessToken('sales-mailbox', caller),
      (e) => code(e) === 'connection_error',
    );
  });

  it('rejects unknown and invalid names, unconnected connections and disallowed callers', async () => {
    await assert.rejects(broker.getAccessToken('nope', caller), (e) => code(e) === 'unknown_connection');
    await assert.rejects(broker.getAccessToken('Bad_Name', caller), (e) => code(e) === 'invalid_request');
    await broker.upsertConnection('fresh-one', { provider: 'microsoft', scopes: [] });
    await assert.rejects(
      broker.getAccessToken('fresh-one', caller),
      (e) => code(e) === 'connection_not_connected',
    );
    await seed({
      settings: {
        provider: 'microsoft',
        scopes: ['https://graph.microsoft.com/Mail.Send'],
        allowedCallers: ['app-a'],
      },
    });
    await assert.rejects(broker.getAccessToken('sales-mailbox', caller), (e) => code(e) === 'forbidden');
    await assert.rejects(
      broker.getAccessToken('sales-mailbox', { kind: 'entra', appId: 'app-b' }),
      (e) => code(e) === 'forbidden',
    );
    const ok = await broker.getAccessToken('sales-mailbox', { kind: 'entra', appId: 'APP-A' });
    assert.equal(ok.connection, 'sales-mailbox');
  });

  it('checks allowedCallers before a due token is refreshed', async () => {
    await seed(
      {
        settings: {
          provider: 'microsoft',
          scopes: ['https://graph.microsoft.com/Mail.Send'],
          allowedCallers: ['app-a'],
        },
      },
      0,
    );
    await assert.rejects(
      broker.getAccessToken('sales-mailbox', { kind: 'entra', appId: 'app-b' }),
      (e) => code(e) === 'forbidden',
    );
    assert.equal(provider.calls.length, 0);
    assert.equal((await store.get('sales-mailbox'))?.revision, 1);
  });

  it('gets a token for another consented resource and caches it separately; refuses unconsented ones', async () => {
    await seed({
      tokens: {
        refreshToken: 'rt-seed-zzzzzzzzzzzzzzzzzzzzzzzz',
        grantedScopes: ['https://graph.microsoft.com/Mail.Send', 'https://ads.microsoft.com/msads.manage'],
        primary: {
          accessToken: 'at-seed-zzzzzzzzzzzzzzzzzzzzzz',
          tokenType: 'Bearer',
          expiresAt: clock + HOUR,
          scope: 'x',
        },
      },
    });
    const ads = await broker.getAccessToken('sales-mailbox', caller, [
      'https://ads.microsoft.com/msads.manage',
    ]);
    assert.deepEqual(provider.calls[0]?.scopes, ['https://ads.microsoft.com/msads.manage']);
    const again = await broker.getAccessToken('sales-mailbox', caller, [
      'https://ads.microsoft.com/msads.manage',
    ]);
    assert.equal(again.access_token, ads.access_token);
    const primary = await broker.getAccessToken('sales-mailbox', caller);
    assert.equal(primary.access_token, 'at-seed-zzzzzzzzzzzzzzzzzzzzzz');
    assert.equal(provider.calls.length, 1);
    assert.equal((await store.get('sales-mailbox'))?.tokens?.refreshToken, 'rt-1-yyyyyyyyyyyyyyyyyyyyyyyy');
    await assert.rejects(
      broker.getAccessToken('sales-mailbox', caller, ['https://outlook.office.com/SMTP.Send']),
      (e) => code(e) === 'scope_not_granted',
    );
  });
});

describe('Broker.refreshDue', () => {
  it('refreshes only due connections, from metadata, including keep-alive', async () => {
    await seed({ connection: 'fresh' });
    await seed({ connection: 'expiring' }, 60_000);
    await seed({ connection: 'idle', refreshedAt: clock - 8 * 24 * HOUR });
    await seed({ connection: 'broken', status: 'needs_reauth' }, -1);
    const res = await broker.refreshDue();
    assert.deepEqual(res, { listed: 4, due: 2, refreshed: 2, failed: 0, skipped: 0 });
    assert.equal(provider.calls.length, 2);
    assert.equal((await store.get('fresh'))?.revision, 1);
    assert.equal((await store.get('broken'))?.status, 'needs_reauth');
    const second = await broker.refreshDue();
    assert.equal(second.due, 0);
  });

  it('starts refreshing on the first page of a paged listing, before the listing ends', async () => {
    await seed({ connection: 'first' }, 0);
    await seed({ connection: 'second' }, 0);
    const metas = await store.listMetadata();
    const paged: TokenStore = {
      ...delegateTo(store),
      async *listMetadataPages() {
        yield metas.filter((m) => m.connection === 'first');
        // The second page only arrives once the first connection's refresh reached the provider.
        for (let waited = 0; provider.calls.length === 0; waited += 5) {
          if (waited > 2000) throw new Error('sweep waited for the whole listing');
          await new Promise((r) => setTimeout(r, 5));
        }
        yield metas.filter((m) => m.connection === 'second');
      },
    };
    const sweeping = new Broker({ ...brokerDeps(), store: paged });
    const res = await sweeping.refreshDue();
    assert.deepEqual(res, { listed: 2, due: 2, refreshed: 2, failed: 0, skipped: 0 });
  });

  it('finishes what was listed, then reports a listing that failed part-way', async () => {
    await seed({ connection: 'listed' }, 0);
    const metas = await store.listMetadata();
    const failing: TokenStore = {
      ...delegateTo(store),
      async *listMetadataPages() {
        yield await Promise.resolve(metas);
        throw new BrokerError('store_unavailable', 'Key Vault is unavailable; try again later.');
      },
    };
    const sweeping = new Broker({ ...brokerDeps(), store: failing });
    await assert.rejects(sweeping.refreshDue(), (e) => code(e) === 'store_unavailable');
    assert.equal(provider.calls.length, 1);
    assert.equal((await store.get('listed'))?.revision, 2);
  });

  it('logs one refresh.needs_reauth line per connection that needs re-consent (the alert counts lines)', async () => {
    await seed({ connection: 'revoked' }, 0);
    provider.queue.push({
      fail: { httpStatus: 400, body: { error: 'invalid_grant', error_codes: [50173] } },
    });
    const before = logs.length;
    const res = await broker.refreshDue();
    assert.equal(res.failed, 1);
    const lines = logs.slice(before).filter((l) => l.startsWith('refresh.needs_reauth'));
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /connection=revoked .*providerCodes=50173/);
  });

  it('counts failures and records backoff without losing the refresh token', async () => {
    await seed({ connection: 'flaky' }, 0);
    provider.queue.push({ fail: { network: true } });
    const res = await broker.refreshDue();
    assert.equal(res.failed, 1);
    const stored = await store.get('flaky');
    assert.equal(stored?.failures, 1);
    assert.equal(stored?.tokens?.refreshToken, 'rt-seed-zzzzzzzzzzzzzzzzzzzzzzzz');
    assert.equal((await broker.refreshDue()).due, 0);
  });
});

describe('Broker connect links and callback guards', () => {
  it('issues a link that opens the flow, and rejects tampered, expired and other-connection links', async () => {
    await broker.upsertConnection('sales-mailbox', {
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/Mail.Send'],
    });
    await broker.upsertConnection('other', { provider: 'microsoft', scopes: [] });
    const { url } = await broker.createLink('sales-mailbox');
    const link = new URL(url).searchParams.get('link') ?? '';
    const start = await broker.beginConnect('sales-mailbox', link);
    assert.equal(new URL(start.redirectUrl).origin, 'https://idp.test');
    assert.match(start.cookie.name, /^__Host-token-broker-login/);
    await assert.rejects(broker.beginConnect('other', link), (e) => code(e) === 'invalid_link');
    await assert.rejects(
      broker.beginConnect('sales-mailbox', `${link.slice(0, -3)}AAA`),
      (e) => code(e) === 'invalid_link',
    );
    // A genuine link for this connection instance, refused only because its time has passed.
    clock += 900_000;
    await assert.rejects(
      broker.beginConnect('sales-mailbox', link),
      (e) => code(e) === 'invalid_link' && (e as BrokerError).detail === 'link expired',
    );
  });

  it('a link dies with its connection, even when the name is created again', async () => {
    await broker.upsertConnection('sales-mailbox', { provider: 'microsoft', scopes: [] });
    const { url } = await broker.createLink('sales-mailbox');
    const link = new URL(url).searchParams.get('link') ?? '';
    await broker.deleteConnection('sales-mailbox');
    clock += 1;
    await broker.upsertConnection('sales-mailbox', { provider: 'microsoft', scopes: [] });
    await assert.rejects(broker.beginConnect('sales-mailbox', link), (e) => code(e) === 'invalid_link');
  });

  it('refuses a callback without the cookie, with a wrong state, or replayed', async () => {
    await broker.upsertConnection('sales-mailbox', { provider: 'microsoft', scopes: [] });
    const { url } = await broker.createLink('sales-mailbox');
    const start = await broker.beginConnect('sales-mailbox', new URL(url).searchParams.get('link') ?? '');
    const state = new URL(start.redirectUrl).searchParams.get('state') ?? '';
    const q = (s: string) => new URLSearchParams({ code: 'c0de-value-123456', state: s });
    await assert.rejects(broker.completeCallback(q(state), undefined), (e) => code(e) === 'invalid_state');
    await assert.rejects(
      broker.completeCallback(q('other-state-value'), start.cookie.value),
      (e) => code(e) === 'invalid_state',
    );
    // First use reaches the provider (scripted to refuse code redemption), the replay is refused before it.
    await assert.rejects(
      broker.completeCallback(q(state), start.cookie.value),
      (e) => code(e) === 'provider_error',
    );
    await assert.rejects(
      broker.completeCallback(q(state), start.cookie.value),
      (e) => code(e) === 'invalid_state',
    );
    clock += 11 * 60_000;
    const relink = await broker.createLink('sales-mailbox');
    const later = await broker.beginConnect(
      'sales-mailbox',
      new URL(relink.url).searchParams.get('link') ?? '',
    );
    const s2 = new URL(later.redirectUrl).searchParams.get('state') ?? '';
    clock += 11 * 60_000;
    await assert.rejects(
      broker.completeCallback(q(s2), later.cookie.value),
      (e) => code(e) === 'invalid_state',
    );
    assert.equal((await store.get('sales-mailbox'))?.status, 'pending');
  });
});

describe('Broker facade: links, admin reads and manual refresh', () => {
  it('a link lives the configured time, or the time asked, to the millisecond; its creation is logged', async () => {
    await broker.upsertConnection('sales-mailbox', { provider: 'microsoft', scopes: [] });
    const logged = logs.length;
    const made = await broker.createLink('sales-mailbox');
    assert.equal(made.expiresAt, new Date(clock + 900_000).toISOString());
    const url = new URL(made.url);
    assert.equal(`${url.origin}${url.pathname}`, 'https://broker.example.com/api/connect/sales-mailbox');
    const link = url.searchParams.get('link') ?? '';
    assert.equal((await broker.describeConnect('sales-mailbox', link)).linkExpiresAt, made.expiresAt);
    const short = await broker.createLink('sales-mailbox', 60);
    assert.equal(short.expiresAt, new Date(clock + 60_000).toISOString());
    const shortLink = new URL(short.url).searchParams.get('link') ?? '';
    clock += 59_999;
    await broker.beginConnect('sales-mailbox', shortLink);
    clock += 1;
    await assert.rejects(broker.beginConnect('sales-mailbox', shortLink), (e) => code(e) === 'invalid_link');
    assert.equal(logs.slice(logged).filter((l) => l === 'link.created connection=sales-mailbox').length, 2);
  });

  it('no link for a connection that does not exist', async () => {
    await assert.rejects(broker.createLink('nobody'), (e) => code(e) === 'unknown_connection');
  });

  it('exposes the store, key ring and clock it was built with', () => {
    assert.equal(broker.store, store);
    assert.equal(broker.keyring, keyring);
    assert.equal(broker.now(), clock);
    clock += 1234;
    assert.equal(broker.now(), clock);
  });

  it('lists connections by name and shows one; imports a refresh token after proving it', async () => {
    await broker.upsertConnection('zeta-mailbox', { provider: 'microsoft', scopes: [] });
    await broker.upsertConnection('alpha-mailbox', { provider: 'microsoft', scopes: [] });
    assert.deepEqual(
      (await broker.listConnections()).map((c) => c.connection),
      ['alpha-mailbox', 'zeta-mailbox'],
    );
    const shown = await broker.getConnection('zeta-mailbox');
    assert.equal(shown.connection, 'zeta-mailbox');
    assert.equal(shown.status, 'pending');
    const imported = await broker.importRefreshToken('zeta-mailbox', 'rt-imported-zzzzzzzzzzzzzzzzzz');
    assert.equal(imported.status, 'active');
    assert.equal(provider.calls[0]?.refreshToken, 'rt-imported-zzzzzzzzzzzzzzzzzz');
    assert.equal((await broker.getConnection('zeta-mailbox')).status, 'active');
  });

  it('a manual refresh calls the provider even when the token is fresh, and is logged as manual', async () => {
    await seed();
    const view = await broker.forceRefresh('sales-mailbox');
    assert.equal(provider.calls.length, 1);
    assert.equal(view.status, 'active');
    assert.equal(view.refreshedAt, new Date(clock).toISOString());
    assert.ok(
      logs.some(
        (l) => l.startsWith('refresh.succeeded connection=sales-mailbox') && / reason=manual/.test(l),
      ),
    );
  });

  it('a manual refresh refuses an invalid name before it takes any lock', async () => {
    const before = lock.acquisitions;
    await assert.rejects(broker.forceRefresh('Sales_Mailbox'), (e) => code(e) === 'invalid_request');
    assert.equal(lock.acquisitions, before);
  });
});
