import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { keyIdOf } from '../../shared/config.ts';
import {
  Keyring,
  aesGcmDecrypt,
  aesGcmEncrypt,
  constantTimeEqual,
  decryptJwt,
  encryptJwt,
  signJwt,
  signToken,
  unseal,
  verifyJwt,
  verifyToken,
} from '../../shared/crypto.ts';
import { legacyLoginCookie } from './legacyFormats.ts';

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

describe('JOSE links (JWS HS256) and cookies (JWE dir + A256GCM)', () => {
  const NOW = Date.UTC(2026, 10, 27, 12);
  it('a signed JWT verifies until exp, after rotation under the old key, and not once the key is gone', async () => {
    const k1 = mk();
    const k2 = mk();
    const jws = await signJwt(
      { keyring: new Keyring([k1]), purpose: 'connect-link' },
      { c: 'a' },
      NOW + 60_000,
    );
    assert.equal(
      (JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString()) as { alg: string }).alg,
      'HS256',
    );
    assert.deepEqual(await verifyJwt({ keyring: new Keyring([k2, k1]), purpose: 'connect-link' }, jws, NOW), {
      payload: { c: 'a' },
      expiresAt: NOW + 60_000,
      expired: false,
    });
    assert.equal(
      (await verifyJwt({ keyring: new Keyring([k2, k1]), purpose: 'connect-link' }, jws, NOW + 60_000))
        ?.expired,
      true,
    );
    // The standard `exp` (whole seconds) is rounded up, so other validators never cut a token short.
    const odd = await signJwt({ keyring: new Keyring([k1]), purpose: 'connect-link' }, {}, NOW + 1500);
    const claims = JSON.parse(Buffer.from(odd.split('.')[1] ?? '', 'base64url').toString()) as {
      exp: number;
    };
    assert.equal(claims.exp, NOW / 1000 + 2);
    assert.equal(
      await verifyJwt({ keyring: new Keyring([k2]), purpose: 'connect-link' }, jws, NOW),
      undefined,
    );
    assert.equal(
      await verifyJwt({ keyring: new Keyring([k1]), purpose: 'state-cookie' }, jws, NOW),
      undefined,
      'other purpose',
    );
    const [h, p, sig] = jws.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ c: 'b', exp: NOW / 1000 + 60 })).toString('base64url');
    assert.equal(
      await verifyJwt({ keyring: new Keyring([k1]), purpose: 'connect-link' }, `${h}.${forged}.${sig}`, NOW),
      undefined,
    );
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    assert.equal(
      await verifyJwt({ keyring: new Keyring([k1]), purpose: 'connect-link' }, `${none}.${p}.`, NOW),
      undefined,
    );
  });

  it('an encrypted JWT hides its content, binds to its audience, and opens after rotation', async () => {
    const k1 = mk();
    const jwe = await encryptJwt(
      { keyring: new Keyring([k1]), purpose: 'state-cookie' },
      { v: 'verifier-value' },
      NOW + 600_000,
      'cookie-a',
    );
    assert.equal(jwe.split('.').length, 5);
    assert.ok(
      !jwe.includes('verifier') && !Buffer.from(jwe.replaceAll('.', ''), 'base64url').includes('verifier'),
    );
    const ring = new Keyring([mk(), k1]);
    assert.equal(
      (await decryptJwt({ keyring: ring, purpose: 'state-cookie' }, jwe, NOW, 'cookie-a'))?.payload.v,
      'verifier-value',
    );
    assert.equal(
      await decryptJwt({ keyring: ring, purpose: 'state-cookie' }, jwe, NOW, 'cookie-b'),
      undefined,
    );
    assert.equal(
      await decryptJwt({ keyring: new Keyring([mk()]), purpose: 'state-cookie' }, jwe, NOW, 'cookie-a'),
      undefined,
    );
    assert.equal(
      (await decryptJwt({ keyring: ring, purpose: 'state-cookie' }, jwe, NOW + 600_000, 'cookie-a'))?.expired,
      true,
    );
  });

  it('still reads a cookie in the format used before jose, while its key is listed', () => {
    const k1 = mk();
    const sealed = legacyLoginCookie(new Keyring([k1]), { v: 'verifier-value' }, 'cookie-a');
    assert.deepEqual(unseal(new Keyring([mk(), k1]), 'state-cookie', sealed, 'cookie-a'), {
      v: 'verifier-value',
    });
    assert.equal(unseal(new Keyring([k1]), 'state-cookie', sealed, 'cookie-b'), undefined);
    assert.equal(unseal(new Keyring([mk()]), 'state-cookie', sealed, 'cookie-a'), undefined);
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
