/**
 * A loopback double of Microsoft Graph's `POST /v1.0/me/sendMail`, modelled on the documented request and answers:
 * - request: JSON `{ message: { subject, body: { contentType, content }, toRecipients: [{ emailAddress: { address } }] },
 *   saveToSentItems? }` with `Authorization: Bearer …`
 *   (https://learn.microsoft.com/graph/api/user-sendmail?view=graph-rest-1.0#request-body);
 * - success: `202 Accepted`, no body (same page, "Response");
 * - errors: JSON `{ "error": { "code", "message", "innerError": { "date", "request-id" } } }`
 *   (https://learn.microsoft.com/graph/errors): 400 `ErrorInvalidRecipients` / `ErrorInvalidRequest`,
 *   401 `InvalidAuthenticationToken` (missing or unknown bearer), 403 `ErrorAccessDenied`;
 * - throttling: `429` with `Retry-After` seconds (https://learn.microsoft.com/graph/throttling).
 * Not modelled: token validation beyond an allow-list the test supplies, scopes inside the token, attachments,
 * HTML bodies, `$batch`, mailbox quotas, the mail actually arriving anywhere.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { freePort } from '../../tools/net.ts';

export interface SentMail {
  to: string[];
  subject: string;
  contentType: string;
  content: string;
  bearer: string;
}

export interface GraphFault {
  status: 400 | 401 | 403 | 429 | 503;
  code: string;
  retryAfterSeconds?: number;
}

export interface GraphDouble {
  url: string;
  sent: SentMail[];
  /** Requests answered with an error (faults or refusals). */
  refused: number;
  /** The next answers are these faults, in order. */
  fail(...faults: GraphFault[]): void;
  close(): Promise<void>;
}

export async function startGraphDouble(
  acceptToken: (bearer: string) => boolean | Promise<boolean>,
): Promise<GraphDouble> {
  const sent: SentMail[] = [];
  const faults: GraphFault[] = [];
  let refused = 0;
  const port = await freePort();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const error = (
          status: number,
          code: string,
          message: string,
          headers: Record<string, string> = {},
        ) => {
          refused++;
          res.writeHead(status, { 'content-type': 'application/json', ...headers });
          res.end(
            JSON.stringify({
              error: {
                code,
                message,
                innerError: { date: new Date().toISOString(), 'request-id': randomUUID() },
              },
            }),
          );
        };
        if (req.method !== 'POST' || req.url !== '/v1.0/me/sendMail')
          return error(404, 'ResourceNotFound', 'Resource not found for the segment.');
        const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        if (!bearer || !(await acceptToken(bearer)))
          return error(401, 'InvalidAuthenticationToken', 'Access token validation failure.', {
            'www-authenticate': 'Bearer realm=""',
          });
        const fault = faults.shift();
        if (fault)
          return error(
            fault.status,
            fault.code,
            'Injected failure.',
            fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) },
          );
        let body: {
          message?: {
            subject?: string;
            body?: { contentType?: string; content?: string };
            toRecipients?: { emailAddress?: { address?: string } }[];
          };
        };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        } catch {
          return error(400, 'ErrorInvalidRequest', 'Cannot read the request body.');
        }
        const to = (body.message?.toRecipients ?? []).map((r) => r.emailAddress?.address ?? '');
        if (to.length === 0 || to.some((a) => !/^[^@\s]+@[^@\s]+$/.test(a)))
          return error(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid.');
        sent.push({
          to,
          subject: body.message?.subject ?? '',
          contentType: body.message?.body?.contentType ?? 'Text',
          content: body.message?.body?.content ?? '',
          bearer,
        });
        res.writeHead(202);
        res.end();
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    sent,
    get refused() {
      return refused;
    },
    fail: (...f) => faults.push(...f),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
