import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryAfterMs } from '../../shared/retryAfter.ts';

const headers = (h: Record<string, string>) => (name: string) => h[name];
const NOW = Date.UTC(2026, 10, 27, 12);

describe('retryAfterMs', () => {
  it('reads delay-seconds and HTTP-dates (RFC 9110), never negative', () => {
    assert.equal(retryAfterMs(headers({ 'retry-after': ' 30 ' }), NOW), 30_000);
    assert.equal(retryAfterMs(headers({ 'retry-after': new Date(NOW + 90_000).toUTCString() }), NOW), 90_000);
    assert.equal(retryAfterMs(headers({ 'retry-after': new Date(NOW - 5_000).toUTCString() }), NOW), 0);
  });

  it('prefers the Azure millisecond headers', () => {
    assert.equal(retryAfterMs(headers({ 'retry-after-ms': '250', 'retry-after': '30' }), NOW), 250);
    assert.equal(retryAfterMs(headers({ 'x-ms-retry-after-ms': '1500' }), NOW), 1500);
  });

  it('ignores what it cannot read', () => {
    assert.equal(retryAfterMs(headers({}), NOW), undefined);
    assert.equal(retryAfterMs(headers({ 'retry-after': 'soon' }), NOW), undefined);
    assert.equal(retryAfterMs(headers({ 'retry-after': '-3' }), NOW), undefined);
    assert.equal(retryAfterMs(headers({ 'retry-after-ms': 'x', 'retry-after': '2' }), NOW), 2000);
  });
});
