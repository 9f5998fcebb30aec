/**
 * @module rpcHttp
 * Conversions between node:http and the RPC HTTP shapes the host exchanges with the Node worker
 * (HOST `GrpcMessageConversionExtensions.ToRpcHttp`, worker capabilities `UseNullableValueDictionaryForHttp`,
 * `RawHttpBodyBytes`, `IgnoreEmptyValuedRpcHttpHeaders`), and from the RPC response back to the wire.
 */
import type { ServerResponse } from 'node:http';
import { serializeCookie } from './cookies.ts';
import type { RpcHttpData, RpcNullableString, RpcTypedData } from './rpcTypes.ts';

/**
 * Header names lower-cased, repeated headers joined with `,` (StringValues.ToString()). Empty values are kept: with
 * `UseNullableValueDictionaryForHttp` the host adds every header to `NullableHeaders`; `IgnoreEmptyValuedRpcHttpHeaders`
 * only applies to the older non-nullable map (HOST `GrpcMessageConversionExtensions.ToRpcHttp`).
 */
export function collectHeaders(rawHeaders: readonly string[]): Record<string, RpcNullableString> {
  const joined = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
    const list = joined.get(name);
    if (list) list.push(value);
    else joined.set(name, [value]);
  }
  const out: Record<string, RpcNullableString> = {};
  for (const [name, values] of joined) {
    out[name] = { value: values.join(',') };
  }
  return out;
}

function decodeQueryComponent(text: string): string {
  const spaced = text.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

/**
 * ASP.NET's query collection as the host forwards it: one entry per key (keys compared case-insensitively, the
 * first spelling kept), repeated keys joined with `,` (azure-functions-nodejs-library#168).
 */
export function parseQuery(rawQuery: string): Record<string, RpcNullableString> {
  const query = rawQuery.startsWith('?') ? rawQuery.slice(1) : rawQuery;
  const byKey = new Map<string, { name: string; values: string[] }>();
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeQueryComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decodeQueryComponent(pair.slice(eq + 1));
    if (name === '') continue;
    const key = name.toLowerCase();
    const entry = byKey.get(key);
    if (entry) entry.values.push(value);
    else byKey.set(key, { name, values: [value] });
  }
  const out: Record<string, RpcNullableString> = {};
  for (const { name, values } of byKey.values()) out[name] = { value: values.join(',') };
  return out;
}

export interface HttpRequestParts {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, RpcNullableString>;
  readonly query: Record<string, RpcNullableString>;
  readonly params: Record<string, string>;
  /** Only when the request carried bytes. */
  readonly body: Buffer | undefined;
}

export function toRpcHttpRequest(parts: HttpRequestParts): RpcTypedData {
  const nullableParams: Record<string, RpcNullableString> = {};
  for (const [key, value] of Object.entries(parts.params)) nullableParams[key] = { value };
  const http: RpcHttpData = {
    method: parts.method,
    url: parts.url,
    nullableHeaders: parts.headers,
    nullableQuery: parts.query,
    nullableParams,
  };
  if (parts.body && parts.body.length > 0) http.body = { bytes: parts.body };
  return { http };
}

export class InvalidHttpResultError extends Error {
  override name = 'InvalidHttpResultError';
}

/** Writes the RPC HTTP result; throws (before anything is sent) if it cannot be represented. */
export function writeRpcHttpResponse(res: ServerResponse, http: RpcHttpData): number {
  const status = Number(http.statusCode ?? '200');
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new InvalidHttpResultError('The HTTP result has an invalid status code.');
  }
  try {
    for (const [name, value] of Object.entries(http.headers ?? {})) res.setHeader(name, value);
    const cookies = (http.cookies ?? []).map(serializeCookie);
    if (cookies.length > 0) {
      const existing = res.getHeader('set-cookie');
      const before = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
      res.setHeader('set-cookie', [...before, ...cookies]);
    }
  } catch (err) {
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    throw new InvalidHttpResultError(`The HTTP result has an invalid header: ${(err as Error).message}`);
  }
  const body = http.body;
  const bytes = body?.bytes ?? (typeof body?.string === 'string' ? Buffer.from(body.string) : undefined);
  res.statusCode = status;
  res.end(bytes && bytes.length > 0 ? bytes : undefined);
  return status;
}

/** Host-generated responses (404, 401, 413, 500, 202 …) have an empty body. */
export function writeEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.statusCode = status;
  res.setHeader('content-length', '0');
  res.end();
}
