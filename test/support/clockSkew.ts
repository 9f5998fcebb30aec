/**
 * Test-only preload (`NODE_OPTIONS=--import <this file>`): moves this process's `Date.now()` forward by
 * TEST_CLOCK_SKEW_MS. A controllable clock for one instance of a multi-process test: the sweep instance can see a
 * token as expired while the HTTP instances, on the real clock, still hold it as fresh.
 */
const skew = Number(process.env.TEST_CLOCK_SKEW_MS ?? '0');
if (Number.isFinite(skew) && skew !== 0) {
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + skew;
}
