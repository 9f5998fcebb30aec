// End to end: timer triggers fired by the dev host (runOnStartup, an every-second schedule with a slow handler,
// %Setting% resolution) and DEVHOST_TIMERS=off.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, spawnDevHost, type DevHostHandle } from '../../support/devhost.ts';

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'devhost-app');
const SLOW_MS = 2500;

interface TimerRun {
  start: number;
  end: number;
  isPastDue: boolean;
  scheduleStatus: { last: string; next: string; lastUpdated: string } | null;
  adjustForDST: boolean;
}

const runs = (dir: string, file: string): TimerRun[] =>
  existsSync(join(dir, file))
    ? readFileSync(join(dir, file), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as TimerRun)
    : [];

void describe('dev host timers', () => {
  let on: DevHostHandle;
  let off: DevHostHandle;
  let onDir = '';
  let offDir = '';
  let readyAt = 0;

  before(async () => {
    onDir = mkdtempSync(join(tmpdir(), 'devhost-timers-on-'));
    offDir = mkdtempSync(join(tmpdir(), 'devhost-timers-off-'));
    const common = { SLOW_SCHEDULE: '*/1 * * * * *', SLOW_MS: String(SLOW_MS) };
    [on, off] = await Promise.all([
      spawnDevHost({ appDir: FIXTURE, env: { ...common, FIXTURE_MARKER_DIR: onDir } }),
      spawnDevHost({
        appDir: FIXTURE,
        env: { ...common, FIXTURE_MARKER_DIR: offDir, DEVHOST_TIMERS: 'off' },
      }),
    ]);
    readyAt = Date.now();
  });
  after(async () => {
    await Promise.all([on?.stop('SIGKILL'), off?.stop('SIGKILL')]);
    rmSync(onDir, { recursive: true, force: true });
    rmSync(offDir, { recursive: true, force: true });
  });

  void it('resolves %Setting% schedules from the environment (over local.settings.json)', () => {
    assert.match(on.logs(), /devhost: function slowTick: timer "\*\/1 \* \* \* \* \*" UTC\n/);
    assert.match(on.logs(), /devhost: function startupTick: timer "0 0 0 1 1 \*" UTC \(runOnStartup\)/);
  });

  void it('runs runOnStartup timers once at start, with the initial schedule status', async () => {
    await on.waitForLog(/function=startupTick invocationId=\S+ reason=runOnStartup outcome=succeeded/);
    const [run, ...more] = runs(onDir, 'startupTick.jsonl');
    assert.equal(more.length, 0);
    assert.ok(run);
    assert.equal(run.isPastDue, false);
    assert.equal(run.adjustForDST, true);
    assert.equal(run.scheduleStatus?.last, '0001-01-01T00:00:00.000Z');
    assert.equal(run.scheduleStatus?.next, `${new Date().getUTCFullYear() + 1}-01-01T00:00:00.000Z`);
  });

  void it('fires an every-second timer without overlapping a slow handler, never flagging a late run isPastDue (only a start-up catch-up is)', async () => {
    const deadline = readyAt + 1000 + 3 * SLOW_MS;
    while (runs(onDir, 'slowTick.jsonl').length < 2 && Date.now() < deadline) await sleep(100);
    const slow = runs(onDir, 'slowTick.jsonl');
    assert.ok(slow.length >= 2, `expected 2 runs, got ${slow.length}:\n${on.logs()}`);
    for (let i = 1; i < slow.length; i++) {
      const [prev, cur] = [slow[i - 1] as TimerRun, slow[i] as TimerRun];
      assert.ok(cur.start >= prev.end, `overlap: ${JSON.stringify(slow)}`);
      assert.ok(cur.start - prev.end < 1500, 'the missed occurrence runs right after the slow one');
      assert.equal(cur.isPastDue, false, 'a late run in normal operation is not past due');
    }
    assert.equal(slow[0]?.isPastDue, false);
    // schedules firing more than once a minute run without the status monitor: the host sends null
    assert.ok(slow.every((r) => r.scheduleStatus === null));
    assert.match(
      on.logs(),
      /function=slowTick invocationId=\S+ reason=scheduled outcome=succeeded durationMs=\d+/,
    );
  });

  void it('fires nothing with DEVHOST_TIMERS=off', async () => {
    const waited = Date.now() - readyAt;
    if (waited < 1500) await sleep(1500 - waited);
    assert.deepEqual(runs(offDir, 'slowTick.jsonl'), []);
    assert.deepEqual(runs(offDir, 'startupTick.jsonl'), []);
    assert.doesNotMatch(off.logs(), /devhost\.invocation/);
    assert.match(
      off.logs(),
      /devhost: function startupTick: timer "0 0 0 1 1 \*" UTC \(runOnStartup, scheduled firing off\)/,
    );
  });
});
