/**
 * Child-process fixture for the blob lease kill -9 test: takes the lease for LEASE_CONNECTION on the storage
 * account in LEASE_CONNECTION_STRING (15 s lease), prints `{"requestedAt","acquiredAt"}` and holds the lock
 * (renewing) until it is killed.
 */
import { createBlobLeaseLock } from '../../shared/lock/blobLeaseLock.ts';

const connectionString = process.env.LEASE_CONNECTION_STRING;
const connection = process.env.LEASE_CONNECTION;
if (!connectionString || !connection)
  throw new Error('LEASE_CONNECTION_STRING and LEASE_CONNECTION are required');

// Never outlive the test that started us (if it dies before killing us, our parent changes).
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(1);
}, 500);

const lock = createBlobLeaseLock({ connectionString, leaseDurationSeconds: 15, waitTimeoutMs: 30_000 });
const requestedAt = Date.now();
await lock.withLock(connection, async () => {
  process.stdout.write(`${JSON.stringify({ requestedAt, acquiredAt: Date.now() })}\n`);
  // Held until SIGKILL.
  await new Promise<never>(() => {});
});
