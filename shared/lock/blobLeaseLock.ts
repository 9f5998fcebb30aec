/**
 * @module lock/blobLeaseLock
 * The cross-instance lock: a blob lease on the host's storage account (container `token-broker-locks`, one
 * empty blob `<connection>.lock` per connection, both created on first use).
 *
 * - Acquire: a lease of `leaseDurationSeconds` (15-60). While another instance holds it (409) we poll with
 *   jitter until `waitTimeoutMs`, then throw `lock_timeout`. Transient backend errors (5xx, network) are
 *   polled through the same way; a refusal (401/403) fails at once, also as `lock_timeout` with the reason in
 *   the detail, because for callers both mean "could not get the lock now".
 * - Hold: the lease is renewed every `leaseDurationSeconds / 3` while `fn` runs, so a long refresh keeps it;
 *   a holder that dies (kill -9) stops renewing and the lease frees itself after at most the duration.
 * - Release: in `finally`, after stopping the renewal. A failed release is logged; the lease expires anyway.
 *
 * A renewal that fails because the lease was lost is logged (`lock.lease_lost`); `fn` is not interrupted, which
 * is why the broker re-reads the store after taking the lock (see lock/types.ts).
 */
import { randomUUID } from 'node:crypto';
import type { TokenCredential } from '@azure/identity';
import {
  BlobServiceClient,
  type BlobLeaseClient,
  type BlockBlobClient,
  type ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { azureFailureOf as failureOf } from '../azureFailure.ts';
import { BrokerError } from '../errors.ts';
import { azureCredential } from '../identity.ts';
import { createLogger, type Logger } from '../log.ts';
import { assertConnectionName } from '../store/validate.ts';
import type { ConnectionLock } from './types.ts';

export const LOCK_CONTAINER = 'token-broker-locks';

export interface BlobLeaseLockOptions {
  /** A ready client (tests build two to act as two instances). Otherwise one of the next three is used. */
  serviceClient?: BlobServiceClient;
  /** Storage connection string (`AzureWebJobsStorage`, Azurite). */
  connectionString?: string;
  /** `AzureWebJobsStorage__blobServiceUri`, used with `credential`, or a managed identity when `clientId`. */
  blobServiceUri?: string;
  clientId?: string;
  credential?: TokenCredential;
  containerName?: string;
  /** 15-60 s. Default 30. */
  leaseDurationSeconds?: number;
  /** Default a third of the lease duration. */
  renewIntervalMs?: number;
  /** How long to wait for another holder. Default the lease duration + 10 s, so a dead holder's lease can lapse. */
  waitTimeoutMs?: number;
  /** Poll interval while waiting, drawn uniformly from [min, max]. Default 250-1000 ms. */
  pollIntervalMs?: { min: number; max: number };
  /** Per storage request. Default 10 s. */
  requestTimeoutMs?: number;
  logger?: Logger;
}

export class BlobLeaseLock implements ConnectionLock {
  readonly kind = 'blob';
  readonly #container: ContainerClient;
  readonly #durationSeconds: number;
  readonly #renewMs: number;
  readonly #waitTimeoutMs: number;
  readonly #poll: { min: number; max: number };
  readonly #requestTimeoutMs: number;
  readonly #log: Logger;
  /** Leases this process holds now (one holder per connection: a second one waits on the lease). */
  readonly #holding = new Map<string, { held(): boolean }>();

  constructor(options: BlobLeaseLockOptions) {
    const duration = options.leaseDurationSeconds ?? 30;
    if (!Number.isInteger(duration) || duration < 15 || duration > 60) {
      throw new BrokerError('config_error', 'The lock lease duration must be 15-60 seconds.', {
        detail: `leaseDurationSeconds=${duration}`,
      });
    }
    this.#durationSeconds = duration;
    this.#renewMs = options.renewIntervalMs ?? Math.floor((duration * 1000) / 3);
    this.#waitTimeoutMs = options.waitTimeoutMs ?? duration * 1000 + 10_000;
    this.#poll = options.pollIntervalMs ?? { min: 250, max: 1000 };
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#log = options.logger ?? createLogger({ lock: 'blob' });
    this.#container = serviceClientFrom(options).getContainerClient(options.containerName ?? LOCK_CONTAINER);
  }

  async withLock<T>(connection: string, fn: () => Promise<T>): Promise<T> {
    assertConnectionName(connection);
    const blob = this.#container.getBlockBlobClient(`${connection}.lock`);
    const lease = blob.getBlobLeaseClient(randomUUID());
    const acquiredAt = await this.#acquire(connection, blob, lease);
    const renewal = this.#keepRenewing(connection, lease, acquiredAt);
    this.#holding.set(connection, renewal);
    try {
      return await fn();
    } finally {
      this.#holding.delete(connection);
      await renewal.stop();
      await lease.releaseLease({ abortSignal: this.#signal() }).catch((err: unknown) => {
        this.#log.warn('lock.release_failed', { lock: 'blob', connection, detail: failureOf(err).summary });
      });
    }
  }

  held(connection: string): boolean {
    return this.#holding.get(connection)?.held() ?? false;
  }

  /** Returns when the successful acquire request was sent (the lease runs from no earlier than that). */
  async #acquire(connection: string, blob: BlockBlobClient, lease: BlobLeaseClient): Promise<number> {
    const deadline = Date.now() + this.#waitTimeoutMs;
    let waitingFor = 'another instance holds the lease';
    for (;;) {
      let missing = false;
      try {
        const sentAt = Date.now();
        await lease.acquireLease(this.#durationSeconds, { abortSignal: this.#signal() });
        return sentAt;
      } catch (err) {
        const failure = failureOf(err);
        if (failure.status === 404) {
          // Retry at once only when the blob now exists; a transient creation failure waits like any other.
          missing = await this.#createLockBlob(blob);
          if (!missing) waitingFor = 'lock blob could not be created yet';
        } else if (failure.status === 409) {
          waitingFor = 'another instance holds the lease';
        } else if (failure.transient) {
          waitingFor = `lease backend failing: ${failure.summary}`;
        } else {
          throw lockError(connection, `lease backend refused: ${failure.summary}`);
        }
      }
      const pause = missing ? 0 : this.#poll.min + Math.random() * (this.#poll.max - this.#poll.min);
      if (Date.now() + pause > deadline) {
        throw lockError(connection, `not acquired within ${this.#waitTimeoutMs} ms: ${waitingFor}`);
      }
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  /** Creates the container (if missing) and the empty lock blob without overwriting an existing one.
   * True when the blob exists afterwards; false after a transient failure. */
  async #createLockBlob(blob: BlockBlobClient): Promise<boolean> {
    try {
      await this.#container.createIfNotExists({ abortSignal: this.#signal() });
      await blob.upload('', 0, { conditions: { ifNoneMatch: '*' }, abortSignal: this.#signal() });
      return true;
    } catch (err) {
      const failure = failureOf(err);
      // Someone else created it first (409 BlobAlreadyExists; 412 when it exists and is leased).
      if (failure.status === 409 || failure.status === 412) return true;
      if (failure.transient) return false;
      throw lockError(undefined, `lock blob could not be created: ${failure.summary}`);
    }
  }

  /** Renews until stopped; `held()` is false once a renewal was refused or none was confirmed within the lease
   * duration (counted from when the request that confirmed it was sent). */
  #keepRenewing(
    connection: string,
    lease: BlobLeaseClient,
    confirmedAt: number,
  ): { held(): boolean; stop(): Promise<void> } {
    let stopped = false;
    let lost = false;
    let validFrom = confirmedAt;
    let inflight: Promise<void> = Promise.resolve();
    // Not unref'd on purpose: a held lock must keep renewing for as long as `fn` runs.
    let timer: NodeJS.Timeout;
    const schedule = () => {
      timer = setTimeout(tick, this.#renewMs);
    };
    const tick = () => {
      const sentAt = Date.now();
      inflight = lease.renewLease({ abortSignal: this.#signal() }).then(
        () => {
          validFrom = sentAt;
          if (!stopped) schedule();
        },
        (err: unknown) => {
          const failure = failureOf(err);
          if (failure.transient) {
            this.#log.warn('lock.renew_failed', { lock: 'blob', connection, detail: failure.summary });
            if (!stopped) schedule();
          } else {
            lost = true;
            this.#log.warn('lock.lease_lost', { lock: 'blob', connection, detail: failure.summary });
          }
        },
      );
    };
    schedule();
    return {
      held: () => !lost && Date.now() < validFrom + this.#durationSeconds * 1000,
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await inflight;
      },
    };
  }

  #signal(): AbortSignal {
    return AbortSignal.timeout(this.#requestTimeoutMs);
  }
}

export function createBlobLeaseLock(options: BlobLeaseLockOptions): BlobLeaseLock {
  return new BlobLeaseLock(options);
}

function serviceClientFrom(options: BlobLeaseLockOptions): BlobServiceClient {
  if (options.serviceClient) return options.serviceClient;
  // Bounded: the lock's own polling handles contention; these only cover a flaky request.
  const pipeline: StoragePipelineOptions = {
    retryOptions: { maxTries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000, tryTimeoutInMs: 10_000 },
  };
  if (options.connectionString)
    return BlobServiceClient.fromConnectionString(options.connectionString, pipeline);
  if (options.blobServiceUri) {
    const credential = options.credential ?? azureCredential(options.clientId);
    return new BlobServiceClient(options.blobServiceUri, credential, pipeline);
  }
  throw new BrokerError(
    'config_error',
    'The blob lease lock needs a storage connection string or blob service URI.',
    {
      detail: 'set AzureWebJobsStorage or AzureWebJobsStorage__blobServiceUri',
    },
  );
}

function lockError(connection: string | undefined, detail: string): BrokerError {
  return new BrokerError('lock_timeout', 'The connection is busy; try again shortly.', {
    detail,
    retryAfterSeconds: 2,
    fields: { lock: 'blob', connection },
  });
}
