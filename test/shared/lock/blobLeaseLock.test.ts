import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient } from '@azure/storage-blob';
import { isBrokerError } from '../../../shared/errors.ts';
import {
  createBlobLeaseLock,
  LOCK_CONTAINER,
  type BlobLeaseLockOptions,
} from '../../../shared/lock/blobLeaseLock.ts';
import { createConnectionLock } from '../../../shared/lock/index.ts';
import { createLogger } from '../../../shared/log.ts';
import { startAzurite, type AzuriteHandle } from '../../support/azurite.ts';

let azurite: AzuriteHandle;
const logs: string[] = [];
const logger = createLogger({}, (_level, line) => logs.push(line));

before(async () => {
  azurite = await startAzurite();
});
after(async () => {
  await azurite.stop();
});

/** Each call builds its own BlobServiceClient: a separate "instance" of the app. */
function instance(options: Partial<BlobLeaseLockOptions> = {}) {
  return createBlobLeaseLock({
    serviceClient: BlobServiceClient.fromConnectionString(azurite.connectionString),
    leaseDurationSeconds: 15,
    pollIntervalMs: { min: 20, max: 80 },
    logger,
    ...options,
  });
}

function blobOf(connection: string) {
  return BlobServiceClient.fromConnectionString(azurite.connectionString)
    .getContainerClient(LOCK_CONTAINER)
    .getBlockBlobClient(`${connection}.lock`);
}

function isLockTimeout(err: unknown): boolean {
  return isBrokerError(err) && err.code === 'lock_timeout' && err.status === 503;
}

void describe('blob lease lock', () => {
  void test('creates the container and lock blob on first use and releases the lease after', async () => {
    const lock = instance();
    assert.equal(await lock.withLock('first-use', () => Promise.resolve('done')), 'done');
    const props = await blobOf('first-use').getProperties();
    assert.equal(props.contentLength, 0);
    assert.equal(props.leaseState, 'available');
  });

  void test('two instances exclude each other on one connection', async () => {
    const a = instance();
    const b = instance();
    let inside = 0;
    let maxInside = 0;
    let runs = 0;
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 === 0 ? a : b).withLock('shared-conn', async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await sleep(25);
          inside--;
          runs++;
        }),
      ),
    );
    assert.equal(maxInside, 1);
    assert.equal(runs, 8);
  });

  void test('different connections are independent', async () => {
    const a = instance();
    const b = instance({ waitTimeoutMs: 500 });
    let release!: () => void;
    const held = a.withLock('conn-one', () => new Promise<void>((r) => (release = r)));
    await sleep(100);
    assert.equal(await b.withLock('conn-two', () => Promise.resolve(2)), 2);
    release();
    await held;
  });

  void test('a waiter gets lock_timeout after its bound while another instance holds the lease', async () => {
    const a = instance();
    const b = instance({ waitTimeoutMs: 300 });
    let release!: () => void;
    let acquired!: () => void;
    const ready = new Promise<void>((r) => (acquired = r));
    const held = a.withLock('contended', () => {
      acquired();
      return new Promise<void>((r) => (release = r));
    });
    await ready;
    const started = Date.now();
    await assert.rejects(
      b.withLock('contended', () => Promise.resolve()),
      isLockTimeout,
    );
    const waited = Date.now() - started;
    assert.ok(waited >= 200 && waited < 2000, `waited ${waited} ms`);
    release();
    await held;
    assert.equal(await b.withLock('contended', () => Promise.resolve('after')), 'after');
  });

  void test('the lease is released when fn throws', async () => {
    const a = instance();
    const b = instance({ waitTimeoutMs: 2000 });
    await assert.rejects(
      a.withLock('throws', () => Promise.reject(new Error('refresh failed'))),
      /refresh failed/,
    );
    const started = Date.now();
    await b.withLock('throws', () => Promise.resolve());
    assert.ok(Date.now() - started < 1000);
    assert.equal((await blobOf('throws').getProperties()).leaseState, 'available');
  });

  void test('the factory builds a blob lock from a connection string; bad durations are refused', async () => {
    const lock = createConnectionLock(
      { kind: 'blob', connectionString: azurite.connectionString },
      { leaseDurationSeconds: 15, logger },
    );
    assert.equal(lock.kind, 'blob');
    assert.equal(await lock.withLock('factory', () => Promise.resolve('ok')), 'ok');
    assert.throws(
      () => instance({ leaseDurationSeconds: 10 }),
      (err: unknown) => isBrokerError(err) && err.code === 'config_error',
    );
    await assert.rejects(
      lock.withLock('Not_Valid', () => Promise.resolve()),
      (err: unknown) => isBrokerError(err) && err.code === 'invalid_request',
    );
  });

  void test('a backend that refuses the credentials fails at once with lock_timeout, not after the wait bound', async () => {
    const wrongKey = azurite.connectionString.replace(
      /AccountKey=[^;]+/,
      `AccountKey=${Buffer.alloc(64, 1).toString('base64')}`,
    );
    const lock = createBlobLeaseLock({
      connectionString: wrongKey,
      leaseDurationSeconds: 15,
      waitTimeoutMs: 20_000,
      logger,
    });
    const started = Date.now();
    await assert.rejects(
      lock.withLock('refused', () => Promise.resolve()),
      (err: unknown) => {
        assert.ok(isLockTimeout(err));
        assert.match((err as { detail?: string }).detail ?? '', /refused: HTTP 403/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 5000);
  });

  void test('held() is true while the lease is ours and false once a renewal is refused (lease broken)', async () => {
    const lock = instance({ renewIntervalMs: 50 });
    assert.equal(lock.held('broken-lease'), false, 'not held outside withLock');
    await lock.withLock('broken-lease', async () => {
      assert.equal(lock.held('broken-lease'), true);
      await blobOf('broken-lease').getBlobLeaseClient().breakLease(0);
      // The next renewal (every 50 ms) is refused: from then on a writer must not write.
      for (let i = 0; i < 100 && lock.held('broken-lease'); i++) await sleep(20);
      assert.equal(lock.held('broken-lease'), false);
    });
    assert.ok(logs.some((l) => l.startsWith('lock.lease_lost') && l.includes('broken-lease')));
  });

  // The two slow cases (each bounded by the 15 s minimum lease) run side by side.
  void describe('lease lifetime', { concurrency: true }, () => {
    void test('renewal keeps the lease while fn runs longer than the lease duration', async () => {
      const a = instance();
      const b = instance({ waitTimeoutMs: 300 });
      const started = Date.now();
      await a.withLock('long-refresh', async () => {
        await sleep(16_000 - (Date.now() - started));
        // Past the original 15 s: only renewal can still hold it.
        assert.equal((await blobOf('long-refresh').getProperties()).leaseState, 'leased');
        await assert.rejects(
          b.withLock('long-refresh', () => Promise.resolve()),
          isLockTimeout,
        );
      });
      assert.equal(await b.withLock('long-refresh', () => Promise.resolve('mine')), 'mine');
      // (the broken-lease test above loses its own lease on purpose: only this key counts here)
      assert.ok(!logs.some((l) => l.startsWith('lock.lease_lost') && l.includes('long-refresh')));
    });

    void test('after a holder is killed (-9) another instance gets the lock once the lease expires', async () => {
      const holder = spawn(
        process.execPath,
        [fileURLToPath(new URL('../../support/leaseHolder.ts', import.meta.url))],
        {
          env: {
            ...process.env,
            LEASE_CONNECTION_STRING: azurite.connectionString,
            LEASE_CONNECTION: 'killed-holder',
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const [line] = (await once(createInterface({ input: holder.stdout }), 'line')) as [string];
      const { requestedAt, acquiredAt } = JSON.parse(line) as { requestedAt: number; acquiredAt: number };
      holder.kill('SIGKILL');
      const [, signal] = (await once(holder, 'exit')) as [number | null, string | null];
      assert.equal(signal, 'SIGKILL');

      const b = instance({ waitTimeoutMs: 25_000, pollIntervalMs: { min: 50, max: 150 } });
      const gotAt = await b.withLock('killed-holder', () => Promise.resolve(Date.now()));

      // The lease was granted after `requestedAt` and before `acquiredAt`, for 15 s, and never renewed.
      assert.ok(
        gotAt >= requestedAt + 15_000 - 250,
        `too early: ${gotAt - requestedAt} ms after the request`,
      );
      assert.ok(gotAt <= acquiredAt + 15_000 + 2_000, `too late: ${gotAt - acquiredAt} ms after acquisition`);
    });
  });
});
