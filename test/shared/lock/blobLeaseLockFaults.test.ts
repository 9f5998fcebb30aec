/**
 * The blob lease lock against Azurite through a loopback proxy that can answer one chosen request kind with an
 * error instead of forwarding it (a 503 on renew, a 403 on container creation, a lost race on the lock blob),
 * so each branch of acquire / create / renew / release is pinned on its own. Storage SDK retries are off
 * (`maxTries: 1`) so every request the lock makes is one request seen here. Fast: nothing waits for a lease to
 * lapse (the lifetime cases are in blobLeaseLock.test.ts).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import type { BrokerError } from '../../../shared/errors.ts';
import { isBrokerError } from '../../../shared/errors.ts';
import {
  createBlobLeaseLock,
  LOCK_CONTAINER,
  type BlobLeaseLockOptions,
} from '../../../shared/lock/blobLeaseLock.ts';
import { createConnectionLock } from '../../../shared/lock/index.ts';
import { createLogger } from '../../../shared/log.ts';
import { startAzurite, type AzuriteHandle } from '../../support/azurite.ts';

type Kind = 'createContainer' | 'upload' | 'acquire' | 'renew' | 'release' | 'break' | 'other';

interface Fault {
  kind: Kind;
  status: number;
  code: string;
  /** How many matching requests get it (default 1). */
  times?: number;
  /** Answer only after this long (a hung request). */
  delayMs?: number;
}

function kindOf(req: IncomingMessage): Kind {
  const url = new URL(req.url ?? '/', 'http://x');
  if (
    req.method === 'PUT' &&
    url.searchParams.get('restype') === 'container' &&
    !url.searchParams.has('comp')
  )
    return 'createContainer';
  if (req.method === 'PUT' && url.searchParams.get('comp') === 'lease') {
    const action = String(req.headers['x-ms-lease-action'] ?? '');
    if (['acquire', 'renew', 'release', 'break'].includes(action)) return action as Kind;
  }
  if (req.method === 'PUT' && !url.search) return 'upload';
  return 'other';
}

let azurite: AzuriteHandle;
let proxy: Server;
let proxyConnectionString: string;
let seen: { kind: Kind; status: number }[] = [];
/** Every request as it arrives (before any answer). */
let arrived: { kind: Kind; headers: IncomingMessage['headers'] }[] = [];
let faults: Fault[] = [];
let logs: string[] = [];
const logger = createLogger({}, (_level, line) => logs.push(line));

before(async () => {
  azurite = await startAzurite();
  const target = new URL(azurite.endpoint);
  proxy = createServer((req, res) => {
    const kind = kindOf(req);
    const fault = faults.find((f) => f.kind === kind && (f.times ?? 1) > 0);
    if (fault) fault.times = (fault.times ?? 1) - 1;
    arrived.push({ kind, headers: req.headers });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (fault) {
        const answer = () => {
          seen.push({ kind, status: fault.status });
          const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${fault.code}</Code><Message>injected</Message></Error>`;
          res.writeHead(fault.status, { 'content-type': 'application/xml', 'x-ms-error-code': fault.code });
          res.end(body);
        };
        if (fault.delayMs) setTimeout(answer, fault.delayMs).unref();
        else answer();
        return;
      }
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          seen.push({ kind, status: answer.statusCode ?? 0 });
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(Buffer.concat(chunks));
    });
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const { port } = proxy.address() as AddressInfo;
  proxyConnectionString = azurite.connectionString.replace(
    /BlobEndpoint=[^;]+/,
    `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1`,
  );
});
after(async () => {
  proxy.close();
  proxy.closeAllConnections();
  await once(proxy, 'close');
  await azurite.stop();
});
beforeEach(() => {
  seen = [];
  arrived = [];
  faults = [];
  logs = [];
});

/** One app instance talking through the proxy; the SDK does not retry, the lock's own rules do. */
function instance(options: Partial<BlobLeaseLockOptions> = {}) {
  return createBlobLeaseLock({
    serviceClient: BlobServiceClient.fromConnectionString(proxyConnectionString, {
      retryOptions: { maxTries: 1 },
    }),
    leaseDurationSeconds: 15,
    pollIntervalMs: { min: 5, max: 10 },
    waitTimeoutMs: 2000,
    logger,
    ...options,
  });
}

function kinds(): string[] {
  return seen.map((s) => `${s.kind} ${s.status}`);
}

async function lockError(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isBrokerError(err), `expected a BrokerError, got ${String(err)}`);
    assert.equal(err.code, 'lock_timeout');
    assert.equal(err.retryAfterSeconds, 2);
    return err;
  }
  assert.fail('expected lock_timeout');
}

const ok = () => Promise.resolve('ok');

void describe('blob lease lock: lease durations and construction', () => {
  void test('lease durations 15-60 whole seconds are accepted; others are a config_error naming the value', () => {
    for (const leaseDurationSeconds of [15, 60, undefined]) instance({ leaseDurationSeconds });
    for (const bad of [14, 61, 15.5, 0]) {
      assert.throws(
        () => instance({ leaseDurationSeconds: bad }),
        (err: unknown) =>
          isBrokerError(err) && err.code === 'config_error' && err.detail === `leaseDurationSeconds=${bad}`,
      );
    }
  });

  void test('without a client, connection string or blob service URI the lock is a config_error', () => {
    assert.throws(
      () => createBlobLeaseLock({ logger }),
      (err: unknown) => isBrokerError(err) && err.code === 'config_error',
    );
    assert.throws(
      () => createConnectionLock({ kind: 'blob' }),
      (err: unknown) => isBrokerError(err) && err.code === 'config_error',
    );
  });

  void test('the factory passes the connection string and options; a custom container is used when given', async () => {
    const lock = createConnectionLock(
      { kind: 'blob', connectionString: proxyConnectionString },
      { leaseDurationSeconds: 20, logger },
    );
    assert.equal(await lock.withLock('via-factory', ok), 'ok');
    const custom = instance({ containerName: 'other-locks' });
    assert.equal(await custom.withLock('custom', ok), 'ok');
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    assert.equal(
      await service.getContainerClient('other-locks').getBlockBlobClient('custom.lock').exists(),
      true,
    );
    assert.equal(
      await service.getContainerClient(LOCK_CONTAINER).getBlockBlobClient('custom.lock').exists(),
      false,
    );
  });
});

void describe('blob lease lock: acquire', () => {
  void test('first use: 404, create container and blob, then acquire at once; release after', async () => {
    // A poll pause longer than the wait bound: the acquire right after creating must not wait at all.
    const lock = instance({
      pollIntervalMs: { min: 5000, max: 5000 },
      waitTimeoutMs: 1000,
      containerName: 'fresh-locks',
    });
    assert.equal(await lock.withLock('fresh', ok), 'ok');
    assert.deepEqual(kinds(), [
      'acquire 404',
      'createContainer 201',
      'upload 201',
      'acquire 201',
      'release 200',
    ]);
    seen = [];
    assert.equal(await lock.withLock('fresh', ok), 'ok');
    assert.deepEqual(kinds(), ['acquire 201', 'release 200']);
  });

  void test('a lock blob another instance created first (409 or 412 on upload) is used, not an error', async () => {
    for (const [name, status, code] of [
      ['race-409', 409, 'BlobAlreadyExists'],
      ['race-412', 412, 'LeaseIdMissing'],
    ] as const) {
      faults = [{ kind: 'upload', status, code }];
      seen = [];
      // No pause: a blob that exists is retried at once, like a blob just created.
      const lock = instance({ pollIntervalMs: { min: 5000, max: 5000 }, waitTimeoutMs: 1000 });
      assert.equal(await lock.withLock(name, ok), 'ok');
      assert.deepEqual(kinds().slice(0, 4), [
        'acquire 404',
        'createContainer 409',
        `upload ${status}`,
        'acquire 404',
      ]);
    }
  });

  void test('a transient failure creating the lock blob is waited out; a refusal fails at once without a connection', async () => {
    faults = [{ kind: 'createContainer', status: 503, code: 'ServerBusy', times: 2 }];
    assert.equal(await instance().withLock('create-busy', ok), 'ok');
    assert.equal(seen.filter((s) => s.kind === 'createContainer').length, 3);

    faults = [{ kind: 'createContainer', status: 503, code: 'ServerBusy', times: 1000 }];
    const slow = await lockError(instance({ waitTimeoutMs: 100 }).withLock('create-down', ok));
    assert.equal(slow.detail, 'not acquired within 100 ms: lock blob could not be created yet');
    assert.deepEqual(slow.fields, { lock: 'blob', connection: 'create-down' });

    faults = [{ kind: 'upload', status: 403, code: 'AuthorizationPermissionMismatch' }];
    seen = [];
    const refused = await lockError(instance().withLock('create-refused', ok));
    assert.equal(refused.detail, 'lock blob could not be created: HTTP 403 AuthorizationPermissionMismatch');
    assert.deepEqual(refused.fields, { lock: 'blob', connection: undefined });
    assert.equal(seen.filter((s) => s.kind === 'acquire').length, 1);
  });

  void test('a transient lease backend failure is polled through; persistent, it ends in lock_timeout saying so', async () => {
    await instance().withLock('flaky', ok);
    seen = [];
    faults = [{ kind: 'acquire', status: 503, code: 'ServerBusy', times: 2 }];
    assert.equal(await instance().withLock('flaky', ok), 'ok');
    assert.deepEqual(kinds(), ['acquire 503', 'acquire 503', 'acquire 201', 'release 200']);

    faults = [{ kind: 'acquire', status: 500, code: 'InternalError', times: 1000 }];
    const err = await lockError(instance({ waitTimeoutMs: 100 }).withLock('flaky', ok));
    assert.equal(err.detail, 'not acquired within 100 ms: lease backend failing: HTTP 500 InternalError');
    assert.deepEqual(err.fields, { lock: 'blob', connection: 'flaky' });
  });

  void test('a refused lease request fails at once, with the reason', async () => {
    await instance().withLock('refused', ok);
    seen = [];
    faults = [{ kind: 'acquire', status: 403, code: 'AuthorizationFailure', times: 1000 }];
    const err = await lockError(instance().withLock('refused', ok));
    assert.equal(err.detail, 'lease backend refused: HTTP 403 AuthorizationFailure');
    assert.deepEqual(kinds(), ['acquire 403']);
  });

  void test('while another instance holds the lease the waiter polls, then times out naming the holder', async () => {
    const a = instance();
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const held = a.withLock('held', () => new Promise<void>((r) => ((release = r), entered())));
    await inside;
    seen = [];
    const err = await lockError(
      instance({ waitTimeoutMs: 150, pollIntervalMs: { min: 20, max: 30 } }).withLock('held', ok),
    );
    assert.equal(err.detail, 'not acquired within 150 ms: another instance holds the lease');
    const polls = seen.filter((s) => s.kind === 'acquire').length;
    assert.ok(polls >= 3 && polls <= 9, `${polls} polls at 20-30 ms within 150 ms`);
    release();
    await held;
  });
});

void describe('blob lease lock: holding and release', () => {
  void test('a transient renewal failure is logged and renewal goes on; held() stays true', async () => {
    const lock = instance({ renewIntervalMs: 20 });
    faults = [{ kind: 'renew', status: 503, code: 'ServerBusy' }];
    await lock.withLock('renewing', async () => {
      while (seen.filter((s) => s.kind === 'renew' && s.status === 200).length < 2)
        await new Promise((r) => setTimeout(r, 10));
      assert.equal(lock.held('renewing'), true);
    });
    assert.equal(lock.held('renewing'), false);
    assert.deepEqual(
      logs.filter((l) => l.startsWith('lock.')),
      ['lock.renew_failed lock=blob connection=renewing detail="HTTP 503 ServerBusy"'],
    );
  });

  void test('a refused renewal loses the lease: held() false, lease_lost logged, fn not interrupted', async () => {
    const lock = instance({ renewIntervalMs: 20 });
    faults = [{ kind: 'renew', status: 409, code: 'LeaseIdMismatchWithLeaseOperation' }];
    const result = await lock.withLock('lost', async () => {
      while (!logs.some((l) => l.startsWith('lock.lease_lost'))) await new Promise((r) => setTimeout(r, 10));
      assert.equal(lock.held('lost'), false);
      return 'finished';
    });
    assert.equal(result, 'finished');
    assert.equal(seen.filter((s) => s.kind === 'renew').length, 1, 'no renewal after the lease was lost');
    assert.deepEqual(
      logs.filter((l) => l.startsWith('lock.')),
      ['lock.lease_lost lock=blob connection=lost detail="HTTP 409 LeaseIdMismatchWithLeaseOperation"'],
    );
  });

  void test('renewals stop when fn ends: none is sent after the release', async () => {
    const lock = instance({ renewIntervalMs: 15 });
    await lock.withLock('stops', async () => {
      while (!seen.some((s) => s.kind === 'renew')) await new Promise((r) => setTimeout(r, 5));
    });
    const count = seen.length;
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(seen.length, count);
    assert.equal(seen.at(-1)?.kind, 'release');
  });

  void test('a failed release is logged and does not fail the call', async () => {
    const lock = instance();
    faults = [{ kind: 'release', status: 500, code: 'InternalError' }];
    assert.equal(await lock.withLock('release-fails', ok), 'ok');
    assert.deepEqual(logs, [
      'lock.release_failed lock=blob connection=release-fails detail="HTTP 500 InternalError"',
    ]);
  });
});

/** Runs `fn` with Math.random fixed and every setTimeout delay recorded. */
async function recordingTimers<T>(
  random: number,
  fn: () => Promise<T>,
): Promise<{ result: T; delays: number[] }> {
  const delays: number[] = [];
  const originalRandom = Math.random;
  const originalSetTimeout = globalThis.setTimeout;
  Math.random = () => random;
  globalThis.setTimeout = ((cb: () => void, ms?: number, ...args: unknown[]) => {
    delays.push(ms ?? 0);
    return originalSetTimeout(cb, ms, ...args);
  }) as typeof setTimeout;
  try {
    return { result: await fn(), delays };
  } finally {
    Math.random = originalRandom;
    globalThis.setTimeout = originalSetTimeout;
  }
}

async function holdWhile(name: string): Promise<{ release(): Promise<void> }> {
  const a = instance();
  let release!: () => void;
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const held = a.withLock(name, () => new Promise<void>((r) => ((release = r), entered())));
  await inside;
  return {
    release: async () => {
      release();
      await held;
    },
  };
}

void describe('blob lease lock: request timeouts', () => {
  for (const kind of ['createContainer', 'upload', 'acquire'] as const) {
    void test(`a hung ${kind} request is abandoned after requestTimeoutMs and retried`, async () => {
      faults = [{ kind, status: 503, code: 'ServerBusy', delayMs: 2000 }];
      const lock = instance({
        requestTimeoutMs: 100,
        waitTimeoutMs: 1000,
        containerName: `hung-${kind.toLowerCase()}`,
      });
      assert.equal(await lock.withLock('hung', ok), 'ok');
    });
  }

  void test('a hung renewal is abandoned (logged as timed out) and renewal goes on', async () => {
    faults = [{ kind: 'renew', status: 503, code: 'ServerBusy', delayMs: 2000 }];
    const lock = instance({ requestTimeoutMs: 100, renewIntervalMs: 20 });
    await lock.withLock('hung-renew', async () => {
      while (!logs.some((l) => l.startsWith('lock.renew_failed')))
        await new Promise((r) => setTimeout(r, 10));
    });
    assert.equal(logs[0], 'lock.renew_failed lock=blob connection=hung-renew detail="timed out"');
  });

  void test('a hung release is abandoned and logged as timed out', async () => {
    faults = [{ kind: 'release', status: 503, code: 'ServerBusy', delayMs: 2000 }];
    const lock = instance({ requestTimeoutMs: 100 });
    assert.equal(await lock.withLock('hung-release', ok), 'ok');
    assert.deepEqual(logs, ['lock.release_failed lock=blob connection=hung-release detail="timed out"']);
  });

  void test('a connection-string lock lets the storage SDK retry a failed request quickly (bounded retries)', async () => {
    await instance().withLock('sdk-retry', ok);
    arrived = [];
    faults = [{ kind: 'acquire', status: 503, code: 'ServerBusy', times: 2 }];
    const lock = createBlobLeaseLock({
      connectionString: proxyConnectionString,
      leaseDurationSeconds: 15,
      pollIntervalMs: { min: 5000, max: 5000 },
      waitTimeoutMs: 4000,
      logger,
    });
    const started = Date.now();
    assert.equal(await lock.withLock('sdk-retry', ok), 'ok');
    assert.ok(
      Date.now() - started < 3000,
      'retried by the SDK after ~200 ms, not after the lock poll or 4 s',
    );
    assert.equal(arrived.filter((a) => a.kind === 'acquire').length, 3);
  });
});

void describe('blob lease lock: polling details', () => {
  void test('names never valid for a connection are refused before any request', async () => {
    await assert.rejects(
      instance().withLock('Bad_Name', ok),
      (err: unknown) => isBrokerError(err) && err.code === 'invalid_request',
    );
    assert.deepEqual(arrived, []);
  });

  void test('the lock blob is created only if absent (If-None-Match: *)', async () => {
    await instance({ containerName: 'cond-locks' }).withLock('cond', ok);
    const upload = arrived.find((a) => a.kind === 'upload');
    assert.equal(upload?.headers['if-none-match'], '*');
  });

  void test('the poll pause is drawn from [min, max] and the wait stops before the bound would pass', async () => {
    const holder = await holdWhile('pause');
    seen = [];
    const waiter = instance({ pollIntervalMs: { min: 50, max: 100 }, waitTimeoutMs: 150 });
    const { result, delays } = await recordingTimers(1, () => lockError(waiter.withLock('pause', ok)));
    // Math.random() = 1: each pause is max (100 ms); after the second try another pause would pass 150 ms.
    assert.deepEqual(
      delays.filter((d) => d === 100 || (d > 0 && d < 1000 && d !== 100)),
      [100],
    );
    assert.equal(result.detail, 'not acquired within 150 ms: another instance holds the lease');
    assert.equal(seen.filter((s) => s.kind === 'acquire').length, 2);
    await holder.release();
  });

  void test('the reason of a timeout is the last one seen: a holder after an earlier backend failure', async () => {
    const holder = await holdWhile('reason');
    faults = [{ kind: 'acquire', status: 503, code: 'ServerBusy' }];
    const err = await lockError(instance({ waitTimeoutMs: 100 }).withLock('reason', ok));
    assert.equal(err.detail, 'not acquired within 100 ms: another instance holds the lease');
    await holder.release();
  });

  void test('default bounds: renew every third of the lease, wait the lease plus 10 s, poll 250-1000 ms', async () => {
    const lock = createBlobLeaseLock({
      serviceClient: BlobServiceClient.fromConnectionString(proxyConnectionString, {
        retryOptions: { maxTries: 1 },
      }),
      leaseDurationSeconds: 15,
      logger,
    });
    await lock.withLock('defaults', () => new Promise((r) => setTimeout(r, 100)));
    assert.equal(arrived.filter((a) => a.kind === 'renew').length, 0, 'no renewal within 100 ms');

    const holder = await holdWhile('defaults');
    const realNow = Date.now;
    let offset = 0;
    Date.now = () => realNow() + offset;
    try {
      const waiting = lockError(lock.withLock('defaults', ok));
      while (!arrived.some((a) => a.kind === 'acquire' && arrived.indexOf(a) > 0))
        await new Promise((r) => setTimeout(r, 5));
      // Jump past 25 s (15 s lease + 10 s): the next poll gives up.
      offset = 26_000;
      const err = await waiting;
      assert.equal(err.detail, 'not acquired within 25000 ms: another instance holds the lease');
    } finally {
      Date.now = realNow;
    }
    await holder.release();
  });

  void test('held() ends when no renewal was confirmed within the lease duration', async () => {
    const lock = instance({ renewIntervalMs: 60_000 });
    await lock.withLock('expiry', () => {
      assert.equal(lock.held('expiry'), true);
      const realNow = Date.now;
      Date.now = () => realNow() + 16_000;
      try {
        assert.equal(lock.held('expiry'), false);
      } finally {
        Date.now = realNow;
      }
      return Promise.resolve();
    });
  });

  void test('a renewal answered after fn ended schedules no further renewal', async () => {
    faults = [{ kind: 'renew', status: 503, code: 'ServerBusy', delayMs: 80 }];
    const lock = instance({ renewIntervalMs: 15 });
    await lock.withLock('after-stop', async () => {
      while (!arrived.some((a) => a.kind === 'renew')) await new Promise((r) => setTimeout(r, 2));
    });
    const renewals = arrived.filter((a) => a.kind === 'renew').length;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(arrived.filter((a) => a.kind === 'renew').length, renewals);
  });

  void test('a blob service URI builds the lock with the given credential; without any setting it names both', async () => {
    let asked = 0;
    const lock = createConnectionLock(
      { kind: 'blob', blobServiceUri: 'https://127.0.0.1:1/devstoreaccount1' },
      {
        credential: {
          getToken: () => (
            asked++,
            Promise.resolve({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 })
          ),
        },
        requestTimeoutMs: 500,
        waitTimeoutMs: 100,
        logger,
      } as Parameters<typeof createConnectionLock>[1],
    );
    assert.equal(lock.kind, 'blob');
    await assert.rejects(
      lock.withLock('uri', ok),
      (err: unknown) => isBrokerError(err) && err.code === 'lock_timeout',
    );
    assert.ok(asked >= 1, 'the given credential was asked for a storage token');
    assert.throws(
      () => createBlobLeaseLock({ logger }),
      (err: unknown) =>
        isBrokerError(err) && err.detail === 'set AzureWebJobsStorage or AzureWebJobsStorage__blobServiceUri',
    );
  });
});
