/**
 * @module streamProxy
 * HTTP streams (`app.setup({ enableHttpStream: true })`), as the host and the `@azure/functions` library do them:
 * - the library answers `getCapabilities` with `HttpUri`, a plain HTTP server it runs inside the worker
 *   (`src/ProgrammingModel.ts`, `src/http/httpProxy.ts` `setupHttpProxy`);
 * - for each HTTP invocation the host forwards the client's request there with YARP (HOST
 *   `src/WebJobs.Script.Grpc/Server/DefaultHttpProxyService.cs` `StartForwarding`, YARP `HttpTransformer.Default`:
 *   X-Forwarded-For/-Proto/-Host added, Host replaced by the destination's, hop-by-hop headers dropped) with an
 *   `x-ms-invocation-id` header (HOST `ScriptConstants.HttpProxyCorrelationHeader`), the body streamed as it
 *   arrives — chunked bodies included;
 * - the gRPC invocation carries an empty `http` value (HOST `GrpcMessageConversionExtensions.ToRpcHttp`,
 *   `EmptyRpcHttp` when proxying) plus trigger metadata; the library rebuilds the request from the proxied
 *   request, the `Headers` metadata and every other string-valued metadata entry as `params`
 *   (`src/http/HttpRequest.ts` `createStreamRequest`);
 * - the library writes the response on the proxied request's response (`sendProxyResponse`) and the host copies
 *   it to the client.
 * Trigger metadata is the HTTP extension's binding data (EXT `HttpTriggerAttributeBindingProvider.GetRequestBindingData`,
 * `Utility.ApplyBindingData`): top-level scalar properties of a JSON body (only when Content-Length > 0), then
 * each query parameter except `code`, then route values — later ones win, keys case-insensitive (first spelling
 * kept) — plus `Query` and `Headers` dictionaries.
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { RpcNullableString, RpcTypedData } from './rpcTypes.ts';

/** Request headers YARP never forwards (`RequestUtilities` hop-by-hop list); Host is replaced. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** Pooled connections to the worker's proxy, like the host's SocketsHttpHandler. */
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

class CaseInsensitiveData {
  readonly #entries = new Map<string, { name: string; value: RpcTypedData }>();
  set(name: string, value: RpcTypedData): void {
    const key = name.toLowerCase();
    const existing = this.#entries.get(key);
    // a .NET dictionary with OrdinalIgnoreCase keeps the first spelling of a key when its value is replaced
    this.#entries.set(key, { name: existing?.name ?? name, value });
  }
  toRecord(): Record<string, RpcTypedData> {
    const out: Record<string, RpcTypedData> = {};
    for (const { name, value } of this.#entries.values()) out[name] = value;
    return out;
  }
}

function jsonScalarProperties(body: Buffer): [string, string][] {
  const text = body.toString('utf8').trim();
  if (!text.startsWith('{') || !text.endsWith('}')) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return []; // "it's not an error if the incoming message isn't JSON" (EXT Utility.ApplyBindingData)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return [];
  const out: [string, string][] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    // arrays are skipped, objects kept as JSON (not strings, so not params), scalars become their text
    if (typeof value === 'string') out.push([name, value]);
    else if (typeof value === 'number') out.push([name, String(value)]);
    else if (typeof value === 'boolean') out.push([name, value ? 'True' : 'False']);
  }
  return out;
}

export interface BindingDataParts {
  readonly headers: Record<string, RpcNullableString>;
  readonly query: Record<string, RpcNullableString>;
  readonly params: Record<string, string>;
  /** The buffered body when the request declared Content-Length > 0; undefined for chunked/no body. */
  readonly contentLengthBody: Buffer | undefined;
}

/** The trigger metadata the host sends with a proxied HTTP invocation. */
export function streamTriggerMetadata(parts: BindingDataParts): Record<string, RpcTypedData> {
  const data = new CaseInsensitiveData();
  if (parts.contentLengthBody) {
    for (const [name, value] of jsonScalarProperties(parts.contentLengthBody))
      data.set(name, { string: value });
  }
  const queryDict: Record<string, string> = {};
  for (const [name, { value }] of Object.entries(parts.query)) {
    queryDict[name] = value ?? '';
    if (name.toLowerCase() !== 'code') data.set(name, { string: value ?? '' });
  }
  for (const [name, value] of Object.entries(parts.params)) data.set(name, { string: value });
  const headerDict: Record<string, string> = {};
  for (const [name, { value }] of Object.entries(parts.headers)) headerDict[name] = value ?? '';
  data.set('Query', { json: JSON.stringify(queryDict) });
  data.set('Headers', { json: JSON.stringify(headerDict) });
  return data.toRecord();
}

export interface ForwardOptions {
  readonly workerUri: URL;
  readonly invocationId: string;
  readonly method: string;
  /** Path and query as received. */
  readonly target: string;
  readonly host: string;
  readonly clientAddress: string | undefined;
  readonly headers: IncomingHttpHeaders;
  /** Either the buffered body or the live request stream. */
  readonly body: Buffer | NodeJS.ReadableStream;
}

export interface Forwarding {
  /** The worker's answer (status and headers known); rejects if the proxy call failed. */
  readonly response: Promise<IncomingMessage>;
  abort(): void;
}

/** Forwards the request to the worker's proxy as YARP's default transformer would. */
export function forwardToWorker(options: ForwardOptions): Forwarding {
  const connectionTokens = new Set(
    String(options.headers.connection ?? '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(options.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || connectionTokens.has(name)) continue;
    headers[name] = value;
  }
  const forwardedFor = options.clientAddress?.replace(/^::ffff:/, '');
  if (forwardedFor) headers['x-forwarded-for'] = forwardedFor;
  headers['x-forwarded-proto'] = 'http';
  headers['x-forwarded-host'] = options.host;
  headers['x-ms-invocation-id'] = options.invocationId;
  const req = httpRequest({
    agent,
    host: options.workerUri.hostname,
    port: options.workerUri.port,
    method: options.method,
    path: options.target,
    headers,
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  req.on('error', () => undefined); // errors after the answer started are handled where it is copied
  if (Buffer.isBuffer(options.body)) req.end(options.body);
  // a failing body (client gone, size limit) tears the forwarded request down instead of crashing the host
  else pipeline(options.body, req).catch(() => req.destroy());
  return {
    response,
    abort: () => req.destroy(),
  };
}

/** Response headers the host copies back to the client (all but hop-by-hop, as YARP). */
export function isForwardableResponseHeader(name: string): boolean {
  return !HOP_BY_HOP.has(name.toLowerCase());
}
