/**
 * @module notify/notifier
 * Turns connection events into deliveries and works the outbox. Every event is stored before it is sent
 * (at-least-once; receivers de-duplicate on `webhook-id`), tried once at once, then retried on the Standard
 * Webhooks schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) by each sweep's drain; after the last failure it
 * is given up with an error log line. The mail to an account's owner is its own delivery, so a failing mailbox
 * does not hold back the webhook or the other way round.
 */
import type { Logger } from '../log.ts';
import type { BrokerEvent } from './events.ts';
import type { Leased, Outbox, OutboxMessage, Sink } from './outbox.ts';
import type { Delivery, MailMessage } from './senders.ts';

/** Seconds to wait after attempt n (n = 1…7); https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md#deliverability-and-reliability */
export const RETRY_SCHEDULE_SECONDS = [5, 300, 1800, 7200, 18000, 36000, 36000] as const;
/** How long a message stays hidden while one delivery attempt is under way. */
const HOLD_SECONDS = 60;

export interface NotifierDeps {
  outbox: Outbox;
  /** Present when BROKER_WEBHOOK_URL is set. */
  webhook?: (event: BrokerEvent) => Promise<Delivery>;
  /** Present when BROKER_NOTIFY_CONNECTION is set: builds and sends the owner's mail, or says why not. */
  mail?: {
    /** The mail for this event, or undefined when there is nobody to tell. */
    compose(event: BrokerEvent): Promise<MailMessage | undefined>;
    send(mail: MailMessage): Promise<Delivery>;
  };
  log: Logger;
  /** Waits after each failed attempt (default {@link RETRY_SCHEDULE_SECONDS}). */
  retrySchedule?: readonly number[];
}

export interface DrainResult {
  delivered: number;
  retried: number;
  gaveUp: number;
}

export class Notifier {
  readonly #deps: NotifierDeps;
  /** First attempts under way: the caller (often holding a connection's lock) never waits for a receiver. */
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(deps: NotifierDeps) {
    this.#deps = deps;
  }

  get enabled(): boolean {
    return this.#deps.webhook !== undefined || this.#deps.mail !== undefined;
  }

  /**
   * Stores the event for each configured sink, then starts each first delivery without waiting for it: a slow
   * receiver must not hold the connection's lock or the caller's answer. A first attempt that never finishes
   * (the process is frozen or dies) leaves its message hidden for a minute, then the drain delivers it.
   * Never throws; an event whose store fails is logged (`notify.emit_failed`), not delivered.
   */
  async emit(event: BrokerEvent): Promise<void> {
    const sinks: Sink[] = [];
    if (this.#deps.webhook) sinks.push('webhook');
    if (this.#deps.mail && event.type === 'connection.needs_reauth') sinks.push('mail');
    await Promise.all(
      sinks.map(async (sink) => {
        try {
          const lease = await this.#deps.outbox.put({ sink, event }, HOLD_SECONDS);
          const attempt = this.#attemptLogged(lease).finally(() => this.#inFlight.delete(attempt));
          this.#inFlight.add(attempt);
        } catch (err) {
          this.#deps.log.error('notify.emit_failed', {
            sink,
            eventType: event.type,
            reason: (err as Error).name,
          });
        }
      }),
    );
  }

  /** Resolves when every first attempt started so far has finished. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Works through what is due; the sweep calls this on every run. Never throws. */
  async drain(max = 200): Promise<DrainResult> {
    await this.settled();
    const result: DrainResult = { delivered: 0, retried: 0, gaveUp: 0 };
    while (max > 0) {
      let batch: Leased[];
      try {
        batch = await this.#deps.outbox.take(Math.min(32, max), HOLD_SECONDS);
      } catch (err) {
        // The outbox is unreachable: what waits there stays for the next drain.
        this.#deps.log.error('notify.drain_failed', { reason: (err as Error).name });
        break;
      }
      if (batch.length === 0) break;
      max -= batch.length;
      for (const lease of batch) {
        const outcome = await this.#attemptLogged(lease);
        if (outcome) result[outcome]++;
      }
    }
    return result;
  }

  /** One attempt; an outbox failure while recording its outcome is logged, and the message stays for later. */
  async #attemptLogged(lease: Leased): Promise<keyof DrainResult | undefined> {
    try {
      return await this.#attempt(lease);
    } catch (err) {
      this.#deps.log.error('notify.drain_failed', {
        sink: lease.message.sink,
        eventId: lease.message.event.id,
        reason: (err as Error).name,
      });
      return undefined;
    }
  }

  async #attempt(lease: Leased): Promise<keyof DrainResult> {
    const { message } = lease;
    const outcome = await this.#deliver(message);
    const fields = {
      sink: message.sink,
      eventType: message.event.type,
      eventId: message.event.id,
      attempt: lease.attempts + 1,
    };
    if (outcome.ok) {
      await this.#deps.outbox.done(lease);
      this.#deps.log.info('notify.delivered', { ...fields, status: outcome.status });
      return 'delivered';
    }
    const wait = (this.#deps.retrySchedule ?? RETRY_SCHEDULE_SECONDS)[lease.attempts];
    if (!outcome.retry || wait === undefined) {
      await this.#deps.outbox.done(lease);
      this.#deps.log.error('notify.gave_up', { ...fields, status: outcome.status, reason: outcome.reason });
      return 'gaveUp';
    }
    const waitSeconds = Math.max(wait, outcome.retryAfterSeconds ?? 0);
    await this.#deps.outbox.retryIn(lease, waitSeconds);
    this.#deps.log.warn('notify.retry', {
      ...fields,
      status: outcome.status,
      reason: outcome.reason,
      waitSeconds,
    });
    return 'retried';
  }

  async #deliver(message: OutboxMessage): Promise<Delivery> {
    try {
      if (message.sink === 'webhook') {
        if (!this.#deps.webhook) return { ok: false, retry: false, reason: 'webhook_not_configured' };
        return await this.#deps.webhook(message.event);
      }
      if (!this.#deps.mail) return { ok: false, retry: false, reason: 'mail_not_configured' };
      const mail = await this.#deps.mail.compose(message.event);
      if (!mail) return { ok: true, status: 204 };
      return await this.#deps.mail.send(mail);
    } catch (err) {
      return { ok: false, retry: true, reason: (err as Error).name };
    }
  }
}
