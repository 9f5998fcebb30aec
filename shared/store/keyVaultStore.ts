/**
 * @module store/keyVaultStore
 * The Azure store: one Key Vault secret per connection, `conn-{connection}`, whose value is the JSON envelope
 * (refresh and access tokens change in one write) and whose non-secret tags carry the {@link RecordMetadata}
 * the sweep needs, so listing never reads a secret value, plus `writtenAt` (epoch ms) to order versions that
 * Key Vault timestamps only to the second.
 *
 * Behaviour we own instead of leaving to the SDK (sources: the retry policy of azure-sdk-for-js
 * `sdk/core/core-rest-pipeline/src/policies/`; https://learn.microsoft.com/azure/key-vault/general/overview-throttling
 * and .../service-limits; the Key Vault double's sources in docs/keyvault-double.md):
 * - Retries. The SDK's policy skips a 429 without `Retry-After` (what Key Vault was seen to send) and would
 *   multiply attempts with ours, so the client runs with `maxRetries: 0` and this module has the single rule:
 *   408, 429, 5xx except 501/505, network errors, per-attempt timeouts and the transient 409s
 *   (`ObjectIsBeingDeleted`, `ObjectIsBeingRecovered`) are retried up to `maxAttempts` with exponential backoff
 *   and 50-100 % jitter, honouring `Retry-After` up to `maxRetryAfterMs`; then `store_unavailable` with
 *   `retryAfterSeconds`.
 * - Budgets. Key Vault allows 300 secret writes and 4,000 other transactions per 10 s per vault; the vault pacer
 *   (store/vaultPacer.ts) keeps this process under both.
 * - Soft delete. Deleting a connection soft-deletes its secret, which reserves the name (409
 *   `ObjectIsDeletedButRecoverable`). `put` then RECOVERS the secret and writes a new version over it. We do not
 *   purge: purge needs a permission nobody has by default and is refused outright under purge protection,
 *   whereas recover works on every vault and keeps the old versions as history.
 * - Errors. SDK errors become BrokerErrors whose detail names only the operation, status and Key Vault codes;
 *   request URLs, bodies and service messages are never copied (the RestError is not kept as `cause` either,
 *   because its request carries the secret value).
 */
import type { TokenCredential } from '@azure/identity';
import { SecretClient, type SecretClientOptions, type SecretProperties } from '@azure/keyvault-secrets';
import { azureFailureOf } from '../azureFailure.ts';
import { BrokerError, isBrokerError } from '../errors.ts';
import { azureCredential } from '../identity.ts';
import { createLogger, type Logger } from '../log.ts';
import { metadataFromTags, toTags } from './tags.ts';
import {
  CONNECTION_NAME_PATTERN,
  type ConnectionRecord,
  type RecordMetadata,
  type RecordVersion,
  type TokenStore,
} from './types.ts';
import { assertConnectionName, serializeRecord } from './validate.ts';
import { createVaultPacerPolicy, type VaultPacerOptions } from './vaultPacer.ts';

/** Key Vault accepts at most 25 items per page. */
const PAGE_SIZE = 25;
const SECRET_PREFIX = 'conn-';
/** Store-internal tag: epoch ms of the write (not part of RecordMetadata). */
const WRITTEN_AT_TAG = 'writtenAt';
const TRANSIENT_CONFLICTS = new Set(['ObjectIsBeingDeleted', 'ObjectIsBeingRecovered']);

export interface StoreRetryPolicy {
  /** Attempts in total, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A longer `Retry-After` is not waited for: the call fails at once with that `retryAfterSeconds`. */
  maxRetryAfterMs: number;
}

export const DEFAULT_STORE_RETRY: Readonly<StoreRetryPolicy> = Object.freeze({
  maxAttempts: 4,
  baseDelayMs: 1000,
  maxDelayMs: 8000,
  maxRetryAfterMs: 10_000,
});

export interface KeyVaultStoreOptions {
  vaultUrl: string;
  /** User-assigned managed identity client id; without it DefaultAzureCredential is used. */
  clientId?: string;
  /** Replaces the identity credential (tests pass the Key Vault double's). */
  credential?: TokenCredential;
  /** Extra client options (tests: `tlsOptions.ca`); `retryOptions.maxRetries` is always forced to 0. */
  secretClientOptions?: SecretClientOptions;
  /** Test-only: accept a challenge whose resource is not a parent domain of the vault host (loopback double). */
  disableChallengeResourceVerification?: boolean;
  retry?: Partial<StoreRetryPolicy>;
  /** Per attempt (list: per page). Default 10 s. */
  timeoutMs?: number;
  /** Delete/recover poller interval. Default 1 s (the SDK's 2 s is slower than the service usually is). */
  pollIntervalMs?: number;
  /** How long `delete` waits for the soft delete to complete (Key Vault: about 1-10 s). Default 30 s. */
  deleteSettleMs?: number;
  /** Client-side pacing under the vault's two budgets (see store/vaultPacer.ts). */
  pacer?: VaultPacerOptions;
  logger?: Logger;
}

export class KeyVaultTokenStore implements TokenStore {
  readonly kind = 'keyvault';
  readonly #client: SecretClient;
  readonly #retry: StoreRetryPolicy;
  readonly #timeoutMs: number;
  readonly #pollIntervalMs: number;
  readonly #deleteSettleMs: number;
  readonly #log: Logger;
  #lastWrittenAt = 0;

  constructor(options: KeyVaultStoreOptions) {
    const credential = options.credential ?? azureCredential(options.clientId);
    const retry = { ...DEFAULT_STORE_RETRY, ...options.retry };
    const clientOptions: SecretClientOptions = {
      ...options.secretClientOptions,
      retryOptions: { ...options.secretClientOptions?.retryOptions, maxRetries: 0 },
      additionalPolicies: [
        ...(options.secretClientOptions?.additionalPolicies ?? []),
        createVaultPacerPolicy({
          initialPauseMs: retry.baseDelayMs,
          maxPauseMs: retry.maxDelayMs,
          ...options.pacer,
        }),
      ],
    };
    if (options.disableChallengeResourceVerification)
      clientOptions.disableChallengeResourceVerification = true;
    // One client per store: each new client pays an extra 401 challenge round trip.
    this.#client = new SecretClient(options.vaultUrl, credential, clientOptions);
    this.#retry = retry;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#deleteSettleMs = options.deleteSettleMs ?? 30_000;
    this.#log = options.logger ?? createLogger({ store: 'keyvault' });
  }

  async get(connection: string): Promise<ConnectionRecord | undefined> {
    assertConnectionName(connection);
    const name = secretNameOf(connection);
    let value: string | undefined;
    try {
      const secret = await this.#call('get', connection, (abortSignal) =>
        this.#client.getSecret(name, { abortSignal }),
      );
      value = secret.value;
    } catch (err) {
      if (failureOf(err).status === 404) return undefined;
      throw toBrokerError('get', err, connection);
    }
    return parseEnvelope(value, connection);
  }

  async put(record: ConnectionRecord): Promise<void> {
    const value = serializeRecord(record);
    const { connection } = record;
    const name = secretNameOf(connection);
    // Key Vault's own timestamps have one-second resolution; this orders versions written within a second.
    const writtenAt = Math.max(Date.now(), this.#lastWrittenAt + 1);
    this.#lastWrittenAt = writtenAt;
    const tags = toTags(record, { [WRITTEN_AT_TAG]: String(writtenAt) });
    try {
      await this.#call('set', connection, async (abortSignal) => {
        const options = { contentType: 'application/json', tags, abortSignal };
        try {
          await this.#client.setSecret(name, value, options);
        } catch (err) {
          if (failureOf(err).inner !== 'ObjectIsDeletedButRecoverable') throw err;
          await this.#recover(name, connection, abortSignal);
          await this.#client.setSecret(name, value, options);
        }
      });
    } catch (err) {
      throw toBrokerError('set', err, connection);
    }
  }

  async listMetadata(): Promise<RecordMetadata[]> {
    try {
      // The SDK drops page continuation tokens, so a retry restarts the listing (collected per attempt).
      const found = await this.#call('list', undefined, () =>
        this.#pages((abortSignal) =>
          this.#client.listPropertiesOfSecrets({ abortSignal }).byPage({ maxPageSize: PAGE_SIZE }),
        ),
      );
      const out: RecordMetadata[] = [];
      for (const properties of found) {
        const meta = this.#metadataOf(properties);
        if (meta) out.push(meta);
      }
      return out.sort((a, b) => a.connection.localeCompare(b.connection));
    } catch (err) {
      throw toBrokerError('list', err);
    }
  }

  /**
   * Metadata page by page as Key Vault answers, so the sweep can refresh while the listing still pages. A
   * transient failure restarts the listing under the same retry rule as every call (the SDK keeps no
   * continuation token); connections already yielded are not yielded again.
   */
  async *listMetadataPages(): AsyncGenerator<RecordMetadata[]> {
    const seen = new Set<string>();
    for (let n = 1; ; n++) {
      const controller = new AbortController();
      try {
        const pages = this.#client
          .listPropertiesOfSecrets({ abortSignal: controller.signal })
          .byPage({ maxPageSize: PAGE_SIZE });
        for (;;) {
          // The clock runs only while a page is awaited, not while the consumer works on the last one.
          const page = await withinTimeout(pages.next(), this.#timeoutMs, controller);
          if (page.done) return;
          const out: RecordMetadata[] = [];
          for (const properties of page.value) {
            const meta = this.#metadataOf(properties);
            if (meta && !seen.has(meta.connection)) {
              seen.add(meta.connection);
              out.push(meta);
            }
          }
          if (out.length > 0) yield out;
        }
      } catch (err) {
        await this.#waitBeforeRetry('list', undefined, n, err, (e) => toBrokerError('list', e));
      }
    }
  }

  /** The sweep's view of one secret, from its tags only; undefined (and a warning) for foreign or bad ones. */
  #metadataOf(properties: SecretProperties): RecordMetadata | undefined {
    if (!properties.name.toLowerCase().startsWith(SECRET_PREFIX)) return undefined;
    const expected = properties.name.slice(SECRET_PREFIX.length).toLowerCase();
    const meta = metadataFromTags(properties.tags);
    if (meta?.connection === expected) return meta;
    this.#log.warn('store.record_unreadable', {
      store: 'keyvault',
      connection: CONNECTION_NAME_PATTERN.test(expected) ? expected : undefined,
      code: 'bad_tags',
      detail: 'a conn- secret lacks valid connection tags; not listed',
    });
    return undefined;
  }

  /**
   * Soft-deletes the secret and waits until Key Vault shows it as deleted, so that connecting the same name again
   * right away recovers it instead of meeting `ObjectIsBeingDeleted`. Soft delete completes asynchronously:
   * `GET /deletedsecrets/{name}` answers 404 for about 1-10 s after the DELETE. So the DELETE (first SDK poll
   * included) is one retried attempt under the per-attempt timeout, and the wait is a separate loop of short
   * reads under its own deadline ({@link KeyVaultStoreOptions.deleteSettleMs}).
   */
  async delete(connection: string): Promise<boolean> {
    assertConnectionName(connection);
    const name = secretNameOf(connection);
    let attempts = 0;
    let done = false;
    try {
      const deleted = await this.#call('delete', connection, async (abortSignal) => {
        attempts++;
        try {
          const poller = await this.#client.beginDeleteSecret(name, {
            intervalInMs: this.#pollIntervalMs,
            abortSignal,
          });
          done = poller.isDone();
          return true;
        } catch (err) {
          // 404 on a retry: an earlier DELETE whose answer was lost may have deleted it (decided below).
          if (attempts > 1 && failureOf(err).status === 404) return undefined;
          throw err;
        }
      });
      if (done) return true;
      // After a first-attempt success the secret IS deleted; after a lost answer it is deleted only if it shows
      // up in the deleted list within the window (inside the window a single read says 404 either way).
      const appeared = await this.#awaitSoftDeleted(name, connection);
      if (deleted === true && !appeared) {
        this.#log.warn('store.delete_unsettled', {
          store: 'keyvault',
          connection,
          durationMs: this.#deleteSettleMs,
          detail: 'deleted, but not yet listed as deleted; reconnecting this name may be refused briefly',
        });
      }
      return deleted === true || appeared;
    } catch (err) {
      if (failureOf(err).status === 404) return false;
      throw toBrokerError('delete', err, connection);
    }
  }

  /** Versions from `listPropertiesOfSecretVersions`: tags only, no values. Newest first. */
  async history(connection: string): Promise<RecordVersion[]> {
    assertConnectionName(connection);
    const name = secretNameOf(connection);
    let found: SecretProperties[];
    try {
      found = await this.#call('history', connection, () =>
        this.#pages((abortSignal) =>
          this.#client
            .listPropertiesOfSecretVersions(name, { abortSignal })
            .byPage({ maxPageSize: PAGE_SIZE }),
        ),
      );
    } catch (err) {
      if (failureOf(err).status === 404) return [];
      throw toBrokerError('history', err, connection);
    }
    const versions = found.map((p): RecordVersion => {
      const writtenAt = Number(p.tags?.[WRITTEN_AT_TAG]);
      const entry: RecordVersion = {
        version: p.version ?? '',
        createdAt:
          Number.isSafeInteger(writtenAt) && writtenAt > 0 ? writtenAt : (p.createdOn?.getTime() ?? 0),
        enabled: p.enabled !== false,
      };
      const meta = metadataFromTags(p.tags);
      if (meta) entry.metadata = meta;
      return entry;
    });
    return versions.sort(
      (a, b) => b.createdAt - a.createdAt || (b.metadata?.revision ?? 0) - (a.metadata?.revision ?? 0),
    );
  }

  async #recover(name: string, connection: string, abortSignal: AbortSignal): Promise<void> {
    this.#log.info('store.recover_deleted', { store: 'keyvault', connection });
    try {
      const poller = await this.#client.beginRecoverDeletedSecret(name, {
        intervalInMs: this.#pollIntervalMs,
        abortSignal,
      });
      await poller.pollUntilDone({ abortSignal });
    } catch (err) {
      // 404: someone else recovered (or purged) it meanwhile; the set that follows decides.
      if (failureOf(err).status !== 404) throw err;
    }
  }

  /** Polls `GET /deletedsecrets/{name}` (each read its own retried attempt) until it answers 200 (true) or
   * `deleteSettleMs` has passed (false). */
  async #awaitSoftDeleted(name: string, connection: string): Promise<boolean> {
    const deadline = Date.now() + this.#deleteSettleMs;
    for (;;) {
      const found = await this.#call('delete', connection, async (abortSignal) => {
        try {
          await this.#client.getDeletedSecret(name, { abortSignal });
          return true;
        } catch (err) {
          if (failureOf(err).status === 404) return false;
          throw err;
        }
      });
      if (found) return true;
      if (Date.now() + this.#pollIntervalMs > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, this.#pollIntervalMs));
    }
  }

  /** Reads every page; each page must arrive within the per-attempt timeout (an idle timeout, not a total). */
  async #pages(
    open: (abortSignal: AbortSignal) => AsyncIterableIterator<SecretProperties[]>,
  ): Promise<SecretProperties[]> {
    const controller = new AbortController();
    const pages = open(controller.signal);
    const items: SecretProperties[] = [];
    for (;;) {
      const page = await withinTimeout(pages.next(), this.#timeoutMs, controller);
      if (page.done) return items;
      items.push(...page.value);
    }
  }

  /** Runs one operation under the retry rule described in the module comment. Non-transient errors pass
   * through unchanged so callers can branch on 404 and friends. */
  async #call<T>(
    op: string,
    connection: string | undefined,
    attempt: (abortSignal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt(AbortSignal.timeout(this.#timeoutMs));
      } catch (err) {
        await this.#waitBeforeRetry(op, connection, n, err, (e) => e);
      }
    }
  }

  /** After failed attempt `n`: rethrows what is not transient (through `mapPermanent`), gives up with
   * `store_unavailable` when the budget is spent, else logs and waits out the backoff or Retry-After. */
  async #waitBeforeRetry(
    op: string,
    connection: string | undefined,
    n: number,
    err: unknown,
    mapPermanent: (err: unknown) => unknown,
  ): Promise<void> {
    const { maxAttempts, baseDelayMs, maxDelayMs, maxRetryAfterMs } = this.#retry;
    const failure = failureOf(err);
    if (!failure.transient) throw mapPermanent(err);
    const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1)) * (0.5 + Math.random() * 0.5);
    const wait = failure.retryAfterMs ?? backoff;
    const retryAfterSeconds = Math.max(1, Math.ceil(wait / 1000));
    if (n >= maxAttempts || wait > maxRetryAfterMs) {
      throw new BrokerError('store_unavailable', 'Key Vault is unavailable; try again later.', {
        detail: `${op} failed after ${n} attempt(s): ${failure.summary}`,
        retryAfterSeconds,
        fields: { store: 'keyvault', connection, httpStatus: failure.status, attempt: n },
      });
    }
    this.#log.warn('store.retry', {
      store: 'keyvault',
      connection,
      reason: op,
      httpStatus: failure.status,
      code: failure.inner ?? failure.code,
      attempt: n,
      durationMs: Math.round(wait),
    });
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

export function createKeyVaultStore(options: KeyVaultStoreOptions): KeyVaultTokenStore {
  return new KeyVaultTokenStore(options);
}

/**
 * Awaits one page for at most `ms`. The SDK passes `abortSignal` to the first list request only: it fetches the
 * following pages with `pathUnchecked(nextLink).get()` and no options (@azure/keyvault-secrets 4.12,
 * `static-helpers/pagingHelpers.js`), so aborting cannot end a hung later page. On expiry this aborts
 * `controller` (ending what the signal reaches) and rejects with a `TimeoutError`, which the retry rule treats
 * as transient.
 */
async function withinTimeout<T>(next: Promise<T>, ms: number, controller: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      const err = new Error(`no list page within ${ms} ms`);
      err.name = 'TimeoutError';
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([next, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The secret holding `connection`'s envelope. */
export function secretNameOf(connection: string): string {
  return `${SECRET_PREFIX}${connection}`;
}

function parseEnvelope(value: string | undefined, connection: string): ConnectionRecord {
  let record: ConnectionRecord | undefined;
  try {
    record = JSON.parse(value ?? '') as ConnectionRecord;
  } catch {
    record = undefined;
  }
  if (record?.v !== 1 || record.connection !== connection || typeof record.revision !== 'number') {
    throw new BrokerError('store_unavailable', 'The connection store holds an unreadable record.', {
      detail: 'secret value is not a v1 envelope for this connection',
      fields: { store: 'keyvault', connection },
    });
  }
  return record;
}

/** Classification shared with the lease lock (azureFailure.ts); a 409 while a delete or recovery is still
 * running is transient here. */
function failureOf(err: unknown) {
  return azureFailureOf(err, TRANSIENT_CONFLICTS);
}

function toBrokerError(op: string, err: unknown, connection?: string): BrokerError {
  if (isBrokerError(err)) return err;
  const failure = failureOf(err);
  const fields = { store: 'keyvault', connection, httpStatus: failure.status };
  if (failure.status === 403 && failure.inner === 'SecretDisabled') {
    return new BrokerError(
      'secret_disabled',
      "The connection's Key Vault secret is disabled; an administrator must enable it or connect again.",
      { detail: `${op}: ${failure.summary}`, fields },
    );
  }
  return new BrokerError('store_unavailable', 'Key Vault could not complete the request.', {
    detail: `${op}: ${failure.summary}`,
    fields,
  });
}
