/**
 * Child processes for the benchmarks: loopback servers that print one JSON "ready" line on stdout (the bare
 * HTTP baseline, the minimal token endpoint, the Key Vault double in CLI mode), and benchmark workers. Every
 * child still running when this process exits is killed, so an aborted run leaves nothing behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface ReadyChild<T> {
  info: T;
  child: ChildProcess;
  pid: number;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
  stop(): Promise<void>;
}

/** Runs `node <script> ...args` and resolves with the first stdout line parsed as JSON. */
export async function spawnReady<T>(
  script: string,
  args: string[] = [],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ReadyChild<T>> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [script, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  live.add(child);
  const exited = once(child, 'exit').then(() => live.delete(child));
  const info = await new Promise<T>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`${script}: no ready line`)), opts.timeoutMs ?? 20_000);
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const nl = buffer.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      // Drain the rest so the child never blocks on a full pipe.
      child.stdout?.resume();
      try {
        resolve(JSON.parse(buffer.slice(0, nl)) as T);
      } catch {
        reject(new Error(`${script}: bad ready line`));
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${String(code)} before it was ready`));
    });
  });
  return {
    info,
    child,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const guard = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(guard);
    },
  };
}

/** Runs a benchmark worker to completion; its JSON result is read from the file named by `--out`. */
export async function runWorker(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<void> {
  const full: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete full.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [script, ...args], { cwd: REPO_ROOT, env: full, stdio: 'inherit' });
  live.add(child);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  live.delete(child);
  if (code !== 0) throw new Error(`${script} failed (${signal ?? String(code)})`);
}

/** True when the module at `url` is the script node was started with. */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(url);
}
