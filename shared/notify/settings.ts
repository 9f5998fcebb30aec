/**
 * @module notify/settings
 * The notification part of the configuration (parsed with the rest in config.ts, once, and frozen there):
 * a Standard Webhooks endpoint and secret, the optional mail to owners through a connection with Mail.Send,
 * and where the outbox lives (an Azure Storage queue beside Key Vault; files beside the file store).
 */
import { z } from 'zod';

export const NOTIFY_ENV = {
  BROKER_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Standard Webhooks secret: `whsec_` + base64 of 24–64 random bytes. */
  BROKER_WEBHOOK_SECRET: z.string().optional(),
  BROKER_NOTIFY_CONNECTION: z
    .string()
    .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a connection name')
    .optional(),
  BROKER_NOTIFY_TO: z.email('must be one mail address').optional(),
  BROKER_GRAPH_URL: z.url({ protocol: /^https?$/ }).default('https://graph.microsoft.com'),
  BROKER_NOTIFY_QUEUE: z
    .string()
    .regex(/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/, 'must be a storage queue name')
    .default('broker-events'),
  AzureWebJobsStorage__queueServiceUri: z.url().optional(),
};

export const notifyEnvSchema = z.object(NOTIFY_ENV);
type NotifyEnv = z.output<typeof notifyEnvSchema> & {
  AzureWebJobsStorage?: string | undefined;
  AzureWebJobsStorage__clientId?: string | undefined;
};

export interface NotifyConfig {
  webhook?: { url: string; secret: string };
  mail?: { connection: string; to?: string; graphUrl: string };
  outbox:
    | { kind: 'file'; dataDir: string }
    | {
        kind: 'queue';
        queueName: string;
        connectionString?: string;
        queueServiceUri?: string;
        clientId?: string;
      };
}

type Problems = { variable: string; reason: string }[];

export function parseNotify(
  e: NotifyEnv,
  store: { kind: 'file'; dataDir: string } | { kind: 'keyvault' },
  insecure: boolean,
  problems: Problems,
): NotifyConfig | undefined {
  const webhookWanted = e.BROKER_WEBHOOK_URL !== undefined || e.BROKER_WEBHOOK_SECRET !== undefined;
  if (!webhookWanted && !e.BROKER_NOTIFY_CONNECTION) return undefined;
  const out: NotifyConfig = { outbox: { kind: 'file', dataDir: store.kind === 'file' ? store.dataDir : '' } };
  if (webhookWanted) {
    if (!e.BROKER_WEBHOOK_URL)
      problems.push({ variable: 'BROKER_WEBHOOK_URL', reason: 'required with BROKER_WEBHOOK_SECRET' });
    else if (!e.BROKER_WEBHOOK_URL.startsWith('https:') && !insecure)
      problems.push({
        variable: 'BROKER_WEBHOOK_URL',
        reason: 'must be https unless BROKER_ALLOW_INSECURE_HTTP',
      });
    const secret = e.BROKER_WEBHOOK_SECRET;
    if (!secret)
      problems.push({ variable: 'BROKER_WEBHOOK_SECRET', reason: 'required with BROKER_WEBHOOK_URL' });
    else if (!validSecret(secret))
      problems.push({
        variable: 'BROKER_WEBHOOK_SECRET',
        reason: 'must be whsec_ followed by base64 of 24 to 64 random bytes',
      });
    if (e.BROKER_WEBHOOK_URL && secret) out.webhook = { url: e.BROKER_WEBHOOK_URL, secret };
  }
  if (e.BROKER_NOTIFY_CONNECTION) {
    if (!e.BROKER_GRAPH_URL.startsWith('https:') && !insecure)
      problems.push({
        variable: 'BROKER_GRAPH_URL',
        reason: 'must be https unless BROKER_ALLOW_INSECURE_HTTP',
      });
    out.mail = { connection: e.BROKER_NOTIFY_CONNECTION, graphUrl: e.BROKER_GRAPH_URL.replace(/\/+$/, '') };
    if (e.BROKER_NOTIFY_TO) out.mail.to = e.BROKER_NOTIFY_TO;
  }
  if (store.kind === 'keyvault') {
    const connectionString =
      e.AzureWebJobsStorage && e.AzureWebJobsStorage !== 'UseDevelopmentStorage=true'
        ? e.AzureWebJobsStorage
        : undefined;
    if (!connectionString && !e.AzureWebJobsStorage__queueServiceUri)
      problems.push({
        variable: 'AzureWebJobsStorage__queueServiceUri',
        reason: 'notifications wait in a storage queue: set it (or AzureWebJobsStorage)',
      });
    out.outbox = {
      kind: 'queue',
      queueName: e.BROKER_NOTIFY_QUEUE,
      ...(connectionString ? { connectionString } : {}),
      ...(e.AzureWebJobsStorage__queueServiceUri
        ? { queueServiceUri: e.AzureWebJobsStorage__queueServiceUri }
        : {}),
      ...(e.AzureWebJobsStorage__clientId ? { clientId: e.AzureWebJobsStorage__clientId } : {}),
    };
  }
  return out;
}

function validSecret(secret: string): boolean {
  if (!secret.startsWith('whsec_')) return false;
  const body = secret.slice('whsec_'.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return false;
  const bytes = Buffer.from(body, 'base64').length;
  return bytes >= 24 && bytes <= 64;
}
