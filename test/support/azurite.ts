/**
 * Starts Azurite's blob service from node_modules on a free loopback port, in memory, with telemetry off (it
 * would otherwise phone Application Insights) and its working directory in a fresh temp dir, and stops it.
 *
 *   const azurite = await startAzurite();
 *   BlobServiceClient.fromConnectionString(azurite.connectionString);   // or { service: 'queue' }
 *   await azurite.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Azurite's well-known development account (public, documented; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteHandle {
  /** `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=…;BlobEndpoint=…;` */
  connectionString: string;
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** How long to wait for the "listens on" line. Default 20 s. */
  startTimeoutMs?: number;
  /** Which Azurite service to run (default blob); the queue service backs the notification outbox. */
  service?: 'blob' | 'queue';
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteHandle> {
  const service = options.service ?? 'blob';
  const main = createRequire(import.meta.url).resolve(`azurite/dist/src/${service}/main.js`);
  const workDir = mkdtempSync(join(tmpdir(), 'azurite-'));
  // Azurite runs under a small watchdog that exits when this process is gone, so a test process killed by
  // its runner (no 'exit' handlers run) cannot leave Azurite behind.
  const watchdog = [
    `const parent = ${process.pid};`,
    'setInterval(() => { try { process.kill(parent, 0); } catch { process.exit(0); } }, 500).unref();',
    `process.argv.splice(1, 0, ${JSON.stringify(main)});`,
    `require(${JSON.stringify(main)});`,
  ].join('\n');
  const child = spawn(
    process.execPath,
    [
      '-e',
      watchdog,
      '--',
      `--${service}Host`,
      '127.0.0.1',
      `--${service}Port`,
      '0',
      '--inMemoryPersistence',
      '--extentMemoryLimit',
      '64',
      '--skipApiVersionCheck',
      '--loose',
      '--disableTelemetry',
      '--silent',
    ],
    { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let port: number;
  try {
    port = await listeningPort(child, options.startTimeoutMs ?? 20_000);
    await waitForTcp(port);
  } catch (err) {
    child.kill('SIGKILL');
    process.removeListener('exit', killOnExit);
    rmSync(workDir, { recursive: true, force: true });
    throw err;
  }
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const endpointName = service === 'blob' ? 'BlobEndpoint' : 'QueueEndpoint';
  return {
    port,
    endpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};${endpointName}=${endpoint};`,
    stop: async () => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((done) => child.once('exit', () => done()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

function listeningPort(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => fail(new Error(`Azurite did not start within ${timeoutMs} ms: ${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        cleanup();
        resolve(Number(match[1]));
      }
    };
    const onExit = (code: number | null) => fail(new Error(`Azurite exited with ${code}: ${output}`));
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      // Keep draining so a chatty child never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function waitForTcp(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.end();
      resolve();
    });
    socket.once('error', reject);
  });
}
