import assert from 'node:assert/strict';
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { jwtDecrypt, SignJWT } from 'jose';
import { keyIdOf } from '../../shared/config.ts';
import {
  Keyring,
  aesGcmDecrypt,
  aesGcmEncrypt,
  constantTimeEqual,
  decryptJwt,
  encryptJwt,
  randomToken,
  seal,
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

describe('crypto in detail', () => {
  const NOW = Date.UTC(2026, 10, 27, 12);

  it('refuses an empty key ring, and keeps a key per purpose and format', () => {
    assert.throws(() => new Keyring([]), /Keyring needs at least one key/);
    const k = mk();
    const ring = new Keyring([k, mk()]);
    const keys = (['connect-link', 'state-cookie', 'connect-consent'] as const).flatMap((purpose) =>
      (['v1', 'jose'] as const).map((format) => ring.current(purpose, format)),
    );
    assert.ok(keys.every((d) => d.kid === k.kid && d.key.length === 32 && !d.key.equals(k.key)));
    assert.equal(new Set(keys.map((d) => d.key.toString('hex'))).size, 6, 'six different derived keys');
    assert.equal(ring.current('connect-link').key, ring.current('connect-link', 'v1').key);
    assert.equal(ring.find('connect-link', k.kid, 'jose')?.key, ring.current('connect-link', 'jose').key);
    assert.equal(ring.find('connect-link', 'nope'), undefined);
  });

  it('derives the same keys from the same configured key (another instance reads what this one wrote)', () => {
    const k = mk();
    const t = signToken(new Keyring([k]), 'connect-consent', { a: 1 });
    assert.deepEqual(verifyToken(new Keyring([{ ...k, key: Buffer.from(k.key) }]), 'connect-consent', t), {
      a: 1,
    });
  });

  it('refuses a signed token with a wrong part count or an authentic body that is not JSON', () => {
    const ring = new Keyring([mk()]);
    const t = signToken(ring, 'connect-link', { c: 'a' });
    assert.equal(verifyToken(ring, 'connect-link', `${t}.x`), undefined);
    assert.equal(verifyToken(ring, 'connect-link', t.split('.').slice(0, 2).join('.')), undefined);
    const { kid, key } = ring.current('connect-link');
    const body = Buffer.from('{not json').toString('base64url');
    const mac = createHmac('sha256', key).update(`connect-link.${kid}.${body}`).digest('base64url');
    assert.equal(verifyToken(ring, 'connect-link', `${kid}.${body}.${mac}`), undefined);
  });

  it('refuses a sealed cookie with a wrong part count, unknown key, bad IV or non-JSON content', () => {
    const ring = new Keyring([mk()]);
    const sealed = seal(ring, 'state-cookie', { v: 1 }, 'aad');
    assert.deepEqual(unseal(ring, 'state-cookie', sealed, 'aad'), { v: 1 });
    assert.equal(unseal(ring, 'state-cookie', `${sealed}.x`, 'aad'), undefined);
    assert.equal(unseal(ring, 'state-cookie', sealed.split('.').slice(0, 3).join('.'), 'aad'), undefined);
    assert.equal(unseal(ring, 'connect-link', sealed, 'aad'), undefined, 'other purpose');
    const [kid, , ct, tag] = sealed.split('.') as [string, string, string, string];
    assert.equal(
      unseal(ring, 'state-cookie', `${kid}.${randomBytes(16).toString('base64url')}.${ct}.${tag}`, 'aad'),
      undefined,
    );
    const { key } = ring.current('state-cookie');
    const box = aesGcmEncrypt(key, 'not json', `${kid}|aad`);
    const raw = [kid, box.iv, box.data, box.tag]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
    assert.equal(unseal(ring, 'state-cookie', raw, 'aad'), undefined);
  });

  it('refuses an AES-GCM box whose IV is not 96 bits', () => {
    const key = randomBytes(32);
    const box = aesGcmEncrypt(key, Buffer.from('x'), 'a');
    assert.throws(
      () => aesGcmDecrypt(key, { ...box, iv: Buffer.concat([box.iv, Buffer.alloc(4)]) }, 'a'),
      /bad AES-GCM IV length/,
    );
    assert.notDeepEqual(aesGcmEncrypt(key, 'x', 'a').iv, aesGcmEncrypt(key, 'x', 'a').iv);
  });

  it('makes random tokens of the asked size, base64url', () => {
    assert.match(randomToken(), /^[A-Za-z0-9_-]{43}$/);
    assert.match(randomToken(16), /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(randomToken(), randomToken());
  });

  it('compares strings of the same length by content', () => {
    assert.equal(constantTimeEqual('', ''), true);
    assert.equal(constantTimeEqual('ab', 'ba'), false);
  });

  it('names the key and the purpose in the JWT header', async () => {
    const k = mk();
    const jws = await signJwt({ keyring: new Keyring([k]), purpose: 'connect-consent' }, {}, NOW + 1000);
    const header = JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >;
    assert.deepEqual(header, { alg: 'HS256', kid: k.kid, typ: 'token-broker-connect-consent+jwt' });
    const jwe = await encryptJwt({ keyring: new Keyring([k]), purpose: 'state-cookie' }, {}, NOW + 1000, 'a');
    const jweHeader = JSON.parse(Buffer.from(jwe.split('.')[0] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >;
    assert.deepEqual(jweHeader, {
      alg: 'dir',
      enc: 'A256GCM',
      kid: k.kid,
      typ: 'token-broker-state-cookie+jwt',
    });
  });

  it('reports an authentic expired token as expired, with its claims, from the exact expiry on', async () => {
    const use = { keyring: new Keyring([mk()]), purpose: 'connect-link' as const };
    const jws = await signJwt(use, { c: 'a' }, NOW + 1500);
    assert.deepEqual(await verifyJwt(use, jws, NOW + 1499), {
      payload: { c: 'a' },
      expiresAt: NOW + 1500,
      expired: false,
    });
    // Past the whole-second `exp` too: the payload is still authentic, so it is returned as expired.
    assert.deepEqual(await verifyJwt(use, jws, NOW + 5000), {
      payload: { c: 'a' },
      expiresAt: NOW + 1500,
      expired: true,
    });
    assert.equal((await verifyJwt(use, jws, NOW + 1500))?.expired, true);
  });

  it('falls back to the whole-second exp for a token without the exact expiry', async () => {
    const ring = new Keyring([mk()]);
    const { kid, key } = ring.current('connect-link', 'jose');
    const jws = await new SignJWT({ c: 'a' })
      .setProtectedHeader({ alg: 'HS256', kid, typ: 'token-broker-connect-link+jwt' })
      .setExpirationTime(NOW / 1000 + 60)
      .sign(key);
    assert.deepEqual(await verifyJwt({ keyring: ring, purpose: 'connect-link' }, jws, NOW), {
      payload: { c: 'a' },
      expiresAt: NOW + 60_000,
      expired: false,
    });
  });

  it('refuses tokens without exp, without kid, of another type, or signed with another algorithm', async () => {
    const ring = new Keyring([mk()]);
    const use = { keyring: ring, purpose: 'connect-link' as const };
    const { kid, key } = ring.current('connect-link', 'jose');
    const typ = 'token-broker-connect-link+jwt';
    const noExp = await new SignJWT({ c: 'a' }).setProtectedHeader({ alg: 'HS256', kid, typ }).sign(key);
    const noKid = await new SignJWT({ c: 'a' })
      .setProtectedHeader({ alg: 'HS256', typ })
      .setExpirationTime(NOW / 1000 + 60)
      .sign(key);
    const otherTyp = await new SignJWT({ c: 'a' })
      .setProtectedHeader({ alg: 'HS256', kid, typ: 'JWT' })
      .setExpirationTime(NOW / 1000 + 60)
      .sign(key);
    const hs512 = await new SignJWT({ c: 'a' })
      .setProtectedHeader({ alg: 'HS512', kid, typ })
      .setExpirationTime(NOW / 1000 + 60)
      .sign(key);
    for (const token of [noExp, noKid, otherTyp, hs512])
      assert.equal(await verifyJwt(use, token, NOW), undefined);
  });
});

describe('key derivation and expiry claims', () => {
  const NOW = Date.UTC(2026, 10, 27, 12);
  it("derives each format's keys with its own HKDF label, so links issued before an upgrade still verify", () => {
    const k = mk();
    const ring = new Keyring([k]);
    const derive = (label: string) => Buffer.from(hkdfSync('sha256', k.key, Buffer.alloc(0), label, 32));
    for (const purpose of ['connect-link', 'state-cookie', 'connect-consent'] as const) {
      assert.ok(ring.current(purpose).key.equals(derive(`token-broker/${purpose}/v1`)), purpose);
      assert.ok(ring.current(purpose, 'jose').key.equals(derive(`token-broker/${purpose}/jose`)), purpose);
    }
  });

  it("rounds the encrypted cookie's standard exp up to the next second", async () => {
    const ring = new Keyring([mk()]);
    const jwe = await encryptJwt({ keyring: ring, purpose: 'state-cookie' }, {}, NOW + 1500, 'aud');
    const { payload } = await jwtDecrypt(jwe, ring.current('state-cookie', 'jose').key, {
      currentDate: new Date(NOW),
    });
    assert.equal(payload.exp, NOW / 1000 + 2);
    assert.equal(payload.exp_ms, NOW + 1500);
  });
});
