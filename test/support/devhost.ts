/**
 * Spawns `tools/devhost/main.ts` as a child process for end-to-end tests and waits for its ready line.
 * Children still running when the test process exits are killed, and a child whose test process died without
 * exiting (SIGKILL, a runner timeout) shuts itself down when its IPC channel closes: a failing test never leaks a host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(REPO_ROOT, 'tools', 'devhost', 'main.ts');
const READY = /devhost: listening on http:\/\/localhost:(\d+)/;

export interface DevHostHandle {
  baseUrl: string;
  port: number;
  pid: number;
  process: ChildProcess;
  /** Everything the host wrote to stdout and stderr so far. */
  logs(): string;
  /** Sends `signal` (default SIGTERM) and resolves once the process exited (SIGKILL after 10 s). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  kill9(): void;
  /** Exit code; null when the process was ended by a signal. */
  exited: Promise<number | null>;
  /** Resolves with the logs once `pattern` matches them; rejects after `timeoutMs` or on exit. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

export interface SpawnDevHostOptions {
  /** App folder (default: the repository root, i.e. the real app built into dist/). */
  appDir?: string;
  /** Added to the inherited environment (and win over it). */
  env?: Record<string, string>;
  /** DEVHOST_PORT; default 0 = any free port. */
  port?: number;
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function spawnDevHost(opts: SpawnDevHostOptions = {}): Promise<DevHostHandle> {
  const appDir = opts.appDir ?? REPO_ROOT;
  const env: NodeJS.ProcessEnv = { ...process.env, DEVHOST_PORT: String(opts.port ?? 0), ...opts.env };
  // the child is not a test file; inherited runner state would only confuse it
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [MAIN, '--app-dir', appDir], {
    cwd: REPO_ROOT,
    env,
    // the IPC channel is the child's lifeline: it shuts down when this process dies, however it dies
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  live.add(child);
  let output = '';
  const listeners = new Set<() => void>();
  const onOutput = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const listener of [...listeners]) listener();
  };
  child.stdout?.on('data', onOutput);
  child.stderr?.on('data', onOutput);

  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    const finish = (code: number | null) => {
      if (exitCode !== undefined) return;
      live.delete(child);
      exitCode = code;
      resolve(code);
      for (const listener of [...listeners]) listener();
    };
    child.once('close', finish);
    child.once('error', (err) => {
      output += `spawn error: ${err.message}\n`;
      finish(null);
    });
  });

  const waitForLog = (pattern: RegExp, timeoutMs = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (pattern.test(output)) {
          done();
          resolve(output);
        } else if (exitCode !== undefined) {
          done();
          reject(
            new Error(`devhost exited (code ${String(exitCode)}) before ${String(pattern)}:\n${output}`),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(pattern)}:\n${output}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (exitCode !== undefined) return;
    child.kill(signal);
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(guard);
  };

  return waitForLog(READY, opts.readyTimeoutMs ?? 15_000).then(
    (logs) => {
      const port = Number((READY.exec(logs) as RegExpExecArray)[1]);
      return {
        baseUrl: `http://127.0.0.1:${port}`,
        port,
        pid: child.pid as number,
        process: child,
        logs: () => output,
        stop,
        kill9: () => void child.kill('SIGKILL'),
        exited,
        waitForLog,
      };
    },
    (err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    },
  );
}
