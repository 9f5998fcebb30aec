/**
 * A webhook receiver on loopback that verifies every delivery with the Standard Webhooks reference library
 * (`Webhook.verify`: signature over `id.timestamp.body`, timestamp within 5 minutes), as a real consumer would.
 * Unverifiable deliveries are answered 400 and counted; scripted statuses let tests make deliveries fail.
 */
import { createServer, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { freePort } from '../../tools/net.ts';

export interface ReceivedEvent {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
  body: string;
}

export interface WebhookReceiver {
  url: string;
  /** Verified deliveries, in arrival order (duplicates included: at-least-once). */
  received: ReceivedEvent[];
  /** Deliveries that failed verification. */
  rejected: number;
  /** Verified deliveries, whatever this receiver answered them. */
  attempts: number;
  /** Answers these statuses to the next deliveries (after verifying them). */
  answer(...statuses: number[]): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  const verifier = new Webhook(secret);
  const received: ReceivedEvent[] = [];
  const script: number[] = [];
  let rejected = 0;
  let attempts = 0;
  const port = await freePort();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let payload: { type: string; timestamp: string; data: Record<string, unknown> };
      try {
        payload = verifier.verify(body, req.headers as Record<string, string>) as typeof payload;
      } catch {
        rejected++;
        res.writeHead(400).end();
        return;
      }
      attempts++;
      const status = script.shift() ?? 204;
      if (status < 300) received.push({ id: String(req.headers['webhook-id']), ...payload, body });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}/hooks/broker`,
    received,
    get rejected() {
      return rejected;
    },
    get attempts() {
      return attempts;
    },
    answer: (...s) => script.push(...s),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
