// End to end: an app in HTTP streams mode on the dev host. Requests are forwarded to the library's own proxy
// server, as the host does (HOST DefaultHttpProxyService; LIB src/http/httpProxy.ts, createStreamRequest).
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, spawnDevHost, type DevHostHandle } from '../../support/devhost.ts';

const APP = join(REPO_ROOT, 'test', 'fixtures', 'devhost-app', 'variants', 'streams');
const BODY_LIMIT = 64 * 1024;

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  query: Record<string, string>;
  params: Record<string, string>;
  hasBody: boolean;
  bodyBytes: number;
  body?: string;
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends `chunks` with Transfer-Encoding: chunked (no Content-Length), or a Content-Length body. */
function send(
  port: number,
  opts: {
    method?: string;
    path: string;
    chunks?: (string | Buffer)[];
    body?: string;
    headers?: Record<string, string>;
  },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.chunks) headers['transfer-encoding'] = 'chunked';
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    const req = httpRequest(
      { host: '127.0.0.1', port, method: opts.method ?? 'POST', path: opts.path, headers },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    for (const chunk of opts.chunks ?? []) req.write(chunk);
    req.end(opts.body);
  });
}

void describe('dev host with HTTP streams (app.setup({ enableHttpStream: true }))', () => {
  let host: DevHostHandle;
  before(async () => {
    host = await spawnDevHost({
      appDir: APP,
      env: { DEVHOST_TIMERS: 'off', FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(BODY_LIMIT) },
    });
  });
  after(async () => {
    await host?.stop();
  });

  void it('announces the mode and forwards to the worker proxy', () => {
    assert.match(
      host.logs(),
      /devhost: HTTP streams on: requests are forwarded to the worker's proxy http:\/\/localhost:\d+\//,
    );
  });

  void it('delivers a chunked body whole (no Content-Length)', async () => {
    const res = await send(host.port, { path: '/api/items/7', chunks: ['{"ttlSeconds":', '60}'] });
    assert.equal(res.status, 201);
    const echo = JSON.parse(res.body) as Echo;
    assert.equal(echo.body, '{"ttlSeconds":60}');
    assert.equal(echo.headers['transfer-encoding'], 'chunked', 'the function sees the original headers');
  });

  void it('delivers a Content-Length body, and no body on GET', async () => {
    const put = JSON.parse(
      (await send(host.port, { method: 'PUT', path: '/api/items/7', body: 'abc' })).body,
    ) as Echo;
    assert.equal(put.body, 'abc');
    const get = JSON.parse((await send(host.port, { method: 'GET', path: '/api/items/7' })).body) as Echo;
    assert.equal(get.hasBody, false);
  });

  void it('builds the URL from the original Host, keeps empty headers, answers with the function status, headers and cookies', async () => {
    const res = await send(host.port, {
      method: 'GET',
      path: '/api/items/7?a=1',
      headers: { 'x-empty': '', host: `localhost:${host.port}` },
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers['x-fixture'], 'streams');
    // the library serialises cookies itself in stream mode: no default path=/ (LIB httpProxy.ts setCookies)
    assert.deepEqual(res.headers['set-cookie'], ['flavour=a%20b; HttpOnly']);
    const echo = JSON.parse(res.body) as Echo;
    assert.equal(echo.url, `http://localhost:${host.port}/api/items/7?a=1`);
    assert.equal(echo.headers['x-empty'], '');
    assert.equal(echo.query.a, '1');
  });

  void it('fills params from route values, query parameters (not code) and a Content-Length JSON body, route values winning', async () => {
    const res = await send(host.port, {
      path: '/api/items/7?scope=mail&code=secret-key&ID=fromquery',
      body: JSON.stringify({ ttlSeconds: 60, name: 'n', nested: { a: 1 }, list: [1], id: 'frombody' }),
    });
    const echo = JSON.parse(res.body) as Echo;
    assert.deepEqual(echo.params, { ttlSeconds: '60', name: 'n', id: '7', scope: 'mail' });
    const chunked = JSON.parse(
      (await send(host.port, { path: '/api/items/8?scope=x', chunks: ['{"name":"n"}'] })).body,
    ) as Echo;
    assert.deepEqual(chunked.params, { scope: 'x', id: '8' }, 'a chunked body is not read for binding data');
  });

  void it('answers 413 when a chunked body passes the size limit', async () => {
    const big = Buffer.alloc(16 * 1024, 0x61);
    const res = await send(host.port, { path: '/api/items/1', chunks: [big, big, big, big, big] });
    assert.equal(res.status, 413);
  });

  void it('answers 500 with an empty body when the function throws', async () => {
    const res = await send(host.port, { method: 'GET', path: '/api/throws' });
    assert.equal(res.status, 500);
    assert.equal(res.body, '');
  });
});
