import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { AccessTokens } from '../../../shared/broker/accessTokens.ts';
import { checkIdentity, ConnectFlow, identityMatches } from '../../../shared/broker/connectFlow.ts';
import { Connections } from '../../../shared/broker/connections.ts';
import { mintLink } from '../../../shared/broker/links.ts';
import { openLoginState, sealLoginState } from '../../../shared/broker/loginState.ts';
import { Refresher } from '../../../shared/broker/refresher.ts';
import { stateCookieName } from '../../../shared/broker/stateCookie.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { createProviderClient } from '../../../shared/oauth/provider.ts';
import type {
  AuthorizationParams,
  ProviderClient,
  RedeemParams,
  TokenResult,
} from '../../../shared/oauth/provider.ts';
import type { ConnectionRecord, ConnectionSettings } from '../../../shared/store/types.ts';
import { legacyLoginCookie } from '../legacyFormats.ts';
import { activeRecord, type Harness, harness, T0 } from './fixture.ts';
import { ScriptedProvider } from '../../support/scriptedProvider.ts';

const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;

interface Setup {
  identity?: { username?: string; tenantId?: string; objectId?: string } | undefined;
  during?: (h: Harness) => Promise<void>;
  settings?: ConnectionSettings;
  claims?: string;
  kind?: 'microsoft' | 'oauth2';
  refreshToken?: string | undefined;
}

const PINNED: ConnectionSettings = {
  provider: 'microsoft',
  scopes: [],
  expectedIdentity: { username: 'Adele@demo.example' },
};

/** A connection and a flow whose provider records what it is asked; nothing started yet. */
async function prepared(opts: Setup = {}) {
  const h = harness();
  const redeemed: RedeemParams[] = [];
  const authorized: AuthorizationParams[] = [];
  const identity = 'identity' in opts ? opts.identity : { username: 'adele@demo.example', tenantId: 't1' };
  const refreshToken = 'refreshToken' in opts ? opts.refreshToken : 'rt-code-xxxxxxxxxxxxxxxx';
  const redeemCode = async (params: RedeemParams): Promise<TokenResult> => {
    redeemed.push(params);
    await (opts.during ?? (() => Promise.resolve()))(h);
    const result: TokenResult = {
      accessToken: 'at-code-xxxxxxxxxxxxxxxx',
      tokenType: 'Bearer',
      expiresInSeconds: 3600,
      scope: 'https://graph.microsoft.com/Mail.Send',
    };
    if (refreshToken !== undefined) result.refreshToken = refreshToken;
    if (identity) result.identity = identity;
    return result;
  };
  const authorizationUrl = (params: AuthorizationParams): URL => {
    authorized.push(params);
    const url = new URL('https://login.idp.test:8443/authorize');
    url.searchParams.set('state', params.state);
    return url;
  };
  Object.assign(h.provider, { redeemCode, authorizationUrl, kind: opts.kind ?? 'microsoft' });
  await new Connections(h.ctx).upsert('sales-mailbox', opts.settings ?? PINNED);
  const record = h.store.records.get('sales-mailbox');
  assert.ok(record);
  if (opts.claims) record.claims = opts.claims;
  const flow = new ConnectFlow(h.ctx);
  const link = await mintLink(h.ctx.keyring, record, T0 + 60_000);
  return { h, flow, link, redeemed, authorized };
}

/** A started sign-in; `during` runs while the provider redeems the code (after the callback's first read). */
async function started(
  identity: Setup['identity'] = { username: 'adele@demo.example', tenantId: 't1' },
  during: (h: Harness) => Promise<void> = () => Promise.resolve(),
  opts: Setup = {},
) {
  const p = await prepared({ identity, during, ...opts });
  const start = await p.flow.begin('sales-mailbox', p.link);
  const state = new URL(start.redirectUrl).searchParams.get('state') ?? '';
  const query = new URLSearchParams({ code: 'c0de-value-123456', state });
  return { ...p, start, query };
}

describe('ConnectFlow', () => {
  it('completes once: tokens stored, identity pinned, PKCE verifier and nonce from the cookie', async () => {
    const { h, flow, start, query, redeemed } = await started();
    const done = await flow.complete(query, start.cookie.value);
    assert.deepEqual(done, { connection: 'sales-mailbox', username: 'adele@demo.example' });
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.status, 'active');
    assert.equal(stored?.tokens?.refreshToken, 'rt-code-xxxxxxxxxxxxxxxx');
    assert.equal(stored?.identity?.tenantId, 't1');
    assert.equal(redeemed[0]?.expectedState, query.get('state'));
    assert.ok((redeemed[0]?.codeVerifier.length ?? 0) >= 43);
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
    assert.equal(redeemed.length, 1, 'the replay never reaches the provider');
  });

  it('finishes a sign-in whose cookie was sealed in the format used before jose (one rotation later)', async () => {
    const { h, flow, start, query } = await started();
    const state = await openLoginState(h.ctx.keyring, start.cookie.value, start.cookie.name, T0);
    assert.ok(state);
    const legacy = legacyLoginCookie(h.ctx.keyring, state, start.cookie.name);
    assert.equal(legacy.split('.').length, 4);
    const done = await flow.complete(query, legacy);
    assert.equal(done.connection, 'sales-mailbox');
  });

  it('refuses an expired cookie, a foreign state and a changed provider', async () => {
    const { h, flow, start, query } = await started();
    await assert.rejects(
      flow.complete(new URLSearchParams({ state: 'x' }), start.cookie.value),
      code('invalid_state'),
    );
    await assert.rejects(flow.complete(query, `${start.cookie.value.slice(0, -2)}AA`), code('invalid_state'));
    h.clock.now += start.cookie.maxAgeSeconds * 1000;
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
  });

  it('refuses another account than the expected one and stores nothing', async () => {
    const { h, flow, start, query } = await started({ username: 'mallory@demo.example', tenantId: 't1' });
    await assert.rejects(flow.complete(query, start.cookie.value), code('identity_mismatch'));
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'pending');
  });
});

describe('ConnectFlow: the connection changes while the code is redeemed', () => {
  const admin = (h: Harness) => new Connections(h.ctx);

  it('a pin saved meanwhile holds: another account is refused and nothing is stored', async () => {
    const { h, flow, start, query } = await started(undefined, (h) =>
      admin(h)
        .upsert('sales-mailbox', {
          provider: 'microsoft',
          scopes: [],
          expectedIdentity: { username: 'megan@demo.example' },
        })
        .then(() => undefined),
    );
    await assert.rejects(flow.complete(query, start.cookie.value), code('identity_mismatch'));
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.status, 'pending');
    assert.equal(stored?.tokens, undefined);
    assert.equal(stored?.settings.expectedIdentity?.username, 'megan@demo.example');
  });

  it('a provider changed meanwhile: refused, nothing stored', async () => {
    const { h, flow, start, query } = await started(undefined, async (h) => {
      (h.ctx.providers as Map<string, ProviderClient>).set('generic', new ScriptedProvider());
      await admin(h).upsert('sales-mailbox', { provider: 'generic', scopes: ['mail'] });
    });
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.settings.provider, 'generic');
    assert.equal(stored?.status, 'pending');
    assert.equal(stored?.tokens, undefined);
  });

  it('deleted meanwhile: unknown_connection, the connection stays deleted', async () => {
    const { h, flow, start, query } = await started(undefined, (h) => admin(h).delete('sales-mailbox'));
    await assert.rejects(flow.complete(query, start.cookie.value), code('unknown_connection'));
    assert.equal(h.store.records.has('sales-mailbox'), false);
  });

  it('deleted and created again meanwhile: refused, the new connection stays pending', async () => {
    const { h, flow, start, query } = await started(undefined, async (h) => {
      await admin(h).delete('sales-mailbox');
      h.clock.now += 1;
      await admin(h).upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    });
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
    const stored = h.store.records.get('sales-mailbox');
    assert.equal(stored?.createdAt, T0 + 1);
    assert.equal(stored?.status, 'pending');
    assert.equal(stored?.tokens, undefined);
  });

  it('deleted and created again before the callback: refused before the code is redeemed', async () => {
    const { h, flow, start, query, redeemed } = await started();
    await admin(h).delete('sales-mailbox');
    h.clock.now += 1;
    await admin(h).upsert('sales-mailbox', { provider: 'microsoft', scopes: [] });
    await assert.rejects(flow.complete(query, start.cookie.value), code('invalid_state'));
    assert.equal(redeemed.length, 0);
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'pending');
  });
});

describe('checkIdentity', () => {
  it('checks only the parts that are set, case-insensitively, and needs a verified identity', () => {
    checkIdentity(undefined, undefined, 'c');
    checkIdentity({}, undefined, 'c');
    checkIdentity({ tenantId: 'T1' }, { tenantId: 't1', username: 'x' }, 'c');
    assert.throws(() => checkIdentity({ tenantId: 't1' }, undefined, 'c'), code('identity_mismatch'));
    assert.throws(
      () => checkIdentity({ tenantId: 't1', objectId: 'o' }, { tenantId: 't1' }, 'c'),
      code('identity_mismatch'),
    );
  });
});

const detail = (c: string, d: string) => (e: unknown) =>
  e instanceof BrokerError && e.code === c && e.detail === d;
const MAIL = 'https://graph.microsoft.com/Mail.Send';

describe('ConnectFlow.describe: what the consent page shows, before anyone is sent to the provider', () => {
  it('names the connection, its permissions without the OpenID ones, the pinned account and the claims step', async () => {
    const { h, flow, link } = await prepared({
      settings: {
        provider: 'microsoft',
        scopes: [
          'openid',
          MAIL,
          'offline_access',
          'profile',
          'email',
          'https://graph.microsoft.com/User.Read',
        ],
        description: 'Sales team mailbox',
        expectedIdentity: { username: 'Adele@demo.example' },
      },
      claims: '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}',
    });
    const puts = h.store.puts;
    assert.deepEqual(await flow.describe('sales-mailbox', link), {
      connection: 'sales-mailbox',
      description: 'Sales team mailbox',
      provider: 'microsoft',
      providerKind: 'microsoft',
      scopes: [MAIL, 'https://graph.microsoft.com/User.Read'],
      pinned: true,
      expectedUsername: 'Adele@demo.example',
      authorizeOrigin: 'https://login.idp.test:8443',
      linkExpiresAt: new Date(T0 + 60_000).toISOString(),
      claimsChallenge: true,
    });
    assert.equal(h.store.puts, puts, 'describing changes nothing');
  });

  it('an unpinned connection without description or claims step: no such entries, not pinned', async () => {
    const { flow, link } = await prepared({
      settings: { provider: 'microsoft', scopes: [MAIL] },
      kind: 'oauth2',
    });
    assert.deepEqual(await flow.describe('sales-mailbox', link), {
      connection: 'sales-mailbox',
      provider: 'microsoft',
      providerKind: 'oauth2',
      scopes: [MAIL],
      pinned: false,
      authorizeOrigin: 'https://login.idp.test:8443',
      linkExpiresAt: new Date(T0 + 60_000).toISOString(),
      claimsChallenge: false,
    });
  });

  for (const [label, pin, pinned] of [
    ['by tenant only', { tenantId: 't1' }, true],
    ['by object id only', { objectId: 'o1' }, true],
    ['by user name only', { username: 'adele@demo.example' }, true],
    ['with an empty pin', {}, false],
  ] as const) {
    it(`a connection pinned ${label} is ${pinned ? '' : 'not '}shown as pinned`, async () => {
      const { h, flow, link } = await prepared({ settings: { provider: 'microsoft', scopes: [MAIL] } });
      const record = h.store.records.get('sales-mailbox');
      assert.ok(record);
      record.settings.expectedIdentity = { ...pin };
      const shown = await flow.describe('sales-mailbox', link);
      assert.equal(shown.pinned, pinned);
      assert.equal(shown.expectedUsername, 'username' in pin ? pin.username : undefined);
    });
  }

  it('refuses an invalid name before the link is looked at, and a link for another connection', async () => {
    const { flow, link } = await prepared();
    await assert.rejects(flow.describe('Sales_Mailbox', link), code('invalid_request'));
    await new Connections((await prepared()).h.ctx).upsert('other', { provider: 'microsoft', scopes: [] });
    await assert.rejects(flow.describe('other', link), code('invalid_link'));
  });
});

describe('ConnectFlow.begin: the authorization request', () => {
  it('a connection pinned by user name sends that name as login_hint and no account picker', async () => {
    const { authorized } = await started();
    assert.equal(authorized.length, 1);
    assert.equal(authorized[0]?.loginHint, 'Adele@demo.example');
    assert.equal(authorized[0]?.prompt, undefined);
  });

  it('an unpinned Microsoft connection asks for the account picker, without a hint', async () => {
    const { authorized } = await started(undefined, undefined, {
      settings: { provider: 'microsoft', scopes: [MAIL] },
    });
    assert.equal(authorized[0]?.prompt, 'select_account');
    assert.equal('loginHint' in (authorized[0] ?? {}), false);
  });

  it('a Microsoft connection pinned by tenant only still asks for the account picker', async () => {
    const { authorized } = await started(undefined, undefined, {
      settings: { provider: 'microsoft', scopes: [MAIL], expectedIdentity: { tenantId: 't1' } },
    });
    assert.equal(authorized[0]?.prompt, 'select_account');
  });

  it('a generic OAuth provider gets no prompt from the broker (its own settings decide)', async () => {
    const { authorized } = await started(undefined, undefined, {
      settings: { provider: 'microsoft', scopes: [MAIL] },
      kind: 'oauth2',
    });
    assert.equal('prompt' in (authorized[0] ?? {}), false);
    assert.equal('loginHint' in (authorized[0] ?? {}), false);
  });

  it('a pending claims challenge goes with the authorization request and the code redemption', async () => {
    const claims = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}';
    const { h, flow, start, query, authorized, redeemed } = await started(undefined, undefined, { claims });
    assert.equal(start.claimsChallenge, true);
    assert.equal(authorized[0]?.claims, claims);
    await flow.complete(query, start.cookie.value);
    assert.equal(redeemed[0]?.claims, claims);
    assert.equal(h.store.records.get('sales-mailbox')?.claims, undefined, 'the sign-in answered it');
  });

  it('without a claims challenge neither request carries claims', async () => {
    const { flow, start, query, authorized, redeemed } = await started();
    assert.equal(start.claimsChallenge, false);
    assert.equal('claims' in (authorized[0] ?? {}), false);
    await flow.complete(query, start.cookie.value);
    assert.equal('claims' in (redeemed[0] ?? {}), false);
  });

  it('asks with PKCE (S256 challenge of the verifier in the cookie) and logs connect.started', async () => {
    const { h, start, authorized } = await started();
    const state = await openLoginState(h.ctx.keyring, start.cookie.value, start.cookie.name, T0);
    assert.ok(state);
    assert.equal(authorized[0]?.state, state.s);
    assert.equal(authorized[0]?.nonce, state.n);
    assert.equal(authorized[0]?.codeChallenge, createHash('sha256').update(state.v).digest('base64url'));
    assert.deepEqual(authorized[0]?.scopes, state.scopes);
    assert.equal(state.c, 'sales-mailbox');
    assert.equal(state.p, 'microsoft');
    assert.equal(state.t, h.store.records.get('sales-mailbox')?.createdAt);
    assert.deepEqual(h.logs, [
      'connection.saved connection=sales-mailbox provider=microsoft outcome=created',
      'connect.started connection=sales-mailbox provider=microsoft',
    ]);
  });

  it('the login cookie lives ten minutes to the millisecond, and says so', async () => {
    const { h, flow, start, query } = await started();
    assert.equal(start.cookie.maxAgeSeconds, 600);
    const state = await openLoginState(h.ctx.keyring, start.cookie.value, start.cookie.name, T0);
    assert.equal(state?.exp, T0 + 600_000);
    h.clock.now = T0 + 600_000;
    await assert.rejects(
      flow.complete(query, start.cookie.value),
      detail('invalid_state', 'state cookie expired'),
    );
    h.clock.now = T0 + 599_999;
    assert.equal((await flow.complete(query, start.cookie.value)).connection, 'sales-mailbox');
  });

  it('a link dies with the connection it was made for: no page, no sign-in once the name is created again', async () => {
    const { h, flow, link, authorized } = await prepared();
    await new Connections(h.ctx).delete('sales-mailbox');
    h.clock.now += 1;
    await new Connections(h.ctx).upsert('sales-mailbox', PINNED);
    const earlier = detail('invalid_link', 'link for an earlier connection of this name');
    await assert.rejects(flow.describe('sales-mailbox', link), earlier);
    await assert.rejects(flow.begin('sales-mailbox', link), earlier);
    assert.equal(authorized.length, 0, 'the provider was never asked');
  });

  it('refuses an invalid connection name as such', async () => {
    const { flow, link } = await prepared();
    await assert.rejects(flow.begin('Sales_Mailbox', link), code('invalid_request'));
  });
});

describe('ConnectFlow.complete: callback checks', () => {
  it('says which check refused: cookie missing, cookie not opening', async () => {
    const { flow, start, query, redeemed } = await started();
    await assert.rejects(flow.complete(query, undefined), detail('invalid_state', 'state cookie missing'));
    await assert.rejects(flow.complete(query, ''), detail('invalid_state', 'state cookie missing'));
    await assert.rejects(
      flow.complete(query, `${start.cookie.value}x`),
      detail('invalid_state', 'state cookie invalid'),
    );
    assert.equal(redeemed.length, 0);
  });

  it('a cookie that opens under the returned state name but holds another state is refused as a mismatch', async () => {
    const { h, flow, redeemed } = await started();
    const record = h.store.records.get('sales-mailbox');
    assert.ok(record);
    const sealed = (s: string, name: string) =>
      sealLoginState(
        h.ctx.keyring,
        {
          c: 'sales-mailbox',
          p: 'microsoft',
          t: record.createdAt,
          s,
          n: 'n',
          v: 'v'.repeat(43),
          exp: T0 + 1000,
          scopes: [],
        },
        stateCookieName(name),
      );
    await assert.rejects(
      flow.complete(
        new URLSearchParams({ code: 'c', state: 'returned' }),
        await sealed('sealed', 'returned'),
      ),
      (e) =>
        detail('invalid_state', 'state mismatch')(e) &&
        (e as BrokerError).fields.connection === 'sales-mailbox',
    );
    // No `state` in the callback at all is refused, even against a cookie sealed for an empty state.
    await assert.rejects(
      flow.complete(new URLSearchParams({ code: 'c' }), await sealed('', '')),
      detail('invalid_state', 'state mismatch'),
    );
    assert.equal(redeemed.length, 0);
  });

  it('no refresh token in the code response: provider_error, nothing stored, the lock never taken', async () => {
    const { h, flow, start, query } = await started(undefined, undefined, { refreshToken: undefined });
    const locks = h.lock.acquisitions;
    await assert.rejects(
      flow.complete(query, start.cookie.value),
      (e) => code('provider_error')(e) && (e as BrokerError).fields.connection === 'sales-mailbox',
    );
    assert.equal(h.lock.acquisitions, locks);
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'pending');
  });

  it('another account is refused before the connection lock is taken', async () => {
    const { h, flow, start, query } = await started({ username: 'mallory@demo.example' });
    const locks = h.lock.acquisitions;
    await assert.rejects(flow.complete(query, start.cookie.value), code('identity_mismatch'));
    assert.equal(h.lock.acquisitions, locks);
  });

  it('a completed sign-in is announced once, with the pending record before and the connected one after', async () => {
    const heard: [string | undefined, string | undefined][] = [];
    const { h, flow, start, query } = await started();
    Object.assign(h.ctx, {
      onChange: (b?: ConnectionRecord, a?: ConnectionRecord) => {
        heard.push([b?.status, a?.status]);
        return Promise.resolve();
      },
    });
    await flow.complete(query, start.cookie.value);
    assert.deepEqual(heard, [['pending', 'active']]);
  });

  it('logs connect.completed; an account without user name is stored without one', async () => {
    const { h, flow, start, query } = await started({ tenantId: 't1', objectId: 'o1' }, undefined, {
      settings: { provider: 'microsoft', scopes: [MAIL], expectedIdentity: { tenantId: 'T1' } },
    });
    assert.deepEqual(await flow.complete(query, start.cookie.value), { connection: 'sales-mailbox' });
    assert.equal(
      h.logs.at(-1),
      'connect.completed connection=sales-mailbox provider=microsoft outcome=connected',
    );
    assert.deepEqual(h.store.records.get('sales-mailbox')?.identity, { tenantId: 't1', objectId: 'o1' });
  });

  it('an unpinned connection at a provider without identity connects with no identity', async () => {
    const { h, flow, start, query } = await started(undefined, undefined, {
      settings: { provider: 'microsoft', scopes: [MAIL] },
      identity: undefined,
    });
    assert.deepEqual(await flow.complete(query, start.cookie.value), { connection: 'sales-mailbox' });
    assert.equal(h.store.records.get('sales-mailbox')?.status, 'active');
    assert.equal(h.store.records.get('sales-mailbox')?.identity, undefined);
  });

  it("reconnecting forgets this instance's cached token: the next read serves the new one", async () => {
    const { h, flow, start, query } = await started();
    const record = h.store.records.get('sales-mailbox');
    assert.ok(record);
    const seeded = activeRecord({ createdAt: record.createdAt, settings: record.settings });
    h.store.records.set('sales-mailbox', seeded);
    const tokens = new AccessTokens(h.ctx, new Refresher(h.ctx));
    const caller = { kind: 'function_key' as const };
    assert.equal((await tokens.get('sales-mailbox', caller)).access_token, 'at-seed-zzzzzzzzzzzzzzzzzzzzzz');
    await flow.complete(query, start.cookie.value);
    assert.equal((await tokens.get('sales-mailbox', caller)).access_token, 'at-code-xxxxxxxxxxxxxxxx');
  });

  it('a cookie sealed before the connection instance was recorded in it still completes', async () => {
    const { h, flow, start, query } = await started();
    const state = await openLoginState(h.ctx.keyring, start.cookie.value, start.cookie.name, T0);
    assert.ok(state);
    const { t: _t, ...old } = state;
    const done = await flow.complete(query, legacyLoginCookie(h.ctx.keyring, old, start.cookie.name));
    assert.equal(done.connection, 'sales-mailbox');
  });

  it('says why a changed connection is refused: replaced, or its provider changed', async () => {
    const replaced = await started();
    await new Connections(replaced.h.ctx).delete('sales-mailbox');
    replaced.h.clock.now += 1;
    await new Connections(replaced.h.ctx).upsert('sales-mailbox', PINNED);
    await assert.rejects(
      replaced.flow.complete(replaced.query, replaced.start.cookie.value),
      (e) =>
        detail('invalid_state', 'connection replaced')(e) &&
        (e as BrokerError).fields.connection === 'sales-mailbox',
    );
    const moved = await started();
    (moved.h.ctx.providers as Map<string, ProviderClient>).set('generic', new ScriptedProvider());
    await new Connections(moved.h.ctx).upsert('sales-mailbox', { provider: 'generic', scopes: ['mail'] });
    await assert.rejects(
      moved.flow.complete(moved.query, moved.start.cookie.value),
      (e) =>
        detail('invalid_state', 'provider changed')(e) &&
        (e as BrokerError).fields.connection === 'sales-mailbox',
    );
  });
});

describe('identityMatches / checkIdentity: every part of the pin that is set', () => {
  it('compares case-insensitively by lower case only: ß and SS are different accounts', () => {
    assert.equal(identityMatches({ username: 'Straße@X' }, { username: 'straße@x' }), true);
    assert.equal(identityMatches({ username: 'strasse@x' }, { username: 'STRAßE@x' }), false);
  });

  it('a different tenant is refused even when the user name matches', () => {
    assert.equal(identityMatches({ tenantId: 't1' }, { tenantId: 't2', username: 'a' }), false);
    assert.equal(identityMatches({ objectId: 'o1' }, { objectId: 'O1' }), true);
    assert.equal(identityMatches({ objectId: 'o1' }, { objectId: 'o2' }), false);
    assert.equal(identityMatches({ username: 'A@x' }, { username: 'a@X' }), true);
    assert.equal(identityMatches({ username: 'a@x' }, { username: 'b@x' }), false);
    assert.equal(identityMatches({ username: 'a@x' }, { tenantId: 't1' }), false);
    assert.equal(
      identityMatches({ tenantId: 't1', username: 'a@x' }, { tenantId: 't1', username: 'a@x' }),
      true,
    );
  });

  it('the refusal says whether an identity was verified at all, and names the connection', () => {
    assert.throws(
      () => checkIdentity({ tenantId: 't1' }, { tenantId: 't2' }, 'sales-mailbox'),
      (e) =>
        detail('identity_mismatch', 'pinned identity differs')(e) &&
        (e as BrokerError).fields.connection === 'sales-mailbox',
    );
    assert.throws(
      () => checkIdentity({ tenantId: 't1' }, undefined, 'sales-mailbox'),
      (e) =>
        detail('identity_mismatch', 'no verified identity')(e) &&
        (e as BrokerError).fields.connection === 'sales-mailbox',
    );
  });
});

describe('ConnectFlow with a real configured OAuth 2.0 provider client (endpoints set, no discovery)', () => {
  async function crm() {
    const client = createProviderClient(
      {
        kind: 'oauth2',
        name: 'crm',
        authorizationUrl: 'https://auth.crm.test/oauth/authorize',
        tokenUrl: 'https://auth.crm.test/oauth/token',
        clientId: 'broker-client',
        credential: { kind: 'secret', secret: 'client-secret-value', method: 'client_secret_post' },
        defaultScopes: ['read'],
        extraAuthorizeParams: {},
        extraTokenParams: {},
        usePkce: true,
      },
      {
        // Building the authorization request needs no network; any request would fail the test.
        fetch: () => Promise.reject(new Error('no network in this test')),
        redirectUri: 'https://broker.example.com/api/callback',
        allowInsecureHttp: false,
        timeoutMs: 1000,
      },
    );
    const h = harness({ providers: new Map([['crm', client]]) });
    await new Connections(h.ctx).upsert('crm-sync', { provider: 'crm', scopes: ['read', 'write'] });
    const record = h.store.records.get('crm-sync');
    assert.ok(record);
    return { flow: new ConnectFlow(h.ctx), link: await mintLink(h.ctx.keyring, record, T0 + 60_000) };
  }

  it('the consent page learns where the continue button sends the browser', async () => {
    const { flow, link } = await crm();
    const shown = await flow.describe('crm-sync', link);
    assert.equal(shown.authorizeOrigin, 'https://auth.crm.test');
    assert.equal(shown.provider, 'crm');
    assert.equal(shown.providerKind, 'oauth2');
    assert.deepEqual(shown.scopes, ['read', 'write']);
  });

  it('the sign-in goes to the configured endpoint with PKCE and the state of the login cookie', async () => {
    const { flow, link } = await crm();
    const start = await flow.begin('crm-sync', link);
    const url = new URL(start.redirectUrl);
    assert.equal(`${url.origin}${url.pathname}`, 'https://auth.crm.test/oauth/authorize');
    assert.equal(url.searchParams.get('scope'), 'read write');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('prompt'), null);
    assert.equal(start.cookie.name, stateCookieName(url.searchParams.get('state') ?? ''));
  });
});
