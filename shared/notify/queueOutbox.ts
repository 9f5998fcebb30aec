/**
 * @module notify/queueOutbox
 * The Azure outbox: an Azure Storage queue in the host's storage account. The queue gives exactly what
 * at-least-once delivery with durable backoff needs, without spending Key Vault's write budget
 * (https://learn.microsoft.com/rest/api/storageservices/queue-service-rest-api):
 * - Put Message with `visibilitytimeout` hides a new message while its sender tries it inline;
 * - Get Messages hides what it returns for a visibility timeout and counts `DequeueCount`;
 * - Update Message with a new visibility timeout is the backoff; Delete Message needs the current pop receipt,
 *   so a holder whose lease ran out cannot delete a message another instance took since.
 */
import type { QueueClient } from '@azure/storage-queue';
import type { Leased, Outbox, OutboxMessage } from './outbox.ts';

export function createQueueOutbox(queue: QueueClient): Outbox {
  let created: Promise<unknown> | undefined;
  const ready = () => (created ??= queue.createIfNotExists());
  const encode = (m: OutboxMessage) => Buffer.from(JSON.stringify(m)).toString('base64');
  const decode = (text: string) => JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as OutboxMessage;

  return {
    async put(message, holdSeconds) {
      await ready();
      const sent = await queue.sendMessage(encode(message), { visibilityTimeout: holdSeconds });
      return { id: sent.messageId, receipt: sent.popReceipt, attempts: 0, message };
    },
    async take(max, holdSeconds) {
      await ready();
      const got = await queue.receiveMessages({
        numberOfMessages: Math.min(32, Math.max(1, max)),
        // Get Messages needs a visibility timeout of at least 1 s.
        visibilityTimeout: Math.max(1, holdSeconds),
      });
      const out: Leased[] = [];
      for (const item of got.receivedMessageItems) {
        let message: OutboxMessage;
        try {
          message = decode(item.messageText);
        } catch {
          // Not ours (someone else wrote to the queue) and never deliverable: drop it rather than retry forever.
          await queue.deleteMessage(item.messageId, item.popReceipt);
          continue;
        }
        out.push({ id: item.messageId, receipt: item.popReceipt, attempts: item.dequeueCount, message });
      }
      return out;
    },
    async done(l) {
      try {
        await queue.deleteMessage(l.id, l.receipt);
      } catch (err) {
        if (!lostLease(err)) throw err;
      }
    },
    async retryIn(l, seconds) {
      try {
        await queue.updateMessage(l.id, l.receipt, undefined, Math.max(0, Math.round(seconds)));
      } catch (err) {
        if (!lostLease(err)) throw err;
      }
    },
  };
}

/**
 * The message is gone (404 MessageNotFound) or another drain took it since, which changed its pop receipt
 * (400 PopReceiptMismatch; https://learn.microsoft.com/rest/api/storageservices/queue-service-error-codes).
 * Either way it is no longer ours to delete or reschedule.
 */
function lostLease(err: unknown): boolean {
  const e = err as { statusCode?: number; code?: string; details?: { errorCode?: string } };
  return e.statusCode === 404 || (e.details?.errorCode ?? e.code) === 'PopReceiptMismatch';
}
