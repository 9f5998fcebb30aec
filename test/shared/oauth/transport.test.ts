/**
 * The provider transport against a node:http server on loopback: what it sends, that it never follows a
 * redirect (a token endpoint that redirects is answered as is), and that a stalled provider cannot hold a call
 * past the deadline even when the caller's own signal never fires.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createTransport } from '../../../shared/oauth/transport.ts';

interface Seen {
  method: string | undefined;
  path: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
}

const BLACKHOLE = `
const server = require('node:net').createServer();
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n');
  setImmediate(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
});`;

describe('createTransport', () => {
  const seen: Seen[] = [];
  const stalled = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  let server: Server;
  let base: string;

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, path: req.url, headers: req.headers, body });
        switch (req.url) {
          case '/token':
            res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"a"}');
            return;
          case '/moved':
            res.writeHead(302, { location: '/token' }).end();
            return;
          case '/no-headers':
            stalled.add(res); // never answers
            return;
          case '/no-body':
            res.writeHead(200, { 'content-type': 'application/json' });
            res.flushHeaders();
            stalled.add(res); // headers, then nothing
            return;
          case '/trickle': {
            // A body that keeps coming, a byte every few milliseconds, forever: no idle timeout ever fires.
            res.writeHead(200, { 'content-type': 'text/plain' });
            const timer = setInterval(() => res.write('x'), 5);
            timers.add(timer);
            res.on('close', () => clearInterval(timer));
            return;
          }
          default:
            res.writeHead(404).end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const t of timers) clearInterval(t);
    for (const res of stalled) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends the method, headers and form body it is given and returns the answer', async () => {
    const transport = createTransport({ timeoutMs: 5000 });
    try {
      const response = await transport.fetch(`${base}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-test': 'one' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'rt-1' }),
      });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { access_token: 'a' });
    } finally {
      await transport.close();
    }
    const last = seen.at(-1);
    assert.equal(last?.method, 'POST');
    assert.equal(last?.headers['x-test'], 'one');
    assert.equal(last?.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(last?.body, 'grant_type=refresh_token&refresh_token=rt-1');
  });

  it('does not follow a redirect: the caller sees the 302', async () => {
    const transport = createTransport({ timeoutMs: 5000 });
    const before = seen.length;
    let status: number;
    try {
      status = (await transport.fetch(`${base}/moved`, { method: 'POST', body: 'a=1' })).status;
    } finally {
      await transport.close();
    }
    assert.equal(status, 302);
    assert.deepEqual(
      seen.slice(before).map((s) => s.path),
      ['/moved'],
    );
  });

  it("honours the caller's signal", async () => {
    const transport = createTransport({ timeoutMs: 60_000 });
    const controller = new AbortController();
    const pending = transport.fetch(`${base}/no-headers`, { method: 'GET', signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await assert.rejects(pending, /caller gave up/);
    await transport.close();
  });

  it('a provider that never answers fails after the timeout even when the caller signal never fires', async () => {
    const transport = createTransport({ timeoutMs: 100 });
    const never = new AbortController().signal;
    await assert.rejects(transport.fetch(`${base}/no-headers`, { method: 'GET', signal: never }));
    await transport.close();
  });

  it('a body that stops coming fails after the timeout even when the caller signal never fires', async () => {
    const transport = createTransport({ timeoutMs: 100 });
    const never = new AbortController().signal;
    const response = await transport.fetch(`${base}/no-body`, { method: 'GET', signal: never });
    await assert.rejects(response.text());
    await transport.close();
  });

  it('without a caller signal the whole call, body included, is bounded by the timeout', async () => {
    const transport = createTransport({ timeoutMs: 200 });
    const response = await transport.fetch(`${base}/trickle`, { method: 'GET' });
    await assert.rejects(
      response.text(),
      (err: Error) => err.name === 'TimeoutError' || err.name === 'AbortError',
    );
    await transport.close();
  });

  it('a host that never completes the connection fails at the connect timeout, not a caller deadline later', async () => {
    // A listener whose process never returns to its event loop never accepts: once its backlog is full the
    // kernel drops further SYNs, which is what a black-holed provider address looks like from here.
    const blackhole = spawn(process.execPath, ['-e', BLACKHOLE], { stdio: ['ignore', 'pipe', 'inherit'] });
    const fillers: Socket[] = [];
    let failure: unknown;
    try {
      const [chunk] = (await once(blackhole.stdout, 'data')) as [Buffer];
      const port = Number(String(chunk).trim());
      // Fill the accept queue (backlog 1 holds two connections); the rest stay in SYN_SENT like the call below.
      let connected = 0;
      await new Promise<void>((resolve) => {
        for (let i = 0; i < 6; i++) {
          const socket = connect(port, '127.0.0.1').on('error', () => {});
          socket.on('connect', () => {
            if (++connected === 2) resolve();
          });
          fillers.push(socket);
        }
      });
      const transport = createTransport({ timeoutMs: 100 });
      try {
        await transport.fetch(`http://127.0.0.1:${port}/token`, {
          method: 'GET',
          signal: AbortSignal.timeout(8000),
        });
      } catch (err) {
        failure = err;
      } finally {
        await transport.close();
      }
    } finally {
      for (const socket of fillers) socket.destroy();
      blackhole.kill();
      if (blackhole.exitCode === null && blackhole.signalCode === null) await once(blackhole, 'exit');
    }
    assert.equal(
      (failure as { cause?: { code?: string } } | undefined)?.cause?.code,
      'UND_ERR_CONNECT_TIMEOUT',
    );
  });

  it('after close, no more calls are made', async () => {
    const transport = createTransport({ timeoutMs: 5000 });
    await transport.close();
    const before = seen.length;
    await assert.rejects(transport.fetch(`${base}/token`, { method: 'GET' }));
    assert.equal(seen.length, before);
  });
});
