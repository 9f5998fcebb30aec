import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { KeyFileError, loadOrCreateKeyFile } from '../../shared/keyFile.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'key-file-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('loadOrCreateKeyFile', () => {
  it('creates the key once, 0600, and every concurrent caller gets the same key', async () => {
    const path = join(await tempDir(), 'nested', 'broker.keys');
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateKeyFile(path)));
    assert.equal(new Set(keys.map((k) => k.toString('hex'))).size, 1);
    assert.equal(keys[0]?.length, 32);
    assert.equal((await readFile(path, 'utf8')).trim(), keys[0]?.toString('base64url'));
    if (process.platform !== 'win32') assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(join(path, '..')), ['broker.keys'], 'no temp file left');
    assert.deepEqual(await loadOrCreateKeyFile(path), keys[0]);
  });

  it('raw encoding stores the bytes themselves', async () => {
    const path = join(await tempDir(), 'data.key');
    const key = await loadOrCreateKeyFile(path, { encoding: 'raw' });
    assert.deepEqual(await readFile(path), key);
  });

  it('refuses a damaged file instead of replacing the key', async () => {
    const path = join(await tempDir(), 'data.key');
    await writeFile(path, Buffer.alloc(16));
    await assert.rejects(loadOrCreateKeyFile(path, { encoding: 'raw' }), KeyFileError);
    assert.equal((await readFile(path)).length, 16, 'left as it was');
  });
});
