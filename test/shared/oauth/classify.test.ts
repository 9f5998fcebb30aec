import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyFailure, parseRetryAfter } from '../../../shared/oauth/classify.ts';

// Bodies shaped like real Microsoft identity platform error responses (reference/ms-identity.md §4).
const ms = (error: string, codes: number[], extra: Record<string, unknown> = {}) => ({
  error,
  error_description: `AADSTS${codes[0]}: Something happened.\r\nTrace ID: 0d3d2c1a-7a3c-4b52-9f43-0a1b2c3d4e5f\r\nCorrelation ID: 5b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\r\nTimestamp: 2026-11-27 10:00:00Z`,
  error_codes: codes,
  timestamp: '2026-11-27 10:00:00Z',
  trace_id: '0d3d2c1a-7a3c-4b52-9f43-0a1b2c3d4e5f',
  correlation_id: '5b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0',
  error_uri: `https://login.microsoftonline.com/error?code=${codes[0]}`,
  ...extra,
});

describe('classifyFailure (Microsoft)', () => {
  const cases: [string, Parameters<typeof classifyFailure>[0], string][] = [
    [
      'inactive refresh token (700082, bad_token)',
      { httpStatus: 400, body: ms('invalid_grant', [700082], { suberror: 'bad_token' }) },
      'reauth',
    ],
    ['revoked grant (50173)', { httpStatus: 400, body: ms('invalid_grant', [50173]) }, 'reauth'],
    ['MFA required (50076)', { httpStatus: 400, body: ms('interaction_required', [50076]) }, 'reauth'],
    [
      'consent missing (65001)',
      { httpStatus: 400, body: ms('invalid_grant', [65001], { suberror: 'consent_required' }) },
      'reauth',
    ],
    ['consent_required error value', { httpStatus: 400, body: ms('consent_required', [65001]) }, 'reauth'],
    ['bad client secret (7000215)', { httpStatus: 401, body: ms('invalid_client', [7000215]) }, 'config'],
    ['expired client secret (7000222)', { httpStatus: 401, body: ms('invalid_client', [7000222]) }, 'config'],
    ['invalid scope (70011)', { httpStatus: 400, body: ms('invalid_scope', [70011]) }, 'config'],
    ['app not in tenant (700016)', { httpStatus: 400, body: ms('unauthorized_client', [700016]) }, 'config'],
    [
      'throttled 429',
      { httpStatus: 429, body: ms('temporarily_unavailable', [90055]), retryAfterHeader: '7' },
      'transient',
    ],
    ['server error 500', { httpStatus: 500, body: ms('server_error', [90033]) }, 'transient'],
    ['503 html page', { httpStatus: 503, body: undefined }, 'transient'],
    [
      'loop detected arrives as invalid_grant (50196)',
      { httpStatus: 400, body: ms('invalid_grant', [50196]) },
      'transient',
    ],
    [
      'temporarily_unavailable at 400',
      { httpStatus: 400, body: ms('temporarily_unavailable', [90006]) },
      'transient',
    ],
    ['timeout / reset', { network: true }, 'transient'],
    ['unknown 400 without a body', { httpStatus: 400, body: undefined }, 'protocol'],
  ];
  for (const [title, input, kind] of cases) {
    it(`${title} → ${kind}`, () => assert.equal(classifyFailure(input).kind, kind));
  }

  it('keeps the diagnostic identifiers and never the description', () => {
    const c = classifyFailure({
      httpStatus: 400,
      body: ms('invalid_grant', [700082], { suberror: 'bad_token' }),
    });
    assert.deepEqual(
      { e: c.providerError, s: c.suberror, codes: c.codes, t: c.traceId, cid: c.correlationId },
      {
        e: 'invalid_grant',
        s: 'bad_token',
        codes: [700082],
        t: '0d3d2c1a-7a3c-4b52-9f43-0a1b2c3d4e5f',
        cid: '5b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0',
      },
    );
    assert.ok(!JSON.stringify(c).includes('Something happened'));
  });

  it('does not branch on description text', () => {
    const body = {
      error: 'invalid_client',
      error_description: 'AADSTS50196: loop detected, please retry later (temporarily_unavailable)',
    };
    assert.equal(classifyFailure({ httpStatus: 401, body }).kind, 'config');
  });

  it('reads Retry-After in seconds and as an HTTP date', () => {
    assert.equal(parseRetryAfter('120'), 120);
    assert.equal(parseRetryAfter(new Date(Date.now() + 30_000).toUTCString()), 30);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(classifyFailure({ httpStatus: 429, retryAfterHeader: '9' }).retryAfterSeconds, 9);
  });
});
