import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PRESETS } from '../../shared/oauth/presets.ts';
import { type IdpBrokerHarness, startIdpBroker } from '../support/idpBroker.ts';
import { caller, startGenericHarness } from './genericHarness.ts';

// Each preset against the demo IdP set up with that provider's documented quirks. The issuer is pointed at the
// demo realm (a setting wins over the preset), and the scopes add a demo resource plus offline_access, which the
// demo IdP (oidc-provider) needs before it issues a refresh token; everything else comes from the preset.
const SCOPES = ['offline_access', 'https://graph.microsoft.com/Mail.Read'];
const realm = (idp: { endpoints(t?: string): { issuer: string } }) => idp.endpoints('realms/demo').issuer;

describe('google preset', () => {
  it('sends access_type=offline and prompt=consent, keeps the unrotated refresh token, reads refresh_token_expires_in', async () => {
    const h = await startGenericHarness({
      idp: {
        oidc: {},
        rotateRefreshTokens: false,
        tokenQuirks: { omitRefreshTokenOnRefresh: true, refreshTokenExpiresInSeconds: 7 * 24 * 3600 },
      },
      provider: (idp) => ({ preset: 'google', issuer: realm(idp), defaultScopes: SCOPES }),
    });
    try {
      const { authorize } = await h.connect(h.broker, 'g');
      assert.equal(authorize.searchParams.get('access_type'), 'offline');
      assert.equal(authorize.searchParams.get('prompt'), 'consent');
      const rt = (await h.store.get('g'))?.tokens?.refreshToken;
      h.idp.stats.reset();
      await h.broker.forceRefresh('g');
      await h.broker.forceRefresh('g');
      const record = await h.store.get('g');
      assert.equal(h.idp.stats.refreshGrants, 2);
      assert.equal(record?.tokens?.refreshToken, rt);
      assert.equal(record?.status, 'active');
      assert.equal(PRESETS.google.rotation, 'none');
    } finally {
      await h.close();
    }
  });
});

describe('salesforce preset', () => {
  it('assumes the documented 900 s when the token response has no expires_in', async () => {
    const h = await startGenericHarness({
      idp: { oidc: {}, rotateRefreshTokens: false, tokenQuirks: { omitExpiresIn: true } },
      provider: (idp) => ({ preset: 'salesforce', issuer: realm(idp), defaultScopes: SCOPES }),
    });
    try {
      await h.connect(h.broker, 'sf');
      const primary = (await h.store.get('sf'))?.tokens?.primary;
      assert.equal((primary?.expiresAt ?? 0) - (primary?.issuedAt ?? 0), 900_000);
      assert.equal((await h.broker.getAccessToken('sf', caller)).expires_in, 900);
      // 900 s: the window is the configured 300 s margin, so reads for 10 minutes cause no refresh.
      h.idp.stats.reset();
      for (let i = 0; i < 30; i++) {
        await h.broker.getAccessToken('sf', caller);
        h.clock.now += 19_000;
      }
      assert.equal(h.idp.stats.refreshGrants, 0);
    } finally {
      await h.close();
    }
  });
});

describe('auth0 preset (strict rotation)', () => {
  it('always refreshes with the newest token; the provider revokes the family on reuse of an old one', async () => {
    const h = await startGenericHarness({
      idp: {
        oidc: { idTokenAlg: 'RS256' },
        accessTokenTtlSeconds: 120,
        rotatedRefreshTokenReuse: 'revoke-family',
      },
      provider: (idp) => ({ preset: 'auth0', issuer: realm(idp), defaultScopes: SCOPES }),
    });
    try {
      await h.connect(h.broker, 'a0');
      const first = (await h.store.get('a0'))?.tokens?.refreshToken ?? '';
      h.idp.stats.reset();
      for (let i = 0; i < 3; i++) {
        h.clock.now += 61_000;
        await h.broker.getAccessToken('a0', caller);
      }
      assert.equal(h.idp.stats.refreshGrants, 3);
      assert.equal((await h.store.get('a0'))?.status, 'active');
      // The demo IdP is really strict: the first (rotated) token is refused, and that revokes the family.
      await assert.rejects(h.provider.refresh(first, SCOPES), /provider|reauth|sign in/i);
      h.clock.now += 61_000;
      await assert.rejects(h.broker.getAccessToken('a0', caller));
      assert.equal((await h.store.get('a0'))?.status, 'needs_reauth');
    } finally {
      await h.close();
    }
  });
});

describe('Microsoft Advertising (Bing Ads) on the microsoft provider', () => {
  let h: IdpBrokerHarness;
  before(async () => {
    h = await startIdpBroker();
  });
  after(async () => {
    await h.close();
  });
  it('connects with msads.manage and refreshes for that one resource', async () => {
    await h.broker.upsertConnection('ads', {
      provider: 'microsoft',
      scopes: ['https://ads.microsoft.com/msads.manage'],
    });
    const { params, cookie } = await h.connect(h.broker, 'ads');
    await h.broker.completeCallback(params, cookie);
    h.idp.stats.reset();
    await h.broker.forceRefresh('ads');
    const last = h.idp.tokenLog.at(-1);
    assert.equal(last?.grantType, 'refresh_token');
    assert.equal(last?.scope, 'https://ads.microsoft.com/msads.manage offline_access');
    assert.match((await h.broker.getAccessToken('ads', caller)).scope, /msads\.manage/);
  });
});
