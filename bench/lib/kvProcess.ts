/**
 * The Key Vault double in its own process (CLI mode of test/support/keyVaultDouble.ts), so its TLS and JSON work
 * does not run on the event loop being measured, plus a client for its `/_double/` control endpoints.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { Counters, KnobsBody } from '../../test/support/keyVaultDouble.ts';
import { REPO_ROOT, type ReadyChild, spawnReady } from './proc.ts';

export interface KvControl {
  knobs(body: KnobsBody): Promise<void>;
  counters(): Promise<Counters>;
  resetCounters(): Promise<void>;
  /** Drops every secret, counter and fault. */
  reset(): Promise<void>;
}

export interface KvProcess extends KvControl {
  vaultUrl: string;
  token: string;
  caFile: string;
  ca: string;
  proc: ReadyChild<unknown>;
  stop(): Promise<void>;
}

export function kvControl(vaultUrl: string, ca: string): KvControl {
  const call = (method: string, action: string, body?: unknown) =>
    new Promise<unknown>((resolve, reject) => {
      const text = body === undefined ? '' : JSON.stringify(body);
      const req = request(
        `${vaultUrl}/_double/${action}`,
        {
          method,
          ca,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (data += c));
          res.on('end', () =>
            res.statusCode === 200
              ? resolve(JSON.parse(data))
              : reject(new Error(`double ${action}: ${String(res.statusCode)}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  return {
    knobs: async (body) => void (await call('POST', 'knobs', body)),
    counters: async () => (await call('GET', 'counters')) as Counters,
    resetCounters: async () => void (await call('POST', 'reset-counters')),
    reset: async () => void (await call('POST', 'reset')),
  };
}

export async function startKvProcess(caFile: string): Promise<KvProcess> {
  const proc = await spawnReady<{ vaultUrl: string; token: string }>(
    join(REPO_ROOT, 'test', 'support', 'keyVaultDouble.ts'),
    ['--port', '0', '--ca-file', caFile],
  );
  const ca = readFileSync(caFile, 'utf8');
  const { vaultUrl, token } = proc.info;
  return { vaultUrl, token, caFile, ca, proc, ...kvControl(vaultUrl, ca), stop: () => proc.stop() };
}
