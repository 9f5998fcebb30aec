import assert from 'node:assert/strict';
import { setImmediate as flush } from 'node:timers/promises';
import { describe, it } from 'node:test';
import {
  createVaultPacerPolicy,
  DEFAULT_PACER,
  isSecretWrite,
  type PacerClock,
} from '../../../shared/store/vaultPacer.ts';

type Send = Parameters<ReturnType<typeof createVaultPacerPolicy>['policy']['sendRequest']>;

/** A clock that moves only when the test says so: no timer races. */
function manualClock() {
  let t = 1_000_000;
  const sleepers: { until: number; wake: () => void }[] = [];
  const clock: PacerClock = {
    now: () => t,
    sleep: (ms) => new Promise<void>((wake) => sleepers.push({ until: t + ms, wake })),
  };
  const settle = async () => {
    for (let i = 0; i < 20; i++) await flush();
  };
  return {
    clock,
    settle,
    async advance(ms: number) {
      t += ms;
      for (const s of sleepers.splice(0).filter((x) => (x.until <= t ? (x.wake(), false) : true)))
        sleepers.push(s);
      await settle();
    },
  };
}

const VAULT = 'https://vault.example';

/** Drives the pipeline policy directly with a fake transport and the manual clock. */
function harness(opts: Parameters<typeof createVaultPacerPolicy>[0], statuses: number[] = []) {
  const time = manualClock();
  const { policy } = createVaultPacerPolicy({ ...opts, clock: time.clock });
  const sent: { method: string; at: number }[] = [];
  // `statuses` answer the writes in order; reads always get 200.
  const next = ((request: Send[0]) => {
    sent.push({ method: request.method, at: time.clock.now() });
    return Promise.resolve({ status: request.method === 'PUT' ? (statuses.shift() ?? 200) : 200 });
  }) as unknown as Send[1];
  const request = (method: string, path: string) => ({ method, url: `${VAULT}${path}` }) as Send[0];
  const write = () => policy.sendRequest(request('PUT', '/secrets/conn-a?api-version=2025-07-01'), next);
  const read = () => policy.sendRequest(request('GET', '/secrets/conn-a/?api-version=2025-07-01'), next);
  const writes = () => sent.filter((s) => s.method === 'PUT').length;
  const reads = () => sent.filter((s) => s.method === 'GET').length;
  return { ...time, write, read, writes, reads, sent };
}

describe('vault pacer', () => {
  it('classifies only PUT /secrets/{name} as a secret write (what Key Vault counts as CREATE secret)', () => {
    assert.equal(isSecretWrite('PUT', `${VAULT}/secrets/conn-a?api-version=7.6`), true);
    assert.equal(isSecretWrite('PUT', `${VAULT}/secrets/conn-a/?api-version=7.6`), true);
    assert.equal(isSecretWrite('GET', `${VAULT}/secrets/conn-a?api-version=7.6`), false);
    assert.equal(isSecretWrite('PATCH', `${VAULT}/secrets/conn-a/abc?api-version=7.6`), false);
    assert.equal(isSecretWrite('DELETE', `${VAULT}/secrets/conn-a?api-version=7.6`), false);
    assert.equal(isSecretWrite('POST', `${VAULT}/deletedsecrets/conn-a/recover?api-version=7.6`), false);
    // Only the whole path /secrets/{name}: not a deeper path, not one under another prefix.
    assert.equal(isSecretWrite('PUT', `${VAULT}/secrets/conn-a/extra?api-version=7.6`), false);
    assert.equal(isSecretWrite('PUT', `${VAULT}/other/secrets/conn-a?api-version=7.6`), false);
  });

  it('defaults to 95 % of the write budget (285 per 10 s) and 90 % of the other (3,600 per 10 s)', () => {
    assert.deepEqual({ ...DEFAULT_PACER }, { limit: 3600, writeLimit: 285, windowMs: 10_000 });
  });

  it('holds writes to the write budget while reads keep flowing under theirs', async () => {
    const h = harness({});
    const writes = Array.from({ length: 300 }, () => h.write());
    const reads = Array.from({ length: 100 }, () => h.read());
    await h.settle();
    assert.equal(h.writes(), 285, 'the 286th write waits for the window');
    assert.equal(h.reads(), 100, 'reads do not wait for writes');
    await h.advance(9_000);
    assert.equal(h.writes(), 285, 'still inside the 10 s window');
    await h.advance(1_001);
    assert.equal(h.writes(), 300, 'the window moved');
    await Promise.all([...writes, ...reads]);
  });

  it('holds other requests to their own budget', async () => {
    const h = harness({ limit: 3, writeLimit: 100, windowMs: 200 });
    const all = [h.read(), h.read(), h.read(), h.read(), h.write()];
    await h.settle();
    assert.deepEqual([h.reads(), h.writes()], [3, 1]);
    await h.advance(201);
    assert.equal(h.reads(), 4);
    await Promise.all(all);
  });

  it('a 429 pauses the requests of its budget, doubling while 429s continue and resetting on success', async () => {
    const h = harness({ initialPauseMs: 80, maxPauseMs: 1000 }, [429, 429, 200, 200]);
    await h.write();
    const second = h.write();
    const read = h.read();
    await h.settle();
    assert.equal(h.writes(), 1, 'writes pause after a throttled write');
    assert.equal(h.reads(), 1, 'reads are not paused by a write 429');
    await read;
    await h.advance(79);
    assert.equal(h.writes(), 1);
    await h.advance(1);
    assert.equal(h.writes(), 2, 'first pause 80 ms');
    await second; // 429 again
    const third = h.write();
    await h.advance(159);
    assert.equal(h.writes(), 2);
    await h.advance(1);
    assert.equal(h.writes(), 3, 'second pause 160 ms');
    await third; // success: the pause resets
    await h.write();
    assert.equal(h.writes(), 4, 'no pause after a success');
  });

  it('a request sent exactly one window ago no longer counts; a waiter wakes just after its window', async () => {
    const h = harness({ writeLimit: 1, windowMs: 100 });
    const t0 = h.clock.now();
    await h.write();
    const second = h.write();
    await h.settle();
    await h.advance(100);
    assert.equal(h.writes(), 1, 'the waiter sleeps until 1 ms past the window');
    await h.advance(1);
    await second;
    await h.advance(100);
    const third = h.write();
    await h.settle();
    assert.equal(h.writes(), 3, 'the earlier write left the window exactly now: no wait');
    await third;
    assert.deepEqual(
      h.sent.map((s) => s.at - t0),
      [0, 101, 201],
    );
  });

  it('the 429 pause doubles up to maxPauseMs, a 5xx leaves it, any other answer resets it', async () => {
    const h = harness({ initialPauseMs: 10, maxPauseMs: 30 }, [429, 500, 429, 429, 429, 200, 429, 200]);
    const t0 = h.clock.now();
    const step = async (advance: number, expected: number) => {
      const pending = h.write();
      await h.settle();
      if (advance > 0) {
        await h.advance(advance - 1);
        assert.equal(h.writes(), expected - 1, `still paused ${advance - 1} ms later`);
        await h.advance(1);
      }
      assert.equal(h.writes(), expected);
      await pending;
    };
    await step(0, 1); // 429: pause 10
    await step(10, 2); // 500: pause unchanged (next would be 20)
    await step(0, 3); // 429: pause 20
    await step(20, 4); // 429: pause 30 (capped)
    await step(30, 5); // 429: pause 30
    await step(30, 6); // 200: reset to 10
    await step(0, 7); // 429: pause 10
    await step(10, 8);
    assert.deepEqual(
      h.sent.map((s) => s.at - t0),
      [0, 10, 10, 30, 60, 90, 90, 100],
    );
  });

  it('runs on the real clock by default: after a 429 the next request waits the pause', async () => {
    const { policy } = createVaultPacerPolicy({ initialPauseMs: 40 });
    let status = 429;
    const next = (() => Promise.resolve({ status })) as unknown as Send[1];
    const request = { method: 'PUT', url: `${VAULT}/secrets/conn-a?api-version=2025-07-01` } as Send[0];
    // Measured from before the 429 (the pause runs from its arrival), so a slow machine cannot shorten it;
    // 39, not 40: Date.now() and the timer clock may round the same instant a millisecond apart.
    const started = Date.now();
    await policy.sendRequest(request, next);
    status = 200;
    // The pause is a timer, not a busy wait: other timers of the process still fire meanwhile.
    let ticked = false;
    setTimeout(() => (ticked = true), 5);
    let tickedBeforeSend = false;
    await policy.sendRequest(request, (req: Send[0]) => ((tickedBeforeSend = ticked), next(req)));
    assert.ok(Date.now() - started >= 39, `waited ${Date.now() - started} ms`);
    assert.equal(tickedBeforeSend, true);
  });
});
