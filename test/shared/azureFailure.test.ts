import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestError } from '@azure/core-rest-pipeline';
import { azureFailureOf } from '../../shared/azureFailure.ts';

function restError(status: number | undefined, code?: string, extra: Partial<RestError> = {}): RestError {
  const err = new RestError('service message with https://vault.example/secrets/conn-a?api-version=x', {
    ...(status === undefined ? {} : { statusCode: status }),
    ...(code === undefined ? {} : { code }),
  });
  return Object.assign(err, extra);
}

describe('azureFailureOf', () => {
  it('408, 429 and 5xx are transient; 501, 505 and 4xx are not', () => {
    for (const status of [408, 429, 500, 502, 503, 504])
      assert.equal(azureFailureOf(restError(status)).transient, true);
    for (const status of [400, 401, 403, 404, 409, 501, 505])
      assert.equal(azureFailureOf(restError(status)).transient, false);
  });

  it('no response: transient only for known network errors', () => {
    assert.equal(azureFailureOf(restError(undefined, 'ECONNRESET')).transient, true);
    assert.equal(azureFailureOf(restError(undefined, 'REQUEST_SEND_ERROR')).transient, true);
    assert.equal(azureFailureOf(restError(undefined, 'ERR_TLS_CERT_ALTNAME_INVALID')).transient, false);
    const timeout = new Error('aborted');
    timeout.name = 'AbortError';
    assert.deepEqual(azureFailureOf(timeout), { transient: true, code: 'timeout', summary: 'timed out' });
  });

  it('names status, code and Key Vault inner code, never the service message or URL; reads Retry-After', () => {
    const err = restError(409, 'Conflict', {
      details: { error: { code: 'Conflict', innerError: { code: 'ObjectIsBeingDeleted' } } },
    });
    const plain = azureFailureOf(err);
    assert.deepEqual(plain, {
      transient: false,
      status: 409,
      code: 'Conflict',
      inner: 'ObjectIsBeingDeleted',
      summary: 'HTTP 409 Conflict/ObjectIsBeingDeleted',
    });
    assert.equal(azureFailureOf(err, new Set(['ObjectIsBeingDeleted'])).transient, true);
    const throttled = restError(429, 'Throttled', {
      response: {
        headers: { get: (n: string) => (n === 'retry-after' ? '7' : undefined) },
      } as unknown as RestError['response'],
    });
    assert.equal(azureFailureOf(throttled).retryAfterMs, 7000);
    assert.doesNotMatch(JSON.stringify(plain), /vault\.example|service message/);
  });

  it('anything else is not transient', () => {
    assert.deepEqual(azureFailureOf(new TypeError('x')), {
      transient: false,
      summary: 'unexpected TypeError',
    });
    assert.deepEqual(azureFailureOf('boom'), { transient: false, summary: 'unexpected non-error' });
  });
});

describe('azureFailureOf in detail', () => {
  it('treats a TimeoutError like an abort', () => {
    const err = new Error('t');
    err.name = 'TimeoutError';
    assert.deepEqual(azureFailureOf(err), { transient: true, code: 'timeout', summary: 'timed out' });
  });

  it('summarises a network failure by its code, or as unknown without one', () => {
    assert.deepEqual(azureFailureOf(restError(undefined, 'ETIMEDOUT')), {
      transient: true,
      code: 'ETIMEDOUT',
      summary: 'network error ETIMEDOUT',
    });
    assert.deepEqual(azureFailureOf(restError(undefined)), {
      transient: false,
      summary: 'network error unknown',
    });
    assert.deepEqual(azureFailureOf(restError(undefined, undefined, { code: 42 as unknown as string })), {
      transient: false,
      summary: 'network error unknown',
    });
  });

  it('summarises an answer by status alone when it has no codes', () => {
    assert.deepEqual(azureFailureOf(restError(503)), { transient: true, status: 503, summary: 'HTTP 503' });
    assert.deepEqual(azureFailureOf(restError(499)), { transient: false, status: 499, summary: 'HTTP 499' });
  });

  it('reads the inner code only from a well-formed Key Vault error body', () => {
    const inner = (details: unknown) => azureFailureOf(restError(409, 'Conflict', { details })).inner;
    assert.equal(inner({ error: { innerError: { code: 'SecretDisabled' } } }), 'SecretDisabled');
    for (const details of [
      undefined,
      null,
      'text',
      {},
      { error: null },
      { error: 'x' },
      { error: {} },
      { error: { innerError: null } },
      { error: { innerError: 'x' } },
      { error: { innerError: {} } },
      { error: { innerError: { code: 7 } } },
    ])
      assert.equal(inner(details), undefined, JSON.stringify(details));
  });

  it('has no wait when the answer has no retry headers', () => {
    const quiet = restError(429, 'Throttled', {
      response: { headers: { get: () => undefined } } as unknown as RestError['response'],
    });
    assert.equal('retryAfterMs' in azureFailureOf(quiet), false);
    assert.equal(
      azureFailureOf(
        restError(503, 'x', {
          response: {
            headers: { get: (n: string) => (n === 'retry-after-ms' ? '0' : undefined) },
          } as unknown as RestError['response'],
        }),
      ).retryAfterMs,
      0,
    );
  });
});
