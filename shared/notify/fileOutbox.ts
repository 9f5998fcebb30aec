/**
 * @module notify/fileOutbox
 * The local outbox: one JSON file per message in `<data dir>/outbox`, named after the event and sink so the same
 * transition told twice is stored once. Hiding and backoff are a `visibleAt` time in the file; a lease is a random
 * receipt written into it, so a stale holder cannot delete or reschedule a message someone else took since.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Leased, Outbox, OutboxMessage } from './outbox.ts';

interface Stored {
  message: OutboxMessage;
  /** Times the message was taken (the inline attempt after `put` counts as none). */
  takes: number;
  visibleAt: number;
  receipt: string;
}

export function createFileOutbox(dataDir: string, now: () => number = Date.now): Outbox {
  const dir = join(dataDir, 'outbox');
  const ready = mkdir(dir, { recursive: true, mode: 0o700 });
  const pathOf = (id: string) => join(dir, `${id}.json`);

  async function write(id: string, stored: Stored): Promise<void> {
    await ready;
    const tmp = join(dir, `.${id}.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, JSON.stringify(stored), { mode: 0o600 });
    await rename(tmp, pathOf(id));
  }

  async function read(id: string): Promise<Stored | undefined> {
    try {
      return JSON.parse(await readFile(pathOf(id), 'utf8')) as Stored;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  const lease = (id: string, s: Stored): Leased => ({
    id,
    message: s.message,
    attempts: s.takes,
    receipt: s.receipt,
  });

  return {
    async put(message, holdSeconds) {
      const id = `${message.event.id}-${message.sink}`;
      const stored: Stored = {
        message,
        takes: 0,
        visibleAt: now() + holdSeconds * 1000,
        receipt: randomBytes(9).toString('base64url'),
      };
      await write(id, stored);
      return lease(id, stored);
    },
    async take(max, holdSeconds) {
      await ready;
      const out: Leased[] = [];
      for (const name of (await readdir(dir)).sort()) {
        if (out.length >= max) break;
        if (!name.endsWith('.json') || name.startsWith('.')) continue;
        const id = name.slice(0, -'.json'.length);
        const stored = await read(id);
        if (!stored || stored.visibleAt > now()) continue;
        const taken: Stored = {
          ...stored,
          takes: stored.takes + 1,
          visibleAt: now() + holdSeconds * 1000,
          receipt: randomBytes(9).toString('base64url'),
        };
        await write(id, taken);
        out.push(lease(id, taken));
      }
      return out;
    },
    async done(l) {
      const stored = await read(l.id);
      if (stored?.receipt !== l.receipt) return;
      await unlink(pathOf(l.id)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    },
    async retryIn(l, seconds) {
      const stored = await read(l.id);
      if (stored?.receipt !== l.receipt) return;
      await write(l.id, { ...stored, visibleAt: now() + seconds * 1000 });
    },
  };
}
