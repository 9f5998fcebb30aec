/**
 * @module server
 * The request pipeline in the host's order: homepage (`/`), built-in `/admin/*` routes, function routes
 * (404 empty when nothing matches, including a method outside the route's list), key check (401 empty), body
 * size limit (413 empty), invocation (500 empty on failure, 204 when the function returns nothing).
 * No file I/O per request.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { CatalogEntry, HttpFunction } from './catalog.ts';
import { traceContextFor } from './invoke.ts';
import { isAuthorized } from './keys.ts';
import type { RouteTable } from './routing.ts';
import { splitPath } from './routeTemplate.ts';
import { collectHeaders, parseQuery, toRpcHttpRequest, writeEmpty, writeRpcHttpResponse } from './rpcHttp.ts';
import type { RpcInvocationResponse, RpcTraceContext, RpcTypedData } from './rpcTypes.ts';

export interface RequestTarget {
  /** False until the app is loaded and appStart hooks ran, and again while shutting down. */
  readonly accepting: boolean;
  readonly routes: RouteTable<HttpFunction>;
  readonly functionKey: string | undefined;
  readonly bodyLimitBytes: number;
  readonly homepageEnabled: boolean;
  /** Used when a request has no Host header (HTTP/1.0). */
  readonly defaultHost: string;
  findFunction(name: string): CatalogEntry | undefined;
  invokeHttp(entry: HttpFunction, data: RpcTypedData, trace: RpcTraceContext): Promise<HttpInvocation>;
  /** Runs a non-HTTP function once; resolves when done, rejects if it failed. */
  runNonHttp(entry: CatalogEntry, input: unknown): Promise<void>;
  /** Registers a request in flight, so shutdown can wait for its response to be written. */
  track(work: Promise<void>): void;
}

export interface HttpInvocation {
  /** False when the function or a hook threw (the host answers 500). */
  readonly ok: boolean;
  readonly response: RpcInvocationResponse | undefined;
  /** Called with the status actually written, for the invocation log line. */
  done(status: number): void;
}

const HOST_HEADER = /^[A-Za-z0-9.\-_~[\]:%]+$/;
const TOO_LARGE = Symbol('too large');

/** Buffers the body up to `limit` bytes; past it, stops buffering (node discards the rest after the reply). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | typeof TOO_LARGE> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve(TOO_LARGE);
  if (declared === undefined && req.headers['transfer-encoding'] === undefined) {
    return Promise.resolve(Buffer.alloc(0));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeListener('data', onData);
        req.removeListener('end', onEnd);
        req.resume();
        resolve(TOO_LARGE);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
  });
}

function homepage(res: ServerResponse, method: string): void {
  const html =
    '<!DOCTYPE html><html><head><title>Azure Functions (devhost)</title></head>' +
    '<body><h1>Your Functions 4.0 app is up and running</h1><p>Served by tools/devhost.</p></body></html>';
  res.statusCode = 200;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(html));
  res.end(method === 'HEAD' ? undefined : html);
}

async function adminInvoke(
  target: RequestTarget,
  req: IncomingMessage,
  res: ServerResponse,
  segments: readonly string[],
  rawQuery: string,
): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  if (segments.length !== 3 || segments[1]?.toLowerCase() !== 'functions' || method !== 'POST') {
    return writeEmpty(res, 404);
  }
  // the host guards admin APIs with the master key; the dev host's single key plays that role
  if (!isAuthorized('admin', target.functionKey, req.headers, rawQuery)) return writeEmpty(res, 401);
  const entry = target.findFunction(segments[2] as string);
  if (!entry) return writeEmpty(res, 404);
  if (entry.kind === 'http') return writeEmpty(res, 400);

  const body = await readBody(req, target.bodyLimitBytes);
  if (body === TOO_LARGE) return writeEmpty(res, 413);
  let input: unknown = null;
  if (body.length > 0) {
    try {
      const parsed = JSON.parse(body.toString('utf8')) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return writeEmpty(res, 400);
      input = (parsed as { input?: unknown }).input ?? null;
    } catch {
      return writeEmpty(res, 400);
    }
  }

  const run = target.runNonHttp(entry, input);
  if (String(req.headers['x-devhost-wait']).toLowerCase() === 'true') {
    try {
      await run;
      writeEmpty(res, 202);
    } catch {
      writeEmpty(res, 500);
    }
    return;
  }
  run.catch(() => undefined); // already logged by the runner
  writeEmpty(res, 202);
}

async function handle(target: RequestTarget, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!target.accepting) return writeEmpty(res, 503, { connection: 'close' });
  const method = (req.method ?? 'GET').toUpperCase();
  let target_ = req.url ?? '/';
  if (!target_.startsWith('/')) {
    try {
      const absolute = new URL(target_);
      target_ = `${absolute.pathname}${absolute.search}`;
    } catch {
      return writeEmpty(res, 400);
    }
  }
  const q = target_.indexOf('?');
  const rawPath = q === -1 ? target_ : target_.slice(0, q);
  const rawQuery = q === -1 ? '' : target_.slice(q);
  const host = req.headers.host ?? target.defaultHost;
  if (!HOST_HEADER.test(host)) return writeEmpty(res, 400);

  const segments = splitPath(rawPath);
  if (segments.length === 0) {
    if ((method === 'GET' || method === 'HEAD') && target.homepageEnabled) return homepage(res, method);
    return writeEmpty(res, 404);
  }
  if (segments[0]?.toLowerCase() === 'admin') return adminInvoke(target, req, res, segments, rawQuery);

  const match = target.routes.match(method, segments);
  if (!match) return writeEmpty(res, 404);
  const entry = match.route.value;
  if (!isAuthorized(entry.authLevel, target.functionKey, req.headers, rawQuery)) return writeEmpty(res, 401);

  const body = await readBody(req, target.bodyLimitBytes);
  if (body === TOO_LARGE) return writeEmpty(res, 413);

  const data = toRpcHttpRequest({
    method,
    url: `http://${host}${rawPath}${rawQuery === '?' ? '' : rawQuery}`,
    headers: collectHeaders(req.rawHeaders),
    query: parseQuery(rawQuery),
    params: match.params,
    body,
  });
  const tp = req.headers.traceparent;
  const ts = req.headers.tracestate;
  const invocation = await target.invokeHttp(
    entry,
    data,
    traceContextFor(typeof tp === 'string' ? tp : undefined, typeof ts === 'string' ? ts : undefined),
  );
  // shutting down: answer, then let the connection end instead of keeping it alive
  if (!target.accepting) res.shouldKeepAlive = false;
  let status = 500;
  if (invocation.ok && invocation.response) {
    const returnValue = invocation.response.returnValue;
    try {
      if (returnValue === undefined || returnValue === null) {
        status = 204;
        res.statusCode = 204;
        res.end();
      } else if (returnValue.http) {
        status = writeRpcHttpResponse(res, returnValue.http);
      } else writeEmpty(res, 500);
    } catch {
      status = 500;
      writeEmpty(res, 500);
    }
  } else writeEmpty(res, 500);
  invocation.done(status);
}

export function createRequestListener(target: RequestTarget): RequestListener {
  return (req, res) => {
    target.track(
      handle(target, req, res).catch(() => {
        // a broken client connection or a bug here must not take the host down
        if (!res.headersSent) writeEmpty(res, 500);
        else res.destroy();
      }),
    );
  };
}
