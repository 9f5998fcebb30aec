/**
 * Settings an attacker (or a slip) could use to weaken the broker: plain-http key and provider metadata URLs,
 * a public base URL carrying a path / query / fragment into every link and redirect URI, a caller-auth tenant
 * that is not a tenant ID, and a client certificate the provider can never accept. Each is refused at start-up
 * with a ConfigError naming the setting — never accepted and then failing (or worse, working) per request.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generate } from 'selfsigned';
import { ConfigError, parseConfig } from '../../shared/config.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const ENTRA = {
  BROKER_AUTH_MODE: 'entra',
  BROKER_AUTH_TENANT_ID: TENANT,
  BROKER_AUTH_AUDIENCE: 'api://broker',
};

function refused(env: Record<string, string>, variable: string, reason?: RegExp): void {
  assert.throws(
    () => parseConfig(env),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.ok(e.variables.includes(variable), `${variable} not named in: ${e.message}`);
      if (reason) assert.match(e.message, reason);
      return true;
    },
  );
}

function provider(extra: Record<string, unknown>): string {
  return JSON.stringify({
    acme: {
      kind: 'oauth2',
      authorizationUrl: 'https://id.acme.example/authorize',
      tokenUrl: 'https://id.acme.example/token',
      clientId: 'c',
      clientAuthMethod: 'none',
      ...extra,
    },
  });
}

describe('transport security of metadata URLs', () => {
  it('BROKER_AUTH_JWKS_URL over plain http is refused unless BROKER_ALLOW_INSECURE_HTTP', () => {
    const env = { ...ENTRA, BROKER_AUTH_JWKS_URL: 'http://keys.example/discovery/keys' };
    refused(env, 'BROKER_AUTH_JWKS_URL', /https/);
    // Loopback is not an exception: only the explicit local-only flag is.
    refused({ ...env, BROKER_AUTH_JWKS_URL: 'http://127.0.0.1:9/keys' }, 'BROKER_AUTH_JWKS_URL');
    const insecure = parseConfig({ ...env, BROKER_ALLOW_INSECURE_HTTP: 'true' });
    assert.equal(insecure.auth.jwksUrl, 'http://keys.example/discovery/keys');
    assert.equal(
      parseConfig({ ...env, BROKER_AUTH_JWKS_URL: 'https://keys.example/k' }).auth.jwksUrl,
      'https://keys.example/k',
    );
  });

  it('a generic provider’s jwksUrl or issuer over plain http is refused unless BROKER_ALLOW_INSECURE_HTTP', () => {
    for (const extra of [{ jwksUrl: 'http://id.acme.example/jwks' }, { issuer: 'http://id.acme.example' }]) {
      refused({ BROKER_PROVIDERS: provider(extra) }, 'BROKER_PROVIDERS', /acme: .*https/);
      const ok = parseConfig({ BROKER_PROVIDERS: provider(extra), BROKER_ALLOW_INSECURE_HTTP: 'true' });
      assert.ok(ok.providers.acme);
    }
    const https = parseConfig({
      BROKER_PROVIDERS: provider({
        jwksUrl: 'https://id.acme.example/jwks',
        issuer: 'https://id.acme.example',
      }),
    });
    assert.equal(
      https.providers.acme?.kind === 'oauth2' && https.providers.acme.jwksUrl,
      'https://id.acme.example/jwks',
    );
  });
});

describe('BROKER_PUBLIC_BASE_URL is an origin', () => {
  for (const bad of [
    'https://broker.example/sub',
    'https://broker.example/api',
    'https://broker.example?x=1',
    'https://broker.example/#frag',
    'https://user:pw@broker.example',
  ]) {
    it(`refuses ${bad}`, () => refused({ BROKER_PUBLIC_BASE_URL: bad }, 'BROKER_PUBLIC_BASE_URL', /path/));
  }
  it('accepts an origin with or without a trailing slash or port', () => {
    assert.equal(
      parseConfig({ BROKER_PUBLIC_BASE_URL: 'https://broker.example/' }).redirectUri,
      'https://broker.example/api/callback',
    );
    assert.equal(
      parseConfig({ BROKER_PUBLIC_BASE_URL: 'https://broker.example:8443' }).redirectUri,
      'https://broker.example:8443/api/callback',
    );
  });
});

describe('BROKER_AUTH_TENANT_ID', () => {
  it('must be a GUID: it is pasted into issuer and JWKS URLs', () => {
    for (const bad of ['contoso', 'common', '../evil', `${TENANT}/x`, 'tid']) {
      refused({ ...ENTRA, BROKER_AUTH_TENANT_ID: bad }, 'BROKER_AUTH_TENANT_ID', /GUID/);
    }
    assert.deepEqual(parseConfig(ENTRA).auth.issuers, [
      `https://login.microsoftonline.com/${TENANT}/v2.0`,
      `https://sts.windows.net/${TENANT}/`,
    ]);
  });
});

describe('MICROSOFT_CLIENT_CERTIFICATE', () => {
  const base = { MICROSOFT_CLIENT_ID: 'app', MICROSOFT_CREDENTIAL: 'certificate' };

  it('an EC key is a configuration error naming the setting (Microsoft signs assertions with RSA)', async () => {
    const ec = await generate([{ name: 'commonName', value: 'ec' }], { keyType: 'ec', algorithm: 'sha256' });
    refused(
      { ...base, MICROSOFT_CLIENT_CERTIFICATE: `${ec.private}\n${ec.cert}` },
      'MICROSOFT_CLIENT_CERTIFICATE',
      /RSA/,
    );
  });

  it('a key that does not belong to the certificate is a configuration error naming the setting', async () => {
    const a = await generate([{ name: 'commonName', value: 'a' }], { keySize: 2048, algorithm: 'sha256' });
    const b = await generate([{ name: 'commonName', value: 'b' }], { keySize: 2048, algorithm: 'sha256' });
    refused(
      { ...base, MICROSOFT_CLIENT_CERTIFICATE: `${a.private}\n${b.cert}` },
      'MICROSOFT_CLIENT_CERTIFICATE',
      /does not belong/,
    );
    // The matching pair is accepted, and the error above never echoed key material.
    const ok = parseConfig({ ...base, MICROSOFT_CLIENT_CERTIFICATE: `${a.private}\n${a.cert}` });
    assert.equal(
      ok.providers.microsoft?.kind === 'microsoft' && ok.providers.microsoft.credential.kind,
      'certificate',
    );
    try {
      parseConfig({ ...base, MICROSOFT_CLIENT_CERTIFICATE: `${a.private}\n${b.cert}` });
    } catch (e) {
      const body = a.private.replace(/-----[^-]+-----|\s/g, '');
      assert.ok(!(e as Error).message.includes(body.slice(0, 16)));
    }
  });
});
