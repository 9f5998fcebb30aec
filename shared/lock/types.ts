/**
 * @module lock/types
 * Mutual exclusion for refreshing one connection. In-process single-flight lives in the broker; this seam is
 * the cross-instance part (a blob lease in Azure, an in-process mutex for the embedded default).
 *
 * What a lock does NOT guarantee: a holder that stalls past its lease (GC pause, frozen VM) can overlap with
 * the next holder. The broker therefore re-reads the store after acquiring and relies on Microsoft keeping
 * the previous refresh token valid after rotation.
 */
export interface ConnectionLock {
  readonly kind: string;
  /** Runs `fn` while holding the lock for `connection`; waits for a current holder up to an implementation
   * bound and then throws a `lock_timeout` BrokerError. Releases on return or throw. */
  withLock<T>(connection: string, fn: () => Promise<T>): Promise<T>;
}
