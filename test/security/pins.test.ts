/**
 * Identity pins hold at every moment, not only at sign-in (docs/security.md, "Identity pins"). Against the demo
 * IdP in process: a pin added to a connection connected as someone else withholds its token at once; an
 * imported refresh token must prove, by a verified id_token from the refresh, that it is the pinned account's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BrokerError } from '../../shared/errors.ts';
import { type IdpBrokerHarness, startIdpBroker } from '../support/idpBroker.ts';

const MAIL = ['https://graph.microsoft.com/Mail.Send'];
const caller = { kind: 'function_key' as const };
let h: IdpBrokerHarness;

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    return err instanceof BrokerError ? `${err.status} ${err.code}` : String(err);
  }
}

/** Connects `name` through the real flow as `username` and returns the stored refresh token. */
async function connectAs(name: string, username: string): Promise<string> {
  await h.broker.upsertConnection(name, { provider: 'microsoft', scopes: MAIL });
  const { params, cookie } = await h.connect(h.broker, name, { username });
  await h.broker.completeCallback(params, cookie);
  const rt = (await h.store.get(name))?.tokens?.refreshToken;
  assert.ok(rt);
  return rt;
}

function user(username: string) {
  const u = h.idp.users.find((x) => x.username === username);
  assert.ok(u);
  return u;
}

before(async () => {
  h = await startIdpBroker();
});

after(() => h.closeAndScanLogs());

describe('identity pins', () => {
  it('a pin added to a connection connected as someone else withholds its token at once', async () => {
    await connectAs('shared-mailbox', 'adele@demo.example');
    assert.equal((await h.broker.getAccessToken('shared-mailbox', caller)).connection, 'shared-mailbox');
    const megan = user('megan@demo.example');
    const { view } = await h.broker.upsertConnection('shared-mailbox', {
      provider: 'microsoft',
      scopes: MAIL,
      expectedIdentity: { tenantId: megan.tenantId, objectId: megan.objectId },
    });
    assert.equal(view.status, 'needs_reauth');
    assert.equal((view as { lastError?: { code?: string } }).lastError?.code, 'identity_mismatch');
    // Withheld on the hot (cached) path too, and nothing of adele's grant is kept.
    assert.equal(
      await refusal(h.broker.getAccessToken('shared-mailbox', caller)),
      '409 connection_needs_reauth',
    );
    assert.equal((await h.store.get('shared-mailbox'))?.tokens, undefined);
  });

  it('a pin the connected account matches changes nothing', async () => {
    await connectAs('own-mailbox', 'adele@demo.example');
    const adele = user('adele@demo.example');
    const { view } = await h.broker.upsertConnection('own-mailbox', {
      provider: 'microsoft',
      scopes: MAIL,
      expectedIdentity: {
        tenantId: adele.tenantId,
        objectId: adele.objectId,
        username: 'ADELE@demo.example',
      },
    });
    assert.equal(view.status, 'active');
    assert.equal((await h.broker.getAccessToken('own-mailbox', caller)).connection, 'own-mailbox');
  });

  it('import on a pinned connection: another account’s refresh token is refused and nothing is stored', async () => {
    const adelesToken = await connectAs('source-a', 'adele@demo.example');
    const megan = user('megan@demo.example');
    await h.broker.upsertConnection('pinned-megan', {
      provider: 'microsoft',
      scopes: MAIL,
      expectedIdentity: { objectId: megan.objectId },
    });
    const before = await h.store.get('pinned-megan');
    assert.equal(
      await refusal(h.broker.importRefreshToken('pinned-megan', adelesToken)),
      '403 identity_mismatch',
    );
    const after_ = await h.store.get('pinned-megan');
    assert.equal(after_?.revision, before?.revision);
    assert.equal(after_?.tokens, undefined);
  });

  it('import on a pinned connection: the pinned account’s refresh token is proven by its id_token and kept', async () => {
    const adelesToken = await connectAs('source-b', 'adele@demo.example');
    const adele = user('adele@demo.example');
    await h.broker.upsertConnection('pinned-adele', {
      provider: 'microsoft',
      scopes: MAIL,
      expectedIdentity: { tenantId: adele.tenantId, objectId: adele.objectId },
    });
    const view = await h.broker.importRefreshToken('pinned-adele', adelesToken);
    assert.equal(view.status, 'active');
    const stored = await h.store.get('pinned-adele');
    assert.equal(stored?.identity?.objectId, adele.objectId);
    assert.equal((await h.broker.getAccessToken('pinned-adele', caller)).connection, 'pinned-adele');
  });
});
