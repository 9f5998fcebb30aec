/**
 * @module notify/outbox
 * Where notifications wait until delivered. At-least-once: a message stays until a sender confirms it, and a
 * message being worked on is only hidden for a while, so a process that dies mid-delivery leaves it to the next
 * drain. Backoff is the hiding time, so retries survive restarts. In Azure this is a Storage queue in the host's
 * storage account (queueOutbox.ts); locally, files in the data folder (fileOutbox.ts).
 */
import type { BrokerEvent } from './events.ts';

export type Sink = 'webhook' | 'mail';

export interface OutboxMessage {
  sink: Sink;
  event: BrokerEvent;
}

export interface Leased {
  message: OutboxMessage;
  /** Deliveries tried before this one. */
  attempts: number;
  /** Implementation detail proving the lease (queue pop receipt, file generation). */
  receipt: string;
  id: string;
}

export interface Outbox {
  /** Adds a message leased to the caller for `holdSeconds` (it tries delivery inline meanwhile). */
  put(message: OutboxMessage, holdSeconds: number): Promise<Leased>;
  /** Up to `max` visible messages, each hidden for `holdSeconds` while the caller works on it. */
  take(max: number, holdSeconds: number): Promise<Leased[]>;
  /** Delivered (or given up): the message is gone. */
  done(lease: Leased): Promise<void>;
  /** Not delivered: visible again after `seconds`, with one more attempt counted. */
  retryIn(lease: Leased, seconds: number): Promise<void>;
}
