/**
 * @module keyFile
 * A random key kept in a local file, created once (0600) for the embedded default. Two processes starting
 * at the same moment agree on one key: the file is published with an exclusive hard link, and the loser
 * reads the winner's key.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, link, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function loadOrCreateKeyFile(path: string, bytes = 32): Promise<Buffer> {
  try {
    return decode(await readFile(path, 'utf8'), path, bytes);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, `${randomBytes(bytes).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(temp);
  }
  return decode(await readFile(path, 'utf8'), path, bytes);
}

function decode(text: string, path: string, bytes: number): Buffer {
  const key = Buffer.from(text.trim(), 'base64url');
  if (key.length !== bytes) throw new Error(`key file ${path} is damaged (expected ${bytes} bytes)`);
  return key;
}
