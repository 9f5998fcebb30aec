import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccessTokens } from '../../../shared/broker/accessTokens.ts';
import { isIdle, sweepDecision } from '../../../shared/broker/idle.ts';
import { Refresher } from '../../../shared/broker/refresher.ts';
import { sweep } from '../../../shared/broker/sweep.ts';
import { toMetadata } from '../../../shared/store/types.ts';
import { activeRecord, HOUR, harness, T0 } from './fixture.ts';

const DAY = 24 * HOUR;
const policy = { marginMs: 5 * 60_000, keepAliveMs: 7 * DAY, idleAfterMs: DAY };

describe('idle connections: kept alive, not refreshed ahead', () => {
  it('a due connection read within the idle bound is refreshed; one unread for longer is not', () => {
    const due = toMetadata(activeRecord({ refreshedAt: T0 - HOUR, readAt: T0 - DAY + 1 }, 0));
    assert.deepEqual(sweepDecision(due, T0, policy), { refresh: true, reason: 'expired' });
    const idle = { ...due, readAt: T0 - DAY };
    assert.equal(isIdle(idle, T0, policy), true);
    assert.deepEqual(sweepDecision(idle, T0, policy), { refresh: false, reason: 'idle' });
  });

  it('an idle connection is still kept alive once its last refresh is older than the keep-alive period', () => {
    const idle = toMetadata(activeRecord({ refreshedAt: T0 - 7 * DAY, readAt: T0 - 30 * DAY }, 0));
    assert.deepEqual(sweepDecision(idle, T0, policy), { refresh: true, reason: 'keep_alive' });
  });

  it('only a due refresh is held back: a fresh, backed-off or signed-out idle connection keeps its own reason', () => {
    const unread = { refreshedAt: T0 - 8 * DAY, readAt: T0 - 30 * DAY };
    // shouldRefresh says keep_alive already (refreshed 8 days ago) for an active record; for these it does not.
    const fresh = toMetadata(activeRecord({ ...unread, refreshedAt: T0 - HOUR }, 3 * HOUR));
    assert.deepEqual(sweepDecision(fresh, T0, policy), { refresh: false, reason: 'fresh' });
    const signedOut = toMetadata(activeRecord({ ...unread, status: 'needs_reauth' }, 0));
    assert.deepEqual(sweepDecision(signedOut, T0, policy), { refresh: false, reason: 'needs_reauth' });
    const backedOff = toMetadata(activeRecord({ ...unread, nextAttemptAt: T0 + 1 }, 0));
    assert.deepEqual(sweepDecision(backedOff, T0, policy), { refresh: false, reason: 'backoff' });
  });

  it('an idle connection without a refresh time is kept alive (its refresh token may be close to lapsing)', () => {
    const idle = toMetadata(activeRecord({ readAt: T0 - 30 * DAY }, 0));
    delete idle.refreshedAt;
    assert.deepEqual(sweepDecision(idle, T0, policy), { refresh: true, reason: 'keep_alive' });
  });

  it('without a read time (records from before) or with the bound at 0, nothing changes', () => {
    const legacy = toMetadata(activeRecord({ refreshedAt: T0 - HOUR }, 0));
    assert.deepEqual(sweepDecision(legacy, T0, policy), { refresh: true, reason: 'expired' });
    const old = toMetadata(activeRecord({ refreshedAt: T0 - HOUR, readAt: T0 - 90 * DAY }, 0));
    assert.deepEqual(sweepDecision(old, T0, { ...policy, idleAfterMs: 0 }), {
      refresh: true,
      reason: 'expired',
    });
  });

  it('reads are written with the next refresh; the sweep then skips the unread connection only', async () => {
    const h = harness({ policy });
    const refresher = new Refresher(h.ctx);
    const tokens = new AccessTokens(h.ctx, refresher);
    // Both last read three days ago; access tokens fresh for another hour.
    await h.store.put(activeRecord({ connection: 'read-often', readAt: T0 - 3 * DAY }, HOUR));
    await h.store.put(activeRecord({ connection: 'never-read', readAt: T0 - 3 * DAY }, HOUR));
    // One is read now: its token is fresh, so it is served and nothing is written.
    const puts = h.store.puts;
    await tokens.get('read-often', { kind: 'function_key' });
    assert.equal(h.store.puts, puts, 'a read writes nothing');
    // Two hours later both tokens have expired; only the connection read within a day is refreshed ahead,
    // and the read is written with that refresh.
    h.clock.now = T0 + 2 * HOUR;
    const result = await sweep(h.ctx, refresher);
    assert.deepEqual([result.listed, result.due, result.refreshed], [2, 1, 1]);
    assert.equal(h.provider.calls.length, 1);
    assert.equal(h.store.records.get('read-often')?.readAt, T0);
    assert.equal(h.store.records.get('never-read')?.revision, 1, 'not refreshed, not written');
    // The idle one still serves: its next read refreshes on demand and records the read.
    const token = await tokens.get('never-read', { kind: 'function_key' });
    assert.equal(h.store.records.get('never-read')?.tokens?.primary?.accessToken, token.access_token);
    assert.equal(h.store.records.get('never-read')?.readAt, T0 + 2 * HOUR);
  });
});
