import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBrokerError } from '../../../shared/errors.ts';
import { createConnectionLock } from '../../../shared/lock/index.ts';
import { createMemoryLock } from '../../../shared/lock/memoryLock.ts';

void describe('memory lock', () => {
  void test('the factory builds it for { kind: memory }', () => {
    assert.equal(createConnectionLock({ kind: 'memory' }).kind, 'memory');
  });

  void test('one holder at a time per connection, granted in arrival order', async () => {
    const lock = createMemoryLock();
    let inside = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        lock.withLock('sales', async () => {
          inside++;
          assert.equal(inside, 1);
          order.push(i);
          await sleep(2);
          inside--;
        }),
      ),
    );
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  void test('different connections do not wait for each other', async () => {
    const lock = createMemoryLock({ waitTimeoutMs: 100 });
    let release!: () => void;
    const held = lock.withLock('a', () => new Promise<void>((r) => (release = r)));
    const started = Date.now();
    assert.equal(await lock.withLock('b', () => Promise.resolve('b')), 'b');
    assert.ok(Date.now() - started < 50);
    release();
    await held;
  });

  void test('returns the value of fn and releases when fn throws', async () => {
    const lock = createMemoryLock({ waitTimeoutMs: 100 });
    await assert.rejects(
      lock.withLock('boom', () => Promise.reject(new Error('fn failed'))),
      /fn failed/,
    );
    assert.equal(await lock.withLock('boom', () => Promise.resolve(42)), 42);
  });

  void test('a waiter gives up with lock_timeout after the bound and the queue moves on', async () => {
    const lock = createMemoryLock({ waitTimeoutMs: 80 });
    let release!: () => void;
    const held = lock.withLock('busy', () => new Promise<void>((r) => (release = r)));
    const started = Date.now();
    await assert.rejects(
      lock.withLock('busy', () => Promise.resolve()),
      (err: unknown) => {
        assert.ok(isBrokerError(err));
        assert.equal(err.code, 'lock_timeout');
        assert.equal(err.status, 503);
        assert.equal(err.retryAfterSeconds, 1);
        assert.equal(err.detail, 'in-process lock not granted within 80 ms');
        assert.deepEqual(err.fields, { lock: 'memory', connection: 'busy' });
        return true;
      },
    );
    assert.ok(Date.now() - started >= 75);
    const next = lock.withLock('busy', () => Promise.resolve('next'));
    release();
    await held;
    assert.equal(await next, 'next');
  });

  void test('held() is true from grant until the last queued holder is done', async () => {
    const lock = createMemoryLock();
    assert.equal(lock.held('h'), false);
    let releaseFirst!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const first = lock.withLock('h', () => new Promise<void>((r) => ((releaseFirst = r), entered())));
    await inside;
    assert.equal(lock.held('h'), true);
    assert.equal(lock.held('other'), false);
    const second = lock.withLock('h', () => Promise.resolve(lock.held('h')));
    releaseFirst();
    await first;
    assert.equal(await second, true, 'held by the next waiter');
    assert.equal(lock.held('h'), false);
  });

  void test('the factory passes the wait bound to the memory lock', async () => {
    const lock = createConnectionLock({ kind: 'memory' }, { waitTimeoutMs: 30 });
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const held = lock.withLock('bound', () => new Promise<void>((r) => ((release = r), entered())));
    await inside;
    await assert.rejects(
      lock.withLock('bound', () => Promise.resolve()),
      (err: unknown) => isBrokerError(err) && err.detail === 'in-process lock not granted within 30 ms',
    );
    release();
    await held;
  });

  void test('invalid connection names are rejected', async () => {
    const lock = createMemoryLock();
    await assert.rejects(
      lock.withLock('Bad_Name', () => Promise.resolve()),
      (err: unknown) => isBrokerError(err) && err.code === 'invalid_request',
    );
  });
});
