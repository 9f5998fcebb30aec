/**
 * @module broker/singleFlight
 * Collapses concurrent calls with the same key into one promise. In-process only: the connection lock is
 * the cross-instance part. Kept by hand: it is a Map and a `finally` (no library needed for that).
 */
export class SingleFlight {
  readonly #running = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.#running.get(key) as Promise<T> | undefined;
    if (running) return running;
    const promise = fn().finally(() => this.#running.delete(key));
    this.#running.set(key, promise);
    return promise;
  }

  /** Calls currently in flight (for tests and diagnostics). */
  get size(): number {
    return this.#running.size;
  }
}
