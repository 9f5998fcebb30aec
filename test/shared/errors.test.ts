import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { BrokerError, ensureError, ERROR_CODES, isBrokerError } from '../../shared/errors.ts';

describe('BrokerError', () => {
  it('carries its code, the status of that code, the public message and nothing else by default', () => {
    const err = new BrokerError('lock_timeout', 'Busy.');
    assert.equal(err.name, 'BrokerError');
    assert.equal(err.code, 'lock_timeout');
    assert.equal(err.status, 503);
    assert.equal(err.message, 'Busy.');
    assert.equal(err.detail, undefined);
    assert.equal(err.retryAfterSeconds, undefined);
    assert.deepEqual(err.fields, {});
    assert.deepEqual(err.headers, {});
    assert.equal('cause' in err, false);
    for (const [code, status] of Object.entries(ERROR_CODES))
      assert.equal(new BrokerError(code as keyof typeof ERROR_CODES, 'x').status, status, code);
  });

  it('keeps the given options', () => {
    const err = new BrokerError('provider_unavailable', 'Later.', {
      detail: 'd',
      retryAfterSeconds: 5,
      fields: { provider: 'p' },
      headers: { 'www-authenticate': 'Bearer' },
    });
    assert.deepEqual(
      [err.detail, err.retryAfterSeconds, err.fields, err.headers],
      ['d', 5, { provider: 'p' }, { 'www-authenticate': 'Bearer' }],
    );
  });

  it('keeps a cause for code that asks, but out of JSON output', () => {
    const cause = { response: 'refresh_token=SECRET' };
    const err = new BrokerError('provider_error', 'Failed.', { cause });
    assert.equal(err.cause, cause);
    assert.equal(Object.getOwnPropertyDescriptor(err, 'cause')?.enumerable, false);
    assert.doesNotMatch(JSON.stringify(err), /SECRET/);
    // util.inspect prints a cause whatever its enumerability: the log module never inspects errors.
    assert.match(inspect(err), /SECRET/);
  });
});

describe('isBrokerError / ensureError', () => {
  it('tells broker errors from others', () => {
    assert.equal(isBrokerError(new BrokerError('forbidden', 'x')), true);
    assert.equal(isBrokerError(new Error('x')), false);
    assert.equal(isBrokerError({ code: 'forbidden', status: 403 }), false);
  });

  it('passes errors through, wraps strings, and never copies other thrown values', () => {
    const err = new TypeError('t');
    assert.equal(ensureError(err), err);
    assert.equal(ensureError('plain').message, 'plain');
    const wrapped = ensureError({ token: 'SECRET' });
    assert.ok(wrapped instanceof Error);
    assert.equal(wrapped.message, 'non-error thrown');
    assert.equal(ensureError(undefined).message, 'non-error thrown');
  });
});
