// Room for an extra-scope token (shared/broker/extraScopes.ts): which extra tokens are dropped before the
// provider is asked for another one, and when the record has no room left at all.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { droppedCount, MAX_EXTRA_TOKENS, withRoomFor } from '../../../shared/broker/extraScopes.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { MAX_RECORD_BYTES } from '../../../shared/store/validate.ts';
import type { AccessTokenEntry, ConnectionRecord } from '../../../shared/store/types.ts';
import { activeRecord, HOUR, T0 } from './fixture.ts';

const KEY = 'https://outlook.office.com/.default';
const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

function entry(at: { issuedAt?: number; expiresAt: number }, size = 40): AccessTokenEntry {
  return { accessToken: 'x'.repeat(size), tokenType: 'Bearer', scope: 's', ...at };
}

function withExtra(extra: Record<string, AccessTokenEntry>, refreshToken = 'rt-seed'): ConnectionRecord {
  const r = activeRecord();
  return { ...r, tokens: { ...r.tokens!, refreshToken, extra } };
}

/** The room the module must leave for the token about to come: the largest entry stored (plus the key it will
 * be stored under), at least 4 KiB, plus 1 KiB for a longer rotated refresh token. */
function allowanceFor(record: ConnectionRecord, key: string): number {
  const entries = [record.tokens?.primary, ...Object.values(record.tokens?.extra ?? {})].filter(
    (e) => e !== undefined,
  );
  return Math.max(4096, ...entries.map((e) => bytes(e) + key.length)) + 1024;
}

/** A record whose refresh token is padded so its size plus the allowance is `MAX_RECORD_BYTES + over`. */
function sized(extra: Record<string, AccessTokenEntry>, over: number): ConnectionRecord {
  const base = withExtra(extra, '');
  const pad = MAX_RECORD_BYTES + over - allowanceFor(base, KEY) - bytes(base);
  assert.ok(pad > 0, 'test set-up: room to pad');
  const record = withExtra(extra, 'r'.repeat(pad));
  assert.equal(bytes(record) + allowanceFor(record, KEY), MAX_RECORD_BYTES + over);
  return record;
}

describe('withRoomFor', () => {
  it('a connection without tokens is returned unchanged', () => {
    const pending: ConnectionRecord = { ...activeRecord(), status: 'pending' };
    delete pending.tokens;
    assert.equal(withRoomFor(pending, KEY), pending);
  });

  it('keeps at most MAX_EXTRA_TOKENS - 1 others, dropping the least recently issued (not the soonest to expire)', () => {
    const extra: Record<string, AccessTokenEntry> = {};
    // Issued later expires sooner: ordering by expiry would drop the most recently used ones.
    // Stored in another order than they were used.
    for (const i of [5, 0, 8, 3, 1, 7, 2, 6, 4]) {
      extra[`scope-${i}`] = entry({ issuedAt: T0 + i, expiresAt: T0 + HOUR - i });
    }
    assert.equal(Object.keys(extra).length, MAX_EXTRA_TOKENS + 1);
    const next = withRoomFor(withExtra(extra), KEY);
    assert.deepEqual(Object.keys(next.tokens?.extra ?? {}).sort(), [
      'scope-2',
      'scope-3',
      'scope-4',
      'scope-5',
      'scope-6',
      'scope-7',
      'scope-8',
    ]);
    assert.equal(droppedCount(withExtra(extra), next), 2);
  });

  it('without an issue time the expiry orders the entries', () => {
    const extra: Record<string, AccessTokenEntry> = {};
    for (const i of [4, 6, 2, 7, 1, 3, 8, 0, 5]) extra[`scope-${i}`] = entry({ expiresAt: T0 + HOUR + i });
    const next = withRoomFor(withExtra(extra), KEY);
    assert.equal(Object.keys(next.tokens?.extra ?? {}).length, MAX_EXTRA_TOKENS - 1);
    assert.equal(next.tokens?.extra?.['scope-0'], undefined);
    assert.equal(next.tokens?.extra?.['scope-1'], undefined);
    assert.ok(next.tokens?.extra?.['scope-2']);
  });

  it('the token being refreshed keeps its place even when it is the oldest', () => {
    const extra: Record<string, AccessTokenEntry> = { [KEY]: entry({ issuedAt: T0 - HOUR, expiresAt: T0 }) };
    for (let i = 0; i < MAX_EXTRA_TOKENS; i++)
      extra[`scope-${i}`] = entry({ issuedAt: T0 + i, expiresAt: T0 + HOUR });
    const next = withRoomFor(withExtra(extra), KEY);
    const kept = next.tokens?.extra ?? {};
    assert.equal(Object.keys(kept).length, MAX_EXTRA_TOKENS);
    assert.deepEqual(kept[KEY], extra[KEY]);
    assert.equal(kept['scope-0'], undefined);
  });

  it('a record with no extra tokens gets no empty extra map; the current one alone is kept', () => {
    const plain = activeRecord();
    const next = withRoomFor(plain, KEY);
    assert.deepEqual(next, plain);
    assert.equal('extra' in (next.tokens ?? {}), false);
    const onlyCurrent = withExtra({ [KEY]: entry({ expiresAt: T0 }) });
    assert.deepEqual(withRoomFor(onlyCurrent, KEY).tokens?.extra, onlyCurrent.tokens?.extra);
  });

  it('a token set without a primary token is measured by its extra tokens alone', () => {
    const r = withExtra({ 'scope-a': entry({ expiresAt: T0 }) });
    delete r.tokens!.primary;
    const next = withRoomFor(r, KEY);
    assert.deepEqual(next.tokens?.extra, r.tokens?.extra);
    assert.equal(next.tokens?.primary, undefined);
  });

  it('a record that fits exactly with room for the largest token seen is kept whole', () => {
    const extra = {
      'scope-old': entry({ issuedAt: T0, expiresAt: T0 + HOUR }, 200),
      'scope-big': entry({ issuedAt: T0 + 1, expiresAt: T0 + HOUR }, 6000),
    };
    const record = sized(extra, 0);
    const next = withRoomFor(record, KEY);
    assert.deepEqual(Object.keys(next.tokens?.extra ?? {}).sort(), ['scope-big', 'scope-old']);
    assert.equal(droppedCount(record, next), 0);
  });

  it('one byte over drops the least recently used extra token and asks for nothing more', () => {
    const extra = {
      'scope-old': entry({ issuedAt: T0, expiresAt: T0 + HOUR }, 200),
      'scope-big': entry({ issuedAt: T0 + 1, expiresAt: T0 + HOUR }, 6000),
    };
    const record = sized(extra, 1);
    const next = withRoomFor(record, KEY);
    assert.deepEqual(Object.keys(next.tokens?.extra ?? {}), ['scope-big']);
    assert.equal(droppedCount(record, next), 1);
    // The caller's record is not touched.
    assert.deepEqual(Object.keys(record.tokens?.extra ?? {}).sort(), ['scope-big', 'scope-old']);
  });

  it('one byte over with nothing left to drop is record_too_large, naming the connection', () => {
    const record = sized({ [KEY]: entry({ expiresAt: T0 + HOUR }, 6000) }, 1);
    assert.throws(
      () => withRoomFor(record, KEY),
      (e: unknown) => {
        assert.ok(e instanceof BrokerError);
        assert.equal(e.code, 'record_too_large');
        assert.deepEqual(e.fields, { connection: 'sales-mailbox' });
        assert.equal(
          e.detail,
          `record ${bytes(record)} bytes + ${allowanceFor(record, KEY)} for the new token exceeds ${MAX_RECORD_BYTES}`,
        );
        return true;
      },
    );
    // Exactly at the limit it is still accepted.
    const fits = sized({ [KEY]: entry({ expiresAt: T0 + HOUR }, 6000) }, 0);
    assert.deepEqual(withRoomFor(fits, KEY).tokens?.extra, fits.tokens?.extra);
  });
});

describe('droppedCount', () => {
  const three = withExtra({
    a: entry({ expiresAt: T0 }),
    b: entry({ expiresAt: T0 }),
    c: entry({ expiresAt: T0 }),
  });
  const one = withExtra({ a: entry({ expiresAt: T0 }) });

  it('counts the extra tokens that are gone, never below zero', () => {
    assert.equal(droppedCount(three, one), 2);
    assert.equal(droppedCount(one, three), 0);
    assert.equal(droppedCount(three, activeRecord()), 3);
  });

  it('records without tokens count as holding none', () => {
    const none: ConnectionRecord = { ...activeRecord(), status: 'pending' };
    delete none.tokens;
    assert.equal(droppedCount(none, none), 0);
    assert.equal(droppedCount(three, none), 3);
    assert.equal(droppedCount(none, three), 0);
  });
});
