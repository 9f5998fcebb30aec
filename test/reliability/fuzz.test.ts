import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isSubsetOfGranted, parseScopeParam } from '../../shared/oauth/scopes.ts';
import { type BrokerHost, startBrokerHost } from '../support/brokerHost.ts';
import { SecretScanner } from '../support/secrets.ts';

// HTTP fuzz against the dev host serving the production bundle: random methods, known and unknown routes,
// connection names, query strings, headers and bodies, with no key, a wrong key or the valid function key.
// Invariants: never a 5xx; no stored access or refresh token in any response except the access token a token
// request asked for; no function key, client secret or broker key in any response; the store is unchanged.
//
// The valid key is sent too (60 % of requests), under two restrictions that keep "the store is unchanged"
// meaningful: (1) a mutating call (PUT/POST/DELETE/PATCH) with the valid key always carries a JSON body with an
// unknown member — every body schema is strict and the body-less actions (refresh, delete) refuse any body, so
// the broker must reject each of them with a 4xx and change nothing; (2) a `scope` sent with the valid key is
// dropped when the broker would legitimately mint a token for it (a consented scope makes the token endpoint
// refresh and store a token for that resource: a documented write). Everything else — no key, wrong keys,
// unknown routes, reads — must change nothing anyway.

const SEED = Number(process.env.FUZZ_SEED ?? 424242);
const RUNS = 500;
const BATCH = 10; // requests per run, sent concurrently: RUNS × BATCH = 5,000 requests
const GRAPH = 'https://graph.microsoft.com/Mail.Send';
const CONNECTED = ['mailbox', 'restricted'];
const NAMES = [...CONNECTED, 'pending', 'unknown-conn'];
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface FuzzRequest {
  method: string;
  /** Value of the unknown member added to the body of a mutating call with the valid key. */
  mark: string | number | null;
  path: string;
  query: [string, string][];
  rawQuery: string;
  headers: Record<string, string>;
  key: 'none' | 'wrong' | 'valid' | 'valid-in-query';
  body: string | undefined;
}

const headerValue = fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,60}$/);
const nameArb = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9-]{0,70}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map(encodeURIComponent) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'MAILBOX',
      'mail%62ox',
      'mailbox%00',
      '..',
      '.',
      '%2e%2e',
      'mail%2Fbox',
      '%zz',
      '%',
    ),
  },
);
const segmentArb = fc.oneof(
  fc.webSegment(),
  fc.constantFrom(
    'api',
    'connections',
    'manage',
    'token',
    'callback',
    'connect',
    'health',
    '%',
    '%2F',
    '..',
    '',
  ),
);
const ANY_METHOD = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS');
/** The app's routes with their methods; requests mostly use a route's own method, so they reach the app. */
const ROUTES: { template: string; methods: string[] }[] = [
  { template: '/api/connections/{c}/token', methods: ['GET'] },
  { template: '/api/manage/connections', methods: ['GET'] },
  { template: '/api/manage/connections/{c}', methods: ['GET', 'PUT', 'DELETE'] },
  { template: '/api/manage/connections/{c}/{a}', methods: ['POST'] },
  { template: '/api/connect/{c}', methods: ['GET'] },
  { template: '/api/callback', methods: ['GET'] },
  { template: '/api/health', methods: ['GET'] },
];
const knownRouteArb = fc.constantFrom(...ROUTES).chain((route) =>
  fc.record({
    method: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...route.methods) },
      { weight: 1, arbitrary: ANY_METHOD },
    ),
    path: fc
      .tuple(
        nameArb,
        fc.oneof(fc.constantFrom('link', 'refresh', 'import', 'LINK', 'delete', ''), fc.webSegment()),
      )
      .map(([c, a]) => route.template.replace('{c}', c).replace('{a}', a)),
  }),
);
const otherPathArb = fc.oneof(
  fc.array(segmentArb, { maxLength: 6 }).map((s) => `/${s.join('/')}`),
  fc.constantFrom(
    '/',
    '//api//health',
    '/api/../api/health',
    '/API/HEALTH',
    '/api/connections//token',
    '/api/manage/connections/mailbox/link/extra',
    `/${'a'.repeat(5000)}`,
    '/api/connections/mailbox/token/',
  ),
);
const targetArb = fc.oneof(
  { weight: 4, arbitrary: knownRouteArb },
  { weight: 1, arbitrary: fc.record({ method: ANY_METHOD, path: otherPathArb }) },
);
const queryValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    GRAPH,
    'Mail.Send',
    'https://graph.microsoft.com/.default',
    'https://ads.microsoft.com/msads.manage',
    'openid offline_access',
    '',
    'x'.repeat(3000),
  ),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const someQueryArb = fc.array(
  fc.tuple(
    fc.oneof(
      fc.constantFrom('scope', 'code', 'state', 'link', 'error', 'error_description', 'iss', 'ttlSeconds'),
      fc.string({ maxLength: 12 }),
    ),
    queryValue,
  ),
  { minLength: 1, maxLength: 4 },
);
// Half the requests carry no query at all: a strict query check would otherwise stop most of them early.
const queryArb = fc.oneof(fc.constant<[string, string][]>([]), someQueryArb);
const headersArb = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      'content-type',
      'accept',
      'cookie',
      'authorization',
      'origin',
      'x-forwarded-host',
      'x-forwarded-proto',
      'x-ms-client-principal',
      'client-request-id',
    ),
    fc.stringMatching(/^x-[a-z0-9-]{1,15}$/),
  ),
  fc.oneof(
    headerValue,
    fc.constantFrom(
      'application/json',
      'application/x-www-form-urlencoded',
      'text/html',
      'Bearer eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJDb25uZWN0aW9ucy5NYW5hZ2UiXX0.',
      '__Host-token-broker-login=eyJub3QiOiJzZWFsZWQifQ',
      '__Host-token-broker-login=a; __Host-token-broker-login=b',
    ),
  ),
  { maxKeys: 4 },
);
const bodyArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        provider: fc.constantFrom('microsoft', 'other', ''),
        scopes: fc.array(fc.constantFrom(GRAPH, 'openid', 'bad scope'), { maxLength: 3 }),
        refreshToken: fc.string({ maxLength: 20 }),
        ttlSeconds: fc.integer({ min: -10, max: 10_000_000 }),
      })
      .map((o) => JSON.stringify(o)),
  },
  { weight: 1, arbitrary: fc.constant(`{"description":"${'d'.repeat(70_000)}"}`) },
);
const requestArb: fc.Arbitrary<FuzzRequest> = fc
  .record({
    target: targetArb,
    query: queryArb,
    rawQuery: fc.constantFrom('', '', '', '&', '=', '%zz', 'scope', '&&scope=&', '%00=%00'),
    headers: headersArb,
    key: fc.constantFrom('none', 'wrong', 'valid', 'valid', 'valid-in-query'),
    body: bodyArb,
    mark: fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)),
  })
  .map(({ target, ...rest }) => ({ ...rest, ...target }));

let h: BrokerHost;
let tokens: { access: string[]; refresh: string[] };
const secrets = new SecretScanner();
let snapshot: string;
const agent = new Agent({ keepAlive: true, maxSockets: BATCH });
const granted = [GRAPH];

async function storeSnapshot(): Promise<string> {
  const rows: string[] = [];
  for (const meta of await h.store.listMetadata()) {
    const r = await h.store.get(meta.connection);
    rows.push(
      `${meta.connection} ${r?.status} rev=${r?.revision} at=${r?.updatedAt} rt=${r?.tokens?.refreshToken.length}`,
    );
  }
  return rows.join('\n');
}

/** The request as sent, after applying the key policy described at the top. */
function prepare(r: FuzzRequest): {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
} {
  const key = r.key;
  let body = r.body;
  if (key.startsWith('valid') && !SAFE_METHODS.has(r.method)) {
    // An unknown member that every strict body schema refuses, and a body the body-less actions refuse.
    let base: unknown;
    try {
      base = JSON.parse(r.body ?? '');
    } catch {
      base = undefined;
    }
    const object = typeof base === 'object' && base !== null && !Array.isArray(base) ? base : {};
    body = JSON.stringify({ ...object, 'x-fuzz': r.mark });
  }
  const query = r.query.filter(
    ([k, v]) => !(key.startsWith('valid') && k === 'scope' && isSubsetOfGranted(parseScopeParam(v), granted)),
  );
  if (key === 'valid-in-query') query.push(['code', h.functionKey]);
  const search = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const qs = [search, r.rawQuery].filter(Boolean).join('&');
  const headers: Record<string, string> = { ...r.headers };
  delete headers['x-functions-key'];
  if (key === 'valid') headers['x-functions-key'] = h.functionKey;
  if (key === 'wrong') headers['x-functions-key'] = `${h.functionKey.slice(0, -2)}xx`;
  // Node frames a GET body with nothing at all unless told its length; unframed bytes would be a broken request.
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  return {
    method: r.method,
    path: `${r.path}${qs ? `?${qs}` : ''}`,
    headers,
    ...(body === undefined ? {} : { body }),
  };
}

function send(req: ReturnType<typeof prepare>): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const out = request(
      {
        host: '127.0.0.1',
        port: h.host.port,
        agent,
        method: req.method,
        path: req.path,
        headers: req.headers,
        timeout: 15_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: JSON.stringify(res.headers), body }),
        );
        res.on('error', reject);
      },
    );
    out.on('timeout', () => out.destroy(new Error('timeout')));
    out.on('error', reject);
    out.end(req.body);
  });
}

let sent = 0;
const statuses = new Map<string, number>();
async function check(r: FuzzRequest): Promise<void> {
  const req = prepare(r);
  const res = await send(req);
  sent++;
  const code = /"code":"([a-z_]+)"/.exec(res.body)?.[1];
  const label = `${res.status}${code ? ` ${code}` : ''}`;
  statuses.set(label, (statuses.get(label) ?? 0) + 1);
  const where = `${req.method} ${req.path.slice(0, 200)} key=${r.key}`;
  assert.ok(res.status < 500, `${where} → ${res.status} ${res.body.slice(0, 200)}`);
  // Function key, client secret, broker key: never in any response.
  secrets.assertAbsent(res.headers + res.body, `the response to ${where}`);
  for (const rt of tokens.refresh)
    assert.ok(!res.body.includes(rt) && !res.headers.includes(rt), `refresh token in ${where}`);
  let served: string | undefined;
  if (res.status === 200 && req.method === 'GET' && res.body.startsWith('{')) {
    served = (JSON.parse(res.body) as { access_token?: unknown }).access_token as string | undefined;
  }
  for (const at of tokens.access) {
    if (at === served) continue; // the one token this request legitimately asked for
    assert.ok(!res.body.includes(at) && !res.headers.includes(at), `access token in ${where}`);
  }
  if (served !== undefined) {
    assert.ok(tokens.access.includes(served), `${where} served a token the store does not hold`);
    assert.ok(r.key.startsWith('valid'), `${where} served a token without the valid key`);
  }
}

before(async () => {
  h = await startBrokerHost();
  for (const name of CONNECTED) {
    await h.createConnection(name, {
      provider: 'microsoft',
      scopes: [GRAPH],
      ...(name === 'restricted' ? { allowedCallers: ['11111111-2222-4333-8444-555555555555'] } : {}),
    });
    assert.equal((await h.connect(name)).callback.status, 200);
  }
  await h.createConnection('pending');
  // Fill the token cache the way a caller would, so reads during the fuzz are pure cache hits.
  assert.equal((await h.api('GET', 'connections/mailbox/token')).status, 200);
  tokens = { access: [], refresh: [] };
  for (const meta of await h.store.listMetadata()) {
    const rec = await h.store.get(meta.connection);
    if (rec?.tokens) {
      tokens.refresh.push(rec.tokens.refreshToken);
      if (rec.tokens.primary) tokens.access.push(rec.tokens.primary.accessToken);
    }
  }
  assert.equal(tokens.refresh.length, 2);
  secrets.add('function key', h.functionKey);
  secrets.add('client secret', h.clientSecret);
  secrets.add('broker key', h.brokerKey.toString('base64url'));
  snapshot = await storeSnapshot();
});

after(async () => {
  agent.destroy();
  await h?.assertNoSecretsInLogs();
  await h?.close();
});

void describe('HTTP fuzz against the dev host', () => {
  void it(`${RUNS * BATCH} random requests: no 5xx, no leaked token or key, store unchanged (seed ${SEED})`, async (t) => {
    t.diagnostic(`fuzz seed ${SEED} (set FUZZ_SEED to replay); ${RUNS} runs × ${BATCH} concurrent requests`);
    await fc.assert(
      fc.asyncProperty(fc.array(requestArb, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        await Promise.all(batch.map(check));
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true },
    );
    t.diagnostic(
      `${sent} requests sent; answers: ${[...statuses]
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ')}`,
    );
    assert.ok(sent >= RUNS * BATCH);
    assert.equal(await storeSnapshot(), snapshot, 'the store is unchanged');
    // The host is still up and healthy after all of it.
    assert.equal((await h.api('GET', 'health', { key: null })).status, 200);
  });
});
