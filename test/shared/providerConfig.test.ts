import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { generate } from 'selfsigned';
import type { Problems } from '../../shared/configKit.ts';
import {
  type MicrosoftCredentialEnv,
  microsoftCredential,
  parseGenericProviders,
} from '../../shared/providerConfig.ts';

const AUTHORITY = 'https://login.microsoftonline.com';

function credential(env: Partial<MicrosoftCredentialEnv>) {
  const problems: Problems = [];
  const result = microsoftCredential(
    { MICROSOFT_CREDENTIAL: 'auto', MICROSOFT_AUTHORITY_HOST: AUTHORITY, ...env },
    problems,
  );
  return { result, problems };
}

function providers(value: unknown, env: Record<string, string> = {}, insecure = false) {
  const problems: Problems = [];
  const result = parseGenericProviders(
    typeof value === 'string' ? value : JSON.stringify(value),
    env,
    insecure,
    problems,
  );
  return { result, problems };
}

describe('microsoftCredential: which credential MICROSOFT_CREDENTIAL=auto picks', () => {
  it('picks nothing when no credential setting is present', () => {
    assert.deepEqual(credential({}), { result: { kind: 'none' }, problems: [] });
  });

  it('picks the client secret (sent in the body) when only a secret is set', () => {
    assert.deepEqual(credential({ MICROSOFT_CLIENT_SECRET: 'sec' }), {
      result: { kind: 'secret', secret: 'sec', method: 'client_secret_post' },
      problems: [],
    });
  });

  it('prefers the federated managed identity over a secret', () => {
    const { result, problems } = credential({
      MICROSOFT_CLIENT_SECRET: 'sec',
      MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: 'mi',
    });
    assert.deepEqual(result, {
      kind: 'managed_identity',
      clientId: 'mi',
      audience: 'api://AzureADTokenExchange',
    });
    assert.deepEqual(problems, []);
  });

  it('prefers a certificate over the federated identity and the secret', () => {
    const { result, problems } = credential({
      MICROSOFT_CLIENT_SECRET: 'sec',
      MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: 'mi',
      MICROSOFT_CLIENT_CERTIFICATE: 'not a pem',
    });
    // The certificate path was taken: its problem is reported, the secret is not used.
    assert.deepEqual(result, { kind: 'none' });
    assert.deepEqual(
      problems.map((p) => p.variable),
      ['MICROSOFT_CLIENT_CERTIFICATE'],
    );
  });
});

describe('microsoftCredential: an explicit MICROSOFT_CREDENTIAL', () => {
  it('none ignores a secret that is present', () => {
    assert.deepEqual(credential({ MICROSOFT_CREDENTIAL: 'none', MICROSOFT_CLIENT_SECRET: 'sec' }), {
      result: { kind: 'none' },
      problems: [],
    });
  });

  it('secret without MICROSOFT_CLIENT_SECRET names that setting', () => {
    assert.deepEqual(
      credential({ MICROSOFT_CREDENTIAL: 'secret', MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: 'mi' }),
      {
        result: { kind: 'none' },
        problems: [
          { variable: 'MICROSOFT_CLIENT_SECRET', reason: 'required when MICROSOFT_CREDENTIAL=secret' },
        ],
      },
    );
  });

  it('secret uses the secret even when a federated identity is also set', () => {
    const { result } = credential({
      MICROSOFT_CREDENTIAL: 'secret',
      MICROSOFT_CLIENT_SECRET: 'sec',
      MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: 'mi',
    });
    assert.deepEqual(result, { kind: 'secret', secret: 'sec', method: 'client_secret_post' });
  });

  it('certificate without MICROSOFT_CLIENT_CERTIFICATE names that setting', () => {
    const { result, problems } = credential({
      MICROSOFT_CREDENTIAL: 'certificate',
      MICROSOFT_CLIENT_SECRET: 's',
    });
    assert.deepEqual(result, { kind: 'none' });
    assert.deepEqual(problems, [
      {
        variable: 'MICROSOFT_CLIENT_CERTIFICATE',
        reason: 'must be a PEM bundle with a private key and its certificate',
      },
    ]);
  });

  it('managed_identity falls back to AZURE_CLIENT_ID (the app identity) for the federated client id', () => {
    const { result, problems } = credential({
      MICROSOFT_CREDENTIAL: 'managed_identity',
      AZURE_CLIENT_ID: 'uami',
    });
    assert.deepEqual(result, {
      kind: 'managed_identity',
      clientId: 'uami',
      audience: 'api://AzureADTokenExchange',
    });
    assert.deepEqual(problems, []);
  });

  it('managed_identity prefers MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID over AZURE_CLIENT_ID', () => {
    const { result } = credential({
      MICROSOFT_CREDENTIAL: 'managed_identity',
      AZURE_CLIENT_ID: 'uami',
      MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: 'fic',
    });
    assert.equal(result.kind === 'managed_identity' && result.clientId, 'fic');
  });

  it('managed_identity without any client id names MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID', () => {
    assert.deepEqual(credential({ MICROSOFT_CREDENTIAL: 'managed_identity', MICROSOFT_CLIENT_SECRET: 's' }), {
      result: { kind: 'none' },
      problems: [
        {
          variable: 'MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID',
          reason: 'required when MICROSOFT_CREDENTIAL=managed_identity',
        },
      ],
    });
  });

  it('managed_identity uses the token-exchange audience of the authority host cloud', () => {
    const audience = (host: string) => {
      const { result } = credential({
        MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID: 'mi',
        MICROSOFT_AUTHORITY_HOST: host,
      });
      return result.kind === 'managed_identity' ? result.audience : undefined;
    };
    assert.equal(audience('https://login.microsoftonline.us'), 'api://AzureADTokenExchangeUSGov');
    assert.equal(audience('https://login.chinacloudapi.cn'), 'api://AzureADTokenExchangeChina');
    assert.equal(audience('https://login.microsoftonline.com'), 'api://AzureADTokenExchange');
    // Only the suffix decides: a host merely containing ".us" or ".cn" is the global cloud.
    assert.equal(audience('https://login.us.example.com'), 'api://AzureADTokenExchange');
    assert.equal(audience('https://login.cn.example.com'), 'api://AzureADTokenExchange');
  });
});

describe('microsoftCredential: MICROSOFT_CLIENT_CERTIFICATE bundles', () => {
  let rsa: { private: string; cert: string };
  let other: { private: string; cert: string };
  let ec: { private: string; cert: string };
  before(async () => {
    rsa = await generate([{ name: 'commonName', value: 'rsa' }], { keySize: 2048, algorithm: 'sha256' });
    other = await generate([{ name: 'commonName', value: 'other' }], { keySize: 2048, algorithm: 'sha256' });
    ec = await generate([{ name: 'commonName', value: 'ec' }], { keyType: 'ec', algorithm: 'sha256' });
  });
  const cert = (pem: string) =>
    credential({ MICROSOFT_CREDENTIAL: 'certificate', MICROSOFT_CLIENT_CERTIFICATE: pem });

  it('takes exactly the key and certificate blocks out of a bundle with surrounding text', () => {
    const { result, problems } = cert(`Bag Attributes\n${rsa.cert}\nfriendly name\n${rsa.private}\ntrailer`);
    assert.deepEqual(problems, []);
    assert.deepEqual(result, {
      kind: 'certificate',
      privateKeyPem: rsa.private.trim(),
      certificatePem: rsa.cert.trim(),
    });
  });

  it('accepts a PKCS#1 "RSA PRIVATE KEY" block', () => {
    const pkcs1 = createPrivateKey(rsa.private).export({ type: 'pkcs1', format: 'pem' }).toString();
    const { result, problems } = cert(`${pkcs1}${rsa.cert}`);
    assert.deepEqual(problems, []);
    assert.equal(result.kind === 'certificate' && result.privateKeyPem, pkcs1.trim());
  });

  it('refuses a bundle with a certificate but no private key', () => {
    const { result, problems } = cert(rsa.cert);
    assert.deepEqual(result, { kind: 'none' });
    assert.equal(problems[0]?.reason, 'must be a PEM bundle with a private key and its certificate');
  });

  it('refuses a bundle with a private key but no certificate', () => {
    const { result, problems } = cert(rsa.private);
    assert.deepEqual(result, { kind: 'none' });
    assert.equal(problems[0]?.reason, 'must be a PEM bundle with a private key and its certificate');
  });

  it('refuses an EC key, naming its type, because Microsoft verifies RSA assertions only', () => {
    const { result, problems } = cert(`${ec.private}\n${ec.cert}`);
    assert.deepEqual(result, { kind: 'none' });
    assert.deepEqual(problems, [
      {
        variable: 'MICROSOFT_CLIENT_CERTIFICATE',
        reason: 'the private key must be RSA (Microsoft signs client assertions with RSA), not ec',
      },
    ]);
  });

  it('refuses a key of another certificate', () => {
    const { result, problems } = cert(`${other.private}\n${rsa.cert}`);
    assert.deepEqual(result, { kind: 'none' });
    assert.deepEqual(problems, [
      {
        variable: 'MICROSOFT_CLIENT_CERTIFICATE',
        reason: 'the private key does not belong to the certificate in the bundle',
      },
    ]);
  });

  it('reads an EC key in SEC1 form ("EC PRIVATE KEY") far enough to refuse it as not RSA', () => {
    const sec1 = createPrivateKey(ec.private).export({ type: 'sec1', format: 'pem' }).toString();
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);
    assert.equal(
      cert(`${sec1}${ec.cert}`).problems[0]?.reason,
      'the private key must be RSA (Microsoft signs client assertions with RSA), not ec',
    );
  });

  it('takes the first certificate of a bundle that also carries its chain', () => {
    const { result, problems } = cert(`${rsa.private}\n${rsa.cert}\n${other.cert}`);
    assert.deepEqual(problems, []);
    assert.equal(result.kind === 'certificate' && result.certificatePem, rsa.cert.trim());
  });

  it('reports blocks that cannot be decoded instead of throwing', () => {
    const garbage = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    const { result, problems } = cert(`${garbage}${rsa.cert}`);
    assert.deepEqual(result, { kind: 'none' });
    assert.deepEqual(problems, [
      { variable: 'MICROSOFT_CLIENT_CERTIFICATE', reason: 'the PEM key or certificate cannot be read' },
    ]);
  });
});

describe('parseGenericProviders (BROKER_PROVIDERS)', () => {
  const basic = {
    kind: 'oauth2',
    clientId: 'cid',
    authorizationUrl: 'https://idp.example/authorize',
    tokenUrl: 'https://idp.example/token',
    clientSecretSetting: 'ACME_SECRET',
  };

  it('builds a provider with exactly the given settings and the documented defaults', () => {
    const { result, problems } = providers({ acme: basic }, { ACME_SECRET: 'shh' });
    assert.deepEqual(problems, []);
    assert.deepEqual(result, {
      acme: {
        kind: 'oauth2',
        name: 'acme',
        clientId: 'cid',
        credential: { kind: 'secret', secret: 'shh', method: 'client_secret_post' },
        defaultScopes: [],
        extraAuthorizeParams: {},
        extraTokenParams: {},
        usePkce: true,
        authorizationUrl: 'https://idp.example/authorize',
        tokenUrl: 'https://idp.example/token',
      },
    });
  });

  it('keeps every optional setting that is given', () => {
    const { result, problems } = providers(
      {
        full: {
          ...basic,
          issuer: 'https://idp.example',
          jwksUrl: 'https://idp.example/jwks',
          clientAuthMethod: 'client_secret_basic',
          defaultScopes: ['a', 'b'],
          extraAuthorizeParams: { prompt: 'consent' },
          extraTokenParams: { resource: 'r' },
          usePkce: false,
          defaultExpiresInSeconds: 120,
          idTokenSigningAlgs: ['ES256'],
        },
      },
      { ACME_SECRET: 'shh' },
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(result.full, {
      kind: 'oauth2',
      name: 'full',
      clientId: 'cid',
      credential: { kind: 'secret', secret: 'shh', method: 'client_secret_basic' },
      defaultScopes: ['a', 'b'],
      extraAuthorizeParams: { prompt: 'consent' },
      extraTokenParams: { resource: 'r' },
      usePkce: false,
      authorizationUrl: 'https://idp.example/authorize',
      tokenUrl: 'https://idp.example/token',
      defaultExpiresInSeconds: 120,
      idTokenSigningAlgs: ['ES256'],
      issuer: 'https://idp.example',
      jwksUrl: 'https://idp.example/jwks',
    });
  });

  it('reports text that is not JSON as BROKER_PROVIDERS, and builds nothing', () => {
    assert.deepEqual(providers('{not json'), {
      result: {},
      problems: [{ variable: 'BROKER_PROVIDERS', reason: 'must be a JSON object' }],
    });
  });

  it('reports each schema issue with its path, and builds nothing', () => {
    const { result, problems } = providers({ acme: { ...basic, clientId: undefined, usePkce: 'yes' } });
    assert.deepEqual(result, {});
    assert.deepEqual(
      problems.map((p) => p.variable),
      ['BROKER_PROVIDERS', 'BROKER_PROVIDERS'],
    );
    assert.deepEqual(problems.map((p) => p.reason.split(':')[0]).sort(), ['acme.clientId', 'acme.usePkce']);
  });

  it('accepts provider names of 1-32 lower-case letters, digits and hyphens, starting with a letter', () => {
    const named = (name: string) => providers({ [name]: { ...basic, clientAuthMethod: 'none' } });
    for (const name of ['a', 'x-1', `a${'b'.repeat(31)}`]) assert.deepEqual(named(name).problems, [], name);
    for (const name of ['Acme', '1acme', '-a', 'a_b', 'a.b', `a${'b'.repeat(32)}`, '']) {
      const { result, problems } = named(name);
      assert.deepEqual(result, {}, name);
      assert.equal(problems[0]?.variable, 'BROKER_PROVIDERS', name);
      assert.ok(problems[0]?.reason.startsWith(`${name}: `), name);
    }
  });

  it('takes the secret setting as an environment variable name, and one or more ID-token algorithms', () => {
    for (const setting of ['1SECRET', 'SECRET-1'])
      assert.equal(
        providers({ acme: { ...basic, clientSecretSetting: setting } }).problems[0]?.variable,
        'BROKER_PROVIDERS',
        setting,
      );
    const algs = providers(
      { acme: { ...basic, idTokenSigningAlgs: ['RS256', 'ES256'] } },
      { ACME_SECRET: 's' },
    );
    assert.deepEqual(algs.result.acme?.idTokenSigningAlgs, ['RS256', 'ES256']);
    assert.deepEqual(providers({ acme: { ...basic, idTokenSigningAlgs: [] } }).result, {});
  });

  it('reserves the name microsoft but still builds the other providers', () => {
    const { result, problems } = providers({ microsoft: basic, acme: basic }, { ACME_SECRET: 'shh' });
    assert.deepEqual(Object.keys(result), ['acme']);
    assert.deepEqual(problems, [{ variable: 'BROKER_PROVIDERS', reason: 'the name microsoft is reserved' }]);
  });

  it('needs an issuer or both endpoints, and skips only that provider', () => {
    const { tokenUrl: _t, ...noToken } = basic;
    const { authorizationUrl: _a, ...noAuthorize } = basic;
    const { result, problems } = providers(
      { one: noToken, two: noAuthorize, ok: basic },
      { ACME_SECRET: 'shh' },
    );
    assert.deepEqual(Object.keys(result), ['ok']);
    assert.deepEqual(problems, [
      {
        variable: 'BROKER_PROVIDERS',
        reason:
          'one: set issuer (endpoints then come from its discovery document) or both authorizationUrl and tokenUrl',
      },
      {
        variable: 'BROKER_PROVIDERS',
        reason:
          'two: set issuer (endpoints then come from its discovery document) or both authorizationUrl and tokenUrl',
      },
    ]);
  });

  it('accepts an issuer alone: the endpoints come from discovery later', () => {
    const { result, problems } = providers({
      oidc: { kind: 'oauth2', clientId: 'c', issuer: 'https://idp.example', clientAuthMethod: 'none' },
    });
    assert.deepEqual(problems, []);
    assert.equal(result.oidc?.issuer, 'https://idp.example');
    assert.equal('authorizationUrl' in (result.oidc ?? {}), false);
    assert.equal('tokenUrl' in (result.oidc ?? {}), false);
  });

  it('refuses a plain-http endpoint, issuer or jwksUrl once per provider unless insecure http is allowed', () => {
    const https = { kind: 'oauth2', clientId: 'c', clientAuthMethod: 'none', issuer: 'https://idp.example' };
    const cases = {
      a: { ...https, authorizationUrl: 'http://idp.example/a', tokenUrl: 'https://idp.example/t' },
      t: { ...https, authorizationUrl: 'https://idp.example/a', tokenUrl: 'http://idp.example/t' },
      j: { ...https, jwksUrl: 'http://idp.example/jwks' },
      i: { ...https, issuer: 'http://idp.example' },
      all: {
        ...https,
        issuer: 'http://idp.example',
        authorizationUrl: 'http://idp.example/a',
        tokenUrl: 'http://idp.example/t',
      },
    };
    const refused = providers(cases);
    assert.deepEqual(
      refused.problems.map((p) => p.reason),
      ['a', 't', 'j', 'i', 'all'].map((n) => `${n}: endpoints, issuer and jwksUrl must be https`),
    );
    const allowed = providers(cases, {}, true);
    assert.deepEqual(allowed.problems, []);
    assert.deepEqual(Object.keys(allowed.result), ['a', 't', 'j', 'i', 'all']);
    assert.deepEqual(providers({ ok: https }).problems, []);
  });

  it('needs no secret for a public client (clientAuthMethod none)', () => {
    const { result, problems } = providers({
      pub: { ...basic, clientSecretSetting: undefined, clientAuthMethod: 'none' },
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(result.pub?.credential, { kind: 'none' });
  });

  it('reports a missing secret naming the setting that should hold it', () => {
    const { result, problems } = providers({ acme: basic }, {});
    assert.deepEqual(problems, [{ variable: 'ACME_SECRET', reason: 'acme: client secret missing' }]);
    assert.deepEqual(result.acme?.credential, { kind: 'none' });
  });

  it('reports a missing secret setting as BROKER_PROVIDERS when no setting is named', () => {
    const { problems } = providers(
      { acme: { ...basic, clientSecretSetting: undefined } },
      { ACME_SECRET: 'x' },
    );
    assert.deepEqual(problems, [{ variable: 'BROKER_PROVIDERS', reason: 'acme: client secret missing' }]);
  });

  it('reports an unresolved Key Vault reference in the secret setting without using it', () => {
    const ref = '@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/acme)';
    const { result, problems } = providers({ acme: basic }, { ACME_SECRET: ref });
    assert.deepEqual(problems, [
      {
        variable: 'ACME_SECRET',
        reason:
          'acme: Key Vault reference not resolved: check the identity has Key Vault Secrets User/Officer and the secret exists',
      },
    ]);
    assert.deepEqual(result.acme?.credential, { kind: 'none' });
  });

  it('fills a preset provider from the preset (issuer, scopes, authorize parameters)', () => {
    const { result, problems } = providers({
      g: { kind: 'oauth2', preset: 'google', clientId: 'c', clientAuthMethod: 'none' },
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(result.g, {
      kind: 'oauth2',
      name: 'g',
      preset: 'google',
      clientId: 'c',
      credential: { kind: 'none' },
      defaultScopes: ['openid', 'email'],
      extraAuthorizeParams: { access_type: 'offline', prompt: 'consent' },
      extraTokenParams: {},
      usePkce: true,
      issuer: 'https://accounts.google.com',
    });
  });

  it('lets settings given in BROKER_PROVIDERS win over the preset', () => {
    const { result } = providers({
      s: {
        kind: 'oauth2',
        preset: 'salesforce',
        clientId: 'c',
        clientAuthMethod: 'none',
        issuer: 'https://my.salesforce.example',
        defaultScopes: ['api'],
        extraAuthorizeParams: { display: 'page' },
        defaultExpiresInSeconds: 60,
      },
    });
    assert.equal(result.s?.issuer, 'https://my.salesforce.example');
    assert.deepEqual(result.s?.defaultScopes, ['api']);
    assert.deepEqual(result.s?.extraAuthorizeParams, { display: 'page' });
    assert.equal(result.s?.defaultExpiresInSeconds, 60);
    const preset = providers({
      s: { kind: 'oauth2', preset: 'salesforce', clientId: 'c', clientAuthMethod: 'none' },
    });
    assert.equal(preset.result.s?.defaultExpiresInSeconds, 900);
  });

  it('gives each provider its own copy of the preset lists (a change to one never leaks into another)', () => {
    const { result } = providers({
      a: { kind: 'oauth2', preset: 'google', clientId: 'c', clientAuthMethod: 'none' },
      b: { kind: 'oauth2', preset: 'google', clientId: 'c', clientAuthMethod: 'none' },
    });
    result.a?.defaultScopes.push('extra');
    if (result.a) result.a.extraAuthorizeParams.extra = '1';
    assert.deepEqual(result.b?.defaultScopes, ['openid', 'email']);
    assert.deepEqual(result.b?.extraAuthorizeParams, { access_type: 'offline', prompt: 'consent' });
  });

  it('tells the admin a preset with per-tenant endpoints needs their issuer', () => {
    const { result, problems } = providers({
      a0: { kind: 'oauth2', preset: 'auth0', clientId: 'c', clientAuthMethod: 'none' },
    });
    assert.deepEqual(result, {});
    assert.deepEqual(problems, [
      { variable: 'BROKER_PROVIDERS', reason: "a0.issuer: the auth0 preset needs your tenant's issuer URL" },
    ]);
  });
});
