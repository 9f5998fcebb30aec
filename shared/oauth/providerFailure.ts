/**
 * @module oauth/providerFailure
 * What a failed provider call becomes: a {@link ProviderFailure} whose class (reauth, config, transient, protocol)
 * says who can fix it, mapped once from whatever oauth4webapi, jose or the network threw.
 */
import { errors as joseErrors } from 'jose';
import * as oauth from 'oauth4webapi';
import { BrokerError, type ErrorCode } from '../errors.ts';
import { classifyFailure, type FailureClass, type FailureInput } from './classify.ts';
import { isNetworkError } from './metadata.ts';

/** What a caller is told for each kind of provider failure. A refused sign-in code is not a broken connection. */
const FAILURE_ANSWERS: Record<
  'reauth_code' | 'reauth_refresh' | 'config' | 'transient' | 'protocol',
  { code: ErrorCode; message: string }
> = {
  reauth_code: {
    code: 'provider_error',
    message: 'The provider refused the sign-in code; start the connect flow again.',
  },
  reauth_refresh: {
    code: 'connection_needs_reauth',
    message: 'The account must sign in again: the provider rejected the refresh token.',
  },
  config: {
    code: 'provider_misconfigured',
    message: 'The provider rejected the broker configuration (client id, credential or scopes).',
  },
  transient: {
    code: 'provider_unavailable',
    message: 'The provider is unavailable right now; try again shortly.',
  },
  protocol: {
    code: 'provider_error',
    message: 'The provider answered with something the broker could not use.',
  },
};

/** A provider call failed; `failure` says whether the user, the admin or time can fix it. */
export class ProviderFailure extends BrokerError {
  readonly failure: FailureClass;
  constructor(failure: FailureClass, stage: 'code' | 'refresh', cause?: unknown) {
    const { code, message } =
      FAILURE_ANSWERS[failure.kind === 'reauth' ? (`reauth_${stage}` as const) : failure.kind];
    const options: ConstructorParameters<typeof BrokerError>[2] = {
      detail: `${stage} ${failure.kind}`,
      fields: {
        providerError: failure.providerError,
        providerCodes: failure.codes?.join(','),
        traceId: failure.traceId,
        correlationId: failure.correlationId,
        // Ours is the status the caller gets; the provider's is logged under its own name.
        providerHttpStatus: failure.httpStatus,
      },
      cause,
    };
    if (failure.kind === 'transient') options.retryAfterSeconds = failure.retryAfterSeconds ?? 5;
    super(code, message, options);
    this.name = 'ProviderFailure';
    this.failure = failure;
  }
}

/** Turns whatever a provider call threw into a classified {@link ProviderFailure} (or passes ours through). */
export function toProviderFailure(
  err: unknown,
  stage: 'code' | 'refresh',
  federatedCredential = false,
): BrokerError {
  if (err instanceof BrokerError) return err;
  const input: FailureInput = { federatedCredential };
  if (err instanceof oauth.ResponseBodyError) {
    input.httpStatus = err.status;
    input.body = err.cause;
    input.retryAfterHeader = err.response.headers.get('retry-after');
  } else if (err instanceof oauth.WWWAuthenticateChallengeError) {
    input.httpStatus = err.status;
    input.body = { error: err.cause[0]?.parameters.error ?? 'invalid_client' };
  } else if (err instanceof oauth.OperationProcessingError) {
    const cause = err.cause;
    if (cause instanceof Response || isResponseLike(cause)) {
      input.httpStatus = cause.status;
      input.retryAfterHeader = cause.headers.get('retry-after');
    }
  } else if (isNetworkError(err)) {
    input.network = true;
  }
  const failure = classifyFailure(input);
  // A conforming-but-wrong 2xx (bad JSON, failed claim checks) is a protocol error, not a transient one. Without
  // a status classifyFailure would guess transient; with a status and no error body it already says protocol.
  if (err instanceof oauth.OperationProcessingError && input.httpStatus === undefined)
    failure.kind = 'protocol';
  // A forged or broken id_token (signature, unknown kid, claims) is not fixed by retrying; only a key set that
  // could not be fetched (timeout, non-200: ERR_JOSE_GENERIC) is.
  if (
    err instanceof joseErrors.JOSEError &&
    !(err instanceof joseErrors.JWKSTimeout) &&
    err.code !== 'ERR_JOSE_GENERIC'
  ) {
    failure.kind = 'protocol';
  }
  return new ProviderFailure(failure, stage, err);
}

function isResponseLike(v: unknown): v is Response {
  return (
    typeof v === 'object' &&
    v !== null &&
    'status' in v &&
    'headers' in v &&
    typeof (v as Response).headers.get === 'function'
  );
}
