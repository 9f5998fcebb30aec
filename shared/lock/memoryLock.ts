/**
 * @module lock/memoryLock
 * The embedded default lock: a FIFO mutex per connection inside this process. Enough for one process (the
 * embedded default runs one); several instances need the blob lease lock.
 */
import { BrokerError } from '../errors.ts';
import { assertConnectionName } from '../store/validate.ts';
import type { ConnectionLock } from './types.ts';

export interface MemoryLockOptions {
  /** How long a caller waits for the current holder before `lock_timeout`. Default 30 s. */
  waitTimeoutMs?: number;
}

interface Waiter {
  grant(): void;
}

export class MemoryLock implements ConnectionLock {
  readonly kind = 'memory';
  readonly #waitTimeoutMs: number;
  /** Present = held; the array holds the waiters in arrival order. */
  readonly #held = new Map<string, Waiter[]>();

  constructor(options: MemoryLockOptions = {}) {
    this.#waitTimeoutMs = options.waitTimeoutMs ?? 30_000;
  }

  async withLock<T>(connection: string, fn: () => Promise<T>): Promise<T> {
    assertConnectionName(connection);
    await this.#acquire(connection);
    try {
      return await fn();
    } finally {
      this.#release(connection);
    }
  }

  /** In one process nobody can take the lock from a running holder. */
  held(connection: string): boolean {
    return this.#held.has(connection);
  }

  #acquire(connection: string): Promise<void> {
    const waiters = this.#held.get(connection);
    if (!waiters) {
      this.#held.set(connection, []);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const index = waiters.indexOf(waiter);
        if (index >= 0) waiters.splice(index, 1);
        reject(
          new BrokerError('lock_timeout', 'The connection is busy; try again shortly.', {
            detail: `in-process lock not granted within ${this.#waitTimeoutMs} ms`,
            retryAfterSeconds: 1,
            fields: { lock: 'memory', connection },
          }),
        );
      }, this.#waitTimeoutMs);
      waiters.push(waiter);
    });
  }

  #release(connection: string): void {
    const waiters = this.#held.get(connection);
    const next = waiters?.shift();
    if (next) next.grant();
    else this.#held.delete(connection);
  }
}

export function createMemoryLock(options: MemoryLockOptions = {}): MemoryLock {
  return new MemoryLock(options);
}
