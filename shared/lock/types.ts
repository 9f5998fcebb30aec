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
  /** Whether this process still holds the lock for `connection` (called from inside `fn`). A writer checks it
   * right before a write, because a lease can be lost while `fn` runs (renewal refused, or none confirmed
   * within the lease duration). Absent = a lock that cannot be lost while held. */
  held?(connection: string): boolean;
}
