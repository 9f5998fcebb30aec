/**
 * The notification settings: what turns notifications on, which mistakes are reported (naming the setting), and
 * where the outbox lives for each store.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { notifyEnvSchema, parseNotify } from '../../../shared/notify/settings.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const FILE = { kind: 'file', dataDir: '/data' } as const;
const VAULT = { kind: 'keyvault' } as const;

type Extra = { AzureWebJobsStorage?: string; AzureWebJobsStorage__clientId?: string };

/** Parses `env` as config.ts does, and returns the result with the problems reported. */
function parse(
  env: Record<string, string>,
  store: typeof FILE | typeof VAULT = FILE,
  insecure = false,
  extra: Extra = {},
) {
  const problems: { variable: string; reason: string }[] = [];
  const config = parseNotify({ ...notifyEnvSchema.parse(env), ...extra }, store, insecure, problems);
  return { config, problems };
}

const variables = (problems: { variable: string }[]) => problems.map((p) => p.variable);

describe('parseNotify: what turns notifications on', () => {
  it('is off when neither a webhook nor a mailing connection is set', () => {
    assert.deepEqual(parse({}), { config: undefined, problems: [] });
    // The recipient and the queue alone do not turn anything on.
    assert.deepEqual(
      parse({ BROKER_NOTIFY_TO: 'ops@demo.example', BROKER_NOTIFY_QUEUE: 'q-events' }, VAULT),
      {
        config: undefined,
        problems: [],
      },
    );
  });

  it('a webhook URL and secret give a webhook, with the outbox in the data folder', () => {
    const url = 'https://hooks.example/broker';
    assert.deepEqual(parse({ BROKER_WEBHOOK_URL: url, BROKER_WEBHOOK_SECRET: SECRET }), {
      config: { webhook: { url, secret: SECRET }, outbox: { kind: 'file', dataDir: '/data' } },
      problems: [],
    });
  });

  it('a mailing connection gives mail through Graph (default host, trailing slashes cut), without a webhook', () => {
    assert.deepEqual(parse({ BROKER_NOTIFY_CONNECTION: 'mailer' }), {
      config: {
        mail: { connection: 'mailer', graphUrl: 'https://graph.microsoft.com' },
        outbox: { kind: 'file', dataDir: '/data' },
      },
      problems: [],
    });
    const { config } = parse({
      BROKER_NOTIFY_CONNECTION: 'mailer',
      BROKER_NOTIFY_TO: 'ops@demo.example',
      BROKER_GRAPH_URL: 'https://graph.example//',
    });
    assert.deepEqual(config?.mail, {
      connection: 'mailer',
      to: 'ops@demo.example',
      graphUrl: 'https://graph.example',
    });
  });
});

describe('parseNotify: mistakes are reported naming the setting', () => {
  it('a webhook secret without a URL, and a URL without a secret', () => {
    const a = parse({ BROKER_WEBHOOK_SECRET: SECRET });
    assert.deepEqual(a.problems, [
      { variable: 'BROKER_WEBHOOK_URL', reason: 'required with BROKER_WEBHOOK_SECRET' },
    ]);
    assert.equal(a.config?.webhook, undefined);
    const b = parse({ BROKER_WEBHOOK_URL: 'https://hooks.example/' });
    assert.deepEqual(b.problems, [
      { variable: 'BROKER_WEBHOOK_SECRET', reason: 'required with BROKER_WEBHOOK_URL' },
    ]);
    assert.equal(b.config?.webhook, undefined);
  });

  it('an http webhook or Graph URL, unless insecure http is allowed', () => {
    const env = {
      BROKER_WEBHOOK_URL: 'http://127.0.0.1:9/hooks',
      BROKER_WEBHOOK_SECRET: SECRET,
      BROKER_NOTIFY_CONNECTION: 'mailer',
      BROKER_GRAPH_URL: 'http://127.0.0.1:9',
    };
    assert.deepEqual(variables(parse(env).problems), ['BROKER_WEBHOOK_URL', 'BROKER_GRAPH_URL']);
    assert.match(parse(env).problems[0]?.reason ?? '', /https unless BROKER_ALLOW_INSECURE_HTTP/);
    const allowed = parse(env, FILE, true);
    assert.deepEqual(allowed.problems, []);
    assert.equal(allowed.config?.webhook?.url, 'http://127.0.0.1:9/hooks');
    assert.equal(allowed.config?.mail?.graphUrl, 'http://127.0.0.1:9');
  });

  it('a secret that is not whsec_ + base64 of 24 to 64 bytes', () => {
    const bad = [
      randomBytes(32).toString('base64'), // no prefix
      `whsec_${randomBytes(23).toString('base64')}`, // too short
      `whsec_${randomBytes(65).toString('base64')}`, // too long
      `whsec_${randomBytes(32).toString('base64url')}-_`, // not base64
      `whsec_${randomBytes(32).toString('base64')}===`, // too much padding
      `xwhsec_${randomBytes(32).toString('base64')}`,
      `whsec_-${randomBytes(32).toString('base64')}`, // a stray character first
      'whsec_',
    ];
    for (const secret of bad) {
      const r = parse({ BROKER_WEBHOOK_URL: 'https://hooks.example/', BROKER_WEBHOOK_SECRET: secret });
      assert.deepEqual(variables(r.problems), ['BROKER_WEBHOOK_SECRET'], secret);
      assert.match(r.problems[0]?.reason ?? '', /whsec_ followed by base64 of 24 to 64/);
    }
    for (const secret of [
      `whsec_${randomBytes(24).toString('base64')}`,
      `whsec_${randomBytes(64).toString('base64')}`,
      `whsec_${randomBytes(25).toString('base64')}`, // one = of padding
      `whsec_${randomBytes(26).toString('base64')}`, // two
    ]) {
      const r = parse({ BROKER_WEBHOOK_URL: 'https://hooks.example/', BROKER_WEBHOOK_SECRET: secret });
      assert.deepEqual(r.problems, [], secret);
      assert.equal(r.config?.webhook?.secret, secret);
    }
  });

  it('the schema refuses a connection name, mail address or queue name that cannot be one', () => {
    for (const env of [
      { BROKER_NOTIFY_CONNECTION: 'Mailer' },
      { BROKER_NOTIFY_TO: 'a@b.example, c@d.example' },
      { BROKER_NOTIFY_QUEUE: 'Broker_Events' },
      { BROKER_NOTIFY_QUEUE: 'ab' },
      { BROKER_NOTIFY_QUEUE: 'a--b' },
      { BROKER_WEBHOOK_URL: 'ftp://hooks.example/' },
      { BROKER_WEBHOOK_URL: 'xhttps://hooks.example/' },
      { BROKER_WEBHOOK_URL: 'httpsx://hooks.example/' },
      { BROKER_GRAPH_URL: 'ftp://graph.example/' },
      { BROKER_GRAPH_URL: 'xhttps://graph.example/' },
      { BROKER_GRAPH_URL: 'httpsx://graph.example/' },
      { BROKER_NOTIFY_CONNECTION: 'mailer-' },
      { BROKER_NOTIFY_QUEUE: 'abc-' },
    ])
      assert.equal(notifyEnvSchema.safeParse(env).success, false, JSON.stringify(env));
    for (const env of [
      { BROKER_NOTIFY_CONNECTION: 'm' },
      { BROKER_NOTIFY_CONNECTION: 'mail-er2' },
      { BROKER_NOTIFY_QUEUE: 'a-b' },
      { BROKER_WEBHOOK_URL: 'http://127.0.0.1:9/hooks', BROKER_GRAPH_URL: 'http://127.0.0.1:9' },
    ])
      assert.equal(notifyEnvSchema.safeParse(env).success, true, JSON.stringify(env));
  });
});

describe('parseNotify: the outbox beside Key Vault is a storage queue', () => {
  const on = { BROKER_NOTIFY_CONNECTION: 'mailer' };

  it('through the managed identity: the queue service URI, the client id and the default queue name', () => {
    const r = parse(on, VAULT, false, {
      AzureWebJobsStorage__clientId: '11111111-2222-3333-4444-555555555555',
    });
    assert.deepEqual(r.problems, [
      {
        variable: 'AzureWebJobsStorage__queueServiceUri',
        reason: 'notifications wait in a storage queue: set it (or AzureWebJobsStorage)',
      },
    ]);
    const ok = parse(
      { ...on, AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net' },
      VAULT,
      false,
      { AzureWebJobsStorage__clientId: '11111111-2222-3333-4444-555555555555' },
    );
    assert.deepEqual(ok.problems, []);
    assert.deepEqual(ok.config?.outbox, {
      kind: 'queue',
      queueName: 'broker-events',
      queueServiceUri: 'https://acct.queue.core.windows.net',
      clientId: '11111111-2222-3333-4444-555555555555',
    });
  });

  it('through a connection string in AzureWebJobsStorage (the development shortcut does not count)', () => {
    const cs =
      'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net';
    const r = parse({ ...on, BROKER_NOTIFY_QUEUE: 'my-events' }, VAULT, false, { AzureWebJobsStorage: cs });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.config?.outbox, { kind: 'queue', queueName: 'my-events', connectionString: cs });
    const dev = parse(on, VAULT, false, { AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
    assert.deepEqual(variables(dev.problems), ['AzureWebJobsStorage__queueServiceUri']);
    assert.deepEqual(dev.config?.outbox, { kind: 'queue', queueName: 'broker-events' });
  });
});
