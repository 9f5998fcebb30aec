// End to end: HTTP behaviour of the dev host (routing, request/response conversion, keys, limits, admin runs,
// invocation logs) against the fixture app, with a function key configured.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, spawnDevHost, type DevHostHandle } from '../../support/devhost.ts';

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'devhost-app');
const KEY = 'fixture-key-Zq81xK';
const BODY_LIMIT = 4096;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** node:http request with raw (possibly repeated) headers and optional chunked body. */
function raw(
  port: number,
  opts: { method?: string; path: string; headers?: string[]; body?: Buffer | string; chunked?: boolean },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        // a raw header array keeps repeated headers apart; without one, node frames the body (chunked) itself
        headers: opts.headers ?? {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined && opts.chunked) {
      const buf = Buffer.from(opts.body);
      req.write(buf.subarray(0, buf.length / 2));
      req.end(buf.subarray(buf.length / 2));
    } else req.end(opts.body);
  });
}

void describe('dev host HTTP (fixture app, key enforced)', () => {
  let host: DevHostHandle;
  let markers = '';
  const url = (path: string) => `${host.baseUrl}${path}`;
  const get = (path: string, init?: RequestInit) => fetch(url(path), init);

  before(async () => {
    markers = mkdtempSync(join(tmpdir(), 'devhost-http-'));
    host = await spawnDevHost({
      appDir: FIXTURE,
      env: {
        DEVHOST_FUNCTION_KEY: KEY,
        DEVHOST_TIMERS: 'off',
        FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(BODY_LIMIT),
        FIXTURE_MARKER_DIR: markers,
        LOCKED_MS: '250',
        DEVHOST_ALLOWED_HOSTS: 'devhost.test',
      },
    });
  });
  after(async () => {
    await host?.stop('SIGKILL');
    rmSync(markers, { recursive: true, force: true });
  });

  void describe('routing', () => {
    const params = async (path: string) => {
      const res = await get(path);
      if (res.status !== 200) return res.status;
      return ((await res.json()) as { params: Record<string, string> }).params;
    };

    void it('binds route parameters, optional, default and catch-all values', async () => {
      assert.deepEqual(await params('/fx/opt/1'), { a: '1' });
      assert.deepEqual(await params('/fx/opt/1/2'), { a: '1', b: '2' });
      assert.deepEqual(await params('/fx/def'), { v: 'fallback' });
      assert.deepEqual(await params('/fx/def/given'), { v: 'given' });
      assert.deepEqual(await params('/fx/files/a/b%20c/d.txt'), { path: 'a/b c/d.txt' });
      assert.deepEqual(await params('/fx/files'), {});
    });

    void it('applies every constraint kind', async () => {
      const cases: [string, boolean][] = [
        ['/fx/c/int/42', true],
        ['/fx/c/int/4x', false],
        ['/fx/c/alpha/abc', true],
        ['/fx/c/alpha/ab1', false],
        ['/fx/c/guid/6f9619ff-8b86-d011-b42d-00c04fc964ff', true],
        ['/fx/c/guid/not-a-guid', false],
        ['/fx/c/len/abc', true],
        ['/fx/c/len/abcd', false],
        ['/fx/c/lenrange/ab', true],
        ['/fx/c/lenrange/abcde', false],
        ['/fx/c/min/10', true],
        ['/fx/c/min/9', false],
        ['/fx/c/max/10', true],
        ['/fx/c/max/11', false],
        ['/fx/c/range/5', true],
        ['/fx/c/range/6', false],
        ['/fx/c/regex/abbbc', true],
        ['/fx/c/regex/abd', false],
        ['/fx/c/chain/9', true],
        ['/fx/c/chain/11', false],
        ['/fx/c/chain/x', false],
      ];
      for (const [path, ok] of cases) {
        const res = await get(path);
        assert.equal(res.status, ok ? 200 : 404, path);
        if (!ok) assert.equal(await res.text(), '', path);
        else await res.arrayBuffer();
      }
    });

    void it('matches literals case-insensitively, tolerates a trailing slash, and defaults the route to the name', async () => {
      assert.deepEqual(await params('/FX/items/7/DETAILS/'), { id: '7' });
      assert.equal(await (await get('/fx/DefaultRouted')).text(), 'default-route');
      assert.equal(await (await get('/fx/defaultrouted/')).text(), 'default-route');
    });

    void it('answers 404 with an empty body for unknown routes and non-listed methods', async () => {
      for (const [method, path] of [
        ['GET', '/fx/nothing-here'],
        ['GET', '/fx'],
        ['GET', '/api/echo'],
        ['GET', '/fx/post-only'],
        ['DELETE', '/fx/resp/json'],
        ['GET', '/admin/host/status'],
      ] as const) {
        const res = await get(path, { method });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.equal(await res.text(), '');
      }
      const posted = await get('/fx/post-only', { method: 'POST' });
      assert.equal(await posted.text(), 'posted');
    });

    void it('orders routes by function name, first match wins (not specificity, not registration order)', async () => {
      assert.equal(await (await get('/fx/prec/fixed')).text(), 'aaa');
      assert.equal(await (await get('/fx/prec/other')).text(), 'aaa');
    });
  });

  void describe('responses', () => {
    void it('returns 204 when the function returns nothing', async () => {
      const res = await get('/fx/resp/none');
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('content-type'), null);
      assert.equal(await res.text(), '');
    });

    void it('returns 500 with an empty body when the function throws or returns a non-object', async () => {
      for (const path of ['/fx/resp/throw', '/fx/resp/string']) {
        const res = await get(path);
        assert.equal(res.status, 500, path);
        assert.equal(await res.text(), '');
      }
      assert.match(host.logs(), /\[error\] throws: invocation [0-9a-f-]{36} failed: Error: handler exploded/);
    });

    void it('sets content types for jsonBody and string bodies, and copies headers and status', async () => {
      const json = await get('/fx/resp/json');
      assert.equal(json.status, 201);
      assert.equal(json.headers.get('content-type'), 'application/json');
      assert.deepEqual(await json.json(), { ok: true });

      const text = await get('/fx/resp/text');
      assert.equal(text.headers.get('content-type'), 'text/plain;charset=UTF-8');
      assert.equal(await text.text(), 'hello');

      const custom = await get('/fx/resp/headers');
      assert.equal(custom.status, 202);
      assert.equal(custom.headers.get('x-custom'), 'custom-value');
      assert.equal(custom.headers.get('content-type'), 'application/xml');
      assert.equal(await custom.text(), '<ok/>');
    });

    void it('serialises cookies like ASP.NET: escaped value, default path=/, ordered lower-case attributes', async () => {
      const res = await get('/fx/resp/cookies');
      assert.deepEqual(res.headers.getSetCookie(), [
        'fromheader=1',
        'plain=a%20b%3Bc%2F%C3%A9; path=/',
        'full=v; expires=Wed, 02 Jan 2030 03:04:05 GMT; max-age=60; domain=example.com; path=/p; secure; samesite=lax; httponly',
        'cross=x; path=/; secure; samesite=none',
      ]);
    });
  });

  void describe('request shape seen by the handler', () => {
    interface Echo {
      method: string;
      url: string;
      headers: Record<string, string>;
      query: Record<string, string>;
      queryEntries: [string, string][];
      params: Record<string, string>;
      hasBody: boolean;
      body: string;
      functionName: string;
      triggerType: string;
      traceParent: string;
    }

    void it('lower-cases headers, joins repeated ones with ",", keeps empty ones; one query entry per key', async () => {
      const res = await raw(host.port, {
        path: '/fx/echo/a/b?x=1&x=2&Color=red&color=blue&plus=a+b',
        headers: ['X-Multi', 'one', 'x-multi', 'two', 'X-Empty', '', 'Host', 'devhost.test:1234'],
      });
      assert.equal(res.status, 200);
      const echo = JSON.parse(res.body) as Echo;
      assert.equal(echo.headers['x-multi'], 'one,two');
      assert.equal(echo.headers['x-empty'], '', 'the host forwards headers with empty values');
      assert.deepEqual(echo.query, { x: '1,2', Color: 'red,blue', plus: 'a b' });
      assert.deepEqual(echo.queryEntries, [
        ['x', '1,2'],
        ['Color', 'red,blue'],
        ['plus', 'a b'],
      ]);
      assert.deepEqual(echo.params, { rest: 'a/b' });
      assert.equal(echo.url, 'http://devhost.test:1234/fx/echo/a/b?x=1&x=2&Color=red&color=blue&plus=a+b');
      assert.equal(echo.method, 'GET');
      assert.equal(echo.hasBody, false);
      assert.equal(echo.functionName, 'echo');
      assert.equal(echo.triggerType, 'httpTrigger');
    });

    void it('passes a body only with Content-Length > 0: a chunked body is dropped, as the host does without streams', async () => {
      const empty = (await (await get('/fx/echo', { method: 'POST' })).json()) as Echo;
      assert.equal(empty.hasBody, false);
      const posted = (await (await get('/fx/echo', { method: 'PUT', body: 'payload' })).json()) as Echo;
      assert.equal(posted.hasBody, true);
      assert.equal(posted.body, 'payload');
      assert.equal(posted.method, 'PUT');
      const chunked = await raw(host.port, {
        method: 'POST',
        path: '/fx/echo',
        body: 'chunked-body',
        chunked: true,
      });
      const chunkedEcho = JSON.parse(chunked.body) as Echo;
      assert.equal(chunkedEcho.headers['transfer-encoding'], 'chunked');
      assert.equal(chunkedEcho.hasBody, false);
      assert.equal(chunkedEcho.body, '');
    });

    void it('answers 400 to a Host outside the allow-list (DNS rebinding), before any routing', async () => {
      for (const name of ['rebind.attacker.example', 'rebind.attacker.example:80', '10.0.0.7']) {
        const res = await raw(host.port, { path: '/fx/echo/x', headers: ['Host', name] });
        assert.equal(res.status, 400, name);
        assert.equal(res.body, '');
      }
      for (const name of ['localhost', `127.0.0.1:${host.port}`, `[::1]:${host.port}`, 'DevHost.test']) {
        const res = await raw(host.port, { path: '/fx/echo/x', headers: ['Host', name] });
        assert.equal(res.status, 200, name);
      }
    });

    void it('continues an incoming W3C trace', async () => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const echo = (await (
        await get('/fx/echo', { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
      ).json()) as Echo;
      assert.match(echo.traceParent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      assert.doesNotMatch(echo.traceParent, /00f067aa0ba902b7/);
    });
  });

  void describe('request body limit', () => {
    void it('accepts a body at the limit and answers 413 (empty) above it, with or without Content-Length', async () => {
      const atLimit = await get('/fx/echo', { method: 'POST', body: 'a'.repeat(BODY_LIMIT) });
      assert.equal(atLimit.status, 200);
      assert.equal(((await atLimit.json()) as { body: string }).body.length, BODY_LIMIT);

      const over = await get('/fx/echo', { method: 'POST', body: 'a'.repeat(BODY_LIMIT + 1) });
      assert.equal(over.status, 413);
      assert.equal(await over.text(), '');

      const chunked = await raw(host.port, {
        method: 'POST',
        path: '/fx/echo',
        body: 'b'.repeat(BODY_LIMIT * 3),
        chunked: true,
      });
      assert.equal(chunked.status, 413);
      assert.equal(chunked.body, '');
      // the connection stays usable
      assert.equal((await get('/fx/resp/text')).status, 200);
    });
  });

  void describe('function keys', () => {
    void it('requires the key for function and admin levels, from x-functions-key (wins) or ?code=', async () => {
      const cases: [string, Record<string, string>, number][] = [
        ['/fx/secure/fn', {}, 401],
        ['/fx/secure/fn?code=wrong', {}, 401],
        [`/fx/secure/fn?code=${KEY}`, {}, 200],
        ['/fx/secure/fn', { 'x-functions-key': KEY }, 200],
        [`/fx/secure/fn?code=${KEY}`, { 'x-functions-key': 'wrong' }, 401],
        ['/fx/secure/fn?code=wrong', { 'x-functions-key': KEY }, 200],
        [`/fx/secure/fn?code=${KEY}`, { 'x-functions-key': '' }, 401],
        ['/fx/secure/admin', {}, 401],
        ['/fx/secure/admin', { 'x-functions-key': KEY }, 200],
        ['/fx/resp/text', {}, 200],
        ['/fx/resp/text', { 'x-functions-key': 'wrong' }, 200],
      ];
      for (const [path, headers, status] of cases) {
        const res = await get(path, { headers });
        assert.equal(res.status, status, `${path} ${JSON.stringify(headers)}`);
        const body = await res.text();
        if (status === 401) assert.equal(body, '');
      }
      assert.match(
        host.logs(),
        /devhost: function keyed: \[GET\] \S+\/fx\/secure\/fn \(function key required\)/,
      );
      assert.doesNotMatch(host.logs(), /DEVHOST_FUNCTION_KEY is not set/);
    });
  });

  void describe('manual runs: POST /admin/functions/{name}', () => {
    const admin = (name: string, init: RequestInit = {}) =>
      get(`/admin/functions/${name}`, {
        method: 'POST',
        ...init,
        headers: { 'x-functions-key': KEY, 'content-type': 'application/json', ...init.headers },
      });
    const markerLines = (file: string) =>
      readFileSync(join(markers, file), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);

    void it('runs a non-HTTP function with its input (202), waiting when asked', async () => {
      const res = await admin('queueish', {
        body: JSON.stringify({ input: 'job-1' }),
        headers: { 'x-devhost-wait': 'true' },
      });
      assert.equal(res.status, 202);
      assert.equal(await res.text(), '');
      assert.deepEqual(markerLines('queueish.jsonl'), [{ input: 'job-1', functionName: 'queueish' }]);
    });

    void it('guards with the key, 404s unknown functions, refuses HTTP functions and bad JSON', async () => {
      const noKey = await get('/admin/functions/queueish', { method: 'POST', body: '{}' });
      assert.equal(noKey.status, 401);
      assert.equal(await noKey.text(), '');
      assert.equal((await admin('queueish', { headers: { 'x-functions-key': 'wrong' } })).status, 401);
      assert.equal((await admin('nope')).status, 404);
      assert.equal(
        (await get('/admin/functions/queueish', { headers: { 'x-functions-key': KEY } })).status,
        404,
      );
      assert.equal((await admin('echo', { body: '{}' })).status, 400);
      assert.equal((await admin('queueish', { body: 'not json' })).status, 400);
    });

    void it('answers 500 when the run failed and x-devhost-wait is set, 202 immediately otherwise', async () => {
      assert.equal((await admin('failingTick', { headers: { 'x-devhost-wait': 'true' } })).status, 500);
      assert.equal((await admin('failingTick')).status, 202);
      await host.waitForLog(
        /function=failingTick invocationId=\S+ reason=manual outcome=failed[^\n]*\n[^]*function=failingTick invocationId=\S+ reason=manual outcome=failed/,
      );
    });

    void it('never overlaps runs of one timer, and passes the timer object', async () => {
      const results = await Promise.all([
        admin('LockedTick', { headers: { 'x-devhost-wait': 'true' } }),
        admin('lockedtick', { headers: { 'x-devhost-wait': 'true' } }),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        [202, 202],
      );
      const runs = markerLines('lockedTick.jsonl') as {
        start: number;
        end: number;
        isPastDue: boolean;
        scheduleStatus: unknown;
        adjustForDST: boolean;
      }[];
      assert.equal(runs.length, 2);
      const [first, second] = runs as [(typeof runs)[0], (typeof runs)[0]];
      assert.ok(second.start >= first.end, `runs overlapped: ${JSON.stringify(runs)}`);
      assert.equal(first.isPastDue, false);
      assert.equal(first.adjustForDST, true);
      assert.deepEqual(Object.keys(first.scheduleStatus as object), ['last', 'next', 'lastUpdated']);
    });
  });

  void describe('invocation log lines', () => {
    void it('log function, invocation id, status and duration, but never query values, headers or bodies', async () => {
      const secrets = ['SECRETq7Ue2', 'SECRETh9Lm4', 'SECRETb3Xp1'];
      await (
        await get(`/fx/echo/x?code=${secrets[0]}&token=${secrets[0]}`, {
          method: 'POST',
          headers: { 'x-secret': secrets[1] as string, authorization: `Bearer ${secrets[1]}` },
          body: secrets[2],
        })
      ).arrayBuffer();
      await (await get(`/fx/secure/fn?code=${KEY}&other=${secrets[0]}`)).arrayBuffer();
      await (await get(`/fx/secure/fn?code=${secrets[0]}`)).arrayBuffer();
      const logs = await host.waitForLog(
        /function=keyed invocationId=[0-9a-f-]{36} httpStatus=200 durationMs=\d+/,
      );
      assert.match(
        logs,
        /^devhost\.invocation function=echo invocationId=[0-9a-f-]{36} httpStatus=200 durationMs=\d+$/m,
      );
      for (const secret of [...secrets, KEY]) assert.equal(logs.includes(secret), false, secret);
      assert.doesNotMatch(logs, /\?code=|x-secret|authorization/i);
    });
  });
});
