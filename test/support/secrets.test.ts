import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { PIECE, SecretScanner } from './secrets.ts';

// The scanner is the oracle of every log scan: it must find what a truncating or splitting logger leaves.
describe('SecretScanner', () => {
  const longToken = `eyJhbGciOiJSUzI1NiJ9.eyJ${randomBytes(860).toString('base64url')}.${randomBytes(256).toString('base64url')}`;

  it('finds a long token cut at 200 characters, and any 16-character piece of it', () => {
    const s = new SecretScanner();
    s.add('access token', longToken);
    assert.ok(longToken.length > 1000);
    assert.deepEqual(s.findIn(`detail="${longToken.slice(0, 200)}…"`), ['access token']);
    const middle = longToken.slice(500, 500 + PIECE);
    assert.deepEqual(s.findIn(`x ${middle} y`), ['access token']);
    assert.deepEqual(s.findIn(`x ${middle.slice(1)} y`), [], '15 characters are not a finding');
  });

  it('finds superseded secrets as well as current ones, and url-encoded ones', () => {
    const s = new SecretScanner();
    const old = randomBytes(30).toString('base64');
    s.add('old refresh token', old);
    s.add('new refresh token', randomBytes(30).toString('base64url'));
    const found = s.findIn(`refresh_token=${encodeURIComponent(old)}`);
    assert.ok(found.length > 0 && found.every((l) => l.startsWith('old refresh token')), found.join());
    assert.equal(s.size, 2);
  });

  it('ignores a JWT header (public), short values, and text without secrets', () => {
    const s = new SecretScanner();
    s.add('access token', longToken);
    s.add('tiny', 'abc');
    s.add('short secret', 'Zq9-x7Lm2');
    assert.deepEqual(s.findIn('eyJhbGciOiJSUzI1NiJ9 abc'), []);
    assert.deepEqual(s.findIn('key=Zq9-x7Lm2'), ['short secret']);
    assert.doesNotThrow(() => s.assertAbsent('connection=alpha outcome=refreshed', 'logs'));
    assert.throws(() => s.assertAbsent(longToken.slice(-40), 'logs'), /access token/);
  });
});
