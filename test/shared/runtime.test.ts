import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import functions from '@azure/functions';
import { type Config, keyIdOf, parseConfig, resetConfigForTests } from '../../shared/config.ts';
import { createLogger } from '../../shared/log.ts';
import { brokerEvent } from '../../shared/notify/events.ts';
import type { ConnectionRecord } from '../../shared/store/types.ts';
import { brokerSettings, buildRuntime, getRuntime } from '../../shared/runtime.ts';
import { startGraphDouble } from '../support/graphDouble.ts';
import { startWebhookReceiver } from '../support/webhookReceiver.ts';

// The library is a CommonJS bundle whose named exports Node cannot detect from ESM.
const { HttpRequest } = functions;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runtime-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (key: Buffer) => key.toString('base64url');
const PROVIDERS = JSON.stringify({
  acme: {
    kind: 'oauth2',
    clientId: 'acme-client',
    authorizationUrl: 'https://idp.example/authorize',
    tokenUrl: 'https://idp.example/token',
    clientAuthMethod: 'none',
  },
});

function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger({}, (level, line) => lines.push(`${level} ${line}`)) };
}

/** The redirect a connect link leads to: proves the provider client was built with the configured settings. */
async function authorizeUrl(runtime: Awaited<ReturnType<typeof buildRuntime>>, connection: string) {
  await runtime.broker.upsertConnection(connection, { provider: 'acme', scopes: ['read'] });
  const { url } = await runtime.broker.createLink(connection);
  const link = new URL(url).searchParams.get('link') ?? '';
  return new URL((await runtime.broker.beginConnect(connection, link)).redirectUrl);
}

describe('buildRuntime', () => {
  it('creates the local key file once and signs with it from then on (file store, no BROKER_KEYS)', async () => {
    const dataDir = join(dir, 'local');
    const config = parseConfig({ BROKER_DATA_DIR: dataDir });
    const first = await buildRuntime(config, capture().log);
    const key = Buffer.from((await readFile(join(dataDir, 'broker.keys'), 'utf8')).trim(), 'base64url');
    assert.equal(key.length, 32);
    assert.equal(first.broker.keyring.current('connect-link').kid, keyIdOf(key));
    const second = await buildRuntime(config, capture().log);
    assert.equal(second.broker.keyring.current('connect-link').kid, keyIdOf(key));
  });

  it('uses BROKER_KEYS when given and writes no key file', async () => {
    const dataDir = join(dir, 'given');
    const key = randomBytes(32);
    const runtime = await buildRuntime(
      parseConfig({ BROKER_DATA_DIR: dataDir, BROKER_KEYS: b64(key) }),
      capture().log,
    );
    assert.equal(runtime.broker.keyring.current('connect-link').kid, keyIdOf(key));
    assert.equal(existsSync(join(dataDir, 'broker.keys')), false);
  });

  it('refuses to start outside the file store without BROKER_KEYS', async () => {
    const base = parseConfig({ BROKER_DATA_DIR: join(dir, 'kv') });
    const config = {
      ...base,
      store: { kind: 'keyvault', vaultUrl: 'https://kv.vault.azure.net' },
    } as unknown as Config;
    await assert.rejects(
      buildRuntime(config, capture().log),
      /BROKER_KEYS is required outside the embedded default/,
    );
  });

  it('builds every configured provider with the public redirect URI, and serves links on the public base URL', async () => {
    const config = parseConfig({
      BROKER_DATA_DIR: join(dir, 'providers'),
      BROKER_KEYS: b64(randomBytes(32)),
      BROKER_PUBLIC_BASE_URL: 'https://broker.example',
      BROKER_PROVIDERS: PROVIDERS,
      BROKER_LINK_TTL_SECONDS: '600',
    });
    const { lines, log } = capture();
    const runtime = await buildRuntime(config, log);
    assert.equal(runtime.config, config);
    assert.equal(runtime.log, log);
    const authorize = await authorizeUrl(runtime, 'mail');
    assert.equal(authorize.origin + authorize.pathname, 'https://idp.example/authorize');
    assert.equal(authorize.searchParams.get('client_id'), 'acme-client');
    assert.equal(authorize.searchParams.get('redirect_uri'), 'https://broker.example/api/callback');
    const before = Date.now();
    const link = await runtime.broker.createLink('mail');
    assert.ok(link.url.startsWith('https://broker.example/api/connect/mail?link='));
    // The configured link lifetime (600 s), not the default (900 s).
    const ttl = Date.parse(link.expiresAt) - before;
    assert.ok(ttl > 590_000 && ttl <= 601_000, `ttl ${ttl}`);
    await assert.rejects(runtime.broker.upsertConnection('other', { provider: 'nope', scopes: [] }));
    // No insecure-http warning when it is off.
    assert.equal(lines.filter((l) => l.includes('config.warning')).length, 0);
    // Function-key mode: the platform checked the key already.
    const request = new HttpRequest({ method: 'GET', url: 'https://broker.example/api/token/mail' });
    assert.deepEqual(await runtime.auth.authenticate(request, 'caller'), { kind: 'function_key' });
  });

  it('warns once at start when BROKER_ALLOW_INSECURE_HTTP is on', async () => {
    const { lines, log } = capture();
    await buildRuntime(
      parseConfig({
        BROKER_DATA_DIR: join(dir, 'insecure'),
        BROKER_KEYS: b64(randomBytes(32)),
        BROKER_ALLOW_INSECURE_HTTP: 'true',
      }),
      log,
    );
    assert.deepEqual(lines, [
      'warn config.warning detail="BROKER_ALLOW_INSECURE_HTTP is on: provider calls may use plain http. Never in production."',
    ]);
  });

  it('builds a notifier only when notifications are configured', async () => {
    const settings = { BROKER_DATA_DIR: join(dir, 'notify'), BROKER_KEYS: b64(randomBytes(32)) };
    const without = await buildRuntime(parseConfig(settings), capture().log);
    assert.equal('notifier' in without, false);
    const withHook = await buildRuntime(
      parseConfig({
        ...settings,
        BROKER_WEBHOOK_URL: 'https://hooks.example/broker',
        BROKER_WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
      }),
      capture().log,
    );
    assert.ok(withHook.notifier);
  });
});

describe('buildRuntime: the owner mail reaches the broker it was built for', () => {
  it("mails the owner a connect link on the public URL, sent with the mailing connection's token", async () => {
    const mailToken = `at-${randomBytes(24).toString('base64url')}`;
    const graph = await startGraphDouble((bearer) => bearer === mailToken);
    try {
      const runtime = await buildRuntime(
        parseConfig({
          BROKER_DATA_DIR: join(dir, 'mail'),
          BROKER_KEYS: b64(randomBytes(32)),
          BROKER_PUBLIC_BASE_URL: 'https://broker.example',
          MICROSOFT_CLIENT_ID: 'app',
          BROKER_NOTIFY_CONNECTION: 'mailer',
          BROKER_GRAPH_URL: graph.url,
          BROKER_ALLOW_INSECURE_HTTP: 'true',
        }),
        capture().log,
      );
      const now = Date.now();
      const record = (over: Partial<ConnectionRecord>): ConnectionRecord => ({
        v: 1,
        connection: 'x',
        settings: { provider: 'microsoft', scopes: ['https://graph.microsoft.com/Mail.Send'] },
        status: 'active',
        createdAt: now,
        updatedAt: now,
        failures: 0,
        revision: 1,
        ...over,
      });
      await runtime.broker.store.put(
        record({
          connection: 'mailer',
          // Only this app may read the mailing connection's token; the broker itself always may.
          settings: {
            provider: 'microsoft',
            scopes: ['https://graph.microsoft.com/Mail.Send'],
            allowedCallers: ['reporting-app'],
          },
          refreshedAt: now,
          tokens: {
            refreshToken: `rt-${randomBytes(24).toString('base64url')}`,
            grantedScopes: ['https://graph.microsoft.com/Mail.Send'],
            primary: {
              accessToken: mailToken,
              tokenType: 'Bearer',
              expiresAt: now + 3600_000,
              scope: 'https://graph.microsoft.com/Mail.Send',
            },
          },
        }),
      );
      await runtime.broker.store.put(
        record({
          connection: 'sales',
          status: 'needs_reauth',
          settings: {
            provider: 'microsoft',
            scopes: ['User.Read'],
            expectedIdentity: { username: 'owner@contoso.example' },
          },
        }),
      );
      assert.ok(runtime.notifier);
      await runtime.notifier.emit(
        brokerEvent(
          'connection.needs_reauth',
          { connection: 'sales', provider: 'microsoft', revision: 2 },
          now,
        ),
      );
      await runtime.notifier.settled();
    } finally {
      await graph.close();
    }
    assert.equal(graph.sent.length, 1);
    const [mail] = graph.sent;
    assert.deepEqual(mail?.to, ['owner@contoso.example']);
    assert.equal(mail?.bearer, mailToken);
    assert.match(mail?.content ?? '', /https:\/\/broker\.example\/api\/connect\/sales\?link=\S+/);
  });
});

describe('buildRuntime: broker changes reach the notifier', () => {
  it('sends a webhook when a connection is deleted through the broker', async () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const receiver = await startWebhookReceiver(secret);
    try {
      const runtime = await buildRuntime(
        parseConfig({
          BROKER_DATA_DIR: join(dir, 'webhook'),
          BROKER_KEYS: b64(randomBytes(32)),
          MICROSOFT_CLIENT_ID: 'app',
          BROKER_WEBHOOK_URL: receiver.url,
          BROKER_WEBHOOK_SECRET: secret,
          BROKER_ALLOW_INSECURE_HTTP: 'true',
        }),
        capture().log,
      );
      await runtime.broker.upsertConnection('sales', { provider: 'microsoft', scopes: ['User.Read'] });
      await runtime.broker.deleteConnection('sales');
      await runtime.notifier?.settled();
    } finally {
      await receiver.close();
    }
    assert.deepEqual(
      receiver.received.map((e) => [e.type, e.data.connection]),
      [['connection.deleted', 'sales']],
    );
  });
});

describe('brokerSettings', () => {
  it("hands the broker the configuration's tunables", () => {
    const config = parseConfig({
      BROKER_PUBLIC_BASE_URL: 'https://broker.example',
      BROKER_LINK_TTL_SECONDS: '120',
      BROKER_REFRESH_MARGIN_SECONDS: '90',
      BROKER_IDLE_AFTER_HOURS: '2',
      BROKER_SWEEP_CONCURRENCY: '3',
      BROKER_CACHE_COHERENCE_SECONDS: '5',
    });
    assert.deepEqual(brokerSettings(config), {
      publicBaseUrl: 'https://broker.example',
      linkTtlSeconds: 120,
      policy: { marginMs: 90_000, keepAliveMs: config.keepAliveMs, idleAfterMs: 2 * 3600_000 },
      sweepConcurrency: 3,
      cacheCoherenceMs: 5000,
    });
  });
});

describe('getRuntime', () => {
  const saved = process.env.BROKER_DATA_DIR;
  after(() => {
    if (saved === undefined) delete process.env.BROKER_DATA_DIR;
    else process.env.BROKER_DATA_DIR = saved;
    resetConfigForTests();
  });

  it('builds once per process, and retries after a failed start instead of keeping the failure', async () => {
    // A data directory below a plain file: the key file cannot be created.
    const blocker = join(dir, 'blocker');
    await writeFile(blocker, 'x');
    process.env.BROKER_DATA_DIR = join(blocker, 'data');
    resetConfigForTests();
    await assert.rejects(getRuntime());
    process.env.BROKER_DATA_DIR = join(dir, 'process');
    resetConfigForTests();
    const first = getRuntime();
    assert.equal(getRuntime(), first);
    const runtime = await first;
    assert.equal(runtime.config.store.kind === 'file' && runtime.config.store.dataDir, join(dir, 'process'));
    assert.equal(await getRuntime(), runtime);
  });
});
