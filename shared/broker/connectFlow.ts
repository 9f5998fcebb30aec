/**
 * @module broker/connectFlow
 * The browser connect flow: a valid link starts a PKCE authorization request and sets a sealed login cookie
 * (state, nonce, verifier); the callback checks that cookie against the returned state once, redeems the
 * code, checks the pinned identity and stores the tokens.
 */
import { announce } from './changes.ts';
import * as oauth from 'oauth4webapi';
import { constantTimeEqual } from '../crypto.ts';
import { BrokerError } from '../errors.ts';
import type { ProviderClient } from '../oauth/provider.ts';
import { OIDC_SCOPES } from '../oauth/scopes.ts';
import type { ConnectedIdentity, ConnectionRecord, ConnectionSettings } from '../store/types.ts';
import { assertConnectionName } from '../store/validate.ts';
import type { BrokerContext } from './context.ts';
import { checkLink, checkLinkInstance } from './links.ts';
import { type LoginState, openLoginState, sealLoginState } from './loginState.ts';
import { connected, mustGet, providerFor, unknownConnection } from './records.ts';
import { STATE_COOKIE_MAX_AGE_SECONDS, stateCookieName } from './stateCookie.ts';
import { UsedStates } from './usedStates.ts';

export interface ConnectStart {
  redirectUrl: string;
  /** Microsoft asked for a sign-in step (claims challenge) that this sign-in carries; the page may say so. */
  claimsChallenge: boolean;
  cookie: { name: string; value: string; maxAgeSeconds: number };
}

/** What the consent page shows before anyone is sent to the provider. */
export interface ConnectDescription {
  connection: string;
  description?: string;
  /** Provider name as configured (`microsoft`, or a generic provider's name). */
  provider: string;
  providerKind: 'microsoft' | 'oauth2';
  /** The permissions the sign-in will ask for (the connection's scopes, without the OpenID ones). */
  scopes: string[];
  /** The pinned account's user name, when the connection is pinned by one. */
  expectedUsername?: string;
  /** True when the connection is pinned (by tenant, object id or user name). */
  pinned: boolean;
  /** Where the continue button will send the browser (for the page's form-action policy). */
  authorizeOrigin: string;
  linkExpiresAt: string;
  /** Microsoft asked for an extra sign-in step (claims challenge) that the sign-in will carry. */
  claimsChallenge: boolean;
}

export interface CallbackResult {
  connection: string;
  username?: string;
}

/** The sealed login cookie's content (loginState.ts). */
export type StatePayload = LoginState;

export class ConnectFlow {
  readonly #ctx: BrokerContext;
  readonly #used = new UsedStates();

  constructor(ctx: BrokerContext) {
    this.#ctx = ctx;
  }

  /** Checks the link like {@link begin} and says what a sign-in would connect; changes nothing. */
  async describe(name: string, link: string): Promise<ConnectDescription> {
    const { payload, record, provider } = await this.#openLink(name, link);
    const probe = await provider.authorizationUrl({ scopes: [], state: 'x', nonce: 'x', codeChallenge: 'x' });
    const pin = record.settings.expectedIdentity;
    const out: ConnectDescription = {
      connection: name,
      provider: provider.name,
      providerKind: provider.kind,
      scopes: record.settings.scopes.filter((s) => !OIDC_SCOPES.has(s)),
      pinned: Boolean(pin && (pin.tenantId || pin.objectId || pin.username)),
      authorizeOrigin: probe.origin,
      linkExpiresAt: new Date(payload.exp).toISOString(),
      claimsChallenge: record.claims !== undefined,
    };
    if (record.settings.description) out.description = record.settings.description;
    if (pin?.username) out.expectedUsername = pin.username;
    return out;
  }

  async begin(name: string, link: string): Promise<ConnectStart> {
    const ctx = this.#ctx;
    const { payload, record, provider } = await this.#openLink(name, link);
    const scopes = provider.loginScopes(record.settings.scopes);
    const verifier = oauth.generateRandomCodeVerifier();
    const state: StatePayload = {
      c: name,
      p: record.settings.provider,
      t: payload.t,
      s: oauth.generateRandomState(),
      n: oauth.generateRandomNonce(),
      v: verifier,
      exp: ctx.now() + STATE_COOKIE_MAX_AGE_SECONDS * 1000,
      scopes,
    };
    const params: Parameters<ProviderClient['authorizationUrl']>[0] = {
      scopes,
      state: state.s,
      nonce: state.n,
      codeChallenge: await oauth.calculatePKCECodeChallenge(verifier),
    };
    if (record.settings.expectedIdentity?.username)
      params.loginHint = record.settings.expectedIdentity.username;
    // An account picker at Microsoft: whoever opens a link chooses the account on purpose instead of being
    // attached silently with the session they happen to have. Microsoft refuses select_account together with
    // login_hint; a connection pinned by user name accepts only that account anyway. Generic providers set
    // `prompt` per provider in extraAuthorizeParams (it wins over this).
    else if (provider.kind === 'microsoft') params.prompt = 'select_account';
    if (record.claims) params.claims = record.claims;
    const url = await provider.authorizationUrl(params);
    ctx.log.info('connect.started', { connection: name, provider: provider.name });
    return {
      redirectUrl: url.href,
      claimsChallenge: record.claims !== undefined,
      cookie: {
        name: stateCookieName(state.s),
        value: await sealLoginState(ctx.keyring, state, stateCookieName(state.s)),
        maxAgeSeconds: STATE_COOKIE_MAX_AGE_SECONDS,
      },
    };
  }

  /** The link's payload, the connection it was made for, and that connection's provider; throws for a link
   * that is not valid for this connection now. */
  async #openLink(name: string, link: string) {
    const ctx = this.#ctx;
    assertConnectionName(name);
    const payload = await checkLink(ctx.keyring, name, link, ctx.now());
    const record = await mustGet(ctx.store, name);
    checkLinkInstance(payload, record);
    return { payload, record, provider: providerFor(ctx.providers, record.settings.provider) };
  }

  /** Finishes the connect flow: checks the sealed state, redeems the code, pins the identity, stores tokens. */
  async complete(query: URLSearchParams, cookie: string | undefined): Promise<CallbackResult> {
    const ctx = this.#ctx;
    const state = await this.#checkState(query, cookie);
    // Checked before the code is redeemed and again under the lock before anything is stored: an admin may
    // change or delete the connection at any moment of the sign-in.
    const record = sameConnection(await mustGet(ctx.store, state.c), state);
    const provider = providerFor(ctx.providers, state.p);
    const result = await provider.redeemCode({
      callbackParams: query,
      expectedState: state.s,
      nonce: state.n,
      codeVerifier: state.v,
      scopes: state.scopes,
      // The claims challenge goes with the code redemption too, as MSAL sends it (kept on the record, not in
      // the size-limited login cookie).
      ...(record.claims ? { claims: record.claims } : {}),
    });
    if (!result.refreshToken) {
      throw new BrokerError(
        'provider_error',
        'The provider did not return a refresh token (was offline_access granted?).',
        { detail: 'no refresh token in code response', fields: { connection: state.c } },
      );
    }
    checkIdentity(record.settings.expectedIdentity, result.identity, state.c);
    const refreshToken = result.refreshToken;
    const saved = await ctx.lock.withLock(state.c, async () => {
      const stored = await ctx.store.get(state.c);
      // Deleted meanwhile: it stays deleted.
      if (!stored) throw unknownConnection();
      const latest = sameConnection(stored, state);
      // A pin saved meanwhile holds for this sign-in too.
      checkIdentity(latest.settings.expectedIdentity, result.identity, state.c);
      const next = connected(latest, result, refreshToken, ctx.now(), state.scopes, result.identity);
      await ctx.store.put(next);
      return { before: latest, next };
    });
    ctx.cache.forget(state.c);
    await announce(ctx, saved.before, saved.next);
    ctx.log.info('connect.completed', { connection: state.c, provider: provider.name, outcome: 'connected' });
    const out: CallbackResult = { connection: saved.next.connection };
    if (saved.next.identity?.username) out.username = saved.next.identity.username;
    return out;
  }

  /** The login cookie's state when it opens, is current, matches the returned `state` and was not used. */
  async #checkState(query: URLSearchParams, cookie: string | undefined): Promise<StatePayload> {
    const ctx = this.#ctx;
    if (!cookie) {
      throw new BrokerError(
        'invalid_state',
        'This sign-in was not started from this browser, or took too long. Open the connect link again.',
        { detail: 'state cookie missing' },
      );
    }
    const returned = query.get('state') ?? '';
    const state = await openLoginState(ctx.keyring, cookie, stateCookieName(returned), ctx.now());
    if (!state) {
      throw new BrokerError(
        'invalid_state',
        'This sign-in could not be verified. Open the connect link again.',
        {
          detail: 'state cookie invalid',
        },
      );
    }
    const now = ctx.now();
    if (now >= state.exp) {
      throw new BrokerError('invalid_state', 'This sign-in took too long. Open the connect link again.', {
        detail: 'state cookie expired',
      });
    }
    const returnedState = query.get('state');
    if (returnedState === null || !constantTimeEqual(returnedState, state.s)) {
      throw new BrokerError(
        'invalid_state',
        'This sign-in response does not belong to this browser session.',
        {
          detail: 'state mismatch',
          fields: { connection: state.c },
        },
      );
    }
    this.#used.consume(state.s, state.exp, now);
    return state;
  }
}

/** `record` when it is the connection the sign-in started for: the same instance (not deleted and created
 * again under the same name) with the same provider; else throws. */
function sameConnection(record: ConnectionRecord, state: StatePayload): ConnectionRecord {
  const detail =
    state.t !== undefined && record.createdAt !== state.t
      ? 'connection replaced'
      : record.settings.provider !== state.p
        ? 'provider changed'
        : undefined;
  if (detail) {
    throw new BrokerError(
      'invalid_state',
      'The connection changed while you were signing in. Open a new link.',
      { detail, fields: { connection: state.c } },
    );
  }
  return record;
}

/** True when the verified identity matches every part of the expected one that is set (or none is set). */
export function identityMatches(
  expected: ConnectionSettings['expectedIdentity'],
  actual: ConnectedIdentity | undefined,
): boolean {
  if (!expected || (!expected.tenantId && !expected.objectId && !expected.username)) return true;
  const same = (a: string | undefined, b: string | undefined) =>
    a !== undefined && b !== undefined && constantTimeEqual(a.toLowerCase(), b.toLowerCase());
  return (
    actual !== undefined &&
    (!expected.tenantId || same(expected.tenantId, actual.tenantId)) &&
    (!expected.objectId || same(expected.objectId, actual.objectId)) &&
    (!expected.username || same(expected.username, actual.username))
  );
}

/** Throws unless the verified identity matches every part of the expected one that is set. */
export function checkIdentity(
  expected: ConnectionSettings['expectedIdentity'],
  actual: ConnectedIdentity | undefined,
  connection: string,
): void {
  if (!identityMatches(expected, actual)) {
    throw new BrokerError(
      'identity_mismatch',
      'You signed in with a different account than this connection expects. Sign out at the provider and use the expected account.',
      { detail: actual ? 'pinned identity differs' : 'no verified identity', fields: { connection } },
    );
  }
}
