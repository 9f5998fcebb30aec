/**
 * Shared set-up for the broker part tests: a context over an in-memory store, a lock that counts
 * acquisitions, a provider whose refresh can be held at a barrier, and a record builder.
 */
import { randomBytes } from 'node:crypto';
import { type BrokerContext, createBrokerContext } from '../../../shared/broker/context.ts';
import { keyIdOf } from '../../../shared/config.ts';
import { Keyring } from '../../../shared/crypto.ts';
import type { ConnectionLock } from '../../../shared/lock/types.ts';
import { createMemoryLock } from '../../../shared/lock/memoryLock.ts';
import { createLogger } from '../../../shared/log.ts';
import type { TokenResult } from '../../../shared/oauth/provider.ts';
import {
  type ConnectionRecord,
  type RecordMetadata,
  type TokenStore,
  toMetadata,
} from '../../../shared/store/types.ts';
import { ScriptedProvider } from '../../support/scriptedProvider.ts';

export const HOUR = 3600_000;
export const T0 = Date.UTC(2026, 10, 27, 12);

/** A store in memory that counts reads and writes (records are copied so callers cannot alias them). */
export class MemoryStore implements TokenStore {
  readonly kind = 'memory';
  readonly records = new Map<string, ConnectionRecord>();
  gets = 0;
  puts = 0;
  get(connection: string): Promise<ConnectionRecord | undefined> {
    this.gets++;
    const r = this.records.get(connection);
    return Promise.resolve(r ? structuredClone(r) : undefined);
  }
  put(record: ConnectionRecord): Promise<void> {
    this.puts++;
    this.records.set(record.connection, structuredClone(record));
    return Promise.resolve();
  }
  listMetadata(): Promise<RecordMetadata[]> {
    return Promise.resolve([...this.records.values()].map(toMetadata));
  }
  delete(connection: string): Promise<boolean> {
    return Promise.resolve(this.records.delete(connection));
  }
}

/** The memory lock, counting how often it was taken. */
export class CountingLock implements ConnectionLock {
  readonly kind = 'counting';
  readonly #inner = createMemoryLock();
  acquisitions = 0;
  withLock<T>(connection: string, fn: () => Promise<T>): Promise<T> {
    this.acquisitions++;
    return this.#inner.withLock(connection, fn);
  }
}

/** A promise with its resolve handle: a barrier a test opens when it is ready. */
export function barrier(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** A scripted provider whose next refresh can be held: `entered` resolves once the call reached it, and the
 * answer is given only after `release` opens. */
export class GatedProvider extends ScriptedProvider {
  #gate: { entered: () => void; release: Promise<void> } | undefined;

  hold(): { entered: Promise<void>; release: () => void } {
    const entered = barrier();
    const release = barrier();
    this.#gate = { entered: entered.open, release: release.promise };
    return { entered: entered.promise, release: release.open };
  }

  override async refresh(refreshToken: string, scopes: readonly string[]): Promise<TokenResult> {
    const gate = this.#gate;
    this.#gate = undefined;
    if (gate) {
      gate.entered();
      await gate.release;
    }
    return super.refresh(refreshToken, scopes);
  }
}

export interface Harness {
  ctx: BrokerContext;
  store: MemoryStore;
  lock: CountingLock;
  provider: GatedProvider;
  logs: string[];
  clock: { now: number };
}

export function harness(over: Partial<Parameters<typeof createBrokerContext>[0]> = {}): Harness {
  const store = new MemoryStore();
  const lock = new CountingLock();
  const provider = new GatedProvider();
  const logs: string[] = [];
  const clock = { now: T0 };
  const key = randomBytes(32);
  const ctx = createBrokerContext({
    store,
    lock,
    providers: new Map([['microsoft', provider]]),
    keyring: new Keyring([{ kid: keyIdOf(key), key }]),
    log: createLogger({}, (_l, line) => logs.push(line)),
    publicBaseUrl: 'https://broker.example.com',
    linkTtlSeconds: 900,
    policy: { marginMs: 5 * 60_000, keepAliveMs: 7 * 24 * HOUR },
    sweepConcurrency: 4,
    now: () => clock.now,
    random: () => 1,
    ...over,
  });
  return { ctx, store, lock, provider, logs, clock };
}

/** An active connection whose primary access token expires `accessTtlMs` after `at` (default T0). */
export function activeRecord(
  over: Partial<ConnectionRecord> = {},
  accessTtlMs = HOUR,
  at = T0,
): ConnectionRecord {
  return {
    v: 1,
    connection: 'sales-mailbox',
    settings: { provider: 'microsoft', scopes: ['https://graph.microsoft.com/Mail.Send'] },
    status: 'active',
    tokens: {
      refreshToken: 'rt-seed-zzzzzzzzzzzzzzzzzzzzzzzz',
      grantedScopes: ['https://graph.microsoft.com/Mail.Send'],
      primary: {
        accessToken: 'at-seed-zzzzzzzzzzzzzzzzzzzzzz',
        tokenType: 'Bearer',
        expiresAt: at + accessTtlMs,
        scope: 'https://graph.microsoft.com/Mail.Send',
      },
    },
    createdAt: at,
    updatedAt: at,
    // One-hour tokens: one that expires in `accessTtlMs` was issued an hour before that.
    refreshedAt: at + accessTtlMs - HOUR,
    failures: 0,
    revision: 1,
    ...over,
  };
}
