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

describe('retryAfterMs in detail', () => {
  it('trims the millisecond headers and skips empty or partly numeric ones', () => {
    assert.equal(retryAfterMs(headers({ 'retry-after-ms': ' 40 ' }), NOW), 40);
    assert.equal(retryAfterMs(headers({ 'retry-after-ms': '', 'x-ms-retry-after-ms': '5' }), NOW), 5);
    assert.equal(retryAfterMs(headers({ 'retry-after-ms': '5s' }), NOW), undefined);
    assert.equal(retryAfterMs(headers({ 'retry-after-ms': '0' }), NOW), 0);
    assert.equal(retryAfterMs(headers({ 'retry-after': '0' }), NOW), 0);
  });

  it('refuses partly numeric delays and blank values', () => {
    assert.equal(retryAfterMs(headers({ 'retry-after': '10s' }), NOW), undefined);
    assert.equal(retryAfterMs(headers({ 'retry-after': ' ' }), NOW), undefined);
    assert.equal(retryAfterMs(headers({ 'retry-after': '2026' }), NOW), 2_026_000);
  });

  it('measures an HTTP-date from the clock it is given (default: now)', () => {
    const at = new Date(NOW + 60_000).toUTCString();
    assert.equal(retryAfterMs(headers({ 'retry-after': at }), NOW + 30_000), 30_000);
    const later = retryAfterMs(headers({ 'retry-after': new Date(Date.now() + 3_600_000).toUTCString() }));
    assert.ok(later !== undefined && later > 3_500_000 && later <= 3_600_000, String(later));
  });
});

describe('retryAfterMs: millisecond headers', () => {
  it('ignores a millisecond value with anything before the digits', () => {
    assert.equal(retryAfterMs(headers({ 'retry-after-ms': 'x5', 'retry-after': '2' }), NOW), 2000);
  });
});
