import assert from 'node:assert/strict';
import { it } from 'node:test';

it('turns on HTTP streams in the functions library when loaded', async (t) => {
  // The library reports the mode through its system log, which is console.debug outside the host.
  const debug = t.mock.method(console, 'debug', () => undefined);
  const { HTTP_STREAMS } = await import('../../shared/httpStreams.ts');
  assert.equal(HTTP_STREAMS, true);
  assert.deepEqual(
    debug.mock.calls.map((c) => c.arguments),
    [['HTTP streaming enabled.']],
  );
});
