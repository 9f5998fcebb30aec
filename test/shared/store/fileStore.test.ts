import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createLogger } from '../../../shared/log.ts';
import { FileTokenStore, createFileStore } from '../../../shared/store/fileStore.ts';
import { createTokenStore } from '../../../shared/store/index.ts';
import { toMetadata } from '../../../shared/store/types.ts';
import { issuedSecrets, rejectsWith, runTokenStoreContract, sampleRecord, unique } from './contract.ts';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'file-store-'));
  dirs.push(dir);
  return dir;
}

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out.sort();
}

function capture() {
  const logs: string[] = [];
  return { logs, logger: createLogger({}, (_level, line) => logs.push(line)) };
}

runTokenStoreContract(async () => {
  const dataDir = await tempDir();
  const { logs, logger } = capture();
  return {
    store: createTokenStore({ kind: 'file', dataDir }, { logger }),
    other: () => createFileStore({ dataDir, logger }),
    logs,
    fingerprint: async () => {
      const parts: string[] = [];
      for (const file of await allFiles(dataDir)) {
        parts.push(
          `${file}:${createHash('sha256')
            .update(await readFile(file))
            .digest('hex')}`,
        );
      }
      return parts.join('\n');
    },
  };
});

void describe('file store specifics', () => {
  void test('temp files a killed writer left behind are removed by the listing once stale', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    await store.put(sampleRecord('temps'));
    const dir = join(dataDir, 'connections');
    // write-file-atomic's temp names, and the names earlier versions of this store used.
    const stale = ['temps.json.enc.3735928559', '.temps.0123456789abcdef.tmp'];
    const fresh = ['temps.json.enc.12345', '.temps.fedcba9876543210.tmp'];
    for (const name of [...stale, ...fresh]) await writeFile(join(dir, name), 'partial');
    const hourAgo = new Date(Date.now() - 3600_000);
    for (const name of stale) await utimes(join(dir, name), hourAgo, hourAgo);
    assert.equal((await store.listMetadata()).length, 1);
    const left = await readdir(dir);
    for (const name of stale) assert.ok(!left.includes(name), `stale temp ${name} removed`);
    for (const name of fresh)
      assert.ok(left.includes(name), `a temp that may still be in flight is kept: ${name}`);
  });

  void test('records are encrypted at rest: no token value appears in any file', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const records = [sampleRecord(unique('enc')), sampleRecord(unique('enc'))];
    for (const r of records) {
      await store.put(r);
      await store.put({ ...r, revision: 2 });
    }
    const files = await allFiles(dataDir);
    assert.equal(files.length, 3, 'the key and two record files');
    const haystack = Buffer.concat(await Promise.all(files.map((f) => readFile(f))));
    for (const r of records) {
      for (const secret of [r.tokens?.refreshToken, r.tokens?.primary?.accessToken, r.identity?.username]) {
        assert.ok(secret);
        assert.equal(haystack.includes(Buffer.from(secret)), false);
        assert.equal(haystack.includes(Buffer.from(Buffer.from(secret).toString('base64url'))), false);
      }
    }
  });

  void test('the data key is created once with mode 0600 and reused by later instances', async () => {
    const dataDir = await tempDir();
    const first = createFileStore({ dataDir });
    const record = sampleRecord(unique('key'));
    await first.put(record);
    const keyPath = join(dataDir, 'data.key');
    const key = await readFile(keyPath);
    assert.equal(key.length, 32);
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
    const second = createFileStore({ dataDir });
    assert.deepEqual(await second.get(record.connection), record);
    await second.put(sampleRecord(unique('key')));
    assert.deepEqual(await readFile(keyPath), key);
  });

  void test('stores starting at the same time on a fresh directory agree on one key', async () => {
    const dataDir = await tempDir();
    const stores = Array.from({ length: 8 }, () => createFileStore({ dataDir }));
    const records = stores.map(() => sampleRecord(unique('race')));
    await Promise.all(stores.map((s, i) => s.put(records[i]!)));
    const reader = createFileStore({ dataDir });
    for (const r of records) assert.deepEqual(await reader.get(r.connection), r);
    assert.deepEqual((await readdir(dataDir)).sort(), ['connections', 'data.key']);
  });

  void test('processes starting at the same time on a fresh directory agree on one key', async () => {
    const dataDir = await tempDir();
    const storeModule = new URL('../../../shared/store/fileStore.ts', import.meta.url).href;
    const script = `
      import { createFileStore } from ${JSON.stringify(storeModule)};
      const name = process.argv[1];
      const record = { v: 1, connection: name, settings: { provider: 'microsoft', scopes: [] }, status: 'pending',
        createdAt: 1, updatedAt: 1, failures: 0, revision: 1 };
      await createFileStore({ dataDir: ${JSON.stringify(dataDir)} }).put(record);`;
    const run = promisify(execFile);
    const names = ['proc-a', 'proc-b', 'proc-c', 'proc-d'];
    await Promise.all(names.map((n) => run(process.execPath, ['--input-type=module', '-e', script, n])));
    const reader = createFileStore({ dataDir });
    assert.deepEqual(
      (await reader.listMetadata()).map((m) => m.connection),
      names,
    );
  });

  void test('a tampered file fails with store_unavailable; the listing skips it with a warning', async () => {
    const dataDir = await tempDir();
    const { logs, logger } = capture();
    const store = createFileStore({ dataDir, logger });
    const good = sampleRecord(unique('good'));
    const bad = sampleRecord(unique('bad'));
    await store.put(good);
    await store.put(bad);
    const path = join(dataDir, 'connections', `${bad.connection}.json.enc`);
    const sealed = JSON.parse(await readFile(path, 'utf8')) as { data: string };
    const data = Buffer.from(sealed.data, 'base64url');
    data[5] = (data[5] ?? 0) ^ 0x01;
    sealed.data = data.toString('base64url');
    await writeFile(path, JSON.stringify(sealed));
    await rejectsWith(store.get(bad.connection), 'store_unavailable');
    assert.deepEqual(await store.listMetadata(), [toMetadata(good)]);
    assert.ok(
      logs.some((l) => l.startsWith('store.record_unreadable') && l.includes(`connection=${bad.connection}`)),
    );
    for (const line of logs) for (const s of issuedSecrets) assert.ok(!line.includes(s));
  });

  void test('a file copied to another connection name does not decrypt (name is bound as AAD)', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const a = sampleRecord(unique('a'));
    const b = sampleRecord(unique('b'));
    await store.put(a);
    await store.put(b);
    const dir = join(dataDir, 'connections');
    await copyFile(join(dir, `${a.connection}.json.enc`), join(dir, `${b.connection}.json.enc`));
    await rejectsWith(store.get(b.connection), 'store_unavailable');
    assert.deepEqual(await store.get(a.connection), a);
  });

  void test('the ciphertext is bound to the connection name as AES-GCM additional data', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const record = sampleRecord(unique('aad'));
    await store.put(record);
    const key = await readFile(join(dataDir, 'data.key'));
    const path = join(dataDir, 'connections', `${record.connection}.json.enc`);
    const sealed = JSON.parse(await readFile(path, 'utf8')) as { iv: string; tag: string; data: string };
    const open = (aad: string | undefined) => {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64url'));
      if (aad !== undefined) decipher.setAAD(Buffer.from(aad));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
      return Buffer.concat([
        decipher.update(Buffer.from(sealed.data, 'base64url')),
        decipher.final(),
      ]).toString();
    };
    assert.deepEqual((JSON.parse(open(record.connection)) as { record: unknown }).record, record);
    assert.throws(() => open(undefined));
    assert.throws(() => open('another-name'));

    // A well-formed envelope for this name, sealed under another name's AAD, is refused on read.
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from('another-name'));
    const payload = JSON.stringify({ version: '0'.repeat(32), writtenAt: 1, record });
    const data = Buffer.concat([cipher.update(payload), cipher.final()]);
    const forged = {
      ...sealed,
      iv: iv.toString('base64url'),
      tag: cipher.getAuthTag().toString('base64url'),
    };
    await writeFile(path, JSON.stringify({ ...forged, data: data.toString('base64url') }));
    await rejectsWith(store.get(record.connection), 'store_unavailable');
  });

  void test('garbage and a damaged key file fail with store_unavailable', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const r = sampleRecord(unique('junk'));
    await store.put(r);
    await writeFile(join(dataDir, 'connections', `${r.connection}.json.enc`), 'not json');
    await rejectsWith(store.get(r.connection), 'store_unavailable');

    const other = await tempDir();
    await writeFile(join(other, 'data.key'), Buffer.alloc(16), { mode: 0o600 });
    await rejectsWith(
      createFileStore({ dataDir: other }).put(sampleRecord(unique('k'))),
      'store_unavailable',
    );
  });

  void test('keeps one file per connection; delete also removes old versions an earlier store kept', async () => {
    const dataDir = await tempDir();
    const store = new FileTokenStore({ dataDir });
    const connection = unique('keep');
    for (let revision = 1; revision <= 3; revision++) await store.put(sampleRecord(connection, { revision }));
    assert.deepEqual(await readdir(join(dataDir, 'connections')), [`${connection}.json.enc`]);
    assert.equal((await store.get(connection))?.revision, 3);
    const legacy = join(dataDir, 'connections', `${connection}.history`);
    await mkdir(legacy);
    await writeFile(join(legacy, '000000000000001-0123456789abcdef0123456789abcdef.json.enc'), 'old version');
    assert.equal(await store.delete(connection), true);
    assert.deepEqual(await readdir(join(dataDir, 'connections')), []);
  });

  void test('concurrent writes leave no temp files behind', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const connection = unique('tmp');
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.put(sampleRecord(connection, { revision: i + 1 }))),
    );
    const leftovers = (await allFiles(dataDir)).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
    assert.equal((await store.get(connection))?.revision, 10, 'in-process writes keep their order');
  });
});
