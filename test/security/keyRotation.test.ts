/**
 * Rotating BROKER_KEYS: the first listed key signs links and seals login cookies; every listed key still
 * verifies/unseals (grace), and a key removed from the list is dead. Unit level on the Keyring, then end to end by
 * restarting the dev host on one data directory with old → new,old → new.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keyIdOf, parseConfig } from '../../shared/config.ts';
import { Keyring, seal, signToken, unseal, verifyToken } from '../../shared/crypto.ts';
import { driveAuthorization } from '../../tools/demo-idp/driver.ts';
import { type DemoIdp, startDemoIdp } from '../../tools/demo-idp/server.ts';
import { type BrokerHost, CLIENT_ID, freePort, startBrokerHost } from '../support/brokerHost.ts';
import { startConnect } from '../support/connectPage.ts';

const b64 = (k: Buffer) => k.toString('base64url');
const keysOf = (...keys: Buffer[]) => parseConfig({ BROKER_KEYS: keys.map(b64).join(',') }).keys ?? [];

describe('Keyring rotation (unit)', () => {
  const [k1, k2, k3] = [randomBytes(32), randomBytes(32), randomBytes(32)];

  it('the first key signs and seals; every listed key verifies and unseals; a removed key does not', () => {
    const old = new Keyring(keysOf(k1));
    const link = signToken(old, 'connect-link', { c: 'a', exp: 1 });
    const cookie = seal(old, 'state-cookie', { s: 'state' }, 'aad');
    const grace = new Keyring(keysOf(k2, k1));
    assert.deepEqual(verifyToken(grace, 'connect-link', link), { c: 'a', exp: 1 });
    assert.deepEqual(unseal(grace, 'state-cookie', cookie, 'aad'), { s: 'state' });
    // New material is made with the new first key.
    assert.equal(signToken(grace, 'connect-link', {}).split('.')[0], keyIdOf(k2));
    assert.equal(seal(grace, 'state-cookie', {}, 'aad').split('.')[0], keyIdOf(k2));
    const done = new Keyring(keysOf(k2, k3));
    assert.equal(verifyToken(done, 'connect-link', link), undefined);
    assert.equal(unseal(done, 'state-cookie', cookie, 'aad'), undefined);
  });

  it('derives separate keys per purpose, so a link MAC never opens a cookie and vice versa', () => {
    const ring = new Keyring(keysOf(k1));
    const asLink = signToken(ring, 'connect-link', { c: 'a' });
    assert.equal(verifyToken(ring, 'state-cookie', asLink), undefined);
    const asCookie = seal(ring, 'state-cookie', { s: 'x' }, 'aad');
    assert.equal(unseal(ring, 'connect-link', asCookie, 'aad'), undefined);
  });

  it('refuses short or malformed keys in BROKER_KEYS without echoing them', () => {
    for (const value of [b64(randomBytes(16)), 'not base64 !!', `${b64(k1)},${b64(randomBytes(8))}`]) {
      assert.throws(
        () => parseConfig({ BROKER_KEYS: value }),
        (err: Error) => err.message.includes('BROKER_KEYS') && !err.message.includes(value.slice(0, 12)),
      );
    }
  });
});

/** The key id in a JOSE token's protected header (links are JWS, login cookies JWE). */
function kidOf(token: string): string | undefined {
  const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as {
    kid?: string;
  };
  return header.kid;
}

describe('BROKER_KEYS rotation end to end (dev host restarts on one data directory)', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  let idp: DemoIdp;
  let port: number;
  let dataDir: string;
  const clientSecret = randomBytes(24).toString('base64url');

  async function host(keys: Buffer[]): Promise<BrokerHost> {
    const h = await startBrokerHost({
      port,
      dataDir,
      sharedIdp: { idp, clientSecret },
      env: { BROKER_KEYS: keys.map(b64).join(',') },
    });
    h.secrets.add('old broker key', b64(oldKey));
    h.secrets.add('new broker key', b64(newKey));
    return h;
  }

  /** Closes first, asserts after: a failed scan must not leave the dev host running. */
  async function stop(h: BrokerHost): Promise<void> {
    let logs = '';
    try {
      logs = await h.collectSecrets();
    } finally {
      await h.close();
    }
    h.secrets.assertAbsent(logs, 'dev host logs');
  }

  before(async () => {
    port = await freePort();
    dataDir = await mkdtemp(join(tmpdir(), 'key-rotation-'));
    idp = await startDemoIdp({
      quiet: true,
      clients: [
        { clientId: CLIENT_ID, clientSecret, redirectUris: [`http://localhost:${port}/api/callback`] },
      ],
    });
  });
  after(async () => {
    await idp.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('old links and in-flight logins survive while the old key is listed second, and die once it is removed', async () => {
    // 1. Old key only: a link, and a login started and signed in but not yet back at the callback.
    const h1 = await host([oldKey]);
    await h1.createConnection('rotating');
    const oldLink = await h1.newLink('rotating');
    const start = await startConnect(oldLink);
    const cookie = start.headers.getSetCookie()[0]?.split(';')[0] ?? '';
    const signedIn = await driveAuthorization(start.headers.get('location') ?? '', {
      username: 'adele@demo.example',
      password: 'demo',
    });
    await stop(h1);

    // 2. new,old: both still work; new links carry the new key id.
    const h2 = await host([newKey, oldKey]);
    h2.secrets.add('state cookie', cookie);
    h2.secrets.add('authorization code', signedIn.params.get('code'));
    h2.secrets.add('connect link', new URL(oldLink).searchParams.get('link'));
    assert.equal((await startConnect(oldLink)).status, 303);
    const completed = await fetch(signedIn.url, { headers: { cookie }, redirect: 'manual' });
    assert.equal(completed.status, 200, 'a login sealed under the old key completes after the rotation');
    assert.equal((await h2.record('rotating'))?.status, 'active');
    const newLink = await h2.newLink('rotating');
    assert.equal(kidOf(new URL(newLink).searchParams.get('link') ?? ''), keyIdOf(newKey));
    const newCookie = (await startConnect(newLink)).headers.getSetCookie()[0] ?? '';
    assert.equal(kidOf(newCookie.split(';')[0]?.split('=')[1] ?? ''), keyIdOf(newKey));
    await stop(h2);

    // 3. new only: the old link is dead, the new one works.
    const h3 = await host([newKey]);
    h3.secrets.add('connect link', new URL(oldLink).searchParams.get('link'));
    const refused = await fetch(oldLink, { redirect: 'manual', headers: { accept: 'application/json' } });
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { code: string }).code, 'invalid_link');
    assert.equal((await startConnect(newLink)).status, 303);
    await stop(h3);
  });
});
