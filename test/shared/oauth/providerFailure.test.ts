/**
 * What a failed provider call becomes. The errors are the real ones: oauth4webapi's token-response processing run
 * over Response objects shaped like RFC 6749 §5.2 error answers (and Microsoft's, with error_codes / trace_id),
 * jose's own error classes, and the TypeError undici's fetch throws for a refused connection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors as joseErrors } from 'jose';
import * as oauth from 'oauth4webapi';
import { Response as UndiciResponse } from 'undici';
import { BrokerError } from '../../../shared/errors.ts';
import { ProviderFailure, toProviderFailure } from '../../../shared/oauth/providerFailure.ts';

const as: oauth.AuthorizationServer = {
  issuer: 'https://idp.test',
  token_endpoint: 'https://idp.test/token',
};
const client: oauth.Client = { client_id: 'client-1' };
const json = { 'content-type': 'application/json' };

/** What oauth4webapi throws for this token endpoint answer. */
async function thrownFor(response: Response): Promise<unknown> {
  try {
    await oauth.processRefreshTokenResponse(as, client, response);
  } catch (err) {
    return err;
  }
  throw new Error('expected the answer to be refused');
}

const oauthError = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  thrownFor(new Response(JSON.stringify(body), { status, headers: { ...json, ...headers } }));

function asProviderFailure(err: BrokerError): ProviderFailure {
  assert.ok(err instanceof ProviderFailure, `expected a ProviderFailure, got ${err.name}`);
  return err;
}

describe('toProviderFailure: token endpoint error answers (RFC 6749 §5.2)', () => {
  it('a refused refresh token asks the account to sign in again, with the provider diagnostics as fields', async () => {
    const err = await oauthError(400, {
      error: 'invalid_grant',
      error_codes: [70008, 50173],
      trace_id: 'trace-1',
      correlation_id: 'corr-1',
    });
    const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
    assert.equal(failure.code, 'connection_needs_reauth');
    assert.equal(failure.status, 409);
    assert.equal(failure.name, 'ProviderFailure');
    assert.match(failure.message, /sign in again/);
    assert.equal(failure.detail, 'refresh reauth');
    assert.equal(failure.failure.kind, 'reauth');
    assert.deepEqual(failure.fields, {
      providerError: 'invalid_grant',
      providerCodes: '70008,50173',
      traceId: 'trace-1',
      correlationId: 'corr-1',
      providerHttpStatus: 400,
    });
    assert.equal(failure.retryAfterSeconds, undefined);
    assert.equal(failure.cause, err);
  });

  it('a refused sign-in code is a provider error for this sign-in, not a broken connection', async () => {
    const failure = asProviderFailure(
      toProviderFailure(await oauthError(400, { error: 'invalid_grant' }), 'code'),
    );
    assert.equal(failure.code, 'provider_error');
    assert.equal(failure.status, 502);
    assert.match(failure.message, /refused the sign-in code/);
    assert.equal(failure.detail, 'code reauth');
    assert.equal(failure.fields.providerCodes, undefined);
  });

  it('a rejected client is a configuration problem of the broker', async () => {
    const failure = toProviderFailure(await oauthError(400, { error: 'unauthorized_client' }), 'refresh');
    assert.equal(failure.code, 'provider_misconfigured');
    assert.equal(failure.status, 502);
    assert.match(failure.message, /rejected the broker configuration/);
    assert.equal(failure.retryAfterSeconds, undefined);
  });

  it('an error value the broker does not know is a protocol error', async () => {
    const failure = toProviderFailure(await oauthError(400, { error: 'something_new' }), 'refresh');
    assert.equal(failure.code, 'provider_error');
    assert.match(failure.message, /could not use/);
    assert.equal(failure.detail, 'refresh protocol');
  });

  it('temporarily_unavailable is transient and carries the Retry-After the provider sent', async () => {
    const failure = toProviderFailure(
      await oauthError(400, { error: 'temporarily_unavailable' }, { 'retry-after': '17' }),
      'refresh',
    );
    assert.equal(failure.code, 'provider_unavailable');
    assert.equal(failure.status, 503);
    assert.match(failure.message, /unavailable right now/);
    assert.equal(failure.retryAfterSeconds, 17);
  });

  it('a transient failure without Retry-After tells the caller to wait 5 seconds', async () => {
    const failure = toProviderFailure(await oauthError(400, { error: 'server_error' }), 'refresh');
    assert.equal(failure.code, 'provider_unavailable');
    assert.equal(failure.retryAfterSeconds, 5);
  });
});

describe('toProviderFailure: HTTP answers that are not OAuth error bodies', () => {
  it('a 503 is transient, with its Retry-After and the provider status', async () => {
    const err = await thrownFor(
      new Response('<html>busy</html>', { status: 503, headers: { 'retry-after': '9' } }),
    );
    assert.ok(err instanceof oauth.OperationProcessingError);
    const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
    assert.equal(failure.code, 'provider_unavailable');
    assert.equal(failure.retryAfterSeconds, 9);
    assert.equal(failure.fields.providerHttpStatus, 503);
  });

  it("undici's Response (what the broker's transport returns) counts as a response too", () => {
    const cause = new UndiciResponse('busy', { status: 502, headers: { 'retry-after': '11' } });
    assert.ok(!(cause instanceof Response), 'undici Response is not the global class');
    const err = new oauth.OperationProcessingError('unexpected HTTP status', { cause });
    const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
    assert.equal(failure.failure.kind, 'transient');
    assert.equal(failure.fields.providerHttpStatus, 502);
    assert.equal(failure.retryAfterSeconds, 11);
  });

  it('a 200 the broker cannot parse is a protocol error, not worth retrying', async () => {
    const err = await thrownFor(new Response('not json', { status: 200, headers: json }));
    const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
    assert.equal(failure.code, 'provider_error');
    assert.equal(failure.failure.kind, 'protocol');
    assert.equal(failure.retryAfterSeconds, undefined);
  });

  it('a 200 without an access token is a protocol error', async () => {
    const failure = toProviderFailure(
      await thrownFor(new Response('{"token_type":"Bearer"}', { status: 200, headers: json })),
      'code',
    );
    assert.equal(failure.code, 'provider_error');
    assert.equal(failure.detail, 'code protocol');
  });

  it('a processing error whose cause is not a response (string, null, half a response) is a protocol error', () => {
    for (const cause of [
      'text',
      null,
      { status: 502 },
      { status: 502, headers: {} },
      { headers: new Headers() },
    ]) {
      const err = new oauth.OperationProcessingError('bad answer', { cause });
      const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
      assert.equal(failure.failure.kind, 'protocol', JSON.stringify(cause));
      assert.equal(failure.fields.providerHttpStatus, undefined, JSON.stringify(cause));
    }
  });

  it('a 401 challenge naming invalid_client is a configuration problem', async () => {
    const err = await thrownFor(
      new Response('', {
        status: 401,
        headers: { 'www-authenticate': 'Basic realm="idp", error="invalid_client"' },
      }),
    );
    assert.ok(err instanceof oauth.WWWAuthenticateChallengeError);
    const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
    assert.equal(failure.code, 'provider_misconfigured');
    assert.equal(failure.fields.providerError, 'invalid_client');
    assert.equal(failure.fields.providerHttpStatus, 401);
  });

  it('a 401 challenge naming another error is classified by that error', async () => {
    const err = await thrownFor(
      new Response('', { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_grant"' } }),
    );
    const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
    assert.equal(failure.code, 'connection_needs_reauth');
    assert.equal(failure.fields.providerError, 'invalid_grant');
  });

  it('a 401 challenge without an error is taken as invalid_client', async () => {
    const err = await thrownFor(
      new Response('', { status: 401, headers: { 'www-authenticate': 'Basic realm="idp"' } }),
    );
    const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
    assert.equal(failure.fields.providerError, 'invalid_client');
    assert.equal(failure.code, 'provider_misconfigured');
  });

  it("only the protocol library's errors are read for an HTTP status, not any error that carries a response", () => {
    const err = new Error('something else', {
      cause: new Response('', { status: 503, headers: { 'retry-after': '30' } }),
    });
    const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
    assert.equal(failure.fields.providerHttpStatus, undefined);
    assert.equal(failure.retryAfterSeconds, 5);
  });

  it('invalid_client for a federated credential is transient (new credentials take minutes to replicate)', async () => {
    const body = { error: 'invalid_client', error_codes: [70021] };
    const federated = toProviderFailure(await oauthError(401, body), 'refresh', true);
    assert.equal(federated.code, 'provider_unavailable');
    assert.equal(federated.retryAfterSeconds, 5);
    const secret = toProviderFailure(await oauthError(401, body), 'refresh');
    assert.equal(secret.code, 'provider_misconfigured');
  });
});

describe('toProviderFailure: network and ID-token failures', () => {
  it('a refused connection is transient', () => {
    const err = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
    });
    const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
    assert.equal(failure.code, 'provider_unavailable');
    assert.equal(failure.failure.kind, 'transient');
    assert.equal(failure.retryAfterSeconds, 5);
    assert.equal(failure.cause, err);
  });

  it('a forged or broken id_token is a protocol error, retrying does not fix it', () => {
    for (const err of [
      new joseErrors.JWSSignatureVerificationFailed(),
      new joseErrors.JWKSNoMatchingKey(),
      new joseErrors.JWTClaimValidationFailed('unexpected "aud" claim value', {}, 'aud', 'check_failed'),
    ]) {
      const failure = asProviderFailure(toProviderFailure(err, 'code'));
      assert.equal(failure.code, 'provider_error', err.code);
      assert.equal(failure.failure.kind, 'protocol', err.code);
    }
  });

  it('a key set that could not be fetched (timeout, non-200) is transient', () => {
    for (const err of [
      new joseErrors.JWKSTimeout(),
      new joseErrors.JOSEError('Expected 200 OK from the JSON Web Key Set HTTP response'),
    ]) {
      const failure = asProviderFailure(toProviderFailure(err, 'refresh'));
      assert.equal(failure.code, 'provider_unavailable', err.code);
      assert.equal(failure.retryAfterSeconds, 5, err.code);
    }
  });

  it("the broker's own errors pass through unchanged", () => {
    const ours = new BrokerError('invalid_state', 'The sign-in response did not match this browser session.');
    assert.equal(toProviderFailure(ours, 'code'), ours);
  });
});
