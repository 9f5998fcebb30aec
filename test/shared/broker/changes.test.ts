import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { announce, type ChangeListener } from '../../../shared/broker/changes.ts';
import type { ConnectionRecord } from '../../../shared/store/types.ts';
import { activeRecord, harness } from './fixture.ts';

const before = activeRecord();
const after = activeRecord({ revision: 2 });

function withListener(listener?: ChangeListener) {
  return harness(listener ? { onChange: listener } : {});
}

describe('announce', () => {
  it('tells the listener the record before and after the change', async () => {
    const heard: [ConnectionRecord | undefined, ConnectionRecord | undefined][] = [];
    const h = withListener((b, a) => {
      heard.push([b, a]);
      return Promise.resolve();
    });
    await announce(h.ctx, before, after);
    await announce(h.ctx, after, undefined);
    assert.deepEqual(heard, [
      [before, after],
      [after, undefined],
    ]);
    assert.deepEqual(h.logs, []);
  });

  it('without a listener: nothing is told and nothing is logged', async () => {
    const h = withListener();
    await announce(h.ctx, before, after);
    assert.deepEqual(h.logs, []);
  });

  it('waits for the listener before it returns', async () => {
    let finished = false;
    const h = withListener(async () => {
      await Promise.resolve();
      finished = true;
    });
    await announce(h.ctx, before, after);
    assert.equal(finished, true);
  });

  it('a failing listener never fails the change: one error line names the connection and the error type', async () => {
    const h = withListener(() => Promise.reject(new TypeError('webhook down: secret-ish detail')));
    await announce(h.ctx, before, after);
    assert.equal(h.logs.length, 1);
    assert.match(h.logs[0] ?? '', /^notify\.listener_failed /);
    assert.match(h.logs[0] ?? '', / connection=sales-mailbox/);
    assert.match(h.logs[0] ?? '', / reason=TypeError/);
    assert.ok(!(h.logs[0] ?? '').includes('secret-ish'), 'the message is not logged');
  });

  it('after a delete the error line names the deleted connection; a thrown non-error is told as such', async () => {
    // A listener written in plain JavaScript may reject with anything.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    const h = withListener(() => Promise.reject('plain string'));
    await announce(h.ctx, { ...before, connection: 'gone-mailbox' }, undefined);
    assert.match(h.logs[0] ?? '', / connection=gone-mailbox/);
    assert.match(h.logs[0] ?? '', / reason=non-error/);
  });

  it('after a create the error line names the new connection', async () => {
    const h = withListener(() => Promise.reject(new Error('x')));
    await announce(h.ctx, undefined, { ...after, connection: 'new-mailbox' });
    assert.match(h.logs[0] ?? '', / connection=new-mailbox/);
    assert.match(h.logs[0] ?? '', / reason=Error/);
  });

  it('a failing listener told of no record at all still never throws: the line names no connection', async () => {
    const h = withListener(() => Promise.reject(new Error('x')));
    await announce(h.ctx, undefined, undefined);
    assert.deepEqual(h.logs, ['notify.listener_failed reason=Error']);
  });

  it('when both records exist the line names the record after the change', async () => {
    const h = withListener(() => Promise.reject(new Error('x')));
    await announce(h.ctx, { ...before, connection: 'old-name' }, { ...after, connection: 'new-name' });
    assert.match(h.logs[0] ?? '', / connection=new-name/);
  });
});
