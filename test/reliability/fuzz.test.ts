import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { stateCookieName } from '../../shared/broker/stateCookie.ts';
import { isSubsetOfGranted, parseScopeParam } from '../../shared/oauth/scopes.ts';
import { type BrokerHost, startBrokerHost } from '../support/brokerHost.ts';
import { REPO_ROOT } from '../support/devhost.ts';
import { SecretScanner } from '../support/secrets.ts';

// HTTP fuzz against the dev host serving the production bundle: random methods, every registered route (read
// from functions/*.ts, so a new route is fuzzed without editing this file), connection names, query strings,
// headers, cookies and bodies (valid JSON, invalid JSON, form data, chunked without Content-Length), with no key,
// a wrong key or the valid function key. Invariants: never a 5xx; no stored access or refresh token in any
// response except the access token a token request asked for; no function key, client secret or broker key in
// any response or log; the protected connections are unchanged.
//
// The valid key is sent to most requests and bodies reach JSON parsing and the broker. What keeps "the
// protected connections are unchanged" meaningful: (1) a mutating call with the valid key on a protected
// connection (mailbox, restricted, pending — under any spelling the host might decode to them) carries either
// invalid JSON or a JSON body with an unknown member, which every strict schema and the body-less actions must
// refuse with a 4xx before changing anything; (2) a `scope` sent with the valid key is dropped when the broker
// would legitimately mint a token for it (a documented write). Scratch connections get the raw random bodies,
// valid ones included, so PUT, import, link, refresh and DELETE run for real there.

const SEED = Number(process.env.FUZZ_SEED ?? 424242);
const RUNS = 500;
const BATCH = 10; // requests per run, sent concurrently: RUNS × BATCH = 5,000 requests
const GRAPH = 'https://graph.microsoft.com/Mail.Send';
const CONNECTED = ['mailbox', 'restricted'];
const PROTECTED = [...CONNECTED, 'pending'];
/** Connections the fuzz may change for real: raw bodies (valid ones included) go only here. */
const SCRATCH = ['scratch-a', 'scratch-b'];
const NAMES = [...PROTECTED, ...SCRATCH, 'unknown-conn'];
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const COOKIE = '__Host-token-broker-login';

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
  /** For a protected connection with the valid key: which refusable body replaces the random one. */
  protectedBody: 'unknown-member' | 'invalid-json';
  /** Send the body chunked (no Content-Length) where the method allows a body. */
  chunked: boolean;
  /** The route template this request was generated from, if any. */
  route?: string;
}

const headerValue = fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,60}$/);
const nameArb = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...NAMES) },
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

/** Every `app.http` registration in functions/*.ts: route template and methods. */
function registeredRoutes(): { template: string; methods: string[] }[] {
  const dir = join(REPO_ROOT, 'functions');
  const out: { template: string; methods: string[] }[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(/app\.http\(\s*'[^']+',\s*\{([\s\S]*?)\}\s*\)/g)) {
      const body = m[1] ?? '';
      const route = /route:\s*'([^']+)'/.exec(body)?.[1];
      const methods = [...(/methods:\s*\[([^\]]*)\]/.exec(body)?.[1]?.matchAll(/'([A-Z]+)'/g) ?? [])].map(
        (x) => x[1] ?? '',
      );
      if (route) out.push({ template: `/api/${route}`, methods: methods.length > 0 ? methods : ['GET'] });
    }
  }
  return out;
}
/** The app's routes with their methods; requests mostly use a route's own method, so they reach the app. */
const ROUTES = registeredRoutes();
const ACTIONS = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('link', 'refresh', 'import') },
  { weight: 1, arbitrary: fc.constantFrom('LINK', 'delete', '', 'x') },
  { weight: 1, arbitrary: fc.webSegment() },
);
/** Fills every `{param}` of a template: connection-like names for `connection`, actions, or web segments. */
const knownRouteArb = fc.constantFrom(...ROUTES).chain((route) => {
  const params = [...route.template.matchAll(/\{([a-z]+)\}/gi)].map((m) => m[1] ?? '');
  return fc.record({
    route: fc.constant(route.template),
    method: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...route.methods) },
      { weight: 1, arbitrary: ANY_METHOD },
    ),
    path: fc
      .tuple(
        ...params.map((p) => (p === 'connection' ? nameArb : p === 'action' ? ACTIONS : fc.webSegment())),
      )
      .map((values) => params.reduce((t, p, i) => t.replace(`{${p}}`, String(values[i])), route.template)),
  });
});
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
  { weight: 9, arbitrary: knownRouteArb },
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
/** What a provider sends back to the callback (state + code or error): passes the strict query check, so the
 * request goes on to the login cookie and the broker. */
const callbackQueryArb = fc
  .tuple(
    fc.stringMatching(/^[A-Za-z0-9_-]{1,60}$/),
    fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9._-]{1,80}$/).map((c): [string, string] => ['code', c]),
      fc.constantFrom<[string, string]>(['error', 'access_denied'], ['error', '\u001b[31mred']),
    ),
  )
  .map(([state, pair]): [string, string][] => [['state', state], pair]);
// A third of the requests carry no query at all: a strict query check would otherwise stop most of them early.
const queryArb = fc.oneof(fc.constant<[string, string][]>([]), someQueryArb, callbackQueryArb);
/** Login cookies: random, sealed-looking, broken percent-encoding, duplicated, and foreign cookies. */
const cookieArb = fc.oneof(
  fc.string({ maxLength: 60 }).map((v) => `${COOKIE}=${v.replace(/[;\r\n]/g, '')}`),
  fc.base64String({ maxLength: 200 }).map((v) => `${COOKIE}=${v}`),
  fc.constantFrom(
    `${COOKIE}=%E0%A4%A`,
    `${COOKIE}=%`,
    `${COOKIE}=abc%zz`,
    `${COOKIE}=%ff%fe`,
    `${COOKIE}=""`,
    `${COOKIE}==`,
    `${COOKIE}`,
    `${COOKIE}=a; ${COOKIE}=b`,
    `other=%E0%A4%A; ${COOKIE}=x`,
    ';;;',
    '=',
    `${COOKIE}-0123456789ab=%`,
  ),
  fc
    .array(fc.tuple(fc.stringMatching(/^[!#-+.-:<>-~]{1,12}$/), fc.string({ maxLength: 20 })), {
      maxLength: 4,
    })
    .map((pairs) => pairs.map(([k, v]) => `${k}=${v.replace(/[;\r\n]/g, '')}`).join('; ')),
);
const headersArb = fc
  .dictionary(
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
        'content-encoding',
        'if-none-match',
        'range',
      ),
      fc.stringMatching(/^x-[a-z0-9-]{1,15}$/),
    ),
    fc.oneof(
      headerValue,
      cookieArb,
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
  )
  .chain((headers) =>
    // A third of the requests carry a login cookie whatever else they have.
    fc.option(cookieArb, { freq: 2 }).map((c) => (c === null ? headers : { ...headers, cookie: c })),
  );
const invalidJsonArb = fc.oneof(
  fc.string({ maxLength: 200 }).filter((t) => {
    try {
      JSON.parse(t);
      return false;
    } catch {
      return true;
    }
  }),
  fc.json({ maxDepth: 3 }).map((t) => (t.length > 1 ? t.slice(0, -1) : `${t}{`)),
  fc.constantFrom(
    '{"refreshToken":',
    '{"a":1,}',
    "{'a':1}",
    '\ufeff{}',
    '{"a":"\\ud800"',
    'nul',
    '[',
    '\u0000',
  ),
);
const bodyArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 2, arbitrary: invalidJsonArb },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom('{}', '{"ttlSeconds":60}', '{"scopes":[]}', 'a=b&c=d') },
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
    key: fc.constantFrom('none', 'wrong', 'valid', 'valid', 'valid', 'valid-in-query'),
    body: bodyArb,
    mark: fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)),
    protectedBody: fc.constantFrom('unknown-member', 'invalid-json'),
    chunked: fc.boolean(),
    jsonType: fc.boolean(),
    // The login cookie is named after the state (stateCookieName), so only a cookie of that name reaches the
    // cookie decoding of a callback-shaped request: broken encodings, sealed-looking and random values.
    stateCookie: fc.option(
      fc.oneof(
        fc.constantFrom('%E0%A4%A', '%', 'abc%zz', '%ff%fe', '""', 'eyJub3QiOiJzZWFsZWQifQ'),
        fc.base64String({ maxLength: 120 }),
      ),
      { freq: 2 },
    ),
  })
  .map(({ target, jsonType, stateCookie, ...rest }) => {
    // A valid-key mutating request mostly declares JSON, so it gets past the media-type check to the parser.
    let headers =
      jsonType && rest.key.startsWith('valid') && !SAFE_METHODS.has(target.method)
        ? { ...rest.headers, 'content-type': 'application/json' }
        : rest.headers;
    const state = rest.query.find(([k]) => k === 'state')?.[1];
    if (state !== undefined && stateCookie !== null) {
      const own = `${stateCookieName(state)}=${stateCookie}`;
      headers = { ...headers, cookie: headers.cookie ? `${headers.cookie}; ${own}` : own };
    }
    return { ...rest, headers, ...target };
  });

let h: BrokerHost;
let tokens: { access: string[]; refresh: string[] };
/** What must never be in a log line: keys, every token and code. */
const secrets = new SecretScanner();
/** What must never be in an answer: keys, refresh tokens and codes. */
const responseSecrets = new SecretScanner();
let snapshot: string;
const agent = new Agent({ keepAlive: true, maxSockets: BATCH });
const granted = [GRAPH];

async function storeSnapshot(): Promise<string> {
  const rows: string[] = [];
  for (const name of PROTECTED) {
    const r = await h.store.get(name);
    rows.push(
      `${name} ${r?.status} rev=${r?.revision} at=${r?.updatedAt} rt=${r?.tokens?.refreshToken.length} ${JSON.stringify(r?.settings)}`,
    );
  }
  return rows.join('\n');
}

/** The connection a path names, as the host would decode it; undefined for paths without one. */
function connectionOf(path: string): string | undefined {
  const m = /^\/api\/(?:manage\/connections|connections|connect)\/([^/?]*)/i.exec(path);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1] ?? '').toLowerCase();
  } catch {
    return m[1]?.toLowerCase();
  }
}

/** True when a request may change a connection it names: anything but an exact scratch name counts. */
function touchesProtected(path: string): boolean {
  const name = connectionOf(path);
  return name === undefined || !SCRATCH.includes(name) || /^\/api\/manage\/connections\/?$/i.test(path);
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
  if (key.startsWith('valid') && !SAFE_METHODS.has(r.method) && touchesProtected(r.path)) {
    if (r.protectedBody === 'invalid-json' && body !== undefined && body.length > 0 && !isJson(body)) {
      // Left as it is: the parser (or the body-less action's emptiness check) must refuse it.
    } else if (r.protectedBody === 'invalid-json') {
      body = `${body ?? ''}{"x-fuzz":`;
    } else {
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
  }
  const query = r.query.filter(
    ([k, v]) => !(key.startsWith('valid') && k === 'scope' && isSubsetOfGranted(parseScopeParam(v), granted)),
  );
  if (key === 'valid-in-query') query.push(['code', h.functionKey]);
  const search = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const qs = [search, r.rawQuery].filter(Boolean).join('&');
  const headers: Record<string, string> = { ...r.headers };
  delete headers['x-functions-key'];
  delete headers['content-length'];
  delete headers['transfer-encoding'];
  if (key === 'valid') headers['x-functions-key'] = h.functionKey;
  if (key === 'wrong') headers['x-functions-key'] = `${h.functionKey.slice(0, -2)}xx`;
  // Node frames a body without Content-Length as chunked only for methods that usually carry one; for the others
  // unframed bytes would be a broken request, so they always get a length.
  const chunkable = ['POST', 'PUT', 'PATCH'].includes(r.method);
  if (body !== undefined && !(r.chunked && chunkable))
    headers['content-length'] = String(Buffer.byteLength(body));
  return {
    method: r.method,
    path: `${r.path}${qs ? `?${qs}` : ''}`,
    headers,
    ...(body === undefined ? {} : { body }),
  };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
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
/** Requests with the valid key and a route's own method that the app itself answered, per route template. */
const reached = new Map<string, number>();
let answeredByApp = 0;
async function check(r: FuzzRequest): Promise<void> {
  const req = prepare(r);
  const res = await send(req);
  sent++;
  const code = /"code":"([a-z_]+)"/.exec(res.body)?.[1];
  const label = `${res.status}${code ? ` ${code}` : ''}`;
  statuses.set(label, (statuses.get(label) ?? 0) + 1);
  // The host's own 401/404/405 answers have an empty body; the app always says something (JSON, HTML, problem).
  const byApp = res.body.length > 0;
  if (byApp) answeredByApp++;
  const route = ROUTES.find((x) => x.template === r.route);
  if (byApp && route && r.key.startsWith('valid') && route.methods.includes(r.method))
    reached.set(route.template, (reached.get(route.template) ?? 0) + 1);
  const where = `${req.method} ${req.path.slice(0, 200)} key=${r.key}`;
  assert.ok(res.status < 500, `${where} → ${res.status} ${res.body.slice(0, 200)}`);
  // Function key, client secret, broker key: never in any response.
  responseSecrets.assertAbsent(res.headers + res.body, `the response to ${where}`);
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
  responseSecrets.add('function key', h.functionKey);
  responseSecrets.add('client secret', h.clientSecret);
  responseSecrets.add('broker key', h.brokerKey.toString('base64url'));
  // Refresh tokens and codes the IdP ever issued never belong in an answer (access tokens are checked below).
  responseSecrets.watch(() => h.idp.issued().filter((i) => i.kind === 'refresh_token' || i.kind === 'code'));
  secrets.watch(() => h.idp.issued());
});

after(async () => {
  // Close first, assert after: a failed scan must not leave the dev host running.
  agent.destroy();
  let logs = '';
  try {
    if (h) {
      logs = h.host.logs();
      for (const meta of await h.store.listMetadata()) {
        const r = await h.store.get(meta.connection);
        secrets.add(`${meta.connection} refresh token`, r?.tokens?.refreshToken);
        secrets.add(`${meta.connection} access token`, r?.tokens?.primary?.accessToken);
      }
    }
  } finally {
    await h?.close();
  }
  // Everything the IdP ever issued (watched since `before`), keys and stored tokens: in no log line.
  secrets.assertAbsent(logs, 'dev host logs');
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
    t.diagnostic(
      `${answeredByApp} answered by the app; valid-key requests reaching each route: ${ROUTES.map(
        (r) => `${r.template} ×${reached.get(r.template) ?? 0}`,
      ).join(', ')}`,
    );
    assert.ok(sent >= RUNS * BATCH);
    assert.equal(await storeSnapshot(), snapshot, 'the protected connections are unchanged');
    // Depth, not just volume: most requests reach the app, and every route is reached with the valid key.
    assert.ok(answeredByApp >= sent * 0.6, `only ${answeredByApp} of ${sent} requests reached the app`);
    for (const route of ROUTES)
      assert.ok((reached.get(route.template) ?? 0) >= 10, `${route.template} was barely reached`);
    // The host is still up and healthy after all of it.
    assert.equal((await h.api('GET', 'health', { key: null })).status, 200);
  });
});
