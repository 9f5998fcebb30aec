/**
 * @module notify
 * Builds the notification pieces from the configuration: the outbox, the webhook sender, the owner mail, and
 * the broker's change listener that turns status changes into events. Loaded lazily by the composition root,
 * and only when notifications are configured.
 */
import type { ConnectionRecord } from '../store/types.ts';
import type { Logger } from '../log.ts';
import type { FetchLike } from '../oauth/transport.ts';
import type { ChangeListener } from '../broker/changes.ts';
import { brokerEvent, eventForTransition, type BrokerEvent, type EventType } from './events.ts';
import { createFileOutbox } from './fileOutbox.ts';
import { Notifier } from './notifier.ts';
import type { Outbox } from './outbox.ts';
import { sendGraphMail, sendWebhook } from './senders.ts';
import type { NotifyConfig } from './settings.ts';

/** How long the link in an owner's mail works: long enough to be read, within the 7-day link maximum. */
export const MAIL_LINK_TTL_SECONDS = 3 * 24 * 3600;

/** What the mail needs from the broker, as functions so this module does not depend on the broker class. */
export interface BrokerForMail {
  /** The connection's record as stored (for its pinned username), or undefined when it is gone. */
  record(name: string): Promise<ConnectionRecord | undefined>;
  /** A new connect link for `name`. */
  link(name: string, ttlSeconds: number): Promise<{ url: string; expiresAt: string }>;
  /** A current access token of the sending connection (Mail.Send). */
  accessToken(name: string): Promise<string>;
}

export interface Notifications {
  notifier: Notifier;
  onChange: ChangeListener;
}

export async function createNotifications(
  config: NotifyConfig,
  deps: { fetch: FetchLike; log: Logger; broker: () => BrokerForMail },
): Promise<Notifications> {
  const outbox = await createOutbox(config);
  const webhook = config.webhook;
  const mail = config.mail;
  const notifier = new Notifier({
    outbox,
    log: deps.log,
    ...(webhook
      ? { webhook: (event: BrokerEvent) => sendWebhook(deps.fetch, webhook, event, Date.now()) }
      : {}),
    ...(mail
      ? {
          mail: {
            compose: async (event: BrokerEvent) => {
              // The mailing connection itself cannot be asked to mail about its own lost sign-in.
              if (event.data.connection === mail.connection) return undefined;
              const broker = deps.broker();
              const record = await broker.record(event.data.connection);
              if (!record || record.status !== 'needs_reauth') return undefined;
              const to = record.settings.expectedIdentity?.username ?? mail.to;
              if (!to) {
                deps.log.info('notify.no_recipient', { connection: event.data.connection });
                return undefined;
              }
              const link = await broker.link(event.data.connection, MAIL_LINK_TTL_SECONDS);
              return {
                to,
                subject: `Sign in again to keep "${event.data.connection}" working`,
                text: [
                  `The account behind the connection "${event.data.connection}" must sign in again: the provider no longer accepts its sign-in.`,
                  '',
                  `Open this link and sign in as ${to} (it works until ${link.expiresAt}):`,
                  link.url,
                  '',
                  'If you did not expect this mail, ignore it and tell your administrator.',
                ].join('\n'),
              };
            },
            send: async (message: { to: string; subject: string; text: string }) =>
              sendGraphMail(
                deps.fetch,
                mail.graphUrl,
                await deps.broker().accessToken(mail.connection),
                message,
              ),
          },
        }
      : {}),
  });
  const onChange: ChangeListener = async (before, after) => {
    const type: EventType | undefined = after
      ? eventForTransition(before?.status, after.status)
      : before
        ? 'connection.deleted'
        : undefined;
    const subject = after ?? before;
    if (!type || !subject) return;
    const event = brokerEvent(
      type,
      {
        connection: subject.connection,
        provider: subject.settings.provider,
        ...(after ? { status: after.status } : {}),
        revision: subject.revision,
        createdAt: subject.createdAt,
        ...(subject.identity?.username ? { username: subject.identity.username } : {}),
        ...(subject.lastError ? { lastError: subject.lastError } : {}),
      },
      Date.now(),
    );
    await notifier.emit(event);
  };
  return { notifier, onChange };
}

async function createOutbox(config: NotifyConfig): Promise<Outbox> {
  const o = config.outbox;
  if (o.kind === 'file') return createFileOutbox(o.dataDir);
  const [{ QueueClient, QueueServiceClient }, { createQueueOutbox }, { azureCredential }] = await Promise.all(
    [import('@azure/storage-queue'), import('./queueOutbox.ts'), import('../identity.ts')],
  );
  const queue = o.connectionString
    ? new QueueClient(o.connectionString, o.queueName)
    : new QueueServiceClient(o.queueServiceUri ?? '', azureCredential(o.clientId)).getQueueClient(
        o.queueName,
      );
  return createQueueOutbox(queue);
}
