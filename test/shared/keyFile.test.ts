import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isReadableByOthers, KeyFileError, loadOrCreateKeyFile, syncDir } from '../../shared/keyFile.ts';

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

describe('key files in detail', () => {
  it('creates a key of the asked length and reads it back as that length only', async () => {
    const path = join(await tempDir(), 'k48');
    const key = await loadOrCreateKeyFile(path, { bytes: 48 });
    assert.equal(key.length, 48);
    assert.deepEqual(await loadOrCreateKeyFile(path, { bytes: 48 }), key);
    await assert.rejects(loadOrCreateKeyFile(path), (err: unknown) => {
      assert.ok(err instanceof KeyFileError);
      assert.equal(err.message, `key file ${path} is damaged (48 bytes, expected 32)`);
      assert.equal(err.name, 'KeyFileError');
      return true;
    });
  });

  it('reads a base64url key written by hand with surrounding whitespace', async () => {
    const path = join(await tempDir(), 'broker.keys');
    const key = Buffer.alloc(32, 7);
    await writeFile(path, `  ${key.toString('base64url')}\n\n`);
    assert.deepEqual(await loadOrCreateKeyFile(path), key);
  });

  it('passes on read errors other than a missing file', async () => {
    const path = join(await tempDir(), 'is-a-dir');
    await mkdir(path);
    await assert.rejects(loadOrCreateKeyFile(path), (err: NodeJS.ErrnoException) => err.code === 'EISDIR');
  });

  it('tells whether group or others may read a file', { skip: process.platform === 'win32' }, async () => {
    const path = join(await tempDir(), 'f');
    await writeFile(path, 'x', { mode: 0o600 });
    await chmod(path, 0o600);
    assert.equal(await isReadableByOthers(path), false);
    await chmod(path, 0o640);
    assert.equal(await isReadableByOthers(path), true);
    await chmod(path, 0o604);
    assert.equal(await isReadableByOthers(path), true);
  });

  it('syncs a directory, and shrugs off one that cannot be opened', async () => {
    await syncDir(await tempDir());
    await syncDir(join(await tempDir(), 'missing'));
  });
});

describe('a key file that cannot be published', () => {
  it('reports a name taken by a dangling link instead of returning a key nobody stored', async () => {
    const dir = await tempDir();
    const path = join(dir, 'broker.keys');
    await symlink(join(dir, 'nowhere'), path);
    await assert.rejects(loadOrCreateKeyFile(path), (err: unknown) => {
      assert.ok(err instanceof KeyFileError);
      assert.equal(err.message, `key file ${path} vanished after creation`);
      return true;
    });
    assert.deepEqual(await readdir(dir), ['broker.keys'], 'temp file removed');
  });
});
