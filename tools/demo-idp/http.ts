/**
 * @module demo-idp/http
 * Small node:http helpers for the demo IdP's front: bounded body reading, JSON/HTML replies, and the per-request
 * metadata the front hands to the oidc-provider middleware (which tenant path was used, what kind of endpoint).
 */
import { IncomingMessage, type IncomingHttpHeaders, type ServerResponse } from 'node:http';

export const MAX_BODY_BYTES = 64 * 1024;

export class BodyTooLargeError extends Error {
  constructor() {
    super('request body too large');
    this.name = 'BodyTooLargeError';
  }
}

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new BodyTooLargeError();
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function isFormEncoded(req: IncomingMessage): boolean {
  return (
    (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ===
    'application/x-www-form-urlencoded'
  );
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export function sendHtml(
  res: ServerResponse,
  status: number,
  html: string,
  headers: Record<string, string>,
): void {
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(html)) });
  res.end(html);
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location, 'content-length': '0' });
  res.end();
}

/**
 * A fresh request object carrying a rewritten body, handed to oidc-provider instead of the original (whose stream
 * the front already consumed). It shares the original socket, so the client address and a connection reset work.
 */
export function syntheticRequest(
  original: IncomingMessage,
  init: { method: string; url: string; headers: IncomingHttpHeaders; body?: string },
): IncomingMessage {
  const req = new IncomingMessage(original.socket);
  req.method = init.method;
  req.url = init.url;
  req.httpVersion = original.httpVersion;
  req.httpVersionMajor = original.httpVersionMajor;
  req.httpVersionMinor = original.httpVersionMinor;
  const headers: IncomingHttpHeaders = { ...init.headers };
  delete headers['transfer-encoding'];
  if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
  else delete headers['content-length'];
  req.headers = headers;
  if (init.body) req.push(init.body);
  req.push(null);
  // Marks the message as fully received; otherwise its auto-destroy treats it as aborted and kills the socket.
  req.complete = true;
  return req;
}

export type EndpointKind = 'discovery' | 'keys' | 'authorize' | 'token';

export interface RequestMeta {
  kind: EndpointKind;
  /** The `{tenant}` path segment exactly as the client sent it. */
  segment: string;
  tenantId: string;
  issuerKind: 'template' | 'concrete';
  authorityKey: string;
  /** Set for token requests. */
  token?: TokenRequestMeta;
}

export interface TokenRequestMeta {
  grantType: string;
  clientId?: string;
  correlationId?: string;
  /** The presented refresh token was revoked by `revokeUser`. */
  revoked: boolean;
  done(status: number, error?: string, codes?: number[]): void;
  afterFault?: () => Promise<'reset' | { status: number; headers: Record<string, string>; body: string }>;
}

const metas = new WeakMap<IncomingMessage, RequestMeta>();

export function setMeta(req: IncomingMessage, meta: RequestMeta): void {
  metas.set(req, meta);
}

export function getMeta(req: IncomingMessage): RequestMeta | undefined {
  return metas.get(req);
}

/** Express-style `originalUrl`, which oidc-provider reads to work out the mount path (`/{tenant}`). */
export function setOriginalUrl(req: IncomingMessage, originalUrl: string): void {
  (req as IncomingMessage & { originalUrl?: string }).originalUrl = originalUrl;
}
