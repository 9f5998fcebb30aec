/**
 * The typed caller client against the real app on the dev host (demo IdP, file store): caching until shortly
 * before expiry, one request for concurrent callers, 503 + Retry-After retries (from a loopback proxy that
 * answers 503 the way the broker does while a provider is down), function key and Entra bearer authentication.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { BrokerClient, BrokerClientError, parseRetryAfter } from '../../../clients/node/src/index.ts';
import type { DemoIdp } from '../../../tools/demo-idp/server.ts';
import { type BrokerHost, freePort, startBrokerHost } from '../../support/brokerHost.ts';
import { installContractCheck } from '../../support/contract.ts';
import { BROKER_API, startEntraBrokerHost } from '../../support/entraHost.ts';

let h: BrokerHost;
let requests = 0;
const contract = installContractCheck();
const countingFetch: typeof fetch = (input, init) => {
  requests++;
  return fetch(input, init);
};

before(async () => {
  h = await startBrokerHost();
  await h.createConnection('mail');
  await h.connect('mail');
});
after(async () => {
  await h.close();
  contract.uninstall();
  contract.assertAllValid();
});

function client(extra: Partial<ConstructorParameters<typeof BrokerClient>[0]> = {}) {
  return new BrokerClient({ baseUrl: h.apiUrl, functionKey: h.functionKey, fetch: countingFetch, ...extra });
}

describe('BrokerClient with a function key', () => {
  it('returns the broker’s token and serves repeats from its cache', async () => {
    const c = client();
    requests = 0;
    const first = await c.getAccessToken('mail');
    h.secrets.add('served token', first.access_token);
    assert.equal(first.connection, 'mail');
    for (let i = 0; i < 5; i++) assert.equal(await c.token('mail'), first.access_token);
    assert.equal(requests, 1);
  });

  it('collapses 50 concurrent calls on a cold cache into one request', async () => {
    const c = client();
    requests = 0;
    const tokens = await Promise.all(Array.from({ length: 50 }, () => c.token('mail')));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(requests, 1);
  });

  it('asks again once the token is within its refresh margin (controllable clock)', async () => {
    let now = Date.now();
    const c = client({ now: () => now, refreshBeforeSeconds: 120 });
    requests = 0;
    const t = await c.getAccessToken('mail');
    const expiresAt = Date.parse(t.expires_at);
    const margin = Math.min(120_000, (t.expires_in * 1000) / 2);
    now = expiresAt - margin - 1;
    await c.token('mail');
    assert.equal(requests, 1, 'still inside the window: cached');
    now = expiresAt - margin + 1;
    await c.token('mail');
    assert.equal(requests, 2, 'past the window: asked again');
  });

  it('turns a problem answer into a typed error with its code', async () => {
    const c = client();
    await assert.rejects(c.token('no-such-connection'), (err: unknown) => {
      assert.ok(err instanceof BrokerClientError);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'unknown_connection');
      return true;
    });
    await assert.rejects(client({ functionKey: 'wrong-key' }).token('mail'), {
      status: 401,
      code: 'unauthorized',
    });
  });
});

describe('BrokerClient retries a 503 after Retry-After', () => {
  let proxy: Server;
  let proxyUrl: string;
  let failuresLeft = 0;
  before(async () => {
    // A loopback proxy in front of the dev host: the first answers are the broker's provider_unavailable shape.
    proxy = createServer((req, res) => {
      if (failuresLeft > 0) {
        failuresLeft--;
        res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '7' });
        res.end(
          JSON.stringify({
            type: 'urn:token-broker:problem:provider_unavailable',
            title: 'Service Unavailable',
            status: 503,
            detail: 'The provider is unavailable; try again later.',
            code: 'provider_unavailable',
          }),
        );
        return;
      }
      void fetch(`${h.baseUrl}${req.url ?? ''}`, { headers: { 'x-functions-key': h.functionKey } }).then(
        async (upstream) => {
          res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? '' });
          res.end(await upstream.text());
        },
      );
    });
    const port = await freePort();
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${port}/api`;
  });
  after(async () => {
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });

  it('waits the advertised seconds, then succeeds', async () => {
    const waits: number[] = [];
    failuresLeft = 2;
    const c = new BrokerClient({
      baseUrl: proxyUrl,
      functionKey: h.functionKey,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    const token = await c.token('mail');
    assert.ok(token.length > 0);
    assert.deepEqual(waits, [7000, 7000]);
  });

  it('gives up after maxRetries with the broker’s problem', async () => {
    failuresLeft = 10;
    const waits: number[] = [];
    const c = new BrokerClient({
      baseUrl: proxyUrl,
      functionKey: h.functionKey,
      maxRetries: 2,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    await assert.rejects(c.token('mail'), {
      status: 503,
      code: 'provider_unavailable',
      retryAfterSeconds: 7,
    });
    assert.equal(waits.length, 2);
    failuresLeft = 0;
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-11-29T12:00:00Z');
    assert.equal(parseRetryAfter('12', now), 12);
    assert.equal(parseRetryAfter('Sun, 29 Nov 2026 12:00:30 GMT', now), 30);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });
});

describe('BrokerClient with an Entra credential', () => {
  const READER = '5b1e0c2d-4f3a-4e6b-9c8d-7a6b5c4d3e2f';
  let idp: DemoIdp;
  let e: BrokerHost;
  const readerSecret = randomBytes(24).toString('base64url');

  before(async () => {
    ({ idp, host: e } = await startEntraBrokerHost([
      { clientId: READER, clientSecret: readerSecret, roles: ['Tokens.Read'] },
    ]));
  });
  after(async () => {
    await e.close();
    await idp.close();
  });

  it('sends the credential’s bearer with the function key, and a wrong credential is refused', async () => {
    // A TokenCredential in the shape @azure/identity's credentials have: client credentials at the (demo) IdP.
    const credential = {
      calls: 0,
      async getToken(scopes: string | string[]) {
        this.calls++;
        const res = await fetch(idp.endpoints().token, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_id: READER,
            client_secret: readerSecret,
            scope: Array.isArray(scopes) ? scopes.join(' ') : scopes,
          }),
        });
        const body = (await res.json()) as { access_token: string; expires_in: number };
        return { token: body.access_token, expiresOnTimestamp: Date.now() + body.expires_in * 1000 };
      },
    };
    const c = new BrokerClient({
      baseUrl: e.apiUrl,
      functionKey: e.functionKey,
      credential,
      credentialScope: `${BROKER_API}/.default`,
    });
    // No connection yet: the bearer was accepted (the answer is about the connection, not the caller).
    await assert.rejects(c.token('absent'), { status: 404, code: 'unknown_connection' });
    assert.equal(credential.calls, 1);
    const noBearer = new BrokerClient({ baseUrl: e.apiUrl, functionKey: e.functionKey });
    await assert.rejects(noBearer.token('absent'), { status: 401 });
  });
});
