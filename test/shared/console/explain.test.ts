import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explainError, statusBadge } from '../../../shared/console/explain.ts';

const at = '2026-11-29T12:00:00.000Z';

describe('statusBadge', () => {
  it('names the four statuses the way the console shows them', () => {
    assert.deepEqual(
      ['active', 'pending', 'needs_reauth', 'error'].map((s) => statusBadge(s)),
      [
        { label: 'Active', tone: 'ok' },
        { label: 'Not connected', tone: 'idle' },
        { label: 'Needs sign-in', tone: 'warn' },
        { label: 'Error', tone: 'bad' },
      ],
    );
  });
  it('shows an unknown status as itself, marked bad', () => {
    assert.deepEqual(statusBadge('frozen'), { label: 'frozen', tone: 'bad' });
  });
});

describe('explainError', () => {
  it('invalid_grant with AADSTS70008: the account must sign in again, send a new link', () => {
    const why = explainError('needs_reauth', {
      code: 'connection_needs_reauth',
      providerError: 'invalid_grant',
      providerCodes: [70008],
      at,
    });
    assert.equal(why?.action, 'send_link');
    assert.equal(why?.title, 'The refresh token has expired');
    assert.match(why?.todo ?? '', /must sign in again: send its owner a new connect link/);
    assert.deepEqual(why?.codes, ['invalid_grant', 'AADSTS70008', 'connection_needs_reauth']);
  });

  it('AADSTS50173 (sessions revoked) is explained as a revoked sign-in', () => {
    const why = explainError('needs_reauth', {
      code: 'x',
      providerError: 'invalid_grant',
      providerCodes: [50173],
      at,
    });
    assert.equal(why?.title, 'The sign-in was revoked');
    assert.equal(why?.action, 'send_link');
  });

  it('a known AADSTS number wins over the generic OAuth error', () => {
    const why = explainError('error', {
      code: 'provider_misconfigured',
      providerError: 'invalid_client',
      providerCodes: [7000215],
      at,
    });
    assert.equal(why?.title, 'The client secret is wrong');
    assert.equal(why?.action, 'fix_config');
    assert.match(why?.todo ?? '', /MICROSOFT_CLIENT_SECRET/);
  });

  it('an unknown AADSTS number falls back to the OAuth error and is still listed', () => {
    const why = explainError('needs_reauth', {
      code: 'c',
      providerError: 'invalid_grant',
      providerCodes: [1],
      at,
    });
    assert.equal(why?.title, 'The provider rejected the refresh token');
    assert.deepEqual(why?.codes, ['invalid_grant', 'AADSTS1', 'c']);
  });

  it('invalid_client without a number is a broker configuration problem', () => {
    assert.equal(
      explainError('error', { code: 'provider_misconfigured', providerError: 'invalid_client', at })?.action,
      'fix_config',
    );
  });

  it('a transient failure says to wait', () => {
    assert.equal(explainError('active', { code: 'provider_unavailable', at })?.action, 'wait');
  });

  it('an unknown code falls back to what the status says', () => {
    assert.equal(explainError('needs_reauth', { code: 'something_new', at })?.action, 'send_link');
    assert.equal(explainError('error', { code: 'something_new', at })?.action, 'fix_config');
    assert.equal(explainError('active', { code: 'something_new', at })?.action, 'check_logs');
  });

  it('a connection never connected asks for a link; a healthy one has nothing to explain', () => {
    assert.equal(explainError('pending', undefined)?.action, 'send_link');
    assert.equal(explainError('active', undefined), undefined);
  });

  it('never repeats a code', () => {
    const why = explainError('needs_reauth', { code: 'invalid_grant', providerError: 'invalid_grant', at });
    assert.deepEqual(why?.codes, ['invalid_grant']);
  });

  it('the first known AADSTS number wins, after unknown ones', () => {
    const why = explainError('needs_reauth', {
      code: 'connection_needs_reauth',
      providerError: 'invalid_grant',
      providerCodes: [1, 700082, 70008],
      at,
    });
    assert.equal(why?.title, 'The refresh token expired after being unused');
    assert.deepEqual(why?.codes, [
      'invalid_grant',
      'AADSTS1',
      'AADSTS700082',
      'AADSTS70008',
      'connection_needs_reauth',
    ]);
  });

  it('without a provider error, the broker code explains it', () => {
    const why = explainError('error', { code: 'provider_error', providerCodes: [], at });
    assert.equal(why?.action, 'check_logs');
    assert.equal(why?.title, 'The provider gave an unexpected answer');
    assert.deepEqual(why?.codes, ['provider_error']);
  });

  it("codes named like Object.prototype's members are unknown codes, not its members", () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const why = explainError(name, { code: name, providerError: name, at });
      assert.equal(why?.title, 'The last refresh failed', name);
      assert.equal(why?.action, 'check_logs', name);
      assert.deepEqual(statusBadge(name), { label: name, tone: 'bad' });
    }
  });

  it('an unknown status with an unknown code reads as a failed refresh of an active connection', () => {
    const why = explainError('frozen', { code: 'something_new', at });
    assert.equal(why?.title, 'The last refresh failed');
    assert.equal(why?.action, 'check_logs');
    assert.deepEqual(why?.codes, ['something_new']);
  });

  it('a pending connection with an unknown error still asks for a link', () => {
    const why = explainError('pending', { code: 'something_new', at });
    assert.equal(why?.title, 'The connection is not connected');
    assert.equal(why?.action, 'send_link');
    assert.equal(explainError('pending', undefined)?.title, 'The connection is not connected');
    assert.deepEqual(explainError('pending', undefined)?.codes, []);
    for (const status of ['needs_reauth', 'error', 'frozen'])
      assert.equal(explainError(status, undefined), undefined);
  });

  it('has its own words and action for every code it knows', () => {
    const cases: [Partial<{ providerError: string; providerCodes: number[] }> & { code?: string }, string][] =
      [
        [{ providerCodes: [50173] }, 'send_link'],
        [{ providerCodes: [70008] }, 'send_link'],
        [{ providerCodes: [700082] }, 'send_link'],
        [{ providerCodes: [50076] }, 'send_link'],
        [{ providerCodes: [50079] }, 'send_link'],
        [{ providerCodes: [53003] }, 'send_link'],
        [{ providerCodes: [65001] }, 'send_link'],
        [{ providerCodes: [50126] }, 'send_link'],
        [{ providerCodes: [70000] }, 'send_link'],
        [{ providerCodes: [7000215] }, 'fix_config'],
        [{ providerCodes: [7000222] }, 'fix_config'],
        [{ providerCodes: [700016] }, 'fix_config'],
        [{ providerCodes: [700027] }, 'fix_config'],
        [{ providerCodes: [70011] }, 'fix_config'],
        [{ providerCodes: [650053] }, 'fix_config'],
        [{ providerCodes: [90055] }, 'wait'],
        [{ providerCodes: [90033] }, 'wait'],
        [{ providerError: 'invalid_grant' }, 'send_link'],
        [{ providerError: 'interaction_required' }, 'send_link'],
        [{ providerError: 'consent_required' }, 'send_link'],
        [{ providerError: 'login_required' }, 'send_link'],
        [{ providerError: 'invalid_client' }, 'fix_config'],
        [{ providerError: 'unauthorized_client' }, 'fix_config'],
        [{ providerError: 'invalid_scope' }, 'fix_config'],
        [{ providerError: 'temporarily_unavailable' }, 'wait'],
        [{ providerError: 'server_error' }, 'wait'],
        [{ code: 'connection_needs_reauth' }, 'send_link'],
        [{ code: 'provider_misconfigured' }, 'fix_config'],
        [{ code: 'connection_error' }, 'fix_config'],
        [{ code: 'provider_unavailable' }, 'wait'],
        [{ code: 'provider_error' }, 'check_logs'],
        [{ code: 'store_unavailable' }, 'wait'],
        [{ code: 'lock_timeout' }, 'wait'],
      ];
    const titles = new Set<string>();
    for (const [error, action] of cases) {
      // Under the status `active`, an unknown code would read as "the last refresh failed".
      const why = explainError('active', { code: 'unknown_code', ...error, at });
      const label = JSON.stringify(error);
      assert.equal(why?.action, action, label);
      assert.ok(why.title && why.meaning && why.todo, label);
      assert.notEqual(why.title, 'The last refresh failed', label);
      titles.add(why.title);
    }
    // Distinct words, except where two codes mean the same.
    assert.ok(titles.size >= cases.length - 3, `${titles.size} titles`);
  });
});
