import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAuthorized, keysEqual, normalizeAuthLevel, presentedKey } from '../../../tools/devhost/keys.ts';

void describe('function keys', () => {
  void it('takes the header when present (even if wrong), else the first ?code=', () => {
    assert.equal(presentedKey({ 'x-functions-key': 'h' }, '?code=q'), 'h');
    assert.equal(presentedKey({ 'x-functions-key': '' }, '?code=q'), '');
    assert.equal(presentedKey({}, '?a=1&code=q%2B1&code=second'), 'q+1');
    assert.equal(presentedKey({}, '?CODE=upper'), 'upper');
    assert.equal(presentedKey({}, '?a=1'), undefined);
    assert.equal(presentedKey({}, ''), undefined);
  });

  void it('compares keys exactly', () => {
    assert.equal(keysEqual('k1', 'k1'), true);
    assert.equal(keysEqual('k1', 'k2'), false);
    assert.equal(keysEqual('k1-longer', 'k1'), false);
    assert.equal(keysEqual(undefined, 'k1'), false);
  });

  void it('enforces function/admin levels only when a key is configured', () => {
    assert.equal(isAuthorized('anonymous', 'k', {}, ''), true);
    assert.equal(isAuthorized('function', 'k', {}, ''), false);
    assert.equal(isAuthorized('function', 'k', {}, '?code=k'), true);
    assert.equal(isAuthorized('admin', 'k', { 'x-functions-key': 'k' }, ''), true);
    assert.equal(isAuthorized('function', 'k', { 'x-functions-key': 'bad' }, '?code=k'), false);
    assert.equal(isAuthorized('admin', undefined, {}, ''), true);
  });

  void it('normalises authLevel values', () => {
    assert.equal(normalizeAuthLevel(undefined), 'anonymous');
    assert.equal(normalizeAuthLevel('Function'), 'function');
    assert.throws(() => normalizeAuthLevel('system'));
  });
});
