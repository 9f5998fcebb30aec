/**
 * @module notify/senders
 * The two ways the broker tells people: a Standard Webhooks POST (signed with the `standardwebhooks` library:
 * `webhook-id`, `webhook-timestamp`, `webhook-signature` = v1 HMAC-SHA256 over `id.timestamp.body`), and a mail
 * through Microsoft Graph `POST /me/sendMail` (https://learn.microsoft.com/graph/api/user-sendmail: 202 Accepted
 * with no body; errors as `{"error":{"code","message"}}` per https://learn.microsoft.com/graph/errors; 429 with
 * Retry-After per https://learn.microsoft.com/graph/throttling). Each answers whether a retry can help.
 */
import { Webhook } from 'standardwebhooks';
import { parseRetryAfter } from '../oauth/classify.ts';
import type { FetchLike } from '../oauth/transport.ts';
import type { BrokerEvent } from './events.ts';

export type Delivery =
  | { ok: true; status: number }
  | { ok: false; retry: boolean; status?: number; retryAfterSeconds?: number; reason: string };

export interface WebhookTarget {
  url: string;
  /** `whsec_` + base64, as Standard Webhooks secrets are written. */
  secret: string;
}

export async function sendWebhook(
  fetch: FetchLike,
  target: WebhookTarget,
  event: BrokerEvent,
  now: number,
): Promise<Delivery> {
  const body = JSON.stringify({ type: event.type, timestamp: event.timestamp, data: event.data });
  const signature = new Webhook(target.secret).sign(event.id, new Date(now), body);
  return deliver(
    fetch,
    target.url,
    {
      'content-type': 'application/json',
      'webhook-id': event.id,
      'webhook-timestamp': String(Math.floor(now / 1000)),
      'webhook-signature': signature,
    },
    body,
    (status) =>
      // Any other answer than 2xx is a failed attempt to retry on schedule, except 410 Gone: the receiver says
      // the endpoint was removed, so retrying cannot help.
      status !== 410,
  );
}

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export async function sendGraphMail(
  fetch: FetchLike,
  graphUrl: string,
  accessToken: string,
  mail: MailMessage,
): Promise<Delivery> {
  const body = JSON.stringify({
    message: {
      subject: mail.subject,
      body: { contentType: 'Text', content: mail.text },
      toRecipients: [{ emailAddress: { address: mail.to } }],
    },
    saveToSentItems: false,
  });
  return deliver(
    fetch,
    `${graphUrl.replace(/\/+$/, '')}/v1.0/me/sendMail`,
    { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
    body,
    // 401: the token may have expired between the read and the send; 400/403/404 say the request itself is wrong.
    (status) => status >= 500 || status === 429 || status === 401,
  );
}

async function deliver(
  fetch: FetchLike,
  url: string,
  headers: Record<string, string>,
  body: string,
  retryable: (status: number) => boolean,
): Promise<Delivery> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body });
  } catch (err) {
    return { ok: false, retry: true, reason: (err as Error).name };
  }
  // The answer's body is never read into logs: receivers may echo what they got.
  await res.body?.cancel().catch(() => undefined);
  if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
  const failure: Delivery = {
    ok: false,
    retry: retryable(res.status),
    status: res.status,
    reason: `http_${res.status}`,
  };
  const retryAfterSeconds = parseRetryAfter(res.headers.get('retry-after'));
  if (retryAfterSeconds !== undefined) failure.retryAfterSeconds = retryAfterSeconds;
  return failure;
}
