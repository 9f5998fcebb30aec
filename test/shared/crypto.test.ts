import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { keyIdOf } from '../../shared/config.ts';
import {
  Keyring,
  aesGcmDecrypt,
  aesGcmEncrypt,
  constantTimeEqual,
  seal,
  signToken,
  unseal,
  verifyToken,
} from '../../shared/crypto.ts';

const mk = () => {
  const key = randomBytes(32);
  return { kid: keyIdOf(key), key };
};

describe('signed tokens (connect links)', () => {
  const k1 = mk();
  const k2 = mk();
  it('verifies under the signing key and, after rotation, under the old key', () => {
    const t = signToken(new Keyring([k1]), 'connect-link', { c: 'a', exp: 1 });
    assert.deepEqual(verifyToken(new Keyring([k1]), 'connect-link', t), { c: 'a', exp: 1 });
    assert.deepEqual(verifyToken(new Keyring([k2, k1]), 'connect-link', t), { c: 'a', exp: 1 });
    assert.equal(verifyToken(new Keyring([k2]), 'connect-link', t), undefined);
  });
  it('rejects tampering and use for another purpose', () => {
    const ring = new Keyring([k1]);
    const t = signToken(ring, 'connect-link', { c: 'a' });
    const [kid, body, mac] = t.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ c: 'b' })).toString('base64url');
    assert.equal(verifyToken(ring, 'connect-link', `${kid}.${forged}.${mac}`), undefined);
    assert.equal(verifyToken(ring, 'connect-link', `${kid}.${body}.${mac.slice(0, -2)}AA`), undefined);
    assert.equal(verifyToken(ring, 'state-cookie', t), undefined);
    assert.equal(verifyToken(ring, 'connect-link', 'garbage'), undefined);
  });
});

describe('sealed state', () => {
  it('round-trips, hides its content, and binds to the AAD', () => {
    const ring = new Keyring([mk()]);
    const sealed = seal(ring, 'state-cookie', { v: 'verifier-value' }, 'cookie-a');
    assert.ok(!sealed.includes('verifier'));
    assert.ok(
      !Buffer.from(sealed.split('.')[2] ?? '', 'base64url')
        .toString()
        .includes('verifier'),
    );
    assert.deepEqual(unseal(ring, 'state-cookie', sealed, 'cookie-a'), { v: 'verifier-value' });
    assert.equal(unseal(ring, 'state-cookie', sealed, 'cookie-b'), undefined);
    assert.equal(unseal(new Keyring([mk()]), 'state-cookie', sealed, 'cookie-a'), undefined);
    const parts = sealed.split('.');
    parts[2] = Buffer.from('x').toString('base64url');
    assert.equal(unseal(ring, 'state-cookie', parts.join('.'), 'cookie-a'), undefined);
  });
  it('compares strings in constant time semantics (equal only when identical)', () => {
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abd'), false);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
  });
});

describe('AES-256-GCM boxes (state cookie, file store)', () => {
  const key = randomBytes(32);
  it('round-trips and binds to the additional data', () => {
    const box = aesGcmEncrypt(key, 'refresh-token-value', 'conn-a');
    assert.equal(box.iv.length, 12);
    assert.equal(box.tag.length, 16);
    assert.equal(aesGcmDecrypt(key, box, 'conn-a').toString(), 'refresh-token-value');
    assert.throws(() => aesGcmDecrypt(key, box, 'conn-b'));
  });
  it('refuses a truncated tag, which GCM would otherwise verify as a shorter (forgeable) tag', () => {
    const box = aesGcmEncrypt(key, 'refresh-token-value', 'conn-a');
    for (const length of [4, 8, 12, 15])
      assert.throws(() => aesGcmDecrypt(key, { ...box, tag: box.tag.subarray(0, length) }, 'conn-a'));
  });
});
