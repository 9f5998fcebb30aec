/**
 * The local outbox in a temp folder, with a controllable clock: hiding, visibility, leases that a stale holder
 * cannot use, one file per event and sink, and what is on disk.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { brokerEvent } from '../../../shared/notify/events.ts';
import { createFileOutbox } from '../../../shared/notify/fileOutbox.ts';
import type { OutboxMessage } from '../../../shared/notify/outbox.ts';

let root: string;
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'file-outbox-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh outbox over its own folder, with a clock the test moves. */
function fresh() {
  const clock = { now: Date.parse('2026-11-29T12:00:00Z') };
  const dataDir = join(root, String(++n));
  return { outbox: createFileOutbox(dataDir, () => clock.now), clock, dir: join(dataDir, 'outbox') };
}

const message = (connection: string, sink: 'webhook' | 'mail' = 'webhook'): OutboxMessage => ({
  sink,
  event: brokerEvent('connection.error', { connection, provider: 'microsoft', revision: 1 }, 0),
});

describe('file outbox', () => {
  it('stores a message under its event and sink, hidden for the hold time, in a private folder', async () => {
    const { outbox, clock, dir } = fresh();
    const m = message('alpha');
    const lease = await outbox.put(m, 60);
    assert.equal(lease.id, `${m.event.id}-webhook`);
    assert.equal(lease.attempts, 0);
    assert.deepEqual(lease.message, m);
    assert.match(lease.receipt, /^[A-Za-z0-9_-]{12}$/);
    assert.deepEqual(await readdir(dir), [`${lease.id}.json`], 'no temp file left behind');
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, `${lease.id}.json`))).mode & 0o777, 0o600);
    clock.now += 59_999;
    assert.deepEqual(await outbox.take(10, 60), [], 'hidden while its sender holds it');
    clock.now += 1;
    const [taken] = await outbox.take(10, 60);
    assert.equal(taken?.id, lease.id);
    assert.deepEqual(taken?.message, m);
    assert.equal(taken?.attempts, 1);
    assert.notEqual(taken?.receipt, lease.receipt, 'a new lease');
  });

  it('stores the same transition told twice once, and the mail apart from the webhook', async () => {
    const { outbox, dir } = fresh();
    await outbox.put(message('alpha'), 0);
    await outbox.put(message('alpha'), 0);
    await outbox.put(message('alpha', 'mail'), 0);
    assert.equal((await readdir(dir)).length, 2);
    const taken = await outbox.take(10, 60);
    assert.deepEqual(taken.map((l) => l.message.sink).sort(), ['mail', 'webhook']);
  });

  it('hands a message out once it is visible (a hold of 0 is visible at once), hiding it again meanwhile', async () => {
    const { outbox, clock } = fresh();
    await outbox.put(message('alpha'), 0);
    const [first] = await outbox.take(10, 30);
    assert.equal(first?.attempts, 1);
    assert.deepEqual(await outbox.take(10, 30), [], 'hidden while taken');
    clock.now += 29_999;
    assert.deepEqual(await outbox.take(10, 30), [], 'hidden for the whole hold');
    clock.now += 1;
    const [second] = await outbox.take(10, 30);
    assert.equal(second?.attempts, 2, 'each take counts');
  });

  it('hands out at most max messages, in name order', async () => {
    const { outbox } = fresh();
    const ids = [];
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) ids.push((await outbox.put(message(name), 0)).id);
    const [one, ...none] = await outbox.take(1, 60);
    assert.deepEqual(none, []);
    const rest = await outbox.take(10, 60);
    assert.deepEqual([one?.id, ...rest.map((l) => l.id)], ids.sort());
  });

  it('skips temp files and anything not a message file', async () => {
    const { outbox, dir } = fresh();
    const lease = await outbox.put(message('alpha'), 0);
    const text = await readFile(join(dir, `${lease.id}.json`), 'utf8');
    // A temp file of a write under way, and files someone else left in the folder.
    await writeFile(join(dir, `.${lease.id}.json`), text);
    await writeFile(join(dir, 'notes.txt'), text);
    await writeFile(join(dir, 'notes.txt.bak'), text);
    const taken = await outbox.take(10, 60);
    assert.deepEqual(
      taken.map((l) => l.id),
      [lease.id],
    );
  });

  it('retryIn makes the message visible again after the given seconds, and done removes it', async () => {
    const { outbox, clock, dir } = fresh();
    await outbox.put(message('alpha'), 0);
    const [taken] = await outbox.take(10, 60);
    assert.ok(taken);
    await outbox.retryIn(taken, 300);
    clock.now += 299_999;
    assert.deepEqual(await outbox.take(10, 60), []);
    clock.now += 1;
    const [again] = await outbox.take(10, 60);
    assert.ok(again);
    assert.equal(again.attempts, 2);
    await outbox.done(again);
    assert.deepEqual(await readdir(dir), []);
    clock.now += 86_400_000;
    assert.deepEqual(await outbox.take(10, 60), []);
  });

  it('a stale lease (the message was taken since) can neither remove nor reschedule it', async () => {
    const { outbox, clock } = fresh();
    const put = await outbox.put(message('alpha'), 60);
    clock.now += 60_000; // the first holder's hold ran out; a drain takes it
    const [taken] = await outbox.take(10, 60);
    assert.ok(taken);
    await outbox.done(put);
    await outbox.retryIn(put, 0);
    assert.deepEqual(await outbox.take(10, 60), [], 'still hidden under the new lease');
    clock.now += 60_000;
    const [still] = await outbox.take(10, 60);
    assert.equal(still?.id, put.id, 'not removed by the stale done');
  });

  it('done and retryIn on a message already gone do nothing, also when two finish at once', async () => {
    const { outbox, dir } = fresh();
    await outbox.put(message('alpha'), 0);
    const [taken] = await outbox.take(10, 60);
    assert.ok(taken);
    await Promise.all([outbox.done(taken), outbox.done(taken)]);
    assert.deepEqual(await readdir(dir), []);
    await outbox.done(taken);
    await outbox.retryIn(taken, 0);
    assert.deepEqual(await readdir(dir), [], 'retryIn does not bring it back');
  });

  it('reports a message file it cannot read, rather than skipping or losing it', async () => {
    const { outbox, dir } = fresh();
    await outbox.put(message('alpha'), 0);
    await writeFile(join(dir, 'broken.json'), '{not json');
    await assert.rejects(outbox.take(10, 60), SyntaxError);
    const { outbox: other, dir: otherDir } = fresh();
    await mkdir(join(otherDir, 'folder.json'), { recursive: true });
    await assert.rejects(other.take(10, 60), { code: 'EISDIR' });
  });
});
