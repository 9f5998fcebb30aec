/**
 * @module server
 * The request pipeline in the host's order: Host filter (400 empty), homepage (`/`), built-in `/admin/*`
 * routes, function routes (404 empty when nothing matches, including a method outside the route's list, and on
 * an instance whose function group is not `http`), key check (401 empty), body size limit (413 empty),
 * invocation (500 empty on failure, 204 when the function returns nothing).
 * Two ways to hand the request to the app, as the host does: the RPC message (body only when
 * Content-Length > 0, HOST `GrpcMessageConversionExtensions.ToRpcHttp`) or, when the app enabled HTTP streams,
 * forwarding to the library's proxy (see streamProxy.ts). No file I/O per request.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { CatalogEntry, HttpFunction } from './catalog.ts';
import { traceContextFor } from './invoke.ts';
import { isAllowedHost } from './hostFilter.ts';
import { isAuthorized } from './keys.ts';
import type { RouteTable } from './routing.ts';
import { splitPath } from './routeTemplate.ts';
import { collectHeaders, parseQuery, toRpcHttpRequest, writeEmpty, writeRpcHttpResponse } from './rpcHttp.ts';
import type { RpcInvocationResponse, RpcTraceContext, RpcTypedData } from './rpcTypes.ts';
import { forwardToWorker, isForwardableResponseHeader, streamTriggerMetadata } from './streamProxy.ts';

export interface RequestTarget {
  /** False until the app is loaded and appStart hooks ran, and again while shutting down. */
  readonly accepting: boolean;
  readonly routes: RouteTable<HttpFunction>;
  readonly functionKey: string | undefined;
  readonly bodyLimitBytes: number;
  readonly homepageEnabled: boolean;
  /** Used when a request has no Host header (HTTP/1.0). */
  readonly defaultHost: string;
  /** Host names answered (others get 400, see hostFilter.ts). */
  readonly allowedHosts: readonly string[];
  /** False on an instance whose FUNCTIONS_TARGET_GROUP is not `http`: the Flex front end never routes HTTP there. */
  readonly servesHttp: boolean;
  /** The library's proxy (`HttpUri` capability) when the app enabled HTTP streams. */
  readonly workerHttpUri: URL | undefined;
  findFunction(name: string): CatalogEntry | undefined;
  invokeHttp(
    entry: HttpFunction,
    data: RpcTypedData,
    trace: RpcTraceContext,
    extra?: InvokeExtra,
  ): Promise<HttpInvocation>;
  /** Runs a non-HTTP function once; resolves when done, rejects if it failed. */
  runNonHttp(entry: CatalogEntry, input: unknown): Promise<void>;
  /** Registers a request in flight, so shutdown can wait for its response to be written. */
  track(work: Promise<void>): void;
}

export interface InvokeExtra {
  readonly invocationId?: string;
  readonly triggerMetadata?: Record<string, RpcTypedData>;
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
  if (!HOST_HEADER.test(host) || !isAllowedHost(host, target.allowedHosts)) return writeEmpty(res, 400);

  const segments = splitPath(rawPath);
  if (segments.length === 0) {
    if ((method === 'GET' || method === 'HEAD') && target.homepageEnabled) return homepage(res, method);
    return writeEmpty(res, 404);
  }
  if (segments[0]?.toLowerCase() === 'admin') return adminInvoke(target, req, res, segments, rawQuery);

  const match = target.servesHttp ? target.routes.match(method, segments) : undefined;
  if (!match) return writeEmpty(res, 404);
  const entry = match.route.value;
  if (!isAuthorized(entry.authLevel, target.functionKey, req.headers, rawQuery)) return writeEmpty(res, 401);

  const tp = req.headers.traceparent;
  const ts = req.headers.tracestate;
  const trace = traceContextFor(
    typeof tp === 'string' ? tp : undefined,
    typeof ts === 'string' ? ts : undefined,
  );
  if (target.workerHttpUri) {
    return handleStream(target, req, res, {
      entry,
      method,
      host,
      target_,
      rawQuery,
      params: match.params,
      trace,
    });
  }

  const body = await readBody(req, target.bodyLimitBytes);
  if (body === TOO_LARGE) return writeEmpty(res, 413);

  const data = toRpcHttpRequest({
    method,
    url: `http://${host}${rawPath}${rawQuery === '?' ? '' : rawQuery}`,
    headers: collectHeaders(req.rawHeaders),
    query: parseQuery(rawQuery),
    params: match.params,
    // the host copies a body into the RPC message only when Content-Length > 0: a chunked body is read and dropped
    body: declaredLength(req) > 0 ? body : undefined,
  });
  const invocation = await target.invokeHttp(entry, data, trace);
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

function declaredLength(req: IncomingMessage): number {
  const declared = req.headers['content-length'];
  return declared === undefined ? 0 : Number(declared);
}

/** Counts streamed body bytes; past `limit` it fails the stream (Kestrel's MaxRequestBodySize → 413). */
function limitedBody(limit: number, onTooLarge: () => void): Transform {
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > limit) {
        onTooLarge();
        callback(new Error('request body too large'));
        return;
      }
      callback(null, chunk);
    },
  });
}

interface StreamRequest {
  readonly entry: HttpFunction;
  readonly method: string;
  readonly host: string;
  readonly target_: string;
  readonly rawQuery: string;
  readonly params: Record<string, string>;
  readonly trace: RpcTraceContext;
}

/** How long the dev host waits for the worker's proxied answer after the invocation finished. */
const PROXY_ANSWER_GRACE_MS = 10_000;

async function handleStream(
  target: RequestTarget,
  req: IncomingMessage,
  res: ServerResponse,
  r: StreamRequest,
): Promise<void> {
  const workerUri = target.workerHttpUri as URL;
  const declared = req.headers['content-length'];
  let body: Buffer | NodeJS.ReadableStream = Buffer.alloc(0);
  let contentLengthBody: Buffer | undefined;
  let tooLarge = false;
  if (declared !== undefined && Number(declared) > 0) {
    // the HTTP extension reads a Content-Length body for binding data before the request is forwarded
    const buffered = await readBody(req, target.bodyLimitBytes);
    if (buffered === TOO_LARGE) return writeEmpty(res, 413);
    body = buffered;
    contentLengthBody = buffered;
  } else if (req.headers['transfer-encoding'] !== undefined) {
    body = req.pipe(limitedBody(target.bodyLimitBytes, () => (tooLarge = true)));
  }

  const invocationId = randomUUID();
  const triggerMetadata = streamTriggerMetadata({
    headers: collectHeaders(req.rawHeaders),
    query: parseQuery(r.rawQuery),
    params: r.params,
    contentLengthBody,
  });
  // the host starts forwarding before it sends the invocation to the worker (GrpcWorkerChannel.SendInvocationRequest)
  const forwarding = forwardToWorker({
    workerUri,
    invocationId,
    method: r.method,
    target: r.target_,
    host: r.host,
    clientAddress: req.socket.remoteAddress,
    headers: req.headers,
    body,
  });
  const answer = forwarding.response.then(
    (response) => ({ response }),
    () => ({ response: undefined }),
  );
  const invocation = target.invokeHttp(r.entry, { http: {} }, r.trace, { invocationId, triggerMetadata });
  const first = await Promise.race([answer, invocation.then((inv) => ({ inv }))]);

  let status = 500;
  let proxied = 'response' in first ? first.response : undefined;
  if (!('response' in first)) {
    if (first.inv.ok) {
      // the library wrote its answer before the invocation completed; it may still be in flight here
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        answer,
        new Promise<{ response: undefined }>((done) => {
          timer = setTimeout(() => done({ response: undefined }), PROXY_ANSWER_GRACE_MS);
        }),
      ]);
      clearTimeout(timer);
      proxied = late.response;
    }
  }
  if (proxied && !tooLarge) {
    status = proxied.statusCode ?? 502;
    res.statusCode = status;
    for (const [name, value] of Object.entries(proxied.headers)) {
      if (value !== undefined && isForwardableResponseHeader(name)) res.setHeader(name, value);
    }
    if (!target.accepting) res.shouldKeepAlive = false;
    proxied.on('error', () => res.destroy());
    proxied.pipe(res);
    await finished(res).catch(() => undefined);
  } else {
    forwarding.abort();
    status = tooLarge ? 413 : 500;
    writeEmpty(res, status);
  }
  // not awaited: an invocation whose proxied request never reached the library never finishes
  void invocation.then((inv) => inv.done(status));
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
