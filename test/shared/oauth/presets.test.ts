import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../../shared/config.ts';
import { PRESET_NAMES, PRESETS } from '../../../shared/oauth/presets.ts';

const parse = (providers: Record<string, unknown>) =>
  parseConfig({ BROKER_PROVIDERS: JSON.stringify(providers), SECRET: 's3cret-value' });
const client = { kind: 'oauth2', clientId: 'id', clientSecretSetting: 'SECRET' };

describe('provider presets', () => {
  it('every preset cites public sources and names its rotation', () => {
    for (const name of PRESET_NAMES) {
      const p = PRESETS[name];
      assert.ok(p.sources.length > 0 && p.sources.every((s) => s.startsWith('https://')), name);
      assert.ok(['none', 'rotating', 'strict'].includes(p.rotation), name);
    }
  });

  it('google: issuer, access_type=offline and prompt=consent come from the preset', () => {
    const g = parse({ g: { ...client, preset: 'google' } }).providers.g;
    assert.ok(g?.kind === 'oauth2');
    assert.equal(g.issuer, 'https://accounts.google.com');
    assert.deepEqual(g.extraAuthorizeParams, { access_type: 'offline', prompt: 'consent' });
  });

  it('salesforce: the documented lifetime for responses without expires_in; settings win over the preset', () => {
    const s = parse({ s: { ...client, preset: 'salesforce' } }).providers.s;
    assert.ok(s?.kind === 'oauth2');
    assert.equal(s.defaultExpiresInSeconds, 900);
    const mine = parse({
      s: { ...client, preset: 'salesforce', defaultExpiresInSeconds: 7200, defaultScopes: ['api'] },
    }).providers.s;
    assert.ok(mine?.kind === 'oauth2');
    assert.equal(mine.defaultExpiresInSeconds, 7200);
    assert.deepEqual(mine.defaultScopes, ['api']);
  });

  it('auth0 needs the tenant issuer, reported naming the setting', () => {
    assert.throws(
      () => parse({ a: { ...client, preset: 'auth0' } }),
      (e) => e instanceof ConfigError && /a\.issuer/.test(e.message),
    );
    const a = parse({ a: { ...client, preset: 'auth0', issuer: 'https://acme.eu.auth0.com/' } }).providers.a;
    assert.ok(a?.kind === 'oauth2');
    assert.ok(a.defaultScopes.includes('offline_access'));
  });

  it('a provider needs an issuer or both endpoint URLs; an unknown preset is refused', () => {
    assert.throws(
      () => parse({ x: { ...client, tokenUrl: 'https://id.example.com/token' } }),
      (e) => e instanceof ConfigError && /x: set issuer/.test(e.message),
    );
    assert.throws(
      () => parse({ x: { ...client, preset: 'nope', issuer: 'https://id.example.com' } }),
      ConfigError,
    );
    const ok = parse({ x: { ...client, issuer: 'https://id.example.com/realms/acme' } }).providers.x;
    assert.ok(ok?.kind === 'oauth2' && ok.authorizationUrl === undefined);
  });
});
