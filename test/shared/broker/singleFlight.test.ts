import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SingleFlight } from '../../../shared/broker/singleFlight.ts';
import { barrier } from './fixture.ts';

describe('SingleFlight', () => {
  it('runs one call per key while it is in flight and shares its result', async () => {
    const flights = new SingleFlight();
    const gate = barrier();
    let runs = 0;
    const fn = async () => {
      runs++;
      await gate.promise;
      return runs;
    };
    const calls = Array.from({ length: 5 }, () => flights.run('a', fn));
    const other = flights.run('b', fn);
    assert.equal(flights.size, 2);
    gate.open();
    assert.deepEqual(await Promise.all(calls), [2, 2, 2, 2, 2]);
    assert.equal(await other, 2);
    assert.equal(runs, 2);
    assert.equal(flights.size, 0);
  });

  it('forgets a settled call, rejected ones included, so the next call runs again', async () => {
    const flights = new SingleFlight();
    await assert.rejects(
      flights.run('a', () => Promise.reject(new Error('first'))),
      /first/,
    );
    assert.equal(await flights.run('a', () => Promise.resolve('second')), 'second');
    assert.equal(flights.size, 0);
  });
});
