/**
 * The Azure Storage queue outbox against a real queue service (Azurite, in memory, on loopback): hiding,
 * visibility, batch limits, leases a stale holder cannot use, foreign messages, and which queue errors mean
 * "no longer ours" rather than a failure. The requests it makes are recorded by wrapping the real client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueueClient } from '@azure/storage-queue';
import { brokerEvent } from '../../../shared/notify/events.ts';
import type { OutboxMessage } from '../../../shared/notify/outbox.ts';
import { createQueueOutbox } from '../../../shared/notify/queueOutbox.ts';
import { type AzuriteHandle, startAzurite } from '../../support/azurite.ts';

let azurite: AzuriteHandle;
let n = 0;

before(async () => {
  azurite = await startAzurite({ service: 'queue' });
});
after(async () => {
  await azurite.stop();
});

/** A real client on a fresh queue, with the create and receive calls it makes recorded. */
function freshQueue(connectionString = azurite.connectionString) {
  const queue = new QueueClient(connectionString.replace(/;$/, ''), `outbox-${process.pid}-${++n}`);
  const calls = { create: 0, receive: [] as { numberOfMessages?: number; visibilityTimeout?: number }[] };
  const create = queue.createIfNotExists.bind(queue);
  const receive = queue.receiveMessages.bind(queue);
  queue.createIfNotExists = (o) => {
    calls.create++;
    return create(o);
  };
  queue.receiveMessages = (o) => {
    calls.receive.push({ ...o });
    return receive(o);
  };
  return { queue, calls, outbox: createQueueOutbox(queue) };
}

const message = (connection: string): OutboxMessage => ({
  sink: 'webhook',
  event: brokerEvent('connection.error', { connection, provider: 'microsoft', revision: 1 }, 0),
});

const count = async (queue: QueueClient) => (await queue.getProperties()).approximateMessagesCount;

describe('queue outbox on Azurite', () => {
  it('creates its queue once, and hides a new message for the hold time while its sender works', async () => {
    const { queue, calls, outbox } = freshQueue();
    const m = message('alpha');
    const lease = await outbox.put(m, 60);
    assert.equal(lease.attempts, 0);
    assert.deepEqual(lease.message, m);
    assert.ok(lease.id && lease.receipt);
    assert.deepEqual(await outbox.take(10, 60), [], 'hidden while its sender holds it');
    assert.equal(await count(queue), 1);
    await outbox.put(message('beta'), 60);
    assert.equal(calls.create, 1, 'the queue is created once per outbox');
  });

  it('hands out what is visible, decoded, with the delivery count, hiding it for the hold time', async () => {
    const { calls, outbox } = freshQueue();
    const m = message('alpha');
    const put = await outbox.put(m, 0);
    const [taken] = await outbox.take(10, 60);
    assert.equal(taken?.id, put.id);
    assert.deepEqual(taken?.message, m);
    assert.equal(taken?.attempts, 1);
    assert.deepEqual(calls.receive.at(-1), { numberOfMessages: 10, visibilityTimeout: 60 });
    assert.deepEqual(await outbox.take(10, 60), [], 'hidden while taken');
    assert.ok(taken);
    await outbox.retryIn(taken, 0);
    const [again] = await outbox.take(10, 60);
    assert.equal(again?.attempts, 2);
  });

  it('asks for 1 to 32 messages (the service limits) and a hold of at least 1 s', async () => {
    const { calls, outbox } = freshQueue();
    for (const name of ['a', 'b', 'c']) await outbox.put(message(name), 0);
    assert.equal((await outbox.take(0, 0)).length, 1);
    assert.equal((await outbox.take(1, 60)).length, 1);
    assert.equal((await outbox.take(100, 60)).length, 1);
    assert.deepEqual(calls.receive, [
      { numberOfMessages: 1, visibilityTimeout: 1 },
      { numberOfMessages: 1, visibilityTimeout: 60 },
      { numberOfMessages: 32, visibilityTimeout: 60 },
    ]);
  });

  it('retryIn hides the message for whole seconds (never less than none)', async () => {
    const { outbox } = freshQueue();
    await outbox.put(message('alpha'), 0);
    const [a] = await outbox.take(10, 60);
    assert.ok(a);
    await outbox.retryIn(a, -5);
    const [b] = await outbox.take(10, 60);
    assert.ok(b, 'a negative wait is no wait');
    await outbox.retryIn(b, 0.4);
    const [c] = await outbox.take(10, 60);
    assert.ok(c, '0.4 s rounds to none');
    await outbox.retryIn(c, 0.6);
    assert.deepEqual(await outbox.take(10, 60), [], '0.6 s rounds to 1 s');
  });

  it('done removes the message; a stale or repeated done, and a stale retryIn, are ignored', async () => {
    const { queue, outbox } = freshQueue();
    const put = await outbox.put(message('alpha'), 0);
    const [taken] = await outbox.take(10, 60);
    assert.ok(taken);
    await outbox.done(put); // the receipt from put is stale: 400 PopReceiptMismatch
    await outbox.retryIn(put, 0);
    assert.deepEqual(await outbox.take(10, 60), [], 'neither touched the message under its new lease');
    assert.equal(await count(queue), 1);
    await outbox.done(taken);
    assert.equal(await count(queue), 0);
    await outbox.done(taken); // gone: 404 MessageNotFound
    await outbox.retryIn(taken, 0);
    assert.equal(await count(queue), 0);
  });

  it('drops a message it did not write (not its encoding) instead of retrying it forever', async () => {
    const { queue, outbox } = freshQueue();
    await outbox.put(message('alpha'), 60);
    await queue.sendMessage('not base64 JSON');
    assert.deepEqual(await outbox.take(10, 60), []);
    assert.equal(await count(queue), 1, 'only its own (hidden) message is left');
  });

  it('passes on queue errors that are not a lost lease (here: a wrong account key, 403)', async () => {
    const { outbox } = freshQueue();
    const lease = await outbox.put(message('alpha'), 0);
    const wrongKey = azurite.connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${'A'.repeat(86)}==`);
    const { outbox: denied } = freshQueue(wrongKey);
    await assert.rejects(denied.done(lease), { statusCode: 403 });
    await assert.rejects(denied.retryIn(lease, 0), { statusCode: 403 });
    await assert.rejects(denied.take(1, 60), { statusCode: 403 });
  });

  it('knows a lost lease by the error code alone, when the answer had no parsed details', async () => {
    const lost = Object.assign(new Error('PopReceiptMismatch'), {
      statusCode: 400,
      code: 'PopReceiptMismatch',
    });
    const other = Object.assign(new Error('InvalidQueryParameterValue'), {
      statusCode: 400,
      code: 'InvalidQueryParameterValue',
    });
    let next: Error = lost;
    const fake = {
      deleteMessage: () => Promise.reject(next),
      updateMessage: () => Promise.reject(next),
    } as unknown as QueueClient;
    const outbox = createQueueOutbox(fake);
    const lease = { id: 'm', receipt: 'r', attempts: 1, message: message('alpha') };
    await outbox.done(lease);
    await outbox.retryIn(lease, 5);
    next = other;
    await assert.rejects(outbox.done(lease), other);
    await assert.rejects(outbox.retryIn(lease, 5), other);
  });
});
