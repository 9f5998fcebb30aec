/**
 * @module store/fileStore
 * The embedded default store (no `KEY_VAULT_URL`): one encrypted file per connection under the data directory.
 *
 * Layout under `dataDir`:
 * - `data.key`: 32 random bytes, mode 0600, created once. Two processes starting together agree on it because
 *   it is published with `link()` (fails if the name exists) and then re-read.
 * - `connections/<name>.json.enc`: the current record, AES-256-GCM with a fresh 12-byte IV per write and the
 *   connection name as additional data, so a file copied to another name does not decrypt.
 * - `connections/<name>.history/<writtenAt>-<version>.json.enc`: hard links to the last versions (current
 *   included), for {@link FileTokenStore.history}.
 *
 * Writes go to a temp file, are fsynced, then renamed over the current file: a reader sees the old or the new
 * record, never a mix. Writes to one connection are serialised within the process; across processes the
 * rename still keeps every file whole (last writer wins).
 *
 * An unreadable file (tampered, swapped, wrong key) makes `get` throw `store_unavailable`. `listMetadata`
 * skips such a record with a `store.record_unreadable` warning instead of failing the listing of all others.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, open, readFile, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BrokerError, isBrokerError } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import {
  CONNECTION_NAME_PATTERN,
  toMetadata,
  type ConnectionRecord,
  type RecordMetadata,
  type RecordVersion,
  type TokenStore,
} from './types.ts';
import { assertConnectionName, serializeRecord } from './validate.ts';

const FORMAT = 'token-broker/file-store';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const RECORD_FILE = /^([a-z0-9-]+)\.json\.enc$/;
const HISTORY_FILE = /^(\d{15})-([0-9a-f]{32})\.json\.enc$/;
const LIST_CONCURRENCY = 16;
/** `.<connection>.<16 hex>.tmp`, as written by `#write`. */
const TEMP_FILE = /^\.[a-z0-9-]{1,63}\.[0-9a-f]{16}\.tmp$/;
const STALE_TEMP_MS = 10 * 60_000;

export interface FileStoreOptions {
  dataDir: string;
  /** Versions kept per connection, the current one included. Default 10. */
  historyLimit?: number;
  logger?: Logger;
}

interface Sealed {
  format: string;
  v: number;
  iv: string;
  tag: string;
  data: string;
}

interface Payload {
  version: string;
  writtenAt: number;
  record: ConnectionRecord;
}

export class FileTokenStore implements TokenStore {
  readonly kind = 'file';
  readonly #dataDir: string;
  readonly #connectionsDir: string;
  readonly #historyLimit: number;
  readonly #log: Logger;
  #key: Promise<Buffer> | undefined;
  #lastWrittenAt = 0;
  readonly #queues = new Map<string, Promise<void>>();

  constructor(options: FileStoreOptions) {
    this.#dataDir = options.dataDir;
    this.#connectionsDir = join(options.dataDir, 'connections');
    this.#historyLimit = Math.max(1, options.historyLimit ?? 10);
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
      // token gone from disk, so the history goes too.
      const existed = await fsStep('delete', () => unlinkIfExists(this.#currentPath(connection)));
      await fsStep('delete', () => rm(this.#historyDir(connection), { recursive: true, force: true }));
      return existed;
    });
  }

  async history(connection: string): Promise<RecordVersion[]> {
    assertConnectionName(connection);
    const dir = this.#historyDir(connection);
    const files = (await this.#listDir(dir))
      .filter((f) => HISTORY_FILE.test(f))
      .sort()
      .reverse();
    const versions: RecordVersion[] = [];
    for (const file of files) {
      const [, writtenAt = '0', version = ''] = HISTORY_FILE.exec(file) ?? [];
      const entry: RecordVersion = { version, createdAt: Number(writtenAt), enabled: true };
      try {
        const payload = await this.#read(connection, join(dir, file));
        if (payload) entry.metadata = toMetadata(payload.record);
      } catch (err) {
        if (!isBrokerError(err)) throw err;
        // One unreadable old version must not hide the others; it is listed without metadata.
      }
      versions.push(entry);
    }
    return versions;
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

  #historyDir(connection: string): string {
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
    const version = randomBytes(16).toString('hex');
    // Monotonic per store so history order follows write order even within one millisecond.
    const writtenAt = Math.max(Date.now(), this.#lastWrittenAt + 1);
    this.#lastWrittenAt = writtenAt;
    const payload = `{"version":"${version}","writtenAt":${writtenAt},"record":${json}}`;
    const sealed = seal(key, connection, payload);
    const historyDir = this.#historyDir(connection);
    const tmp = join(this.#connectionsDir, `.${connection}.${randomBytes(8).toString('hex')}.tmp`);
    try {
      await fsStep('write', () => mkdir(historyDir, { recursive: true, mode: 0o700 }));
      await fsStep('write', () => writeFileSynced(tmp, sealed));
      const historyPath = join(historyDir, `${String(writtenAt).padStart(15, '0')}-${version}.json.enc`);
      await fsStep('write', () => linkOrCopy(tmp, historyPath));
      await fsStep('write', () => rename(tmp, this.#currentPath(connection)));
      await syncDir(this.#connectionsDir);
    } finally {
      await unlinkIfExists(tmp).catch(() => false);
    }
    await this.#prune(historyDir);
  }

  async #prune(dir: string): Promise<void> {
    const files = (await this.#listDir(dir)).filter((f) => HISTORY_FILE.test(f)).sort();
    for (const old of files.slice(0, Math.max(0, files.length - this.#historyLimit))) {
      await unlinkIfExists(join(dir, old)).catch(() => false);
    }
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
    const existing = await this.#readKey(path);
    if (existing) return existing;
    const tmp = `${path}.${randomBytes(8).toString('hex')}.tmp`;
    try {
      await fsStep('key', () => writeFileSynced(tmp, randomBytes(KEY_BYTES)));
      // link() publishes the complete file or fails with EEXIST: whoever loses the race adopts the winner's key.
      await fsStep('key', () =>
        link(tmp, path).catch((err: unknown) => {
          if (errnoCode(err) !== 'EEXIST') throw err;
        }),
      );
      await syncDir(this.#dataDir);
    } finally {
      await unlinkIfExists(tmp).catch(() => false);
    }
    const key = await this.#readKey(path);
    if (!key) throw unavailable('data key vanished after creation');
    return key;
  }

  async #readKey(path: string): Promise<Buffer | undefined> {
    let key: Buffer;
    try {
      key = await readFile(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw unavailable(`data key unreadable: ${errnoCode(err) ?? 'unknown'}`);
    }
    if (key.length !== KEY_BYTES)
      throw unavailable(`data key has ${key.length} bytes, expected ${KEY_BYTES}`);
    if (process.platform !== 'win32' && ((await stat(path)).mode & 0o077) !== 0) {
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
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(connection, 'utf8'));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const sealed: Sealed = {
    format: FORMAT,
    v: 1,
    iv: iv.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
    data: data.toString('base64url'),
  };
  return JSON.stringify(sealed);
}

function unseal(key: Buffer, connection: string, text: string): Payload {
  let plaintext: string;
  try {
    const sealed = JSON.parse(text) as Partial<Sealed>;
    if (sealed.format !== FORMAT || sealed.v !== 1) throw new Error('unknown format');
    const iv = Buffer.from(String(sealed.iv), 'base64url');
    const tag = Buffer.from(String(sealed.tag), 'base64url');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error('bad iv or tag');
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(connection, 'utf8'));
    decipher.setAuthTag(tag);
    plaintext = Buffer.concat([
      decipher.update(Buffer.from(String(sealed.data), 'base64url')),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    throw unavailable('record file failed to decrypt (tampered, swapped, or another data key)', connection);
  }
  let payload: Payload;
  try {
    payload = JSON.parse(plaintext) as Payload;
  } catch {
    throw unavailable('record plaintext is not JSON', connection);
  }
  if (payload.record?.v !== 1 || payload.record.connection !== connection) {
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

async function writeFileSynced(path: string, data: string | Buffer): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Hard link where the file system allows it (no extra bytes on disk); a copy otherwise. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw err;
    await copyFile(from, to);
  }
}

/** Makes a rename durable; not possible on every platform (Windows cannot open directories), so best effort. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Durability of the directory entry is a bonus; the data itself was fsynced.
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
