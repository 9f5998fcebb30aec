/**
 * Notifications end to end below the broker: events stored in a real outbox (files with a controllable clock;
 * an Azure Storage queue on Azurite), delivered to a receiver that verifies with the Standard Webhooks library,
 * and mails to a Microsoft Graph sendMail double, with the retry schedule driven by the clock, not by sleeps.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { QueueClient } from '@azure/storage-queue';
import { createLogger, type LogLevel } from '../../../shared/log.ts';
import { brokerEvent, eventForTransition } from '../../../shared/notify/events.ts';
import { createFileOutbox } from '../../../shared/notify/fileOutbox.ts';
import { Notifier, RETRY_SCHEDULE_SECONDS } from '../../../shared/notify/notifier.ts';
import type { Outbox } from '../../../shared/notify/outbox.ts';
import { createQueueOutbox } from '../../../shared/notify/queueOutbox.ts';
import { sendGraphMail, sendWebhook } from '../../../shared/notify/senders.ts';
import { createTransport } from '../../../shared/oauth/transport.ts';
import { type AzuriteHandle, startAzurite } from '../../support/azurite.ts';
import { type GraphDouble, startGraphDouble } from '../../support/graphDouble.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/webhookReceiver.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const transport = createTransport({ timeoutMs: 5_000 });
let dataDir: string;
let receiver: WebhookReceiver;
let graph: GraphDouble;
let azurite: AzuriteHandle;
const lines: string[] = [];
const log = createLogger({}, (level: LogLevel, line: string) => lines.push(`${level} ${line}`));
const MAIL_TOKEN = randomBytes(30).toString('base64url');

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'notify-'));
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
  assert.ok(!lines.join('\n').includes(SECRET.slice(6, 22)), 'no webhook secret in the logs');
});

const subject = (connection: string, revision: number) => ({
  connection,
  provider: 'microsoft',
  status: 'needs_reauth',
  revision,
  username: 'adele@demo.example',
  lastError: { code: 'connection_needs_reauth', providerError: 'invalid_grant', providerCodes: [70008] },
});

function notifier(outbox: Outbox, _now: () => number, withMail = false) {
  return new Notifier({
    outbox,
    log,
    // Signed with the real time: receivers check it against their own clock (5-minute tolerance).
    webhook: (event) =>
      sendWebhook(transport.fetch, { url: receiver.url, secret: SECRET }, event, Date.now()),
    ...(withMail
      ? {
          mail: {
            compose: (event) =>
              Promise.resolve({
                to: 'adele@demo.example',
                subject: `Sign in again: ${event.data.connection}`,
                text: `Open https://broker.test/api/connect/${event.data.connection}?link=fresh to reconnect.`,
              }),
            send: (mail) => sendGraphMail(transport.fetch, graph.url, MAIL_TOKEN, mail),
          },
        }
      : {}),
  });
}

describe('events', () => {
  it('are told on status changes only, with an id stable for one transition', () => {
    assert.equal(eventForTransition('active', 'active'), undefined);
    assert.equal(eventForTransition('pending', 'active'), 'connection.connected');
    assert.equal(eventForTransition('active', 'needs_reauth'), 'connection.needs_reauth');
    assert.equal(eventForTransition('active', 'error'), 'connection.error');
    assert.equal(eventForTransition('active', 'pending'), undefined);
    const a = brokerEvent('connection.needs_reauth', subject('mail', 7), 1);
    const b = brokerEvent('connection.needs_reauth', subject('mail', 7), 2);
    const c = brokerEvent('connection.needs_reauth', subject('mail', 8), 1);
    // The same name deleted and created again starts its revisions again: its events are new events.
    const again = brokerEvent('connection.needs_reauth', { ...subject('mail', 7), createdAt: 99 }, 1);
    assert.equal(a.id, b.id);
    assert.notEqual(a.id, c.id);
    assert.notEqual(a.id, again.id);
    assert.deepEqual(Object.keys(a.data).sort(), ['account', 'connection', 'provider', 'reason', 'status']);
  });
});

describe('webhooks through the file outbox (controllable clock)', () => {
  let now = Date.parse('2026-11-29T12:00:00Z');
  const clock = () => now;

  it('delivers once, signed so the Standard Webhooks library verifies it', async () => {
    const outbox = createFileOutbox(join(dataDir, 'a'), clock);
    const n = notifier(outbox, clock);
    const event = brokerEvent('connection.needs_reauth', subject('alpha', 1), now);
    receiver.received.length = 0;
    await n.emit(event);
    await n.settled();
    assert.equal(receiver.received.length, 1);
    assert.equal(receiver.rejected, 0);
    const [got] = receiver.received;
    assert.equal(got?.id, event.id);
    assert.equal(got?.type, 'connection.needs_reauth');
    assert.deepEqual(got?.data, event.data);
    now += 3600_000;
    assert.deepEqual(await n.drain(), { delivered: 0, retried: 0, gaveUp: 0 }, 'nothing left to send');
  });

  it('retries a failed delivery on the schedule and survives a new process (new notifier, same outbox)', async () => {
    const dir = join(dataDir, 'b');
    const event = brokerEvent('connection.error', subject('beta', 2), now);
    receiver.received.length = 0;
    receiver.answer(500, 503);
    const first = notifier(createFileOutbox(dir, clock), clock);
    await first.emit(event);
    await first.settled();
    assert.equal(receiver.received.length, 0);
    // "Restart": another notifier over the same folder.
    const again = notifier(createFileOutbox(dir, clock), clock);
    now += (RETRY_SCHEDULE_SECONDS[0] - 1) * 1000;
    assert.deepEqual(await again.drain(), { delivered: 0, retried: 0, gaveUp: 0 }, 'not due yet');
    now += 1000;
    assert.deepEqual(
      await again.drain(),
      { delivered: 0, retried: 1, gaveUp: 0 },
      'second attempt fails (503)',
    );
    now += RETRY_SCHEDULE_SECONDS[1] * 1000;
    assert.deepEqual(await again.drain(), { delivered: 1, retried: 0, gaveUp: 0 });
    assert.equal(receiver.received.length, 1);
    assert.equal(receiver.received[0]?.id, event.id);
  });

  it('honours a longer Retry-After, and gives up on 410 Gone at once', async () => {
    const dir = join(dataDir, 'c');
    const n = notifier(createFileOutbox(dir, clock), clock);
    receiver.received.length = 0;
    receiver.answer(410);
    await n.emit(brokerEvent('connection.deleted', subject('gone', 3), now));
    await n.settled();
    assert.ok(
      lines.some(
        (l) =>
          l.startsWith('error notify.gave_up') &&
          l.includes('status=410') &&
          l.includes('eventType=connection.deleted'),
      ),
    );
    now += 86_400_000;
    assert.deepEqual(await n.drain(), { delivered: 0, retried: 0, gaveUp: 0 });
  });

  it('gives up after the last scheduled attempt with an error line', async () => {
    const dir = join(dataDir, 'd');
    const n = notifier(createFileOutbox(dir, clock), clock);
    receiver.answer(...Array.from({ length: RETRY_SCHEDULE_SECONDS.length + 1 }, () => 500));
    await n.emit(brokerEvent('connection.error', subject('doomed', 4), now));
    await n.settled();
    const outcomes: string[] = [];
    for (const wait of RETRY_SCHEDULE_SECONDS) {
      now += wait * 1000;
      const r = await n.drain();
      outcomes.push(r.gaveUp ? 'gaveUp' : r.retried ? 'retried' : 'none');
    }
    assert.deepEqual(outcomes, [
      ...Array.from({ length: RETRY_SCHEDULE_SECONDS.length - 1 }, () => 'retried'),
      'gaveUp',
    ]);
  });
});

describe('emit never waits for a receiver', () => {
  it(
    'returns once the event is stored, while the first delivery is still under way',
    { timeout: 20_000 },
    async () => {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let delivered = 0;
      const n = new Notifier({
        outbox: createFileOutbox(join(dataDir, 'slow'), Date.now),
        log,
        webhook: async () => {
          await gate; // the receiver answers only after emit has returned
          delivered++;
          return { ok: true, status: 204 };
        },
      });
      // Were emit to wait for the delivery, this would never resolve (the gate opens only after it): the test
      // would fail on its timeout.
      await n.emit(brokerEvent('connection.error', subject('slow', 1), Date.now()));
      assert.equal(delivered, 0);
      release();
      await n.settled();
      assert.equal(delivered, 1);
    },
  );
});

describe('mail to the owner through Graph sendMail', () => {
  let now = Date.parse('2026-11-29T12:00:00Z');
  const clock = () => now;

  it('sends one mail for needs_reauth (and none for other events), retrying 429 after Retry-After', async () => {
    const n = notifier(createFileOutbox(join(dataDir, 'm'), clock), clock, true);
    graph.sent.length = 0;
    await n.emit(brokerEvent('connection.connected', subject('m1', 1), now));
    await n.settled();
    assert.equal(graph.sent.length, 0);
    graph.fail({ status: 429, code: 'ApplicationThrottled', retryAfterSeconds: 120 });
    await n.emit(brokerEvent('connection.needs_reauth', subject('m1', 2), now));
    await n.settled();
    assert.equal(graph.sent.length, 0);
    now += 60_000;
    await n.drain();
    assert.equal(graph.sent.length, 0, 'Retry-After 120 s beats the 5 s schedule');
    now += 60_000;
    await n.drain();
    assert.equal(graph.sent.length, 1);
    assert.deepEqual(graph.sent[0]?.to, ['adele@demo.example']);
    assert.match(graph.sent[0]?.content ?? '', /\/api\/connect\/m1\?link=/);
  });

  it('gives up on 403 ErrorAccessDenied (the sender lacks Mail.Send): retrying cannot help', async () => {
    const n = notifier(createFileOutbox(join(dataDir, 'm2'), clock), clock, true);
    graph.fail({ status: 403, code: 'ErrorAccessDenied' });
    await n.emit(brokerEvent('connection.needs_reauth', subject('m2', 1), now));
    await n.settled();
    assert.ok(
      lines.some(
        (l) => l.startsWith('error notify.gave_up') && l.includes('sink=mail') && l.includes('status=403'),
      ),
    );
  });
});

describe('the Azure Storage queue outbox on Azurite', () => {
  it('hides a new message while its sender works, hands it out once visible, and deletes it with its receipt', async () => {
    const queue = new QueueClient(azurite.connectionString.replace(/;$/, ''), `events-${Date.now()}`);
    const outbox = createQueueOutbox(queue);
    const event = brokerEvent('connection.needs_reauth', subject('q', 1), Date.now());
    const lease = await outbox.put({ sink: 'webhook', event }, 60);
    assert.equal(lease.attempts, 0);
    assert.deepEqual(await outbox.take(10, 60), [], 'hidden while the sender holds it');
    await outbox.retryIn(lease, 0);
    const [taken] = await outbox.take(10, 60);
    assert.equal(taken?.message.event.id, event.id);
    assert.equal(taken?.attempts, 1);
    assert.ok(taken);
    await outbox.done(lease); // the stale receipt from put: must not delete the message
    await outbox.retryIn(taken, 0);
    const [again] = await outbox.take(10, 60);
    assert.equal(again?.message.event.id, event.id, 'still there after a stale done');
    assert.ok(again);
    await outbox.done(again);
    await outbox.retryIn(again, 0);
    assert.deepEqual(await outbox.take(10, 1), [], 'gone after done');
  });

  it('drives the notifier: one verified webhook, retried through the queue after a failure', async () => {
    const queue = new QueueClient(azurite.connectionString.replace(/;$/, ''), `events-n-${Date.now()}`);
    // A zero first wait makes the retry visible at once: the queue's own clock decides visibility, not ours.
    const n = new Notifier({
      outbox: createQueueOutbox(queue),
      log,
      retrySchedule: [0, 0],
      webhook: (event) =>
        sendWebhook(transport.fetch, { url: receiver.url, secret: SECRET }, event, Date.now()),
    });
    receiver.received.length = 0;
    receiver.answer(502);
    const event = brokerEvent('connection.needs_reauth', subject('qq', 1), Date.now());
    await n.emit(event);
    await n.settled();
    assert.equal(receiver.received.length, 0);
    assert.deepEqual(await n.drain(), { delivered: 1, retried: 0, gaveUp: 0 });
    assert.equal(receiver.received.length, 1);
    assert.equal(receiver.received[0]?.id, event.id);
    assert.deepEqual(await n.drain(), { delivered: 0, retried: 0, gaveUp: 0 });
  });
});

describe('the notifier around its outbox and senders', () => {
  let now = Date.parse('2026-11-29T12:00:00Z');
  const clock = () => now;
  let k = 0;

  /** A file outbox whose calls are recorded and whose next calls can be made to fail. */
  function recordedOutbox() {
    const inner = createFileOutbox(join(dataDir, `r${++k}`), clock);
    const calls: string[] = [];
    const fail = { put: false, take: false, done: false, retryIn: false };
    const boom = (op: string) => Object.assign(new Error(`${op} failed`), { name: 'RestError' });
    const outbox: Outbox = {
      put: (m, s) => (calls.push(`put ${m.sink}`), fail.put ? Promise.reject(boom('put')) : inner.put(m, s)),
      take: (max, s) => (
        calls.push(`take ${max}`),
        fail.take ? Promise.reject(boom('take')) : inner.take(max, s)
      ),
      done: (l) => (calls.push('done'), fail.done ? Promise.reject(boom('done')) : inner.done(l)),
      retryIn: (l, s) => (
        calls.push(`retryIn ${s}`),
        fail.retryIn ? Promise.reject(boom('retryIn')) : inner.retryIn(l, s)
      ),
    };
    return { outbox, calls, fail };
  }
  const ok = () => Promise.resolve({ ok: true as const, status: 204 });
  const event = (name: string, type: Parameters<typeof brokerEvent>[0] = 'connection.needs_reauth') =>
    brokerEvent(type, subject(name, 1), now);

  it('is enabled with a webhook or a mail, and not without either', () => {
    const outbox = recordedOutbox().outbox;
    const mail = { compose: () => Promise.resolve(undefined), send: ok };
    assert.equal(new Notifier({ outbox, log }).enabled, false);
    assert.equal(new Notifier({ outbox, log, webhook: ok }).enabled, true);
    assert.equal(new Notifier({ outbox, log, mail }).enabled, true);
  });

  it('stores a mail only for needs_reauth, and a webhook only when one is configured', async () => {
    const { outbox, calls } = recordedOutbox();
    const n = new Notifier({ outbox, log, mail: { compose: () => Promise.resolve(undefined), send: ok } });
    await n.emit(event('s1', 'connection.error'));
    await n.emit(event('s1'));
    await n.settled();
    assert.deepEqual(calls, ['put mail', 'done']);
  });

  it('logs the delivery with its sink, event, attempt and status; nobody to mail counts as delivered', async () => {
    const { outbox } = recordedOutbox();
    const n = new Notifier({ outbox, log, mail: { compose: () => Promise.resolve(undefined), send: ok } });
    lines.length = 0;
    const e = event('s2');
    await n.emit(e);
    await n.settled();
    assert.deepEqual(lines, [
      `info notify.delivered sink=mail eventType=connection.needs_reauth eventId=${e.id} attempt=1 status=204`,
    ]);
  });

  it('logs a retry with the wait, and a sender that throws is a failure to retry', async () => {
    const { outbox, calls } = recordedOutbox();
    const n = new Notifier({
      outbox,
      log,
      webhook: () => Promise.reject(Object.assign(new Error('x'), { name: 'AbortError' })),
    });
    lines.length = 0;
    const e = event('s3');
    await n.emit(e);
    await n.settled();
    assert.deepEqual(calls, ['put webhook', `retryIn ${RETRY_SCHEDULE_SECONDS[0]}`]);
    assert.deepEqual(lines, [
      `warn notify.retry sink=webhook eventType=connection.needs_reauth eventId=${e.id} attempt=1 reason=AbortError waitSeconds=5`,
    ]);
  });

  it('gives up at once on a message for a sink no longer configured', async () => {
    // Both first attempts fail to record their outcome, so both messages wait for the drain.
    const blocked = recordedOutbox();
    const first = new Notifier({
      outbox: blocked.outbox,
      log,
      webhook: ok,
      mail: { compose: () => Promise.resolve(undefined), send: ok },
    });
    blocked.fail.done = true;
    await first.emit(event('s4'));
    await first.settled();
    blocked.fail.done = false;
    now += 60_000;
    lines.length = 0;
    // After a restart without notification settings, neither can be delivered: retrying cannot help.
    const after = new Notifier({ outbox: blocked.outbox, log });
    assert.deepEqual(await after.drain(), { delivered: 0, retried: 0, gaveUp: 2 });
    assert.equal(lines.filter((l) => l.startsWith('error notify.gave_up')).length, 2);
    assert.ok(lines.some((l) => l.includes('sink=mail') && l.includes('reason=mail_not_configured')));
    assert.ok(lines.some((l) => l.includes('sink=webhook') && l.includes('reason=webhook_not_configured')));
    now += 86_400_000;
    assert.deepEqual(await after.drain(), { delivered: 0, retried: 0, gaveUp: 0 }, 'gone');
  });

  it('logs an event it could not store, and never throws from emit', async () => {
    const { outbox, fail } = recordedOutbox();
    fail.put = true;
    const n = new Notifier({ outbox, log, webhook: ok });
    lines.length = 0;
    await n.emit(event('s5'));
    await n.settled();
    assert.deepEqual(lines, [
      'error notify.emit_failed sink=webhook eventType=connection.needs_reauth reason=RestError',
    ]);
  });

  it('an outbox failure while recording an outcome is logged, not counted, and the message stays', async () => {
    const { outbox, fail } = recordedOutbox();
    const n = new Notifier({ outbox, log, webhook: ok });
    fail.done = true;
    lines.length = 0;
    const e = event('s6');
    await n.emit(e);
    await n.settled();
    assert.deepEqual(lines, [`error notify.drain_failed sink=webhook eventId=${e.id} reason=RestError`]);
    now += 60_000;
    assert.deepEqual(await n.drain(), { delivered: 0, retried: 0, gaveUp: 0 }, 'not counted');
    fail.done = false;
    now += 60_000;
    assert.deepEqual(await n.drain(), { delivered: 1, retried: 0, gaveUp: 0 }, 'still there');
  });

  it('drain stops when the outbox is unreachable, logging it', async () => {
    const { outbox, fail } = recordedOutbox();
    fail.take = true;
    lines.length = 0;
    assert.deepEqual(await new Notifier({ outbox, log, webhook: ok }).drain(), {
      delivered: 0,
      retried: 0,
      gaveUp: 0,
    });
    assert.deepEqual(lines, ['error notify.drain_failed reason=RestError']);
  });

  it('drain takes batches of at most 32 and never more than max in all', async () => {
    const { outbox, calls } = recordedOutbox();
    for (const name of ['d1', 'd2', 'd3']) await outbox.put({ sink: 'webhook', event: event(name) }, 0);
    const n = new Notifier({ outbox, log, webhook: ok });
    calls.length = 0;
    assert.deepEqual(await n.drain(2), { delivered: 2, retried: 0, gaveUp: 0 });
    assert.deepEqual(calls, ['take 2', 'done', 'done']);
    calls.length = 0;
    assert.deepEqual(await n.drain(), { delivered: 1, retried: 0, gaveUp: 0 });
    assert.deepEqual(calls, ['take 32', 'done', 'take 32']);
  });
});
