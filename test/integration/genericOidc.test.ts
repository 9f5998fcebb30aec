import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError } from '../../shared/errors.ts';
import { caller, startGenericHarness } from './genericHarness.ts';

// A generic OpenID provider set up unlike Microsoft: Keycloak-style issuer path, RFC 9207 `iss` in the callback,
// short-lived ES256-signed tokens, strict refresh-token rotation (a rotated token presented again revokes the
// family). The broker knows only the issuer: endpoints, keys and algorithms come from discovery.
const REALM = 'realms/demo';
const realmProvider = (idp: { endpoints(t?: string): { issuer: string } }) => ({
  issuer: idp.endpoints(REALM).issuer,
  defaultScopes: ['offline_access', 'https://graph.microsoft.com/Mail.Read'],
});

for (const ttl of [60, 120]) {
  describe(`generic OIDC provider, ${ttl} s ES256 tokens, RFC 9207, strict rotation`, () => {
    it('connects from discovery alone and refreshes at most once per window', async () => {
      const h = await startGenericHarness({
        idp: {
          oidc: { idTokenAlg: 'ES256' },
          accessTokenTtlSeconds: ttl,
          rotatedRefreshTokenReuse: 'revoke-family',
        },
        provider: realmProvider,
      });
      try {
        const { callback, authorize } = await h.connect(h.broker, 'kc');
        assert.equal(callback.get('iss'), h.idp.endpoints(REALM).issuer, 'the provider sent RFC 9207 iss');
        assert.equal(
          authorize.pathname,
          '/realms/demo/protocol/openid-connect/auth',
          'endpoint from discovery',
        );
        const record = await h.store.get('kc');
        assert.equal(record?.identity?.issuer, h.idp.endpoints(REALM).issuer);
        assert.ok(record?.identity?.subject, 'the account is pinned from the verified ID token');

        // 30 sequential reads within 10 s: the token from the sign-in is served, nothing is refreshed.
        h.idp.stats.reset();
        const seen = new Set<string>();
        for (let i = 0; i < 30; i++) {
          seen.add((await h.broker.getAccessToken('kc', caller)).access_token);
          h.clock.now += 333;
        }
        assert.equal(h.idp.stats.refreshGrants, 0);
        assert.equal(seen.size, 1);

        // Past the window (half the lifetime): 100 overlapping readers on two instances → one refresh.
        h.clock.now += (ttl / 2) * 1000;
        const other = h.newBroker();
        const reads = await Promise.all(
          Array.from({ length: 100 }, (_, i) => (i % 2 ? other : h.broker).getAccessToken('kc', caller)),
        );
        assert.equal(h.idp.stats.refreshGrants, 1);
        assert.equal(new Set(reads.map((r) => r.access_token)).size, 1);
        assert.ok(!seen.has(reads[0]?.access_token ?? ''), 'the refreshed token is served');

        // And the next window is quiet again, on both instances.
        for (let i = 0; i < 30; i++) {
          await (i % 2 ? other : h.broker).getAccessToken('kc', caller);
          h.clock.now += 333;
        }
        assert.equal(h.idp.stats.refreshGrants, 1);
        h.secrets.assertAbsent(h.logs.join('\n'), 'logs');
      } finally {
        await h.close();
      }
    });
  });
}

describe('ID tokens signed with what the provider advertises', () => {
  for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
    it(`accepts ${alg}`, async () => {
      const h = await startGenericHarness({ idp: { oidc: { idTokenAlg: alg } }, provider: realmProvider });
      try {
        await h.connect(h.broker, 'alg');
        assert.equal((await h.store.get('alg'))?.status, 'active');
      } finally {
        await h.close();
      }
    });
  }
});

describe('configuration mistakes are reported as such, naming the setting', () => {
  it('no issuer configured, provider sends RFC 9207 iss → provider_misconfigured naming issuer', async () => {
    const h = await startGenericHarness({
      idp: { oidc: {} },
      provider: (idp) => {
        const ep = idp.endpoints(REALM);
        return {
          authorizationUrl: ep.authorization,
          tokenUrl: ep.token,
          defaultScopes: ['offline_access', 'https://graph.microsoft.com/Mail.Read'],
        };
      },
    });
    try {
      await assert.rejects(h.connect(h.broker, 'noiss'), (e) => {
        assert.ok(e instanceof BrokerError);
        assert.equal(e.code, 'provider_misconfigured');
        assert.match(e.message, /BROKER_PROVIDERS\.acme\.issuer/);
        assert.doesNotMatch(e.message, /browser session/);
        return true;
      });
    } finally {
      await h.close();
    }
  });

  it('an issuer whose discovery document names another issuer → provider_misconfigured at connect', async () => {
    const h = await startGenericHarness({
      idp: { oidc: {} },
      provider: (idp) => ({
        issuer: `${idp.origin}/realms/demo/`, // trailing slash: not the issuer the document names
        defaultScopes: ['offline_access'],
      }),
    });
    try {
      await assert.rejects(h.connect(h.broker, 'wrong'), (e) => {
        assert.ok(e instanceof BrokerError);
        assert.equal(e.code, 'provider_misconfigured');
        assert.match(e.message, /BROKER_PROVIDERS\.acme\.issuer/);
        return true;
      });
    } finally {
      await h.close();
    }
  });

  it('an issuer without a discovery document: the explicit endpoints are used and the issuer still checked', async () => {
    const h = await startGenericHarness({
      idp: { oidc: { discovery: false } },
      provider: (idp) => {
        const ep = idp.endpoints(REALM);
        return {
          issuer: ep.issuer,
          authorizationUrl: ep.authorization,
          tokenUrl: ep.token,
          jwksUrl: ep.jwks,
          defaultScopes: ['offline_access', 'https://graph.microsoft.com/Mail.Read'],
        };
      },
    });
    try {
      await h.connect(h.broker, 'nodoc');
      assert.equal((await h.store.get('nodoc'))?.identity?.issuer, h.idp.endpoints(REALM).issuer);
      // Without the endpoints the same issuer is a configuration mistake, named as such.
      const bare = await startGenericHarness({
        idp: { oidc: { discovery: false } },
        provider: realmProvider,
      });
      try {
        await assert.rejects(
          bare.connect(bare.broker, 'bare'),
          (e) =>
            e instanceof BrokerError && e.code === 'provider_misconfigured' && /acme\.issuer/.test(e.message),
        );
      } finally {
        await bare.close();
      }
    } finally {
      await h.close();
    }
  });

  it('a provider that neither advertises nor sends RFC 9207 iss connects', async () => {
    const h = await startGenericHarness({ idp: { oidc: { issParameter: false } }, provider: realmProvider });
    try {
      await h.connect(h.broker, 'plain');
      assert.equal((await h.store.get('plain'))?.status, 'active');
    } finally {
      await h.close();
    }
  });

  it('a provider that advertises RFC 9207 but answers without iss is refused, naming the issuer setting', async () => {
    const h = await startGenericHarness({
      idp: { oidc: { issParameter: 'advertised-only' } },
      provider: realmProvider,
    });
    try {
      await assert.rejects(h.connect(h.broker, 'noiss'), (e) => {
        assert.ok(e instanceof BrokerError);
        assert.equal(e.code, 'invalid_state');
        assert.match(e.message, /RFC 9207/);
        assert.match(e.message, /BROKER_PROVIDERS\.acme\.issuer/);
        return true;
      });
      assert.equal(h.idp.stats.authorizationCodeGrants, 0, 'the code is never redeemed');
    } finally {
      await h.close();
    }
  });
});
