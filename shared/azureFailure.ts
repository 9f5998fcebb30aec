/**
 * @module azureFailure
 * What a failed Azure SDK call (Key Vault secrets, blob leases) means for us: whether trying again can help,
 * and a one-line summary that names only the status and service codes. Request URLs, bodies and service
 * messages are never copied (a Key Vault request carries the secret value).
 *
 * Transient, as the Azure SDK retry policies treat them: no response at all for a known network error code,
 * 408, 429, and 5xx except 501 and 505 (which never get better); callers may name further transient codes
 * (Key Vault's `ObjectIsBeingDeleted`). https://github.com/Azure/azure-sdk-for-js/blob/main/sdk/core/core-rest-pipeline/src/retryStrategies/exponentialRetryStrategy.ts
 */
import { retryAfterMs } from './retryAfter.ts';

export interface AzureFailure {
  transient: boolean;
  status?: number;
  /** The service's error code (`BlobNotFound`, `Forbidden`, `SecretNotFound`) or the network error code. */
  code?: string;
  /** Key Vault's `innererror.code` (`SecretDisabled`, `ObjectIsDeletedButRecoverable`). */
  inner?: string;
  retryAfterMs?: number;
  summary: string;
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'REQUEST_SEND_ERROR',
]);

/** The shape of `@azure/core-rest-pipeline`'s RestError that we read (duck-typed like its `isRestError`). */
interface RestErrorLike extends Error {
  statusCode?: number;
  code?: string;
  details?: unknown;
  response?: { headers: { get(name: string): string | undefined } };
}

export function azureFailureOf(err: unknown, transientInner: ReadonlySet<string> = new Set()): AzureFailure {
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return { transient: true, code: 'timeout', summary: 'timed out' };
  }
  if (!(err instanceof Error) || err.name !== 'RestError') {
    return { transient: false, summary: `unexpected ${err instanceof Error ? err.name : 'non-error'}` };
  }
  const rest = err as RestErrorLike;
  const status = rest.statusCode;
  const code = typeof rest.code === 'string' ? rest.code : undefined;
  if (status === undefined) {
    const failure: AzureFailure = {
      transient: code !== undefined && NETWORK_CODES.has(code),
      summary: `network error ${code ?? 'unknown'}`,
    };
    if (code !== undefined) failure.code = code;
    return failure;
  }
  const inner = innerCodeOf(rest.details);
  const transient =
    status === 408 ||
    status === 429 ||
    (status >= 500 && status !== 501 && status !== 505) ||
    (inner !== undefined && transientInner.has(inner));
  const failure: AzureFailure = {
    transient,
    status,
    summary: `HTTP ${status} ${code ?? ''}${inner ? `/${inner}` : ''}`.trim(),
  };
  if (code !== undefined) failure.code = code;
  if (inner !== undefined) failure.inner = inner;
  const headers = rest.response?.headers;
  const wait = headers ? retryAfterMs((name) => headers.get(name)) : undefined;
  if (wait !== undefined) failure.retryAfterMs = wait;
  return failure;
}

/** `innererror.code` of a Key Vault error body (the SDK renames it `innerError`). */
function innerCodeOf(details: unknown): string | undefined {
  if (typeof details !== 'object' || details === null || !('error' in details)) return undefined;
  const error: unknown = details.error;
  if (typeof error !== 'object' || error === null || !('innerError' in error)) return undefined;
  const inner: unknown = error.innerError;
  if (typeof inner !== 'object' || inner === null || !('code' in inner)) return undefined;
  return typeof inner.code === 'string' ? inner.code : undefined;
}
