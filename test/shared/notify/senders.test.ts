/**
 * The two senders on the wire: a Standard Webhooks POST (verified by a receiver using the reference library) and
 * a Microsoft Graph sendMail (against the Graph double), and for each answer whether a retry can help.
 * A small capturing server on loopback records the exact request and plays scripted answers (status, headers).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { brokerEvent } from '../../../shared/notify/events.ts';
import { sendGraphMail, sendWebhook } from '../../../shared/notify/senders.ts';
import { createTransport } from '../../../shared/oauth/transport.ts';
import { freePort } from '../../../tools/net.ts';
import { type GraphDouble, startGraphDouble } from '../../support/graphDouble.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/webhookReceiver.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const MAIL_TOKEN = randomBytes(30).toString('base64url');
const transport = createTransport({ timeoutMs: 5_000 });
const fetch = transport.fetch;

interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Records each request and answers the next scripted status and headers (default 204). */
async function startCapture() {
  const requests: Captured[] = [];
  const script: { status: number; headers?: Record<string, string>; body?: string }[] = [];
  const port = await freePort();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const next = script.shift() ?? { status: 204 };
      res.writeHead(next.status, next.headers ?? {}).end(next.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let receiver: WebhookReceiver;
let graph: GraphDouble;
let capture: Awaited<ReturnType<typeof startCapture>>;

before(async () => {
  receiver = await startWebhookReceiver(SECRET);
  graph = await startGraphDouble((bearer) => bearer === MAIL_TOKEN);
  capture = await startCapture();
});
after(async () => {
  await receiver.close();
  await graph.close();
  await capture.close();
  await transport.close();
});

const event = brokerEvent(
  'connection.needs_reauth',
  {
    connection: 'alpha',
    provider: 'microsoft',
    status: 'needs_reauth',
    revision: 3,
    username: 'adele@demo.example',
    lastError: { code: 'connection_needs_reauth', providerError: 'invalid_grant' },
  },
  Date.parse('2026-11-29T12:00:00Z'),
);
const mail = { to: 'adele@demo.example', subject: 'Sign in again', text: 'Open the link.\nThanks.' };

describe('sendWebhook', () => {
  it('posts a payload the Standard Webhooks library verifies, with the event id as webhook-id', async () => {
    receiver.received.length = 0;
    const r = await sendWebhook(fetch, { url: receiver.url, secret: SECRET }, event, Date.now());
    assert.deepEqual(r, { ok: true, status: 204 });
    assert.equal(receiver.rejected, 0);
    assert.equal(receiver.received.length, 1);
    const [got] = receiver.received;
    assert.equal(got?.id, event.id);
    assert.deepEqual(JSON.parse(got?.body ?? ''), {
      type: 'connection.needs_reauth',
      timestamp: '2026-11-29T12:00:00.000Z',
      data: event.data,
    });
  });

  it('sends the id, the time in whole seconds and a v1 signature over id.timestamp.body, as JSON', async () => {
    const now = Date.now() - 1500; // a time not on a second boundary
    capture.requests.length = 0;
    await sendWebhook(fetch, { url: `${capture.url}/hooks`, secret: SECRET }, event, now);
    const [req] = capture.requests;
    assert.equal(req?.method, 'POST');
    assert.equal(req?.url, '/hooks');
    assert.equal(req?.headers['content-type'], 'application/json');
    assert.equal(req?.headers['webhook-id'], event.id);
    assert.equal(req?.headers['webhook-timestamp'], String(Math.floor(now / 1000)));
    assert.match(String(req?.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/);
    // The reference library accepts it (it checks the timestamp against its own clock).
    assert.doesNotThrow(() =>
      new Webhook(SECRET).verify(req?.body ?? '', req?.headers as Record<string, string>),
    );
    // Signed with another secret, it is refused.
    assert.throws(() =>
      new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(
        req?.body ?? '',
        req?.headers as Record<string, string>,
      ),
    );
  });

  it('counts any 2xx as delivered (its body unread), and any other answer as a failure to retry, except 410', async () => {
    capture.script.push(
      { status: 200, body: 'thanks' },
      { status: 299 },
      { status: 300 },
      { status: 404 },
      { status: 500 },
      { status: 410 },
    );
    const target = { url: capture.url, secret: SECRET };
    const outcomes = [];
    for (let i = 0; i < 6; i++) outcomes.push(await sendWebhook(fetch, target, event, Date.now()));
    assert.deepEqual(outcomes, [
      { ok: true, status: 200 },
      { ok: true, status: 299 },
      { ok: false, retry: true, status: 300, reason: 'http_300' },
      { ok: false, retry: true, status: 404, reason: 'http_404' },
      { ok: false, retry: true, status: 500, reason: 'http_500' },
      { ok: false, retry: false, status: 410, reason: 'http_410' },
    ]);
  });

  it('passes on the receiver’s Retry-After', async () => {
    capture.script.push({ status: 503, headers: { 'retry-after': '120' } });
    assert.deepEqual(await sendWebhook(fetch, { url: capture.url, secret: SECRET }, event, Date.now()), {
      ok: false,
      retry: true,
      status: 503,
      reason: 'http_503',
      retryAfterSeconds: 120,
    });
  });

  it('an unreachable receiver is a failure to retry, named by the error class only', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/hooks`;
    assert.deepEqual(await sendWebhook(fetch, { url: closed, secret: SECRET }, event, Date.now()), {
      ok: false,
      retry: true,
      reason: 'TypeError',
    });
  });
});

describe('sendGraphMail', () => {
  it('sends a text mail the Graph double accepts (202), with the bearer, to the one recipient', async () => {
    graph.sent.length = 0;
    const r = await sendGraphMail(fetch, `${graph.url}/`, MAIL_TOKEN, mail);
    assert.deepEqual(r, { ok: true, status: 202 });
    assert.deepEqual(graph.sent, [
      {
        to: ['adele@demo.example'],
        subject: 'Sign in again',
        contentType: 'Text',
        content: 'Open the link.\nThanks.',
        bearer: MAIL_TOKEN,
      },
    ]);
  });

  it('posts the documented request body to /v1.0/me/sendMail, not saving a copy in Sent Items', async () => {
    capture.requests.length = 0;
    capture.script.push({ status: 202 });
    await sendGraphMail(fetch, `${capture.url}//`, MAIL_TOKEN, mail);
    const [req] = capture.requests;
    assert.equal(req?.method, 'POST');
    assert.equal(req?.url, '/v1.0/me/sendMail');
    assert.equal(req?.headers.authorization, `Bearer ${MAIL_TOKEN}`);
    assert.equal(req?.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(req?.body ?? ''), {
      message: {
        subject: 'Sign in again',
        body: { contentType: 'Text', content: 'Open the link.\nThanks.' },
        toRecipients: [{ emailAddress: { address: 'adele@demo.example' } }],
      },
      saveToSentItems: false,
    });
  });

  it('retries throttling (after Retry-After), server errors and an expired token; not a request Graph refuses', async () => {
    graph.fail(
      { status: 429, code: 'ApplicationThrottled', retryAfterSeconds: 30 },
      { status: 503, code: 'ServiceNotAvailable' },
      { status: 400, code: 'ErrorInvalidRequest' },
      { status: 403, code: 'ErrorAccessDenied' },
    );
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await sendGraphMail(fetch, graph.url, MAIL_TOKEN, mail));
    outcomes.push(await sendGraphMail(fetch, graph.url, 'not-the-token', mail));
    assert.deepEqual(outcomes, [
      { ok: false, retry: true, status: 429, reason: 'http_429', retryAfterSeconds: 30 },
      { ok: false, retry: true, status: 503, reason: 'http_503' },
      { ok: false, retry: false, status: 400, reason: 'http_400' },
      { ok: false, retry: false, status: 403, reason: 'http_403' },
      { ok: false, retry: true, status: 401, reason: 'http_401' },
    ]);
  });

  it('gives up on 404 and on answers just below the retryable range', async () => {
    capture.script.push({ status: 404 }, { status: 499 }, { status: 500 }, { status: 428 }, { status: 402 });
    const retry: (boolean | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await sendGraphMail(fetch, capture.url, MAIL_TOKEN, mail);
      retry.push(r.ok ? undefined : r.retry);
    }
    assert.deepEqual(retry, [false, false, true, false, false]);
  });
});
