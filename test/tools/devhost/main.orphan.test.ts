// A dev host whose test process dies without exiting (SIGKILL, a runner timeout) must not live on as an orphan:
// its IPC channel to the harness closes and it shuts down (tools/devhost/main.ts, test/support/devhost.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../../support/devhost.ts';

const HARNESS = pathToFileURL(join(REPO_ROOT, 'test', 'support', 'devhost.ts')).href;
const APP = join(REPO_ROOT, 'test', 'fixtures', 'devhost-app', 'variants', 'default-prefix');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

void describe('dev host lifetime', () => {
  void it('shuts down when the process that spawned it is killed with SIGKILL', async () => {
    const script =
      `const { spawnDevHost } = await import(${JSON.stringify(HARNESS)});` +
      `const h = await spawnDevHost({ appDir: ${JSON.stringify(APP)}, env: { DEVHOST_TIMERS: 'off' } });` +
      `console.log('child ' + h.pid); process.kill(process.pid, 'SIGKILL');`;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    parent.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await new Promise((done) => parent.once('close', done));
    const pid = Number(/child (\d+)/.exec(out)?.[1]);
    assert.ok(pid > 0, `no child pid in: ${out}`);
    // the child notices the closed channel at once; allow it the shutdown it runs on SIGTERM
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
    const survived = alive(pid);
    if (survived) process.kill(pid, 'SIGKILL'); // close what the test started, then assert
    assert.equal(survived, false, 'the dev host outlived its harness');
  });
});
