// Chunked request bodies (Transfer-Encoding: chunked, no Content-Length — what .NET's PutAsJsonAsync sends) on the
// real app served by the dev host. The app runs in HTTP streams mode, where the host forwards the request to the
// worker and the body arrives whole; the dev host forwards exactly like that (tools/devhost/streamProxy.ts).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BrokerHost, startBrokerHost } from '../support/brokerHost.ts';
import { buildRpcModeApp } from '../support/rpcModeApp.ts';

let b: BrokerHost;

/** A request whose JSON body goes out in two chunks with Transfer-Encoding: chunked. */
function chunked(method: string, path: string, json: unknown): Promise<{ status: number; body: string }> {
  const text = JSON.stringify(json);
  const url = new URL(`${b.apiUrl}/${path}`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path: url.pathname,
        headers: {
          'content-type': 'application/json',
          'transfer-encoding': 'chunked',
          'x-functions-key': b.functionKey,
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
      },
    );
    req.on('error', reject);
    req.write(text.slice(0, 5));
    req.end(text.slice(5));
  });
}

before(async () => {
  b = await startBrokerHost();
});
after(async () => {
  // Close first, assert after: a failed scan must not leave the dev host running.
  let logs = '';
  try {
    if (b) logs = await b.collectSecrets();
  } finally {
    await b?.close();
  }
  b?.secrets.assertAbsent(logs, 'dev host logs');
});

void describe('chunked request bodies on the real app (HTTP streams)', () => {
  void it('PUT creates the connection from a chunked body', async () => {
    const res = await chunked('PUT', 'manage/connections/chunky', {
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/Mail.Send'],
      description: 'sent chunked',
    });
    assert.equal(res.status, 201, res.body);
    const view = (await (await b.api('GET', 'manage/connections/chunky')).json()) as { description?: string };
    assert.equal(view.description, 'sent chunked');
  });

  void it('POST link honours a chunked {"ttlSeconds":60}', async () => {
    const before = Date.now();
    const res = await chunked('POST', 'manage/connections/chunky/link', { ttlSeconds: 60 });
    assert.equal(res.status, 201, res.body);
    const { expiresAt, url } = JSON.parse(res.body) as { expiresAt: string; url: string };
    b.secrets.add('connect link', new URL(url).searchParams.get('link'));
    const ttl = (Date.parse(expiresAt) - before) / 1000;
    assert.ok(ttl > 55 && ttl <= 61, `link lives ${ttl} s, not 60`);
  });

  void it('POST link refuses a chunked body it cannot use, loudly', async () => {
    const res = await chunked('POST', 'manage/connections/chunky/link', { ttlSeconds: 5 });
    assert.equal(res.status, 400, res.body);
    assert.match(res.body, /ttlSeconds/);
  });

  void it('POST import reads a chunked refresh token (the provider judges it, not a "no body" error)', async () => {
    const res = await chunked('POST', 'manage/connections/chunky/import', {
      refreshToken: 'not-issued-by-the-idp',
    });
    const problem = JSON.parse(res.body) as { code: string; detail: string };
    // the body was read: the token went to the provider, which refused it
    assert.notEqual(problem.code, 'length_required');
    assert.doesNotMatch(problem.detail, /not valid JSON|takes no body/);
    assert.equal(res.status, 400);
    assert.match(problem.detail, /provider rejected this refresh token/, res.body);
    const empty = await chunked('POST', 'manage/connections/chunky/import', { refreshToken: '' });
    assert.equal(empty.status, 400);
    assert.match(empty.body, /refreshToken/);
  });

  void it('a query parameter does not leak into the route parameters (stream-mode params)', async () => {
    const res = await b.api('GET', 'manage/connections/chunky?extra=1');
    // strict query schemas still refuse unknown parameters; what matters is the path is read from the route
    assert.equal(res.status, 400);
    assert.match(await res.text(), /unexpected query field/);
  });
});

void describe('the same app with HTTP streams off: a chunked body the host drops is refused loudly', () => {
  let rpc: BrokerHost;
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rpc-mode-app-'));
    await buildRpcModeApp(tmp);
    rpc = await startBrokerHost({ appDir: tmp });
  });
  after(async () => {
    await rpc?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  void it('serves in RPC mode (the dev host drops chunked bodies there, as the host does)', () => {
    assert.match(rpc.host.logs(), /HTTP streams off/);
  });

  void it('chunked PUT, link and import → 411 length_required problem+json; the same bodies with Content-Length work', async () => {
    const saved = b;
    b = rpc;
    try {
      for (const [method, path, body] of [
        ['PUT', 'manage/connections/rpc', { provider: 'microsoft' }],
        ['POST', 'manage/connections/rpc/link', { ttlSeconds: 60 }],
        ['POST', 'manage/connections/rpc/import', { refreshToken: 'x' }],
      ] as const) {
        const res = await chunked(method, path, body);
        assert.equal(res.status, 411, `${method} ${path}: ${res.body}`);
        assert.equal((JSON.parse(res.body) as { code: string }).code, 'length_required');
      }
      assert.equal(
        (await rpc.api('PUT', 'manage/connections/rpc', { body: { provider: 'microsoft' } })).status,
        201,
      );
      const link = await rpc.api('POST', 'manage/connections/rpc/link', { body: { ttlSeconds: 60 } });
      assert.equal(link.status, 201);
      rpc.secrets.add(
        'connect link',
        new URL(((await link.json()) as { url: string }).url).searchParams.get('link'),
      );
    } finally {
      b = saved;
    }
  });
});
