/**
 * @module lock
 * Builds the configured {@link ConnectionLock}: a blob lease across instances, or the in-process mutex of the
 * embedded default.
 */
import type { TokenCredential } from '@azure/identity';
import type { BlobServiceClient } from '@azure/storage-blob';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { createBlobLeaseLock } from './blobLeaseLock.ts';
import { createMemoryLock } from './memoryLock.ts';
import type { ConnectionLock } from './types.ts';

export interface ConnectionLockOptions {
  logger?: Logger;
  /** Blob: a ready client instead of the configured connection string / URI. */
  serviceClient?: BlobServiceClient;
  /** Blob: replaces the identity credential used with `blobServiceUri`. */
  credential?: TokenCredential;
  /** Blob: 15-60 s. */
  leaseDurationSeconds?: number;
  waitTimeoutMs?: number;
  pollIntervalMs?: { min: number; max: number };
}

export function createConnectionLock(
  config: Config['lock'],
  opts: ConnectionLockOptions = {},
): ConnectionLock {
  if (config.kind === 'memory') {
    return createMemoryLock(opts.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: opts.waitTimeoutMs });
  }
  return createBlobLeaseLock({
    ...(config.connectionString ? { connectionString: config.connectionString } : {}),
    ...(config.blobServiceUri ? { blobServiceUri: config.blobServiceUri } : {}),
    ...(config.clientId ? { clientId: config.clientId } : {}),
    ...opts,
  });
}
