import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { generate } from 'selfsigned';
import { type ClientCredential, parseConfig } from '../../../shared/config.ts';
import {
  ASSERTION_RENEW_BEFORE_MS,
  type AssertionSource,
  buildClientAuth,
} from '../../../shared/oauth/clientAuth.ts';
import { startDemoIdp } from '../../../tools/demo-idp/server.ts';
import { CLIENT_ID, freePort, startBrokerHost } from '../../support/brokerHost.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TOKEN_ENDPOINT =
  'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token';
const as: oauth.AuthorizationServer = {
  issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0',
  token_endpoint: TOKEN_ENDPOINT,
};
const client: oauth.Client = { client_id: 'app id+/=' };

let pems: { private: string; cert: string };
let bundle: string;

before(async () => {
  pems = await generate([{ name: 'commonName', value: 'token-broker client' }], {
    keySize: 2048,
    algorithm: 'sha256',
  });
  // What MICROSOFT_CLIENT_CERTIFICATE holds (Key Vault exports certificate + key in one PEM).
  bundle = `${pems.private}\n${pems.cert}\n`;
});

/** Runs a ClientAuth and returns what it put on the request. */
async function apply(auth: oauth.ClientAuth, server: oauth.AuthorizationServer = as) {
  const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'rt-value' });
  const headers = new Headers();
  await auth(server, client, body, headers);
  return { body, headers };
}

function certificateCredential(): ClientCredential {
  const credential = parseConfig({ MICROSOFT_CLIENT_ID: 'x', MICROSOFT_CLIENT_CERTIFICATE: bundle }).providers
    .microsoft?.credential;
  assert.equal(credential?.kind, 'certificate');
  return credential;
}

describe('client secret', () => {
  const secret = 'S3cr3t +/=&%~';

  it('client_secret_post puts id and secret in the body, nothing in headers', async () => {
    const { body, headers } = await apply(
      buildClientAuth({ kind: 'secret', secret, method: 'client_secret_post' }),
    );
    assert.equal(body.get('client_id'), client.client_id);
    assert.equal(body.get('client_secret'), secret);
    assert.equal(headers.get('authorization'), null);
  });

  it('client_secret_basic form-encodes id and secret (RFC 6749 §2.3.1) into the Authorization header only', async () => {
    const { body, headers } = await apply(
      buildClientAuth({ kind: 'secret', secret, method: 'client_secret_basic' }),
    );
    const value = /^Basic (.+)$/.exec(headers.get('authorization') ?? '')?.[1] ?? '';
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    assert.equal(decoded, 'app+id%2B%2F%3D:S3cr3t+%2B%2F%3D%26%25%7E');
    const [id = '', pw = ''] = decoded.split(':');
    const unform = (v: string) => decodeURIComponent(v.replace(/\+/g, ' '));
    assert.deepEqual([unform(id), unform(pw)], [client.client_id, secret]);
    assert.equal(body.has('client_secret'), false);
    assert.equal(body.has('client_assertion'), false);
  });
});

describe('certificate (private_key_jwt)', () => {
  it('signs a Microsoft-shaped assertion: PS256, typ JWT, x5t#S256, aud = token endpoint, iss = sub = client id', async () => {
    const auth = buildClientAuth(certificateCredential());
    const { body, headers } = await apply(auth);
    assert.equal(body.get('client_assertion_type'), JWT_BEARER);
    assert.equal(body.get('client_id'), client.client_id);
    assert.equal(body.has('client_secret'), false);
    assert.equal(headers.get('authorization'), null);
    const assertion = body.get('client_assertion') ?? '';

    const header = decodeProtectedHeader(assertion);
    const der = new X509Certificate(pems.cert).raw;
    assert.deepEqual(header, {
      alg: 'PS256',
      typ: 'JWT',
      'x5t#S256': createHash('sha256').update(der).digest('base64url'),
    });

    const { payload } = await jwtVerify(assertion, await importX509(pems.cert, 'PS256'), {
      audience: TOKEN_ENDPOINT,
      issuer: client.client_id,
      subject: client.client_id,
      algorithms: ['PS256'],
    });
    const nowS = Math.floor(Date.now() / 1000);
    assert.ok(typeof payload.jti === 'string' && payload.jti.length >= 16);
    assert.ok(typeof payload.iat === 'number' && Math.abs(payload.iat - nowS) <= 5);
    assert.ok(
      typeof payload.exp === 'number' && payload.exp - payload.iat > 0 && payload.exp - payload.iat <= 600,
    );

    const again = decodeJwt((await apply(auth)).body.get('client_assertion') ?? '');
    assert.notEqual(again.jti, payload.jti, 'jti is unique per assertion');
  });

  it('addresses each assertion to the token endpoint of the request it goes with', async () => {
    const auth = buildClientAuth(certificateCredential());
    const other = 'https://login.microsoftonline.us/common/oauth2/v2.0/token';
    assert.equal(
      decodeJwt((await apply(auth, { ...as, token_endpoint: other })).body.get('client_assertion') ?? '').aud,
      other,
    );
    assert.equal(decodeJwt((await apply(auth)).body.get('client_assertion') ?? '').aud, TOKEN_ENDPOINT);
  });

  it('without a token endpoint in the metadata, addresses the assertion to the issuer (oauth4webapi default)', async () => {
    const auth = buildClientAuth(certificateCredential());
    const payload = decodeJwt((await apply(auth, { issuer: as.issuer })).body.get('client_assertion') ?? '');
    assert.equal(payload.aud, as.issuer);
  });

  it('is not verifiable with another certificate', async () => {
    const stranger = await generate([{ name: 'commonName', value: 'stranger' }], { keySize: 2048 });
    const assertion =
      (await apply(buildClientAuth(certificateCredential()))).body.get('client_assertion') ?? '';
    await assert.rejects(jwtVerify(assertion, await importX509(stranger.cert, 'PS256')));
  });

  it('refuses a non-RSA key at start-up', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString();
    assert.throws(
      () => buildClientAuth({ kind: 'certificate', privateKeyPem: ec, certificatePem: pems.cert }),
      /RSA/,
    );
  });
});

describe('managed identity as federated credential', () => {
  function source(lifetimeMs: number) {
    let calls = 0;
    let fail = false;
    const s: AssertionSource & { calls: () => number; failNext: () => void } = {
      async getAssertion() {
        calls++;
        await new Promise((r) => setTimeout(r, 5));
        if (fail) {
          fail = false;
          throw new Error('IMDS unavailable');
        }
        return { token: `mi-token-${calls}`, expiresOnTimestamp: Date.now() + lifetimeMs };
      },
      calls: () => calls,
      failNext: () => void (fail = true),
    };
    return s;
  }
  const mi: ClientCredential = {
    kind: 'managed_identity',
    clientId: 'uami-client-id',
    audience: 'api://AzureADTokenExchange',
  };

  it('sends the source’s token as a jwt-bearer client assertion with client_id, and no secret', async () => {
    const { body, headers } = await apply(buildClientAuth(mi, source(3600_000)));
    assert.equal(body.get('client_assertion_type'), JWT_BEARER);
    assert.equal(body.get('client_assertion'), 'mi-token-1');
    assert.equal(body.get('client_id'), client.client_id);
    assert.equal(body.has('client_secret'), false);
    assert.equal(headers.get('authorization'), null);
  });

  it('caches the token between calls, one fetch for concurrent calls', async () => {
    const s = source(3600_000);
    const auth = buildClientAuth(mi, s);
    const all = await Promise.all(Array.from({ length: 5 }, () => apply(auth)));
    assert.deepEqual(new Set(all.map((r) => r.body.get('client_assertion'))), new Set(['mi-token-1']));
    assert.equal((await apply(auth)).body.get('client_assertion'), 'mi-token-1');
    assert.equal(s.calls(), 1);
  });

  it('renews a token that expires within 10 minutes, and retries after a failed renewal', async () => {
    const s = source(ASSERTION_RENEW_BEFORE_MS - 1000);
    const auth = buildClientAuth(mi, s);
    assert.equal((await apply(auth)).body.get('client_assertion'), 'mi-token-1');
    assert.equal((await apply(auth)).body.get('client_assertion'), 'mi-token-2');
    s.failNext();
    await assert.rejects(apply(auth), /IMDS unavailable/);
    assert.equal((await apply(auth)).body.get('client_assertion'), 'mi-token-4');
  });

  it('uses an assertion while at least 10 minutes of it remain, renews it once less remain', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
    let n = 0;
    const s: AssertionSource = {
      getAssertion: () =>
        Promise.resolve({ token: `mi-${++n}`, expiresOnTimestamp: Date.now() + 15 * 60_000 }),
    };
    const auth = buildClientAuth(mi, s);
    assert.equal((await apply(auth)).body.get('client_assertion'), 'mi-1');
    t.mock.timers.tick(5 * 60_000); // exactly 10 minutes left
    assert.equal((await apply(auth)).body.get('client_assertion'), 'mi-1');
    t.mock.timers.tick(1);
    assert.equal((await apply(auth)).body.get('client_assertion'), 'mi-2');
  });

  it('by default asks the App Service managed identity endpoint for api://AzureADTokenExchange as the UAMI', async () => {
    const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
    const endpoint = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          access_token: 'mi-token-from-endpoint',
          expires_on: String(Math.floor(Date.now() / 1000) + 3600),
          resource: 'api://AzureADTokenExchange',
          token_type: 'Bearer',
          client_id: 'uami-client-id',
        }),
      );
    });
    await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
    const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };
    process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/msi/token`;
    process.env.IDENTITY_HEADER = 'identity-header-value';
    try {
      const auth = buildClientAuth(mi);
      assert.equal((await apply(auth)).body.get('client_assertion'), 'mi-token-from-endpoint');
      await apply(auth);
      assert.equal(seen.length, 1, 'cached');
      const url = new URL(seen[0]?.url ?? '', 'http://x');
      assert.equal(url.searchParams.get('resource'), 'api://AzureADTokenExchange');
      assert.equal(url.searchParams.get('client_id'), 'uami-client-id');
      assert.equal(seen[0]?.headers['x-identity-header'], 'identity-header-value');
    } finally {
      if (saved.endpoint === undefined) delete process.env.IDENTITY_ENDPOINT;
      else process.env.IDENTITY_ENDPOINT = saved.endpoint;
      if (saved.header === undefined) delete process.env.IDENTITY_HEADER;
      else process.env.IDENTITY_HEADER = saved.header;
      endpoint.closeAllConnections();
      await new Promise((r) => endpoint.close(r));
    }
  });
});

describe('no client authentication (public client)', () => {
  it('sends the client id in the body and nothing else', async () => {
    const { body, headers } = await apply(buildClientAuth({ kind: 'none' }));
    assert.deepEqual(
      [...body.entries()],
      [
        ['grant_type', 'refresh_token'],
        ['refresh_token', 'rt-value'],
        ['client_id', client.client_id],
      ],
    );
    const names: string[] = [];
    headers.forEach((_value, name) => names.push(name));
    assert.deepEqual(names, []);
  });
});

describe('on the wire: what oauth4webapi sends to a token endpoint', () => {
  const received: { body: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ body, headers: req.headers });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: 'at', token_type: 'Bearer', expires_in: 60 }));
    });
  });
  let endpoint = '';
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tenant/oauth2/v2.0/token`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  async function send(credential: ClientCredential, src?: AssertionSource) {
    const server_ = { issuer: 'http://127.0.0.1/tenant/v2.0', token_endpoint: endpoint };
    await oauth.refreshTokenGrantRequest(server_, client, buildClientAuth(credential, src), 'rt-value', {
      [oauth.allowInsecureRequests]: true,
    });
    const last = received.at(-1);
    assert.ok(last);
    return { form: new URLSearchParams(last.body), headers: last.headers };
  }

  it('secret post, secret basic, certificate and managed identity each send exactly their credential', async () => {
    const post = await send({ kind: 'secret', secret: 's e/c', method: 'client_secret_post' });
    assert.deepEqual(
      [post.form.get('client_id'), post.form.get('client_secret'), post.headers.authorization],
      [client.client_id, 's e/c', undefined],
    );

    const basic = await send({ kind: 'secret', secret: 's e/c', method: 'client_secret_basic' });
    assert.equal(basic.form.has('client_secret'), false);
    assert.match(basic.headers.authorization ?? '', /^Basic /);

    const cert = await send(certificateCredential());
    assert.equal(cert.form.get('client_assertion_type'), JWT_BEARER);
    assert.equal(decodeJwt(cert.form.get('client_assertion') ?? '').aud, endpoint);
    assert.equal(cert.form.has('client_secret'), false);

    const mi = await send(
      { kind: 'managed_identity', clientId: 'u', audience: 'api://AzureADTokenExchange' },
      {
        getAssertion: () =>
          Promise.resolve({ token: 'mi-wire-token', expiresOnTimestamp: Date.now() + 3600_000 }),
      },
    );
    assert.deepEqual(
      [
        mi.form.get('client_assertion'),
        mi.form.get('client_assertion_type'),
        mi.form.get('client_id'),
        mi.form.has('client_secret'),
      ],
      ['mi-wire-token', JWT_BEARER, client.client_id, false],
    );
    for (const r of [post, basic, cert, mi]) {
      assert.equal(r.form.get('grant_type'), 'refresh_token');
      assert.equal(r.form.get('refresh_token'), 'rt-value');
    }
  });
});

describe('integration: the broker with MICROSOFT_CLIENT_CERTIFICATE against the demo IdP', () => {
  it('connects and refreshes, authenticating with the certificate only', async () => {
    const port = await freePort();
    const idp = await startDemoIdp({
      quiet: true,
      clients: [
        {
          clientId: CLIENT_ID,
          certificates: [pems.cert],
          redirectUris: [`http://localhost:${port}/api/callback`],
        },
      ],
    });
    const h = await startBrokerHost({
      port,
      sharedIdp: { idp, clientSecret: 'no-secret-is-configured' },
      env: {
        MICROSOFT_CREDENTIAL: 'certificate',
        MICROSOFT_CLIENT_CERTIFICATE: bundle,
        MICROSOFT_CLIENT_SECRET: '',
      },
    });
    try {
      h.secrets.add('certificate private key', pems.private.replace(/-----[^-]+-----|\s/g, '').slice(0, 200));
      await h.createConnection('cert-conn');
      const out = await h.connect('cert-conn');
      assert.equal(out.callback.status, 200, out.callbackBody);
      const code = idp.tokenLog.find((r) => r.grantType === 'authorization_code');
      assert.equal(code?.status, 200);
      assert.equal(code?.clientAuth, 'private_key_jwt');

      const before = await h.record('cert-conn');
      const res = await h.api('POST', 'manage/connections/cert-conn/refresh');
      assert.equal(res.status, 200, await res.text());
      const refresh = idp.tokenLog.filter((r) => r.grantType === 'refresh_token').at(-1);
      assert.equal(refresh?.status, 200);
      assert.equal(refresh?.clientAuth, 'private_key_jwt');
      const afterRecord = await h.record('cert-conn');
      assert.notEqual(
        afterRecord?.tokens?.refreshToken,
        before?.tokens?.refreshToken,
        'rotated refresh token persisted',
      );
      h.secrets.add('old refresh token', before?.tokens?.refreshToken);
      await h.assertNoSecretsInLogs();
    } finally {
      await h.close();
      await idp.close();
    }
  });
});
