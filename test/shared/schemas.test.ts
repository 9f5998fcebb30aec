import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  connectConsentForm,
  connectionName,
  connectionParams,
  connectionSettingsBody,
  connectLinkValue,
  importBody,
  linkBody,
  scopeQueryValue,
} from '../../shared/schemas.ts';

const ok = (schema: { safeParse(v: unknown): { success: boolean } }, value: unknown) =>
  schema.safeParse(value).success;
const GUID = '72f988bf-86f1-41af-91ab-2d7cd011db47';

describe('input schemas', () => {
  it('connection names: lower-case letters, digits and inner hyphens', () => {
    assert.deepEqual(connectionParams.parse({ connection: 'sales-1' }), { connection: 'sales-1' });
    assert.equal(ok(connectionParams, {}), false);
    assert.equal(ok(connectionParams, { connection: 'a', extra: 'x' }), false);
    for (const bad of ['Sales', '-a', 'a-', 'a_b', '']) assert.equal(ok(connectionName, bad), false, bad);
  });

  it('connection settings: provider name, scope tokens, optional description, identity and callers', () => {
    assert.deepEqual(connectionSettingsBody.parse({}), { provider: 'microsoft', scopes: [] });
    const full = {
      provider: 'acme-2',
      scopes: ['openid', 'https://graph.microsoft.com/Mail.Send'],
      description: 'd',
      expectedIdentity: { tenantId: GUID, objectId: GUID.toUpperCase(), username: 'a@b.example' },
      allowedCallers: ['app-1', 'api://x/y:z.w'],
    };
    assert.deepEqual(connectionSettingsBody.parse(full), full);
    for (const bad of [
      { provider: 'Acme' },
      { provider: '1acme' },
      { provider: `a${'b'.repeat(32)}` },
      { scopes: [''] },
      { scopes: ['a b'] },
      { scopes: ['a"b'] },
      { scopes: ['a\\b'] },
      { scopes: ['x'.repeat(257)] },
      { scopes: Array.from({ length: 51 }, (_, i) => `s${i}`) },
      { description: 'x'.repeat(501) },
      { expectedIdentity: { tenantId: 'not-a-guid' } },
      { expectedIdentity: { tenantId: `x${GUID}` } },
      { expectedIdentity: { tenantId: `${GUID}x` } },
      { expectedIdentity: { objectId: GUID.replace(/-/g, '') } },
      { expectedIdentity: { username: '' } },
      { expectedIdentity: { username: 'x'.repeat(257) } },
      { expectedIdentity: { other: 1 } },
      { allowedCallers: [''] },
      { allowedCallers: ['a b'] },
      { allowedCallers: ['x'.repeat(129)] },
      { allowedCallers: Array.from({ length: 51 }, (_, i) => `a${i}`) },
      { unknown: true },
    ])
      assert.equal(ok(connectionSettingsBody, bad), false, JSON.stringify(bad).slice(0, 80));
    assert.equal(ok(connectionSettingsBody, { scopes: Array.from({ length: 50 }, (_, i) => `s${i}`) }), true);
    assert.equal(ok(connectionSettingsBody, { description: 'x'.repeat(500) }), true);
  });

  it('scope query values: space-separated scope tokens, at most 2048 characters', () => {
    for (const good of ['a', 'a b', 'https://graph.microsoft.com/.default offline_access'])
      assert.equal(ok(scopeQueryValue, good), true, good);
    for (const bad of ['', ' a', 'a ', 'a  b', 'a"b', 'x'.repeat(2049)])
      assert.equal(ok(scopeQueryValue, bad), false, bad);
  });

  it('connect links, the consent form, link lifetimes and imported refresh tokens are bounded', () => {
    assert.equal(ok(connectLinkValue, 'x'.repeat(10)), true);
    assert.equal(ok(connectLinkValue, 'x'.repeat(9)), false);
    assert.equal(ok(connectLinkValue, 'x'.repeat(2049)), false);
    assert.equal(ok(connectConsentForm, { link: 'x'.repeat(10), consent: 'y'.repeat(10) }), true);
    assert.equal(ok(connectConsentForm, { link: 'x'.repeat(10), consent: 'y'.repeat(9) }), false);
    assert.equal(ok(connectConsentForm, { link: 'x'.repeat(10), consent: 'y'.repeat(1025) }), false);
    assert.equal(ok(connectConsentForm, { link: 'x'.repeat(10), consent: 'y'.repeat(10), z: '1' }), false);
    assert.deepEqual(linkBody.parse({}), {});
    assert.equal(ok(linkBody, { ttlSeconds: 60 }), true);
    assert.equal(ok(linkBody, { ttlSeconds: 7 * 24 * 3600 }), true);
    for (const ttl of [59, 7 * 24 * 3600 + 1, 60.5])
      assert.equal(ok(linkBody, { ttlSeconds: ttl }), false, String(ttl));
    assert.equal(ok(importBody, { refreshToken: 'r' }), true);
    assert.equal(ok(importBody, { refreshToken: '' }), false);
    assert.equal(ok(importBody, { refreshToken: 'r'.repeat(16_385) }), false);
    assert.equal(ok(importBody, { refreshToken: 'r', x: 1 }), false);
  });
});
