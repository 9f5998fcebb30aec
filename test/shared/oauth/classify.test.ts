import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  claimsChallenge,
  classifyFailure,
  codeHint,
  parseRetryAfter,
} from '../../../shared/oauth/classify.ts';

// Bodies shaped like real Microsoft identity platform error responses
// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes: error, error_codes, trace_id …).
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
  // [title, input, kind, cause]. Decided from error + suberror (+ status, credential kind), as MSAL does.
  const cases: [string, Parameters<typeof classifyFailure>[0], string, string?][] = [
    [
      'inactive refresh token (700082, bad_token)',
      { httpStatus: 400, body: ms('invalid_grant', [700082], { suberror: 'bad_token' }) },
      'reauth',
      'revoked',
    ],
    [
      'bad_token decides even under interaction_required (MSAL drops that refresh token)',
      { httpStatus: 400, body: ms('interaction_required', [700082], { suberror: 'bad_token' }) },
      'reauth',
      'revoked',
    ],
    ['revoked grant (50173)', { httpStatus: 400, body: ms('invalid_grant', [50173]) }, 'reauth', 'revoked'],
    [
      'MFA required (50076)',
      { httpStatus: 400, body: ms('interaction_required', [50076]) },
      'reauth',
      'interaction',
    ],
    [
      'CA block as interaction_required/message_only (53003)',
      { httpStatus: 400, body: ms('interaction_required', [53003], { suberror: 'message_only' }) },
      'reauth',
      'interaction',
    ],
    [
      'sign-in frequency as invalid_grant/token_expired (70043)',
      { httpStatus: 400, body: ms('invalid_grant', [70043], { suberror: 'token_expired' }) },
      'reauth',
      'interaction',
    ],
    [
      'interaction suberror wins over invalid_grant (basic_action)',
      { httpStatus: 400, body: ms('invalid_grant', [50076], { suberror: 'basic_action' }) },
      'reauth',
      'interaction',
    ],
    [
      'consent missing (65001)',
      { httpStatus: 400, body: ms('invalid_grant', [65001], { suberror: 'consent_required' }) },
      'reauth',
      'consent',
    ],
    [
      'consent_required error value',
      { httpStatus: 400, body: ms('consent_required', [65001]) },
      'reauth',
      'consent',
    ],
    ['bad client secret (7000215)', { httpStatus: 401, body: ms('invalid_client', [7000215]) }, 'config'],
    ['expired client secret (7000222)', { httpStatus: 401, body: ms('invalid_client', [7000222]) }, 'config'],
    [
      'federated credential not replicated yet (70021)',
      { httpStatus: 401, body: ms('invalid_client', [70021]), federatedCredential: true },
      'transient',
    ],
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
      'loop detected arrives as invalid_grant (50196): MSAL surfaces it as UI required, so do we',
      { httpStatus: 400, body: ms('invalid_grant', [50196]) },
      'reauth',
      'revoked',
    ],
    [
      'temporarily_unavailable at 400',
      { httpStatus: 400, body: ms('temporarily_unavailable', [90006]) },
      'transient',
    ],
    ['timeout / reset', { network: true }, 'transient'],
    ['unknown 400 without a body', { httpStatus: 400, body: undefined }, 'protocol'],
  ];
  for (const [title, input, kind, cause] of cases) {
    it(`${title} → ${kind}${cause ? `/${cause}` : ''}`, () => {
      const c = classifyFailure(input);
      assert.deepEqual([c.kind, c.cause], [kind, cause]);
    });
  }

  it('ignores the AADSTS number: the same code with another error value classifies by the error', () => {
    // 70021 with a secret credential (where it cannot be replication) and 50076 as a transient error.
    assert.equal(classifyFailure({ httpStatus: 401, body: ms('invalid_client', [70021]) }).kind, 'config');
    assert.equal(
      classifyFailure({ httpStatus: 400, body: ms('temporarily_unavailable', [50076]) }).kind,
      'transient',
    );
  });

  it('carries a claims challenge through, and only a JSON object of sane size', () => {
    const claims = '{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}';
    const body = ms('interaction_required', [53003], { claims });
    assert.equal(classifyFailure({ httpStatus: 400, body }).claims, claims);
    for (const bad of ['not json', '[1]', '"x"', `{"a":"${'x'.repeat(5000)}"}`, 42]) {
      const c = classifyFailure({
        httpStatus: 400,
        body: ms('interaction_required', [50076], { claims: bad }),
      });
      assert.equal(c.claims, undefined, String(bad).slice(0, 20));
    }
  });

  it('turns the first AADSTS number into a hint for messages', () => {
    assert.equal(codeHint([50076, 1]), 'AADSTS50076: multi-factor authentication is required');
    assert.equal(codeHint([123456]), 'AADSTS123456');
    assert.equal(codeHint(undefined), undefined);
  });

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

  it('keeps a hostile body to bounded, typed fields: wrong types dropped, strings cut at 64, 8 codes', () => {
    const c = classifyFailure({
      httpStatus: 400,
      retryAfterHeader: '7',
      body: {
        error: 'x'.repeat(100),
        suberror: 's'.repeat(100),
        error_codes: [1, '2', 3, 4, 5, 6, 7, 8, 9, 10],
        trace_id: 't'.repeat(100),
        correlation_id: 'c'.repeat(100),
      },
    });
    assert.deepEqual(c, {
      kind: 'protocol',
      httpStatus: 400,
      retryAfterSeconds: 7,
      providerError: 'x'.repeat(64),
      suberror: 's'.repeat(64),
      codes: [1, 3, 4, 5, 6, 7, 8, 9],
      traceId: 't'.repeat(64),
      correlationId: 'c'.repeat(64),
    });
    const typed = classifyFailure({
      httpStatus: 400,
      body: { error: 42, suberror: {}, error_codes: 'x', trace_id: 1, correlation_id: null },
    });
    assert.deepEqual(typed, { kind: 'protocol', httpStatus: 400 });
  });

  it('a 500 exactly is transient whatever its body; a suberror outside the interaction list leaves the error to decide', () => {
    assert.equal(classifyFailure({ httpStatus: 500, body: ms('invalid_grant', [50173]) }).kind, 'transient');
    assert.equal(classifyFailure({ httpStatus: 499, body: ms('invalid_grant', [50173]) }).kind, 'reauth');
    const c = classifyFailure({
      httpStatus: 400,
      body: ms('invalid_grant', [50173], { suberror: 'client_mismatch' }),
    });
    assert.deepEqual([c.kind, c.cause], ['reauth', 'revoked']);
  });

  it('does not branch on description text', () => {
    const body = {
      error: 'invalid_client',
      error_description: 'AADSTS50196: loop detected, please retry later (temporarily_unavailable)',
    };
    assert.equal(classifyFailure({ httpStatus: 401, body }).kind, 'config');
  });

  it('a network failure is transient whatever else came with it, and carries nothing else', () => {
    assert.deepEqual(
      classifyFailure({
        network: true,
        httpStatus: 400,
        body: ms('invalid_grant', [50173]),
        retryAfterHeader: '7',
      }),
      { kind: 'transient' },
    );
  });

  it('no response at all (no status, no body: an unknown failure) is transient, with no made-up fields', () => {
    assert.deepEqual(classifyFailure({}), { kind: 'transient' });
    assert.deepEqual(classifyFailure({ body: {} }), { kind: 'transient' });
    // With a status and no error value it is a protocol error, not a transient one.
    assert.deepEqual(classifyFailure({ httpStatus: 400, body: {} }), { kind: 'protocol', httpStatus: 400 });
  });

  it('a 429 is transient even with an error value that would otherwise mean sign in again', () => {
    const c = classifyFailure({ httpStatus: 429, body: ms('invalid_grant', [50173]) });
    assert.deepEqual([c.kind, c.cause], ['transient', undefined]);
  });

  it('a federated credential makes only invalid_client transient; other config errors stay config', () => {
    for (const error of ['invalid_scope', 'unauthorized_client', 'invalid_request']) {
      const c = classifyFailure({ httpStatus: 400, body: ms(error, [70011]), federatedCredential: true });
      assert.equal(c.kind, 'config', error);
    }
  });

  it('a JSON null body or claims value is no record (no crash, no claims)', () => {
    assert.deepEqual(classifyFailure({ httpStatus: 400, body: null }), { kind: 'protocol', httpStatus: 400 });
    const c = classifyFailure({
      httpStatus: 400,
      body: ms('interaction_required', [50076], { claims: 'null' }),
    });
    assert.equal(c.claims, undefined);
  });

  it('a claims challenge of exactly 4096 characters is kept; one more is not', () => {
    const sized = (n: number) => {
      const head = '{"access_token":{"acrs":{"essential":true,"value":"';
      const tail = '"}}}';
      return `${head}${'c'.repeat(n - head.length - tail.length)}${tail}`;
    };
    assert.equal(sized(4096).length, 4096);
    assert.equal(claimsChallenge(sized(4096)), sized(4096));
    assert.equal(claimsChallenge(sized(4097)), undefined);
  });

  it('reads Retry-After in seconds and as an HTTP date', () => {
    assert.equal(parseRetryAfter('120'), 120);
    assert.equal(parseRetryAfter(new Date(Date.now() + 30_000).toUTCString()), 30);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(classifyFailure({ httpStatus: 429, retryAfterHeader: '9' }).retryAfterSeconds, 9);
  });
});
