import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { TimerFunction } from '../../../tools/devhost/catalog.ts';
import type { RegisteredFunction } from '../../../tools/devhost/coreApi.ts';
import { parseNcrontab } from '../../../shared/schedule.ts';
import type { RpcTypedData } from '../../../tools/devhost/rpcTypes.ts';
import { TimerListener, timerPayload, type TimerRunReason } from '../../../tools/devhost/timers.ts';

function timer(overrides: Partial<TimerFunction> = {}): TimerFunction {
  return {
    kind: 'timer',
    name: 't',
    fn: {
      id: 't',
      metadata: { name: 't', bindings: {} },
      callback: () => undefined,
    } satisfies RegisteredFunction,
    triggerBindingName: 'timerTrigger1',
    triggerType: 'timerTrigger',
    schedule: parseNcrontab('0 0 0 1 1 *'),
    runOnStartup: false,
    useMonitor: true,
    ...overrides,
  };
}

interface Run {
  reason: TimerRunReason;
  payload: { IsPastDue: boolean; ScheduleStatus: { Last: string; Next: string } | null };
  start: number;
  end: number;
}

function recorder(durationMs: number, failFirst = false) {
  const runs: Run[] = [];
  let calls = 0;
  const invoke = async (data: RpcTypedData, reason: TimerRunReason) => {
    calls++;
    const start = Date.now();
    await sleep(durationMs);
    runs.push({ reason, payload: JSON.parse(data.json as string) as Run['payload'], start, end: Date.now() });
    if (failFirst && calls === 1) throw new Error('first run fails');
  };
  return { runs, invoke };
}

void describe('timer payload', () => {
  void it('has the host JSON shape, with null status when the monitor is off', () => {
    const status = { last: new Date(0), next: new Date(1000), lastUpdated: new Date(0) };
    assert.deepEqual(JSON.parse(timerPayload(true, status).json as string), {
      Schedule: { AdjustForDST: true },
      ScheduleStatus: {
        Last: '1970-01-01T00:00:00.000Z',
        Next: '1970-01-01T00:00:01.000Z',
        LastUpdated: '1970-01-01T00:00:00.000Z',
      },
      IsPastDue: true,
    });
    assert.equal(
      (JSON.parse(timerPayload(false, null).json as string) as Run['payload']).ScheduleStatus,
      null,
    );
  });
});

void describe('TimerListener', () => {
  void it('runs once on startup with the initial status, then records last = run start', async () => {
    const { runs, invoke } = recorder(5);
    const listener = new TimerListener(timer({ runOnStartup: true }), invoke);
    assert.equal(listener.status.last.toISOString(), '0001-01-01T00:00:00.000Z');
    listener.start();
    await sleep(100);
    await listener.stop();
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.reason, 'runOnStartup');
    assert.equal(runs[0]?.payload.IsPastDue, false);
    assert.equal(runs[0]?.payload.ScheduleStatus?.Last, '0001-01-01T00:00:00.000Z');
    assert.ok(Math.abs(listener.status.last.getTime() - (runs[0]?.start ?? 0)) < 50);
    assert.equal(listener.status.next?.getUTCMonth(), 0);
  });

  void it('never overlaps manual runs, and a failed run does not block the next', async () => {
    const { runs, invoke } = recorder(60, true);
    const listener = new TimerListener(timer({ useMonitor: false }), invoke);
    const results = await Promise.allSettled([
      listener.runManually(),
      listener.runManually(),
      listener.runManually(),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'fulfilled', 'fulfilled'],
    );
    assert.equal(runs.length, 3);
    for (let i = 1; i < runs.length; i++) assert.ok((runs[i]?.start ?? 0) >= (runs[i - 1]?.end ?? Infinity));
    assert.ok(
      runs.every((r) => r.reason === 'manual' && r.payload.ScheduleStatus === null && !r.payload.IsPastDue),
    );
  });

  void it('does not fire before start() or after stop(), and stop waits for the running invocation', async () => {
    const { runs, invoke } = recorder(150);
    const listener = new TimerListener(timer({ schedule: parseNcrontab('* * * * * *') }), invoke);
    await sleep(1100);
    assert.equal(runs.length, 0);
    listener.start();
    await sleep(1100);
    const manual = listener.runManually();
    await listener.stop();
    assert.ok(runs.length >= 1);
    await manual;
    const count = runs.length;
    await sleep(1100);
    assert.equal(runs.length, count);
  });
});
