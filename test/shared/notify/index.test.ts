/**
 * The notification pieces as the composition root builds them from the configuration: the change listener that
 * turns record changes into events, the webhook (to a verifying receiver), the owner's mail (through the Graph
 * double, with a broker seam that records what was asked), and the outbox in the data folder or a storage queue.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { QueueClient } from '@azure/storage-queue';
import { createLogger, type LogLevel } from '../../../shared/log.ts';
import {
  type BrokerForMail,
  createNotifications,
  MAIL_LINK_TTL_SECONDS,
} from '../../../shared/notify/index.ts';
import type { NotifyConfig } from '../../../shared/notify/settings.ts';
import { createTransport } from '../../../shared/oauth/transport.ts';
import type { ConnectionRecord } from '../../../shared/store/types.ts';
import { type AzuriteHandle, startAzurite } from '../../support/azurite.ts';
import { type GraphDouble, startGraphDouble } from '../../support/graphDouble.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/webhookReceiver.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const MAIL_TOKEN = randomBytes(30).toString('base64url');
const transport = createTransport({ timeoutMs: 5_000 });
const lines: string[] = [];
const log = createLogger({}, (level: LogLevel, line: string) => lines.push(`${level} ${line}`));
let receiver: WebhookReceiver;
let graph: GraphDouble;
let azurite: AzuriteHandle;
let dataDir: string;
let n = 0;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'notify-index-'));
  receiver = await startWebhookReceiver(SECRET);
  graph = await startGraphDouble((bearer) => bearer === MAIL_TOKEN);
  azurite = await startAzurite({ service: 'queue' });
});
after(async () => {
  await receiver.close();
  await graph.close();
  await azurite.stop();
  await transport.close();
  await rm(dataDir, { recursive: true, force: true });
  assert.ok(!lines.join('\n').includes(MAIL_TOKEN.slice(0, 16)), 'no mail token in the logs');
});

function record(over: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    v: 1,
    connection: 'sales',
    settings: { provider: 'microsoft', scopes: ['https://graph.microsoft.com/Mail.Read'] },
    status: 'active',
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    failures: 0,
    revision: 4,
    ...over,
  };
}

const needsReauth = (over: Partial<ConnectionRecord> = {}) =>
  record({
    status: 'needs_reauth',
    revision: 5,
    lastError: {
      code: 'connection_needs_reauth',
      providerError: 'invalid_grant',
      providerCodes: [70008],
      at: 1,
    },
    ...over,
  });

/** The broker seam: records as given, and what the mail asked of it. */
function fakeBroker(records: Record<string, ConnectionRecord>) {
  const asked = { links: [] as { name: string; ttl: number }[], tokens: [] as string[] };
  const broker: BrokerForMail = {
    record: (name) => Promise.resolve(records[name]),
    link: (name, ttl) => {
      asked.links.push({ name, ttl });
      return Promise.resolve({
        url: `https://broker.test/api/connect/${name}?link=L1`,
        expiresAt: '2026-12-02T12:00:00.000Z',
      });
    },
    accessToken: (name) => {
      asked.tokens.push(name);
      return Promise.resolve(MAIL_TOKEN);
    },
  };
  return { broker, asked };
}

const fileOutbox = (): NotifyConfig['outbox'] => ({ kind: 'file', dataDir: join(dataDir, String(++n)) });
const webhook = () => ({ url: receiver.url, secret: SECRET });
const mail = (to?: string) => ({ connection: 'mailer', graphUrl: graph.url, ...(to ? { to } : {}) });

describe('createNotifications: the change listener', () => {
  it('tells a status change to the webhook as a Standard Webhooks event with the record’s public parts', async () => {
    const { notifier, onChange } = await createNotifications(
      { webhook: webhook(), outbox: fileOutbox() },
      { fetch: transport.fetch, log, broker: () => fakeBroker({}).broker },
    );
    assert.equal(notifier.enabled, true);
    receiver.received.length = 0;
    const before = Date.now();
    await onChange(
      record(),
      needsReauth({ identity: { username: 'adele@demo.example', tenantId: 't' }, tokens: undefined }),
    );
    await notifier.settled();
    assert.equal(receiver.received.length, 1);
    const [got] = receiver.received;
    assert.equal(got?.type, 'connection.needs_reauth');
    assert.deepEqual(got?.data, {
      connection: 'sales',
      provider: 'microsoft',
      status: 'needs_reauth',
      account: 'adele@demo.example',
      reason: { code: 'connection_needs_reauth', providerError: 'invalid_grant', providerCodes: [70008] },
    });
    const at = Date.parse(got?.timestamp ?? '');
    assert.ok(at >= before && at <= Date.now(), 'stamped with the time of the change');
  });

  it('tells a new connection, a recovery and a deletion; nothing for no change or for nothing', async () => {
    const { notifier, onChange } = await createNotifications(
      { webhook: webhook(), outbox: fileOutbox() },
      { fetch: transport.fetch, log, broker: () => fakeBroker({}).broker },
    );
    receiver.received.length = 0;
    await onChange(undefined, record({ status: 'pending', revision: 1 })); // created, not connected yet
    await onChange(record({ status: 'pending', revision: 1 }), record({ revision: 2 }));
    await onChange(record({ revision: 2 }), record({ revision: 3 })); // a refresh: no change of status
    await onChange(needsReauth(), record({ revision: 6 }));
    await onChange(record({ revision: 6, lastError: { code: 'x', at: 1 } }), undefined);
    await onChange(undefined, undefined);
    await notifier.settled();
    assert.deepEqual(
      receiver.received.map((e) => [e.type, e.data]),
      [
        ['connection.connected', { connection: 'sales', provider: 'microsoft', status: 'active' }],
        ['connection.connected', { connection: 'sales', provider: 'microsoft', status: 'active' }],
        ['connection.deleted', { connection: 'sales', provider: 'microsoft' }],
      ],
    );
    // Two connects of the same connection at different revisions are two events.
    assert.notEqual(receiver.received[0]?.id, receiver.received[1]?.id);
  });

  it('makes the event id from the record: the same change told twice is one id; a reused name is new', async () => {
    const { notifier, onChange } = await createNotifications(
      { webhook: webhook(), outbox: fileOutbox() },
      { fetch: transport.fetch, log, broker: () => fakeBroker({}).broker },
    );
    receiver.received.length = 0;
    await onChange(record(), needsReauth());
    await notifier.settled();
    await onChange(record(), needsReauth());
    await notifier.settled();
    await onChange(record({ createdAt: 1 }), needsReauth({ createdAt: 1 }));
    await notifier.settled();
    const ids = receiver.received.map((e) => e.id);
    assert.equal(ids.length, 3);
    assert.equal(ids[0], ids[1]);
    assert.notEqual(ids[0], ids[2]);
  });

  it('is off without a webhook and a mail: nothing is stored or sent', async () => {
    const outbox = fileOutbox();
    const { notifier, onChange } = await createNotifications(
      { outbox },
      { fetch: transport.fetch, log, broker: () => fakeBroker({}).broker },
    );
    assert.equal(notifier.enabled, false);
    receiver.received.length = 0;
    await onChange(record(), needsReauth());
    await notifier.settled();
    assert.equal(receiver.received.length, 0);
    const stored = await readdir(join((outbox as { dataDir: string }).dataDir, 'outbox')).catch(() => []);
    assert.deepEqual(stored, []);
  });
});

describe('createNotifications: the mail to the owner', () => {
  it('mails the pinned account a fresh connect link, sent with the mailing connection’s token', async () => {
    const { broker, asked } = fakeBroker({
      sales: needsReauth({
        settings: { provider: 'microsoft', scopes: [], expectedIdentity: { username: 'adele@demo.example' } },
      }),
    });
    const { notifier, onChange } = await createNotifications(
      { mail: mail('ops@demo.example'), outbox: fileOutbox() },
      { fetch: transport.fetch, log, broker: () => broker },
    );
    graph.sent.length = 0;
    await onChange(record(), needsReauth());
    await notifier.settled();
    assert.deepEqual(asked, { links: [{ name: 'sales', ttl: MAIL_LINK_TTL_SECONDS }], tokens: ['mailer'] });
    assert.equal(MAIL_LINK_TTL_SECONDS, 259_200, 'three days, within the 7-day link maximum');
    assert.equal(graph.sent.length, 1);
    const [sent] = graph.sent;
    assert.deepEqual(sent?.to, ['adele@demo.example'], 'the pinned account wins over BROKER_NOTIFY_TO');
    assert.equal(sent?.subject, 'Sign in again to keep "sales" working');
    assert.equal(
      sent?.content,
      [
        'The account behind the connection "sales" must sign in again: the provider no longer accepts its sign-in.',
        '',
        'Open this link and sign in as adele@demo.example (it works until 2026-12-02T12:00:00.000Z):',
        'https://broker.test/api/connect/sales?link=L1',
        '',
        'If you did not expect this mail, ignore it and tell your administrator.',
      ].join('\n'),
    );
  });

  it('falls back to BROKER_NOTIFY_TO when no account is pinned, and says so when there is nobody', async () => {
    const { broker } = fakeBroker({ sales: needsReauth() });
    const withTo = await createNotifications(
      { mail: mail('ops@demo.example'), outbox: fileOutbox() },
      { fetch: transport.fetch, log, broker: () => broker },
    );
    graph.sent.length = 0;
    await withTo.onChange(record(), needsReauth());
    await withTo.notifier.settled();
    assert.deepEqual(
      graph.sent.map((m) => m.to),
      [['ops@demo.example']],
    );

    const { broker: b2, asked } = fakeBroker({ sales: needsReauth() });
    const nobody = await createNotifications(
      { mail: mail(), outbox: fileOutbox() },
      { fetch: transport.fetch, log, broker: () => b2 },
    );
    lines.length = 0;
    await nobody.onChange(record(), needsReauth());
    await nobody.notifier.settled();
    assert.equal(graph.sent.length, 1, 'no new mail');
    assert.deepEqual(asked.links, [], 'no link made for nobody');
    assert.ok(lines.some((l) => l.startsWith('info notify.no_recipient') && l.includes('connection=sales')));
    assert.ok(lines.some((l) => l.startsWith('info notify.delivered') && l.includes('sink=mail')));
  });

  it('sends no mail when the connection recovered or is gone by then, nor about the mailing connection', async () => {
    const records: Record<string, ConnectionRecord> = {
      healed: record({ connection: 'healed' }),
      mailer: needsReauth({ connection: 'mailer' }),
    };
    const { broker, asked } = fakeBroker(records);
    const { notifier, onChange } = await createNotifications(
      { mail: mail('ops@demo.example'), outbox: fileOutbox() },
      { fetch: transport.fetch, log, broker: () => broker },
    );
    graph.sent.length = 0;
    await onChange(record({ connection: 'healed' }), needsReauth({ connection: 'healed' }));
    await onChange(record({ connection: 'gone' }), needsReauth({ connection: 'gone' }));
    await onChange(record({ connection: 'mailer' }), needsReauth({ connection: 'mailer' }));
    await notifier.settled();
    assert.equal(graph.sent.length, 0);
    assert.deepEqual(asked, { links: [], tokens: [] });
  });

  it('mails only for needs_reauth', async () => {
    const { broker, asked } = fakeBroker({ sales: needsReauth() });
    const { notifier, onChange } = await createNotifications(
      { mail: mail('ops@demo.example'), outbox: fileOutbox() },
      { fetch: transport.fetch, log, broker: () => broker },
    );
    graph.sent.length = 0;
    await onChange(record({ status: 'pending' }), record());
    await onChange(record(), record({ status: 'error', lastError: { code: 'provider_error', at: 1 } }));
    await notifier.settled();
    assert.equal(graph.sent.length, 0);
    assert.deepEqual(asked.links, []);
  });
});

describe('createNotifications: the outbox', () => {
  it('in the data folder for the file store', async () => {
    const outbox = fileOutbox() as { kind: 'file'; dataDir: string };
    receiver.received.length = 0;
    receiver.answer(500); // the first attempt fails: the event waits in the folder
    const { notifier, onChange } = await createNotifications(
      { webhook: webhook(), outbox },
      { fetch: transport.fetch, log, broker: () => fakeBroker({}).broker },
    );
    await onChange(record(), needsReauth());
    await notifier.settled();
    assert.equal((await readdir(join(outbox.dataDir, 'outbox'))).length, 1);
  });

  it('in a storage queue reached by connection string beside Key Vault', async () => {
    const queueName = `notify-index-${process.pid}`;
    const connectionString = azurite.connectionString.replace(/;$/, '');
    receiver.received.length = 0;
    receiver.answer(500);
    const { notifier, onChange } = await createNotifications(
      { webhook: webhook(), outbox: { kind: 'queue', queueName, connectionString } },
      { fetch: transport.fetch, log, broker: () => fakeBroker({}).broker },
    );
    await onChange(record(), needsReauth());
    await notifier.settled();
    const props = await new QueueClient(connectionString, queueName).getProperties();
    assert.equal(props.approximateMessagesCount, 1);
  });

  it('through the managed identity when only the queue service URI is known (the queue is not reached here)', async () => {
    lines.length = 0;
    const { notifier, onChange } = await createNotifications(
      {
        webhook: webhook(),
        outbox: {
          kind: 'queue',
          queueName: 'broker-events',
          queueServiceUri: `http://127.0.0.1:${azurite.port}/devstoreaccount1`,
          clientId: '11111111-2222-3333-4444-555555555555',
        },
      },
      { fetch: transport.fetch, log, broker: () => fakeBroker({}).broker },
    );
    await onChange(record(), needsReauth());
    await notifier.settled();
    // A token credential is refused over plain http: the event could not be stored, and says so.
    assert.ok(lines.some((l) => l.startsWith('error notify.emit_failed') && l.includes('sink=webhook')));
  });
});
