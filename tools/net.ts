// Small network helpers shared by tools/start.ts and the tests.
import { createServer } from 'node:net';

/** A free loopback port. Racy by nature (another process may take it before us), fine for local tools. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
