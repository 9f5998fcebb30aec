import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { buildAuthorizeRequest, driveAuthorization } from '../../../tools/demo-idp/driver.ts';
import { startDemoIdp, type DemoIdp } from '../../../tools/demo-idp/server.ts';

const CLIENT_ID = 'fault-app';
const SECRET = 'fault-secret';
const REDIRECT = 'http://localhost:7071/api/callback';

let idp: DemoIdp;

function tokenRequest(params: Record<string, string>, init: RequestInit = {}): Promise<Response> {
  return fetch(idp.endpoints().token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: CLIENT_ID, client_secret: SECRET, ...params }),
    ...init,
  });
}

const clientCredentials = () =>
  tokenRequest({ grant_type: 'client_credentials', scope: 'api://token-broker/.default' });

async function refreshToken(): Promise<string> {
  const request = buildAuthorizeRequest({
    authorizationEndpoint: idp.endpoints().authorization,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT,
    scope: 'openid offline_access https://graph.microsoft.com/Mail.Send',
  });
  const { params } = await driveAuthorization(request.url);
  const res = await tokenRequest({
    grant_type: 'authorization_code',
    code: params.get('code') ?? '',
    redirect_uri: REDIRECT,
    code_verifier: request.codeVerifier,
  });
  const body = (await res.json()) as { refresh_token: string };
  return body.refresh_token;
}

before(async () => {
  idp = await startDemoIdp({
    quiet: true,
    clients: [{ clientId: CLIENT_ID, clientSecret: SECRET, redirectUris: [REDIRECT] }],
  });
});

after(async () => {
  await idp.close();
});

beforeEach(() => {
  idp.clearFaults();
  idp.setLatency(0);
  idp.stats.reset();
});

void describe('fault injection on the token endpoint', () => {
  void it('answers with a Microsoft-shaped 503 and Retry-After, then recovers', async () => {
    idp.injectTokenFault({ status: 503, retryAfterSeconds: 7 });
    const res = await clientCredentials();
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '7');
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.error, 'temporarily_unavailable');
    assert.deepEqual(body.error_codes, [90033]);
    assert.match(String(body.trace_id), /^[0-9a-f-]{36}$/);
    assert.equal((await clientCredentials()).status, 200);
  });

  void it('answers 429 with the configured error and codes', async () => {
    idp.injectTokenFault({
      status: 429,
      retryAfterSeconds: 60,
      error: 'temporarily_unavailable',
      errorCodes: [90055, 50196],
    });
    const res = await clientCredentials();
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '60');
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(body.error_codes, [90055, 50196]);
    assert.match(String(body.error_description), /^AADSTS90055: /);
  });

  void it('can answer with an HTML page or an empty body', async () => {
    idp.injectTokenFault({ status: 502, body: 'html' });
    idp.injectTokenFault({ status: 500, body: 'empty' });
    const html = await clientCredentials();
    assert.equal(html.status, 502);
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await html.text(), /<h1>502 Bad Gateway<\/h1>/);
    const empty = await clientCredentials();
    assert.equal(empty.status, 500);
    assert.equal(await empty.text(), '');
  });

  void it('can simulate an invalid_grant the broker must treat as terminal', async () => {
    idp.injectTokenFault({ error: 'invalid_grant', errorCodes: [70043], suberror: 'token_expired' });
    const res = await clientCredentials();
    assert.equal(res.status, 400);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.error, 'invalid_grant');
    assert.equal(body.suberror, 'token_expired');
  });

  void it('resets the connection', async () => {
    idp.injectTokenFault({ reset: true });
    await assert.rejects(clientCredentials(), (err: Error) => err instanceof TypeError);
    assert.equal((await clientCredentials()).status, 200);
    assert.equal(idp.tokenLog.at(-2)?.faulted, true);
  });

  void it('delays a response (for client timeouts) and applies `count`', async () => {
    idp.injectTokenFault({ delayMs: 300, count: 2, status: 503 });
    const timedOut = fetch(idp.endpoints().token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
      signal: AbortSignal.timeout(50),
    });
    await assert.rejects(timedOut, { name: 'TimeoutError' });
    const started = Date.now();
    const second = await clientCredentials();
    assert.equal(second.status, 503);
    assert.ok(Date.now() - started >= 280);
    assert.equal((await clientCredentials()).status, 200, 'the fault was used up after two requests');
  });

  void it('only faults the chosen grant type', async () => {
    idp.injectTokenFault({ grantType: 'refresh_token', status: 503 });
    assert.equal((await clientCredentials()).status, 200);
    const rt = await refreshToken();
    const res = await tokenRequest({ grant_type: 'refresh_token', refresh_token: rt });
    assert.equal(res.status, 503);
  });

  void it('phase after: the refresh happens (token rotated) but the response is lost', async () => {
    const rt = await refreshToken();
    idp.injectTokenFault({ grantType: 'refresh_token', phase: 'after', reset: true });
    await assert.rejects(tokenRequest({ grant_type: 'refresh_token', refresh_token: rt }));
    // The lost response rotated the token, so presenting the old one again is a reuse.
    const retry = await tokenRequest({ grant_type: 'refresh_token', refresh_token: rt });
    assert.equal(retry.status, 400);
    assert.deepEqual(((await retry.json()) as Record<string, unknown>).error_codes, [70000]);
  });

  void it('phase after with a status replaces a successful answer', async () => {
    idp.injectTokenFault({ phase: 'after', status: 504, body: 'empty' });
    const res = await clientCredentials();
    assert.equal(res.status, 504);
    assert.equal(await res.text(), '');
  });

  void it('adds latency to every token request', async () => {
    idp.setLatency(150);
    const started = Date.now();
    assert.equal((await clientCredentials()).status, 200);
    assert.ok(Date.now() - started >= 140);
    assert.throws(() => idp.setLatency(-1));
  });

  void it('clearFaults drops pending faults', async () => {
    idp.injectTokenFault({ status: 503, count: 5 });
    idp.clearFaults();
    assert.equal((await clientCredentials()).status, 200);
  });
});

void describe('stats', () => {
  void it('counts token requests by grant type, including faulted and failed ones', async () => {
    idp.injectTokenFault({ status: 503 });
    await clientCredentials();
    await clientCredentials();
    const rt = await refreshToken();
    await tokenRequest({ grant_type: 'refresh_token', refresh_token: rt });
    await tokenRequest({ grant_type: 'refresh_token', refresh_token: 'bogus' });
    assert.equal(idp.stats.clientCredentialsGrants, 2);
    assert.equal(idp.stats.authorizationCodeGrants, 1);
    assert.equal(idp.stats.refreshGrants, 2);
    assert.equal(idp.stats.tokenRequests, 5);
    assert.equal(idp.stats.authorizeRequests, 1);
    assert.deepEqual(
      idp.tokenLog.map((r) => [r.grantType, r.status]),
      [
        ['client_credentials', 503],
        ['client_credentials', 200],
        ['authorization_code', 200],
        ['refresh_token', 200],
        ['refresh_token', 400],
      ],
    );
    const logged = JSON.stringify(idp.tokenLog);
    assert.doesNotMatch(logged, new RegExp(SECRET));
    assert.doesNotMatch(logged, new RegExp(rt));
    idp.stats.reset();
    assert.equal(idp.stats.tokenRequests, 0);
    assert.equal(idp.tokenLog.length, 0);
  });
});
