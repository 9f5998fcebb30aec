/**
 * @module keyFile
 * A random key kept in a local file, created once (mode 0600) for the embedded default: the broker's link and
 * cookie key (`broker.keys`, base64url text) and the file store's data key (`data.key`, raw bytes). Two
 * processes starting at the same moment agree on one key: the complete, fsynced file is published with an
 * exclusive hard link (`link` fails when the name exists), and the loser reads the winner's key.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface KeyFileOptions {
  /** Key length. Default 32. */
  bytes?: number;
  /** How the key is written in the file. Default `base64url` (one line of text). */
  encoding?: 'base64url' | 'raw';
}

/** The file exists but does not hold a key of the expected length. */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

export async function loadOrCreateKeyFile(path: string, options: KeyFileOptions = {}): Promise<Buffer> {
  const existing = await readKeyFile(path, options);
  if (existing) return existing;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const key = randomBytes(options.bytes ?? 32);
  try {
    await writeSynced(temp, options.encoding === 'raw' ? key : `${key.toString('base64url')}\n`);
    try {
      await link(temp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await syncDir(dirname(path));
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  const published = await readKeyFile(path, options);
  if (!published) throw new KeyFileError(`key file ${path} vanished after creation`);
  return published;
}

/** True when group or others may read the file (never on Windows, which has no such mode bits). */
export async function isReadableByOthers(path: string): Promise<boolean> {
  return process.platform !== 'win32' && ((await stat(path)).mode & 0o077) !== 0;
}

async function readKeyFile(path: string, options: KeyFileOptions): Promise<Buffer | undefined> {
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const bytes = options.bytes ?? 32;
  const key =
    options.encoding === 'raw' ? content : Buffer.from(content.toString('utf8').trim(), 'base64url');
  if (key.length !== bytes) {
    throw new KeyFileError(`key file ${path} is damaged (${key.length} bytes, expected ${bytes})`);
  }
  return key;
}

async function writeSynced(path: string, data: string | Buffer): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a new directory entry durable; not possible everywhere (Windows cannot open directories). */
export async function syncDir(dir: string): Promise<void> {
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
