import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createLogger, setDefaultLogSink } from '../../../shared/log.ts';
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

/** Seals `plaintext` the way the store does, with the store's own key (what only a key holder could forge). */
async function sealWithStoreKey(
  dataDir: string,
  aad: string,
  plaintext: string,
  v = 1,
  format = 'token-broker/file-store',
): Promise<string> {
  const key = await readFile(join(dataDir, 'data.key'));
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return JSON.stringify({
    format,
    v,
    iv: iv.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
    data: data.toString('base64url'),
  });
}

async function unavailableDetail(promise: Promise<unknown>): Promise<{ detail?: string; fields: object }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof Error && 'code' in err && err.code === 'store_unavailable', String(err));
    return err as unknown as { detail?: string; fields: object };
  }
  assert.fail('expected store_unavailable');
}

void describe('file store failure details', () => {
  void test('each unreadable record names its cause in the detail, never its content', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const record = sampleRecord('forged');
    await store.put(record);
    const path = join(dataDir, 'connections', 'forged.json.enc');
    const cases: [string, string][] = [
      [
        await sealWithStoreKey(dataDir, 'forged', JSON.stringify({ record }), 2),
        'record file failed to decrypt (tampered, swapped, or another data key)',
      ],
      [await sealWithStoreKey(dataDir, 'forged', 'not json'), 'record plaintext is not JSON'],
      [
        await sealWithStoreKey(
          dataDir,
          'forged',
          JSON.stringify({ record: { ...record, connection: 'other' } }),
        ),
        'record envelope does not match its file name',
      ],
      [
        await sealWithStoreKey(dataDir, 'forged', JSON.stringify({ record: { ...record, v: 2 } })),
        'record envelope does not match its file name',
      ],
      [
        await sealWithStoreKey(dataDir, 'forged', JSON.stringify({})),
        'record envelope does not match its file name',
      ],
      [await sealWithStoreKey(dataDir, 'forged', 'null'), 'record envelope does not match its file name'],
      [
        await sealWithStoreKey(dataDir, 'forged', JSON.stringify({ record }), 1, 'another/format'),
        'record file failed to decrypt (tampered, swapped, or another data key)',
      ],
    ];
    for (const [content, detail] of cases) {
      await writeFile(path, content);
      const err = await unavailableDetail(store.get('forged'));
      assert.equal(err.detail, detail);
      assert.deepEqual(err.fields, { store: 'file', connection: 'forged' });
    }
    await writeFile(path, await sealWithStoreKey(dataDir, 'forged', JSON.stringify({ record })));
    assert.deepEqual(await store.get('forged'), record, 'the forger helper seals exactly like the store');
  });

  void test('a record path that cannot be read is store_unavailable with the errno; the listing skips it', async () => {
    const dataDir = await tempDir();
    const { logs, logger } = capture();
    const store = createFileStore({ dataDir, logger });
    await store.put(sampleRecord('fine'));
    await mkdir(join(dataDir, 'connections', 'dir.json.enc'));
    const err = await unavailableDetail(store.get('dir'));
    assert.equal(err.detail, 'file store read failed: EISDIR');
    assert.deepEqual(
      (await store.listMetadata()).map((m) => m.connection),
      ['fine'],
    );
    assert.deepEqual(
      logs.filter((l) => l.startsWith('store.record_unreadable')),
      [
        'store.record_unreadable connection=dir code=store_unavailable detail="file store read failed: EISDIR"',
      ],
    );
  });

  void test('files that are not records are ignored silently; a record that vanished mid-listing is skipped', async () => {
    const dataDir = await tempDir();
    const { logs, logger } = capture();
    const store = createFileStore({ dataDir, logger });
    await store.put(sampleRecord('kept'));
    const dir = join(dataDir, 'connections');
    // Matches the record file pattern but not the connection name rule; and a name that does not match at all.
    await writeFile(join(dir, 'trail-.json.enc'), 'x');
    await writeFile(join(dir, 'notes.txt'), 'x');
    // readdir lists it, reading it says ENOENT: the same as a record deleted between the two steps.
    await symlink(join(dir, 'missing-target'), join(dir, 'vanished.json.enc'));
    assert.deepEqual(
      (await store.listMetadata()).map((m) => m.connection),
      ['kept'],
    );
    assert.deepEqual(logs, []);
  });

  void test('the listing is sorted by connection and reads records in batches (more than 16)', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const names = Array.from({ length: 35 }, (_, i) => `n${String(34 - i).padStart(2, '0')}`);
    for (const name of names) await store.put(sampleRecord(name));
    assert.deepEqual(
      (await store.listMetadata()).map((m) => m.connection),
      [...names].sort(),
    );
  });

  void test('no data directory yet: empty listing; a file where the directory should be is store_unavailable', async () => {
    const dataDir = await tempDir();
    assert.deepEqual(await createFileStore({ dataDir: join(dataDir, 'absent') }).listMetadata(), []);
    await writeFile(join(dataDir, 'connections'), 'not a directory');
    const err = await unavailableDetail(createFileStore({ dataDir }).listMetadata());
    assert.equal(err.detail, 'file store list failed: ENOTDIR');
    const put = await unavailableDetail(createFileStore({ dataDir }).put(sampleRecord('x')));
    assert.equal(put.detail, 'file store key failed: EEXIST');
  });

  void test('a damaged key is reported each time until it is fixed; the store then works without a restart', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    await mkdir(join(dataDir, 'connections'), { recursive: true });
    await writeFile(join(dataDir, 'data.key'), Buffer.alloc(16), { mode: 0o600 });
    const first = await unavailableDetail(store.put(sampleRecord('k')));
    assert.match(first.detail ?? '', /^data key: /);
    await rejectsWith(store.put(sampleRecord('k')), 'store_unavailable');
    await rm(join(dataDir, 'data.key'));
    const record = sampleRecord('k');
    await store.put(record);
    assert.deepEqual(await store.get('k'), record);
  });

  void test('a data key readable by others is used but warned about', async () => {
    const dataDir = await tempDir();
    await createFileStore({ dataDir }).put(sampleRecord('perm'));
    await chmod(join(dataDir, 'data.key'), 0o644);
    const { logs, logger } = capture();
    assert.equal((await createFileStore({ dataDir, logger }).get('perm'))?.connection, 'perm');
    assert.deepEqual(logs, [
      'store.key_permissions store=file detail="data.key is readable by group or others"',
    ]);
  });

  void test('the listing logs how many stale temp files it removed, and nothing when none', async () => {
    const dataDir = await tempDir();
    const { logs, logger } = capture();
    const store = createFileStore({ dataDir, logger });
    await store.put(sampleRecord('temps'));
    const dir = join(dataDir, 'connections');
    await store.listMetadata();
    assert.deepEqual(logs, []);
    const old = new Date(Date.now() - 11 * 60_000);
    const recent = new Date(Date.now() - 9 * 60_000);
    for (const [name, at] of [
      ['temps.json.enc.1', old],
      ['temps.json.enc.2', old],
      ['temps.json.enc.3', recent],
    ] as const) {
      await writeFile(join(dir, name), 'partial');
      await utimes(join(dir, name), at, at);
    }
    await store.listMetadata();
    assert.deepEqual(logs, ['store.temp_removed store=file count=2']);
    assert.deepEqual((await readdir(dir)).sort(), ['temps.json.enc', 'temps.json.enc.3']);
  });

  void test('delete answers whether there was a record', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    assert.equal(await store.delete('none'), false);
    await store.put(sampleRecord('one'));
    assert.equal(await store.delete('one'), true);
    assert.equal(await store.get('one'), undefined);
    assert.equal(await store.delete('one'), false);
  });
  void test('record files are written with mode 0600', async () => {
    const dataDir = await tempDir();
    await createFileStore({ dataDir }).put(sampleRecord('mode'));
    assert.equal((await stat(join(dataDir, 'connections', 'mode.json.enc'))).mode & 0o777, 0o600);
  });

  void test('the listing removes only stale temp files: never an old record, nor names that merely contain a temp name', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const record = sampleRecord('old-record');
    await store.put(record);
    const dir = join(dataDir, 'connections');
    const keep = [
      'Xold-record.json.enc.1',
      'old-record.json.enc.1.bak',
      '.old-record.0123456789abcdef.tmp.x',
    ];
    for (const name of keep) await writeFile(join(dir, name), 'x');
    const longAgo = new Date(Date.now() - 24 * 3600_000);
    for (const name of [...keep, 'old-record.json.enc']) await utimes(join(dir, name), longAgo, longAgo);
    assert.deepEqual(await store.listMetadata(), [toMetadata(record)]);
    assert.deepEqual((await readdir(dir)).sort(), [...keep, 'old-record.json.enc'].sort());
  });

  void test('a file whose name only ends like a record file is not listed as that record again', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const record = sampleRecord('sales');
    await store.put(record);
    const dir = join(dataDir, 'connections');
    await copyFile(join(dir, 'sales.json.enc'), join(dir, 'Copy_sales.json.enc'));
    assert.deepEqual(await store.listMetadata(), [toMetadata(record)]);
  });

  void test('a delete issued with a put of the same connection runs after it', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    const [, deleted] = await Promise.all([store.put(sampleRecord('ordered')), store.delete('ordered')]);
    assert.equal(deleted, true);
    assert.equal(await store.get('ordered'), undefined);
  });

  void test('a record path that cannot be unlinked fails the delete with the errno', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    await store.put(sampleRecord('other'));
    await mkdir(join(dataDir, 'connections', 'stuck.json.enc'));
    const err = await unavailableDetail(store.delete('stuck'));
    assert.equal(err.detail, 'file store delete failed: EISDIR');
  });

  void test('a data key path that cannot be read is reported with its errno', async () => {
    const dataDir = await tempDir();
    await mkdir(join(dataDir, 'data.key'), { recursive: true });
    const err = await unavailableDetail(createFileStore({ dataDir }).put(sampleRecord('k')));
    assert.equal(err.detail, 'data key unreadable: EISDIR');
  });

  void test('without a logger the store logs through the default sink, tagged store=file', async () => {
    const dataDir = await tempDir();
    const store = createFileStore({ dataDir });
    await store.put(sampleRecord('fine'));
    await mkdir(join(dataDir, 'connections', 'dir.json.enc'));
    const lines: string[] = [];
    setDefaultLogSink((_level, line) => lines.push(line));
    try {
      await store.listMetadata();
    } finally {
      setDefaultLogSink(undefined);
    }
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^store\.record_unreadable store=file connection=dir /);
  });
});
