import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bannerConnection } from '../../tools/startBanner.ts';

// `npm start`'s banner (tools/start.ts prints this body in its curl example).
const MS = ['https://graph.microsoft.com/Mail.Send'];
const keycloak = JSON.stringify({
  keycloak: { kind: 'oauth2', issuer: 'https://id.example.com/realms/acme' },
});

describe('npm start banner', () => {
  it('suggests the generic provider when only generic providers are configured', () => {
    assert.equal(bannerConnection({ BROKER_PROVIDERS: keycloak }, MS), '{"provider":"keycloak","scopes":[]}');
  });
  it('suggests Microsoft when it is configured', () => {
    const body = bannerConnection({ MICROSOFT_CLIENT_ID: 'id', BROKER_PROVIDERS: keycloak }, MS);
    assert.equal(body, JSON.stringify({ provider: 'microsoft', scopes: MS }));
  });
  it('falls back to Microsoft when BROKER_PROVIDERS is unreadable (the broker reports that itself)', () => {
    assert.match(bannerConnection({ BROKER_PROVIDERS: '{not json' }, MS), /"provider":"microsoft"/);
  });
});
