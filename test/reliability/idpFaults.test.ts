import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { TokenFault } from '../../tools/demo-idp/server.ts';
import { failure, HTTP_TIMEOUT_MS, type ReliabilityHarness, startReliabilityHarness } from './harness.ts';

// The IdP fault matrix: every token-endpoint failure a provider (or the network in between) produces, on each
// path that calls the token endpoint — the timer sweep, the token endpoint's refresh-on-read, and the callback's
// code redemption. Microsoft's guidance (the resilience pages below): no fast retry loop, first retry after a
// 5xx or timeout ≥ 5 s, honour Retry-After on 429. So every case expects exactly ONE request at the IdP, a
// backoff of at least the documented 5 s floor (or the Retry-After, when longer), and an intact refresh token.
// https://learn.microsoft.com/en-us/entra/architecture/resilience-client-app

interface IdpCase {
  name: string;
  fault: Omit<TokenFault, 'grantType' | 'count'>;
  /** Lower bound the broker must keep before trying again (Retry-After), in seconds. */
  retryAfter?: number;
  /** What the caller of the callback sees: transient → 503, a 2xx that is not a token response → 502. */
  protocol?: boolean;
}

const CASES: IdpCase[] = [
  { name: '500', fault: { status: 500 } },
  { name: '503', fault: { status: 503 } },
  { name: '429 with Retry-After', fault: { status: 429, retryAfterSeconds: 120 }, retryAfter: 120 },
  { name: '429 without Retry-After', fault: { status: 429 } },
  { name: 'slow past BROKER_HTTP_TIMEOUT_MS', fault: { delayMs: HTTP_TIMEOUT_MS + 500, status: 503 } },
  { name: 'connection reset', fault: { reset: true } },
  { name: 'HTML error page instead of JSON', fault: { status: 503, body: 'html' } },
  { name: 'HTML with 200 instead of a token response', fault: { status: 200, body: 'html' }, protocol: true },
];

/** Microsoft's documented floor for the first retry — not a number copied from our code. */
const MIN_BACKOFF_MS = 5_000;
const caller = { kind: 'function_key' as const };
let h: ReliabilityHarness;
let n = 0;

before(async () => {
  h = await startReliabilityHarness();
});
after(async () => {
  // Close first, assert after: a failed scan must not leave the demo IdP running until the runner's timeout.
  const logs = h.logs.join('\n');
  await h.close();
  h.secrets.assertAbsent(logs, 'broker and store logs');
});
beforeEach(() => {
  // Every case starts from an empty vault and a real clock, with one fresh connection of its own.
  h.kv.reset();
  h.calm();
  h.clock.now = Date.now();
});

async function freshConnection(): Promise<string> {
  const name = `idp-${++n}`;
  await h.connect(name);
  h.calm();
  return name;
}

/** The connection is active with one counted failure and a backoff that honours the fault's Retry-After. */
async function assertBackingOff(name: string, c: IdpCase, refreshTokenBefore: string | undefined) {
  const r = await h.record(name);
  assert.equal(r.status, 'active');
  assert.equal(r.failures, 1);
  assert.equal(r.tokens?.refreshToken, refreshTokenBefore, 'the stored refresh token is untouched');
  assert.equal(r.lastError?.code, c.protocol ? 'provider_error' : 'provider_unavailable');
  const wait = (r.nextAttemptAt ?? 0) - h.clock.now;
  assert.ok(wait >= Math.max(MIN_BACKOFF_MS, (c.retryAfter ?? 0) * 1000), `backoff ${wait} ms`);
  return r;
}

/** After the faults are gone (and the backoff has passed), the stored refresh token still refreshes. */
async function assertRefreshTokenWorks(name: string) {
  h.calm();
  const before = await h.record(name);
  if (before.nextAttemptAt) h.clock.now = before.nextAttemptAt + 1;
  await h.broker.forceRefresh(name);
  const r = await h.record(name);
  assert.equal(h.idp.stats.refreshGrants, 1);
  assert.equal(r.status, 'active');
  assert.equal(r.failures, 0);
  assert.notEqual(r.tokens?.refreshToken, before.tokens?.refreshToken, 'rotated');
}

for (const c of CASES) {
  void describe(`IdP: ${c.name}`, () => {
    void it('timer sweep: one attempt, counted failure with backoff, skipped while backing off, then recovers', async () => {
      const name = await freshConnection();
      await h.makeDue(name, false);
      const before = await h.record(name);
      h.idp.injectTokenFault({ ...c.fault, grantType: 'refresh_token' });
      const result = await h.broker.refreshDue();
      assert.deepEqual(result, { listed: 1, due: 1, refreshed: 0, failed: 1, skipped: 0 });
      assert.equal(h.idp.stats.refreshGrants, 1, 'no inline retry');
      assert.equal(h.idp.tokenLog.at(-1)?.faulted, true);
      const failed = await assertBackingOff(name, c, before.tokens?.refreshToken);
      assert.equal(failed.revision, before.revision + 1);
      // The next sweep (5 min later at most) respects the backoff: nothing is sent.
      const again = await h.broker.refreshDue();
      assert.equal(again.due, 0);
      assert.equal(h.idp.stats.refreshGrants, 1);
      // Past the backoff, with the IdP healthy, the sweep refreshes and clears the failure.
      h.calm();
      h.clock.now = (failed.nextAttemptAt ?? 0) + 1;
      const healed = await h.broker.refreshDue();
      assert.equal(healed.refreshed, 1);
      const r = await h.record(name);
      assert.equal(r.failures, 0);
      assert.equal(r.nextAttemptAt, undefined);
      assert.notEqual(r.tokens?.refreshToken, before.tokens?.refreshToken);
      await assertRefreshTokenWorks(name);
    });

    void it('token path, access token still valid: the cached token is served, the failure recorded', async () => {
      const name = await freshConnection();
      await h.makeDue(name, false);
      const before = await h.record(name);
      h.idp.injectTokenFault({ ...c.fault, grantType: 'refresh_token' });
      const served = await h.broker.getAccessToken(name, caller);
      assert.equal(served.access_token, before.tokens?.primary?.accessToken);
      assert.equal(h.idp.stats.refreshGrants, 1);
      await assertBackingOff(name, c, before.tokens?.refreshToken);
      await assertRefreshTokenWorks(name);
    });

    void it('token path, access token expired: 503 provider_unavailable with Retry-After, no retry storm', async () => {
      const name = await freshConnection();
      await h.makeDue(name, true);
      const before = await h.record(name);
      h.idp.injectTokenFault({ ...c.fault, grantType: 'refresh_token' });
      const answer = await failure(() => h.broker.getAccessToken(name, caller));
      assert.equal(answer.status, 503);
      assert.equal(answer.code, 'provider_unavailable');
      assert.ok(
        (answer.retryAfter ?? 0) >= Math.max(MIN_BACKOFF_MS / 1000, c.retryAfter ?? 0),
        `Retry-After ${answer.retryAfter}`,
      );
      assert.equal(h.idp.stats.refreshGrants, 1);
      await assertBackingOff(name, c, before.tokens?.refreshToken);
      // A caller retrying at once gets the same answer from the backoff, without another IdP request.
      const again = await failure(() => h.broker.getAccessToken(name, caller));
      assert.deepEqual([again.status, again.code], [503, 'provider_unavailable']);
      assert.ok((again.retryAfter ?? 0) >= 1);
      assert.equal(h.idp.stats.refreshGrants, 1);
      // Past the backoff the token path refreshes by itself.
      h.calm();
      h.clock.now = ((await h.record(name)).nextAttemptAt ?? 0) + 1;
      const token = await h.broker.getAccessToken(name, caller);
      assert.notEqual(token.access_token, before.tokens?.primary?.accessToken);
      assert.equal(h.idp.stats.refreshGrants, 1);
      await assertRefreshTokenWorks(name);
    });

    void it('callback (code redemption): the single-use code is sent once, the connection is unharmed', async () => {
      const name = await freshConnection();
      const before = await h.record(name);
      // Someone re-connects an already connected account, and the IdP fails the code redemption.
      const { params, cookie } = await h.beginConnect(name);
      h.calm();
      h.idp.injectTokenFault({ ...c.fault, grantType: 'authorization_code' });
      const answer = await failure(() => h.broker.completeCallback(params, cookie));
      if (c.protocol) {
        assert.deepEqual([answer.status, answer.code], [502, 'provider_error']);
      } else {
        assert.deepEqual([answer.status, answer.code], [503, 'provider_unavailable']);
        assert.ok((answer.retryAfter ?? 0) >= Math.max(1, c.retryAfter ?? 0));
      }
      assert.equal(h.idp.stats.authorizationCodeGrants, 1, 'a code is never retried');
      const r = await h.record(name);
      assert.equal(r.revision, before.revision, 'nothing written');
      assert.equal(r.status, 'active');
      assert.equal(r.tokens?.refreshToken, before.tokens?.refreshToken);
      await assertRefreshTokenWorks(name);
      // The person simply starts again: a new link and sign-in work.
      const retry = await h.beginConnect(name);
      await h.broker.completeCallback(retry.params, retry.cookie);
      assert.equal((await h.record(name)).status, 'active');
    });
  });
}
