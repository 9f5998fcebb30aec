import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsedStates } from '../../../shared/broker/usedStates.ts';
import { BrokerError } from '../../../shared/errors.ts';

const replayed = (e: unknown) =>
  e instanceof BrokerError && e.code === 'invalid_state' && e.detail === 'state replayed';

describe('UsedStates', () => {
  it('accepts a state once and refuses the replay', () => {
    const used = new UsedStates();
    used.consume('s1', 100, 0);
    assert.throws(() => used.consume('s1', 100, 50), replayed);
    used.consume('s2', 100, 50);
  });

  it('when full, drops only expired entries: a live state stays refused', () => {
    const used = new UsedStates(2);
    used.consume('old', 10, 0);
    used.consume('live', 1_000, 0);
    used.consume('new', 1_000, 20);
    assert.equal(used.size, 2);
    assert.throws(() => used.consume('live', 1_000, 30), replayed);
    used.consume('old', 1_000, 30);
  });

  it('prunes only once full, and counts an entry expiring this instant as expired', () => {
    const used = new UsedStates(3);
    used.consume('a', 20, 0);
    used.consume('b', 1_000, 10);
    assert.equal(used.size, 2, 'not full yet: the expired entry waits');
    used.consume('c', 1_000, 25);
    assert.equal(used.size, 3);
    // Full at now = 1_000: 'b' and 'c' expire exactly now (a login cookie is expired from its exp on), 'a' before.
    used.consume('d', 2_000, 1_000);
    assert.equal(used.size, 1);
  });
});
