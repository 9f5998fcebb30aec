/**
 * @module store/fileStore
 * The embedded default store (no `KEY_VAULT_URL`): one encrypted file per connection under the data directory.
 *
 * Layout under `dataDir`:
 * - `data.key`: 32 random bytes, mode 0600, created once (keyFile.ts: two processes starting together agree
 *   on one key).
 * - `connections/<name>.json.enc`: the record, AES-256-GCM with a fresh 12-byte IV per write and the
 *   connection name as additional data, so a file copied to another name does not decrypt.
 *
 * Writes use write-file-atomic (temp file in the same directory, fsync, rename over the record): a reader sees
 * the old or the new record, never a mix. Writes to one connection are serialised within the process; across
 * processes the rename still keeps every file whole (last writer wins).
 *
 * An unreadable file (tampered, swapped, wrong key) makes `get` throw `store_unavailable`. `listMetadata`
 * skips such a record with a `store.record_unreadable` warning instead of failing the listing of all others.
 */
import { mkdir, readFile, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { aesGcmDecrypt, aesGcmEncrypt } from '../crypto.ts';
import { BrokerError, isBrokerError } from '../errors.ts';
import { isReadableByOthers, KeyFileError, loadOrCreateKeyFile, syncDir } from '../keyFile.ts';
import { createLogger, type Logger } from '../log.ts';
import {
  CONNECTION_NAME_PATTERN,
  toMetadata,
  type ConnectionRecord,
  type RecordMetadata,
  type TokenStore,
} from './types.ts';
import { assertConnectionName, serializeRecord } from './validate.ts';

const FORMAT = 'token-broker/file-store';
const KEY_BYTES = 32;
const RECORD_FILE = /^([a-z0-9-]+)\.json\.enc$/;
const LIST_CONCURRENCY = 16;
/** Temp files: write-file-atomic's `<record file>.<uint32>`, and `.<connection>.<16 hex>.tmp` from earlier
 * versions of this store. */
const TEMP_FILE = /^(?:[a-z0-9-]{1,63}\.json\.enc\.\d{1,10}|\.[a-z0-9-]{1,63}\.[0-9a-f]{16}\.tmp)$/;
const STALE_TEMP_MS = 10 * 60_000;

export interface FileStoreOptions {
  dataDir: string;
  logger?: Logger;
}

interface Sealed {
  format: string;
  v: number;
  iv: string;
  tag: string;
  data: string;
}

/** Files written by earlier versions also carry `version` and `writtenAt` (for a history no longer kept). */
interface Payload {
  record: ConnectionRecord;
}

export class FileTokenStore implements TokenStore {
  readonly kind = 'file';
  readonly #dataDir: string;
  readonly #connectionsDir: string;
  readonly #log: Logger;
  #key: Promise<Buffer> | undefined;
  readonly #queues = new Map<string, Promise<void>>();

  constructor(options: FileStoreOptions) {
    this.#dataDir = options.dataDir;
    this.#connectionsDir = join(options.dataDir, 'connections');
    this.#log = options.logger ?? createLogger({ store: 'file' });
  }

  async get(connection: string): Promise<ConnectionRecord | undefined> {
    assertConnectionName(connection);
    const payload = await this.#read(connection, this.#currentPath(connection));
    return payload?.record;
  }

  async put(record: ConnectionRecord): Promise<void> {
    const json = serializeRecord(record);
    await this.#serial(record.connection, () => this.#write(record.connection, json));
  }

  async listMetadata(): Promise<RecordMetadata[]> {
    const files = await this.#listDir(this.#connectionsDir);
    await this.#removeStaleTemps(files);
    const names = files
      .map((file) => RECORD_FILE.exec(file)?.[1])
      .filter((name): name is string => name !== undefined && CONNECTION_NAME_PATTERN.test(name));
    const out: RecordMetadata[] = [];
    for (let i = 0; i < names.length; i += LIST_CONCURRENCY) {
      await Promise.all(
        names.slice(i, i + LIST_CONCURRENCY).map(async (name) => {
          try {
            const record = await this.get(name);
            if (record) out.push(toMetadata(record));
          } catch (err) {
            if (!isBrokerError(err)) throw err;
            this.#log.warn('store.record_unreadable', {
              connection: name,
              code: err.code,
              detail: err.detail,
            });
          }
        }),
      );
    }
    return out.sort((a, b) => a.connection.localeCompare(b.connection));
  }

  async delete(connection: string): Promise<boolean> {
    assertConnectionName(connection);
    return this.#serial(connection, async () => {
      // Unlike Key Vault there is no soft delete here: an admin deleting a connection expects its refresh
      // token gone from disk, old versions included (earlier versions of this store kept them in a
      // `<name>.history` directory).
      const existed = await fsStep('delete', () => unlinkIfExists(this.#currentPath(connection)));
      await fsStep('delete', () => rm(this.#legacyHistoryDir(connection), { recursive: true, force: true }));
      return existed;
    });
  }

  /**
   * A process killed between writing a temp file and renaming it leaves the temp behind. It is never read as a
   * record; the sweep's listing removes those older than any write could take, so they do not pile up.
   */
  async #removeStaleTemps(files: string[]): Promise<void> {
    const cutoff = Date.now() - STALE_TEMP_MS;
    let removed = 0;
    for (const file of files) {
      if (!TEMP_FILE.test(file)) continue;
      const path = join(this.#connectionsDir, file);
      try {
        if ((await stat(path)).mtimeMs < cutoff && (await unlinkIfExists(path))) removed++;
      } catch {
        // Gone already, or not ours to judge: leave it for the next sweep.
      }
    }
    if (removed > 0) this.#log.info('store.temp_removed', { store: 'file', count: removed });
  }

  #currentPath(connection: string): string {
    return join(this.#connectionsDir, `${connection}.json.enc`);
  }

  #legacyHistoryDir(connection: string): string {
    return join(this.#connectionsDir, `${connection}.history`);
  }

  /** Runs `fn` after every earlier write/delete of the same connection in this process. */
  #serial<T>(connection: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(connection) ?? Promise.resolve();
    const run = previous.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(connection, tail);
    void tail.then(() => {
      if (this.#queues.get(connection) === tail) this.#queues.delete(connection);
    });
    return run;
  }

  async #write(connection: string, json: string): Promise<void> {
    const key = await this.#dataKey();
    const sealed = seal(key, connection, `{"record":${json}}`);
    await fsStep('write', () => writeFileAtomic(this.#currentPath(connection), sealed, { mode: 0o600 }));
    await syncDir(this.#connectionsDir);
  }

  async #read(connection: string, path: string): Promise<Payload | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw unavailable(`file store read failed: ${errnoCode(err) ?? 'unknown'}`, connection);
    }
    const key = await this.#dataKey();
    return unseal(key, connection, text);
  }

  async #listDir(dir: string): Promise<string[]> {
    try {
      return await readdir(dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw unavailable(`file store list failed: ${errnoCode(err) ?? 'unknown'}`);
    }
  }

  #dataKey(): Promise<Buffer> {
    this.#key ??= this.#loadKey().catch((err: unknown) => {
      this.#key = undefined;
      throw err;
    });
    return this.#key;
  }

  async #loadKey(): Promise<Buffer> {
    await fsStep('key', () => mkdir(this.#connectionsDir, { recursive: true, mode: 0o700 }));
    const path = join(this.#dataDir, 'data.key');
    let key: Buffer;
    try {
      key = await loadOrCreateKeyFile(path, { bytes: KEY_BYTES, encoding: 'raw' });
    } catch (err) {
      if (err instanceof KeyFileError) throw unavailable(`data key: ${err.message}`);
      throw unavailable(`data key unreadable: ${errnoCode(err) ?? 'unknown'}`);
    }
    if (await isReadableByOthers(path)) {
      this.#log.warn('store.key_permissions', {
        store: 'file',
        detail: 'data.key is readable by group or others',
      });
    }
    return key;
  }
}

export function createFileStore(options: FileStoreOptions): FileTokenStore {
  return new FileTokenStore(options);
}

function seal(key: Buffer, connection: string, plaintext: string): string {
  const box = aesGcmEncrypt(key, plaintext, connection);
  const sealed: Sealed = {
    format: FORMAT,
    v: 1,
    iv: box.iv.toString('base64url'),
    tag: box.tag.toString('base64url'),
    data: box.data.toString('base64url'),
  };
  return JSON.stringify(sealed);
}

function unseal(key: Buffer, connection: string, text: string): Payload {
  let plaintext: string;
  try {
    const sealed = JSON.parse(text) as Partial<Sealed>;
    if (sealed.format !== FORMAT || sealed.v !== 1) throw new Error('unknown format');
    const box = {
      iv: Buffer.from(String(sealed.iv), 'base64url'),
      tag: Buffer.from(String(sealed.tag), 'base64url'),
      data: Buffer.from(String(sealed.data), 'base64url'),
    };
    plaintext = aesGcmDecrypt(key, box, connection).toString('utf8');
  } catch {
    throw unavailable('record file failed to decrypt (tampered, swapped, or another data key)', connection);
  }
  // A plaintext of `null` parses too (and has no properties): refused like any other foreign envelope.
  let payload: Payload | null;
  try {
    payload = JSON.parse(plaintext) as Payload | null;
  } catch {
    throw unavailable('record plaintext is not JSON', connection);
  }
  if (payload?.record?.v !== 1 || payload.record.connection !== connection) {
    throw unavailable('record envelope does not match its file name', connection);
  }
  return payload;
}

function unavailable(detail: string, connection?: string): BrokerError {
  return new BrokerError('store_unavailable', 'The connection store could not read or write a record.', {
    detail,
    fields: { store: 'file', connection },
  });
}

async function fsStep<T>(step: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isBrokerError(err)) throw err;
    throw unavailable(`file store ${step} failed: ${errnoCode(err) ?? 'unknown'}`);
  }
}

async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}
