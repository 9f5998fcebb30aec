/**
 * Telling people, through the dev host and the built app: a revoked grant turns a connection `needs_reauth`,
 * which delivers exactly one signed webhook (verified by a receiver with the Standard Webhooks library) and one
 * mail through the Graph sendMail double, sent with the mailing connection's own token and carrying a connect
 * link that works. Sweeps afterwards deliver nothing again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { driveAuthorization } from '../../tools/demo-idp/driver.ts';
import { type BrokerHost, startBrokerHost } from '../support/brokerHost.ts';
import { installContractCheck } from '../support/contract.ts';
import { type GraphDouble, startGraphDouble } from '../support/graphDouble.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const MAIL_SCOPES = ['https://graph.microsoft.com/Mail.Send'];
let h: BrokerHost;
let receiver: WebhookReceiver;
let graph: GraphDouble;
const contract = installContractCheck();

before(async () => {
  receiver = await startWebhookReceiver(SECRET);
  // Graph accepts exactly the mailing connection's current access token, as read from the broker's store.
  graph = await startGraphDouble(
    async (bearer) => (await h.record('mailer'))?.tokens?.primary?.accessToken === bearer,
  );
  h = await startBrokerHost({
    env: {
      BROKER_WEBHOOK_URL: receiver.url,
      BROKER_WEBHOOK_SECRET: SECRET,
      BROKER_NOTIFY_CONNECTION: 'mailer',
      BROKER_GRAPH_URL: graph.url,
    },
  });
  h.secrets.add('webhook secret', SECRET.slice('whsec_'.length));
});
after(async () => {
  try {
    // Webhook payloads are scanned with the logs; the mails carry a connect link by design.
    await h.assertNoSecretsInLogs(receiver.received.map((r) => r.body).join('\n'));
  } finally {
    await h.close();
    await receiver.close();
    await graph.close();
    contract.uninstall();
  }
  contract.assertAllValid();
});

const sweep = () =>
  fetch(`${h.baseUrl}/admin/functions/refresh`, {
    method: 'POST',
    headers: {
      'x-functions-key': h.functionKey,
      'x-devhost-wait': 'true',
      'content-type': 'application/json',
    },
    body: '{}',
  });

const ofType = (type: string, connection: string) =>
  receiver.received.filter((r) => r.type === type && r.data.connection === connection);

/** First deliveries run after the broker has answered (never under a connection's lock): wait for them. */
async function until(what: string, done: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

describe('notifications', () => {
  it('connecting sends one signed connection.connected webhook per connection', async () => {
    await h.createConnection('mailer', { provider: 'microsoft', scopes: MAIL_SCOPES });
    await h.connect('mailer');
    await h.createConnection('victim', {
      provider: 'microsoft',
      scopes: MAIL_SCOPES,
      expectedIdentity: { username: 'megan@demo.example' },
    });
    await h.connect('victim', { username: 'megan@demo.example', password: 'demo' });
    await until('two connected events', () => receiver.received.length >= 2);
    assert.equal(ofType('connection.connected', 'mailer').length, 1);
    assert.equal(ofType('connection.connected', 'victim').length, 1);
    assert.equal(receiver.rejected, 0);
  });

  it('a revoked grant → needs_reauth → exactly one webhook and one mail with a working link', async () => {
    await h.idp.revokeUser('megan@demo.example');
    const res = await h.api('POST', 'manage/connections/victim/refresh');
    assert.equal(res.status, 409, await res.text());
    assert.equal((await h.record('victim'))?.status, 'needs_reauth');
    await until(
      'the needs_reauth webhook and the mail',
      () => ofType('connection.needs_reauth', 'victim').length > 0 && graph.sent.length > 0,
    );

    const hooks = ofType('connection.needs_reauth', 'victim');
    assert.equal(hooks.length, 1);
    assert.equal(hooks[0]?.data.status, 'needs_reauth');
    assert.deepEqual((hooks[0]?.data.reason as { code: string }).code, 'connection_needs_reauth');
    assert.ok(!/access_token|refresh_token/.test(hooks[0]?.body ?? ''), 'no token field in the payload');

    assert.equal(graph.sent.length, 1);
    const mail = graph.sent[0];
    assert.deepEqual(mail?.to, ['megan@demo.example']);
    const link = /(http\S+\/api\/connect\/victim\?link=\S+)/.exec(mail?.content ?? '')?.[1];
    assert.ok(link, 'the mail carries a connect link');
    h.secrets.add('mailed link', new URL(link).searchParams.get('link'));

    // Later sweeps find nothing left to deliver.
    for (let i = 0; i < 2; i++) assert.equal((await sweep()).status, 202);
    assert.equal(ofType('connection.needs_reauth', 'victim').length, 1);
    assert.equal(graph.sent.length, 1);

    // The mailed link works: the owner signs in again and the connection is active.
    const start = await fetch(link, { redirect: 'manual', headers: { accept: 'text/html' } });
    let authorizeUrl = start.headers.get('location') ?? '';
    let cookie = start.headers.getSetCookie()[0]?.split(';')[0] ?? '';
    if (start.status === 200) {
      // The connect page asks before it connects: continue as the owner would.
      const page = await start.text();
      const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1] ?? '';
      const fields = new URLSearchParams();
      for (const m of page.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g))
        fields.set(m[1]!, m[2]!);
      const go = await fetch(new URL(action.replaceAll('&amp;', '&'), link), {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, accept: 'text/html' },
        body: fields,
      });
      authorizeUrl = go.headers.get('location') ?? '';
      cookie = go.headers.getSetCookie()[0]?.split(';')[0] ?? cookie;
    }
    assert.ok(authorizeUrl.startsWith(h.idp.origin), `to the IdP: ${authorizeUrl}`);
    const drive = await driveAuthorization(authorizeUrl, {
      username: 'megan@demo.example',
      password: 'demo',
    });
    h.secrets.add('authorization code', drive.params.get('code'));
    const callback = await fetch(drive.url, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' });
    assert.equal(callback.status, 200);
    assert.equal((await h.record('victim'))?.status, 'active');
    await until('the reconnect event', () => ofType('connection.connected', 'victim').length === 2);
    assert.equal(ofType('connection.connected', 'victim').length, 2, 'reconnected is told too');
  });

  it('a delivery that failed is delivered by a later sweep, once', async () => {
    receiver.answer(500);
    const before = receiver.attempts;
    await h.createConnection('third', { provider: 'microsoft', scopes: MAIL_SCOPES });
    await h.connect('third');
    await until('the first (refused) attempt', () => receiver.attempts > before);
    assert.equal(ofType('connection.connected', 'third').length, 0, 'the first attempt was refused');
    // The first retry is due 5 s later (Standard Webhooks schedule); the sweep after that delivers it.
    await sleep(5_500);
    assert.equal((await sweep()).status, 202);
    assert.equal(ofType('connection.connected', 'third').length, 1);
    assert.equal((await sweep()).status, 202);
    assert.equal(ofType('connection.connected', 'third').length, 1, 'not again');
  });

  it('deleting a connection sends connection.deleted', async () => {
    assert.equal((await h.api('DELETE', 'manage/connections/victim')).status, 204);
    await until('the deleted event', () => ofType('connection.deleted', 'victim').length === 1);
  });
});
