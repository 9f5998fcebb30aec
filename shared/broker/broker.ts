/**
 * @module broker/broker
 * The broker service: connections, the connect flow, access tokens and refresh. Every dependency (store,
 * lock, providers, keys, clock, logger) is injected, so tests, the embedded defaults and Azure use the same
 * code through the same seams.
 */
import * as oauth from 'oauth4webapi';
import { BrokerError, ensureError } from '../errors.ts';
import {
  constantTimeEqual,
  type Keyring,
  randomToken,
  seal,
  signToken,
  unseal,
  verifyToken,
} from '../crypto.ts';
import type { Logger } from '../log.ts';
import type { ConnectionLock } from '../lock/types.ts';
import { ProviderFailure, type ProviderClient, type TokenResult } from '../oauth/provider.ts';
import { isSubsetOfGranted, scopeKey } from '../oauth/scopes.ts';
import {
  type AccessTokenEntry,
  type ConnectionRecord,
  type ConnectionSettings,
  type ConnectedIdentity,
  type TokenStore,
  toMetadata,
} from '../store/types.ts';
import {
  backoffMs,
  type RefreshPolicy,
  type RefreshReason,
  shouldRefresh,
  tokenFreshness,
} from './refreshPolicy.ts';
import { assertConnectionName } from '../store/validate.ts';
import { type ConnectionSummary, type ConnectionView, connectionView, summaryView } from './views.ts';

import { STATE_COOKIE_MAX_AGE_SECONDS, STATE_COOKIE_NAME } from './stateCookie.ts';

export interface BrokerDeps {
  store: TokenStore;
  lock: ConnectionLock;
  providers: ReadonlyMap<string, ProviderClient>;
  keyring: Keyring;
  log: Logger;
  publicBaseUrl: string;
  linkTtlSeconds: number;
  policy: RefreshPolicy;
  sweepConcurrency: number;
  now?: () => number;
  random?: () => number;
}

export interface Caller {
  /** `function_key` callers carry no app id; Entra callers carry `azp`/`appid`. */
  kind: 'function_key' | 'entra';
  appId?: string;
}

export interface AccessTokenResponse {
  access_token: string;
  token_type: string;
  expires_at: string;
  expires_in: number;
  scope: string;
  connection: string;
}

export interface ConnectStart {
  redirectUrl: string;
  cookie: { name: string; value: string; maxAgeSeconds: number };
}

export interface CallbackResult {
  connection: string;
  username?: string;
}

export interface SweepResult {
  listed: number;
  due: number;
  refreshed: number;
  failed: number;
  skipped: number;
}

interface CacheEntry {
  entry: AccessTokenEntry;
  allowedCallers: readonly string[] | undefined;
}

interface LinkPayload {
  c: string;
  /** The connection's createdAt: a link dies with the connection it was made for, even if the name returns. */
  t: number;
  exp: number;
  n: string;
}

interface StatePayload {
  c: string;
  p: string;
  s: string;
  n: string;
  v: string;
  exp: number;
  scopes: string[];
}

const USED_STATE_LIMIT = 10_000;

export class Broker {
  readonly #d: BrokerDeps;
  readonly #now: () => number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<unknown>>();
  /** Single-use state values, kept for the cookie lifetime. Per instance: a replay to another instance still
   * fails at the provider, which accepts a code once. */
  readonly #usedStates = new Map<string, number>();
  /** Refresh failures already logged where they were recorded. */
  readonly #logged = new WeakSet<Error>();

  constructor(deps: BrokerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  get store(): TokenStore {
    return this.#d.store;
  }

  // ---------------------------------------------------------------- connections (admin)

  async upsertConnection(
    name: string,
    settings: ConnectionSettings,
  ): Promise<{ created: boolean; view: ConnectionView }> {
    assertConnectionName(name);
    const provider = this.#provider(settings.provider);
    const scopes = settings.scopes.length > 0 ? settings.scopes : [...provider.defaultScopes];
    const normalised: ConnectionSettings = { ...settings, scopes };
    // Not collapsed with #lockedOnce: two different PUTs must both apply, in lock order.
    return this.#d.lock.withLock(name, async () => {
      const existing = await this.#d.store.get(name);
      const now = this.#now();
      let record: ConnectionRecord;
      if (!existing) {
        record = {
          v: 1,
          connection: name,
          settings: normalised,
          status: 'pending',
          createdAt: now,
          updatedAt: now,
          failures: 0,
          revision: 1,
        };
      } else {
        record = { ...existing, settings: normalised, updatedAt: now, revision: existing.revision + 1 };
        if (existing.settings.provider !== normalised.provider) {
          // Tokens from another provider are meaningless now: back to pending until someone connects.
          delete record.tokens;
          delete record.identity;
          record.status = 'pending';
        }
      }
      await this.#d.store.put(record);
      this.#forget(name);
      this.#d.log.info('connection.saved', {
        connection: name,
        provider: normalised.provider,
        outcome: existing ? 'updated' : 'created',
      });
      return { created: !existing, view: connectionView(record) };
    });
  }

  async getConnection(name: string): Promise<ConnectionView> {
    return connectionView(await this.#mustGet(name));
  }

  async listConnections(): Promise<ConnectionSummary[]> {
    const list = await this.#d.store.listMetadata();
    return list.sort((a, b) => a.connection.localeCompare(b.connection)).map(summaryView);
  }

  async deleteConnection(name: string): Promise<void> {
    assertConnectionName(name);
    const deleted = await this.#d.lock.withLock(name, () => this.#d.store.delete(name));
    this.#forget(name);
    if (!deleted) throw unknownConnection();
    this.#d.log.info('connection.deleted', { connection: name });
  }

  /** A one-connection, expiring, HMAC-signed link the account owner opens to connect. */
  async createLink(name: string, ttlSeconds?: number): Promise<{ url: string; expiresAt: string }> {
    const record = await this.#mustGet(name);
    const exp = this.#now() + (ttlSeconds ?? this.#d.linkTtlSeconds) * 1000;
    const token = signToken(this.#d.keyring, 'connect-link', {
      c: name,
      t: record.createdAt,
      exp,
      n: randomToken(9),
    } satisfies LinkPayload);
    const url = `${this.#d.publicBaseUrl}/api/connect/${name}?link=${token}`;
    this.#d.log.info('link.created', { connection: name });
    return { url, expiresAt: new Date(exp).toISOString() };
  }

  /** Stores an existing refresh token (migration from a manual setup) after proving it works. */
  async importRefreshToken(name: string, refreshToken: string): Promise<ConnectionView> {
    const record = await this.#mustGet(name);
    const provider = this.#provider(record.settings.provider);
    let result: TokenResult;
    try {
      result = await provider.refresh(refreshToken, record.settings.scopes);
    } catch (err) {
      if (err instanceof ProviderFailure && err.failure.kind === 'reauth') {
        throw new BrokerError(
          'invalid_request',
          'The provider rejected this refresh token; nothing was stored.',
          {
            detail: 'import refresh rejected',
            fields: err.fields,
          },
        );
      }
      throw err;
    }
    const updated = await this.#d.lock.withLock(name, async () => {
      const latest = (await this.#d.store.get(name)) ?? record;
      const now = this.#now();
      const next = this.#withTokens(
        withoutTokens(latest),
        result,
        refreshToken,
        undefined,
        now,
        latest.settings.scopes,
      );
      next.status = 'active';
      next.connectedAt = now;
      delete next.identity;
      await this.#d.store.put(next);
      return next;
    });
    this.#forget(name);
    this.#d.log.info('connection.imported', { connection: name, provider: record.settings.provider });
    return connectionView(updated);
  }

  /** Admin-triggered refresh: bypasses backoff and status, so a fixed configuration can be retried. */
  async forceRefresh(name: string): Promise<ConnectionView> {
    assertConnectionName(name);
    const record = await this.#refresh(name, undefined, { force: true, reason: 'manual' });
    return connectionView(record);
  }

  // ---------------------------------------------------------------- connect flow

  async beginConnect(name: string, link: string): Promise<ConnectStart> {
    assertConnectionName(name);
    const payload = verifyToken(this.#d.keyring, 'connect-link', link) as Partial<LinkPayload> | undefined;
    if (
      !payload ||
      typeof payload.c !== 'string' ||
      typeof payload.exp !== 'number' ||
      !constantTimeEqual(payload.c, name)
    ) {
      throw new BrokerError(
        'invalid_link',
        'This connect link is not valid. Ask your administrator for a new one.',
        {
          detail: payload ? 'link for another connection' : 'bad link signature',
        },
      );
    }
    if (this.#now() >= payload.exp) {
      throw new BrokerError(
        'invalid_link',
        'This connect link has expired. Ask your administrator for a new one.',
        {
          detail: 'link expired',
          fields: { reason: 'expired' },
        },
      );
    }
    const record = await this.#mustGet(name);
    if (payload.t !== record.createdAt) {
      throw new BrokerError(
        'invalid_link',
        'This connect link is not valid. Ask your administrator for a new one.',
        {
          detail: 'link for an earlier connection of this name',
        },
      );
    }
    const provider = this.#provider(record.settings.provider);
    const scopes = provider.loginScopes(record.settings.scopes);
    const verifier = oauth.generateRandomCodeVerifier();
    const state: StatePayload = {
      c: name,
      p: record.settings.provider,
      s: oauth.generateRandomState(),
      n: oauth.generateRandomNonce(),
      v: verifier,
      exp: this.#now() + STATE_COOKIE_MAX_AGE_SECONDS * 1000,
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
    const url = provider.authorizationUrl(params);
    this.#d.log.info('connect.started', { connection: name, provider: provider.name });
    return {
      redirectUrl: url.href,
      cookie: {
        name: STATE_COOKIE_NAME,
        value: seal(this.#d.keyring, 'state-cookie', state, STATE_COOKIE_NAME),
        maxAgeSeconds: STATE_COOKIE_MAX_AGE_SECONDS,
      },
    };
  }

  /** Finishes the connect flow: checks the sealed state, redeems the code, pins the identity, stores tokens. */
  async completeCallback(query: URLSearchParams, cookie: string | undefined): Promise<CallbackResult> {
    if (!cookie) {
      throw new BrokerError(
        'invalid_state',
        'This sign-in was not started from this browser, or took too long. Open the connect link again.',
        {
          detail: 'state cookie missing',
        },
      );
    }
    const state = unseal(this.#d.keyring, 'state-cookie', cookie, STATE_COOKIE_NAME) as
      StatePayload | undefined;
    if (!state || typeof state.s !== 'string' || !Array.isArray(state.scopes)) {
      throw new BrokerError(
        'invalid_state',
        'This sign-in could not be verified. Open the connect link again.',
        { detail: 'state cookie invalid' },
      );
    }
    const now = this.#now();
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
    this.#consumeState(state.s, state.exp);
    const record = await this.#mustGet(state.c);
    if (record.settings.provider !== state.p) {
      throw new BrokerError(
        'invalid_state',
        'The connection changed while you were signing in. Open a new link.',
        { detail: 'provider changed' },
      );
    }
    const provider = this.#provider(state.p);
    const result = await provider.redeemCode({
      callbackParams: query,
      expectedState: state.s,
      nonce: state.n,
      codeVerifier: state.v,
      scopes: state.scopes,
    });
    if (!result.refreshToken) {
      throw new BrokerError(
        'provider_error',
        'The provider did not return a refresh token (was offline_access granted?).',
        {
          detail: 'no refresh token in code response',
          fields: { connection: state.c },
        },
      );
    }
    checkIdentity(record.settings.expectedIdentity, result.identity, state.c);
    const refreshToken = result.refreshToken;
    const saved = await this.#d.lock.withLock(state.c, async () => {
      const latest = (await this.#d.store.get(state.c)) ?? record;
      const next = this.#withTokens(
        withoutTokens(latest),
        result,
        refreshToken,
        undefined,
        this.#now(),
        state.scopes,
      );
      next.status = 'active';
      next.connectedAt = this.#now();
      if (result.identity) next.identity = result.identity;
      else delete next.identity;
      await this.#d.store.put(next);
      return next;
    });
    this.#forget(state.c);
    this.#d.log.info('connect.completed', {
      connection: state.c,
      provider: provider.name,
      outcome: 'connected',
    });
    const out: CallbackResult = { connection: saved.connection };
    if (saved.identity?.username) out.username = saved.identity.username;
    return out;
  }

  // ---------------------------------------------------------------- access tokens

  /**
   * The caller-facing read. Hot path: a fresh cached token, no store call. Otherwise one collapsed slow path
   * per connection and scope: read the store, refresh under the lock when due, serve.
   */
  async getAccessToken(
    name: string,
    caller: Caller,
    scopes?: readonly string[],
  ): Promise<AccessTokenResponse> {
    assertConnectionName(name);
    const key = scopes && scopes.length > 0 ? scopeKey(scopes) : '';
    const cacheKey = `${name}\n${key}`;
    const cached = this.#cache.get(cacheKey);
    const now = this.#now();
    if (cached && tokenFreshness(cached.entry, now, this.#d.policy.marginMs) === 'fresh') {
      authorizeCaller(cached.allowedCallers, caller, name);
      return tokenResponse(name, cached.entry, now);
    }
    // Authorise before anything that could refresh: a caller outside allowedCallers triggers no provider call.
    const record = await this.#lockedOnce(`read:${name}`, () => this.#mustGet(name));
    authorizeCaller(record.settings.allowedCallers, caller, name);
    const served = await this.#lockedOnce(`token:${cacheKey}`, () => this.#slowToken(record, key, scopes));
    return tokenResponse(name, served.entry, this.#now());
  }

  async #slowToken(
    record: ConnectionRecord,
    key: string,
    scopes: readonly string[] | undefined,
  ): Promise<CacheEntry> {
    const name = record.connection;
    assertUsable(record);
    if (scopes && key !== '' && !isSubsetOfGranted(scopes, record.tokens?.grantedScopes ?? [])) {
      // Only scopes the account consented to; anything else would need a new sign-in.
      throw new BrokerError(
        'scope_not_granted',
        'This connection was not granted those scopes. Reconnect with the wider scopes.',
        {
          fields: { connection: name },
        },
      );
    }
    const current = pickEntry(record, key);
    const now = this.#now();
    if (current && tokenFreshness(current, now, this.#d.policy.marginMs) === 'fresh') {
      return this.#remember(record, key, current);
    }
    try {
      const refreshed = await this.#refresh(name, key === '' ? undefined : scopes, {
        force: false,
        reason: current ? 'expiring' : 'no_access_token',
      });
      const entry = pickEntry(refreshed, key);
      if (!entry) throw new BrokerError('provider_error', 'The provider returned no access token.');
      return this.#remember(refreshed, key, entry);
    } catch (err) {
      // A still-valid token is served even though its early refresh failed; an expired one never is.
      if (
        current &&
        tokenFreshness(current, this.#now(), this.#d.policy.marginMs) !== 'expired' &&
        isTransient(err)
      ) {
        this.#d.log.warn('token.served_stale', { connection: name, code: (err as BrokerError).code });
        return { entry: current, allowedCallers: record.settings.allowedCallers };
      }
      throw err;
    }
  }

  #remember(record: ConnectionRecord, key: string, entry: AccessTokenEntry): CacheEntry {
    const value: CacheEntry = { entry, allowedCallers: record.settings.allowedCallers };
    if (tokenFreshness(entry, this.#now(), this.#d.policy.marginMs) === 'fresh')
      this.#cache.set(`${record.connection}\n${key}`, value);
    return value;
  }

  // ---------------------------------------------------------------- refresh

  /**
   * The timer sweep: refresh every connection that is due, judged from metadata only, with bounded concurrency.
   * Workers start on the first page of the listing instead of waiting for the whole vault to be listed, so the
   * Key Vault budget is not left idle while 10,000 connections page in (docs/perf.md, "Sweep at scale").
   */
  async refreshDue(): Promise<SweepResult> {
    const result: SweepResult = { listed: 0, due: 0, refreshed: 0, failed: 0, skipped: 0 };
    const due: { connection: string; reason: RefreshReason }[] = [];
    let next = 0;
    let listing = true;
    const idle: (() => void)[] = [];
    const wake = () => {
      for (const resume of idle.splice(0)) resume();
    };
    const store = this.#d.store;
    const pages = store.listMetadataPages?.() ?? onePage(store.listMetadata());
    const lister = (async () => {
      try {
        for await (const page of pages) {
          const now = this.#now();
          for (const meta of page) {
            result.listed++;
            const decision = shouldRefresh(meta, now, this.#d.policy);
            if (decision.refresh) due.push({ connection: meta.connection, reason: decision.reason });
          }
          result.due = due.length;
          wake();
        }
      } finally {
        listing = false;
        wake();
      }
    })();
    const worker = async () => {
      for (;;) {
        const item = due[next];
        if (!item) {
          if (!listing) return;
          await new Promise<void>((resume) => idle.push(resume));
          continue;
        }
        next++;
        try {
          const before = this.#now();
          const record = await this.#refresh(item.connection, undefined, {
            force: false,
            reason: item.reason,
          });
          if ((record.refreshedAt ?? 0) >= before) result.refreshed++;
          else result.skipped++;
        } catch (err) {
          result.failed++;
          if (err instanceof Error && this.#logged.has(err)) continue;
          const code = err instanceof BrokerError ? err.code : 'internal_error';
          this.#d.log.warn(code === 'connection_needs_reauth' ? 'refresh.needs_reauth' : 'refresh.failed', {
            connection: item.connection,
            reason: item.reason,
            code,
            ...(err instanceof BrokerError ? err.fields : {}),
          });
        }
      }
    };
    // Workers finish what was listed even when the listing fails part-way; the failure is reported after.
    const listed = lister.then(
      () => undefined,
      (err: unknown) => ensureError(err),
    );
    await Promise.all([listed, ...Array.from({ length: this.#d.sweepConcurrency }, worker)]);
    const fields = {
      count: result.listed,
      due: result.due,
      refreshed: result.refreshed,
      failed: result.failed,
      skipped: result.skipped,
    };
    const listingError = await listed;
    if (listingError !== undefined) {
      this.#d.log.warn('refresh.sweep', { ...fields, outcome: 'listing_failed' });
      throw listingError;
    }
    this.#d.log.info('refresh.sweep', fields);
    return result;
  }

  /** Refreshes one connection (primary token, or the token for `scopes`) under the connection lock. */
  #refresh(
    name: string,
    scopes: readonly string[] | undefined,
    opts: { force: boolean; reason: RefreshReason | 'manual' },
  ): Promise<ConnectionRecord> {
    const key = scopes ? scopeKey(scopes) : '';
    return this.#lockedOnce(`refresh:${name}\n${key}`, () =>
      this.#d.lock.withLock(name, async () => {
        // Re-read after taking the lock: another instance may have refreshed while we waited.
        const record = await this.#mustGet(name);
        if (record.status === 'pending' || !record.tokens) throw notConnected();
        const now = this.#now();
        if (!opts.force) {
          assertUsable(record);
          const entry = pickEntry(record, key);
          if (key === '') {
            const decision = shouldRefresh(toMetadata(record), now, this.#d.policy);
            if (!decision.refresh && decision.reason !== 'backoff') return record;
            if (decision.reason === 'backoff') throw backoffError(record, now);
          } else if (entry && tokenFreshness(entry, now, this.#d.policy.marginMs) === 'fresh') {
            return record;
          }
        }
        return this.#callProvider(record, scopes, key, opts.reason);
      }),
    );
  }

  async #callProvider(
    record: ConnectionRecord,
    scopes: readonly string[] | undefined,
    key: string,
    reason: string,
  ): Promise<ConnectionRecord> {
    const name = record.connection;
    const provider = this.#provider(record.settings.provider);
    const tokens = record.tokens;
    if (!tokens) throw notConnected();
    const started = this.#now();
    try {
      const result = await provider.refresh(tokens.refreshToken, scopes ?? record.settings.scopes);
      const now = this.#now();
      const next = this.#withTokens(record, result, tokens.refreshToken, key === '' ? undefined : key, now);
      // Persist the rotated refresh token before anyone is answered with the new access token.
      await this.#d.store.put(next);
      this.#forget(name);
      this.#d.log.info('refresh.succeeded', {
        connection: name,
        provider: provider.name,
        reason,
        durationMs: now - started,
        outcome: result.refreshToken ? 'rotated' : 'kept',
      });
      return next;
    } catch (err) {
      if (!(err instanceof ProviderFailure)) throw err;
      return this.#recordFailure(record, err, reason, key);
    }
  }

  async #recordFailure(
    record: ConnectionRecord,
    err: ProviderFailure,
    reason: string,
    key: string,
  ): Promise<never> {
    const name = record.connection;
    const now = this.#now();
    const kind = err.failure.kind;
    if (key !== '' && isScopeRefusal(err)) {
      // The provider refused only the extra resource; the connection itself is fine.
      throw new BrokerError(
        'scope_not_granted',
        'The provider refused a token for those scopes; reconnect with consent for them.',
        {
          fields: { connection: name, ...err.fields },
        },
      );
    }
    if (kind === 'reauth') {
      // A concurrent refresh elsewhere may have rotated the token we just used: if the store moved on, the
      // rejection says nothing about the connection.
      const latest = await this.#d.store.get(name);
      if (
        latest?.tokens &&
        !constantTimeEqual(latest.tokens.refreshToken, record.tokens?.refreshToken ?? '')
      ) {
        this.#d.log.info('refresh.raced', { connection: name, reason });
        throw new BrokerError(
          'provider_unavailable',
          'The connection was refreshed concurrently; try again.',
          { retryAfterSeconds: 1 },
        );
      }
    }
    const next: ConnectionRecord = { ...record, updatedAt: now, revision: record.revision + 1 };
    next.lastError = { code: err.code, at: now };
    if (err.failure.providerError) next.lastError.providerError = err.failure.providerError;
    if (err.failure.codes) next.lastError.providerCodes = err.failure.codes;
    if (kind === 'reauth') {
      next.status = 'needs_reauth';
      delete next.nextAttemptAt;
    } else if (kind === 'config') {
      next.status = 'error';
      delete next.nextAttemptAt;
    } else {
      next.failures = record.failures + 1;
      next.nextAttemptAt = now + backoffMs(next.failures, err.failure.retryAfterSeconds, this.#d.random);
    }
    await this.#d.store.put(next);
    this.#forget(name);
    const event = kind === 'reauth' ? 'refresh.needs_reauth' : 'refresh.failed';
    this.#d.log.warn(event, { connection: name, reason, code: err.code, status: next.status, ...err.fields });
    let answer: BrokerError = err;
    if (kind === 'reauth') {
      answer = new BrokerError(
        'connection_needs_reauth',
        'The account must sign in again: open a new connect link.',
        {
          detail: 'refresh token rejected',
          fields: err.fields,
          cause: err,
        },
      );
    } else if (kind === 'transient' || kind === 'protocol') {
      answer = new BrokerError(
        'provider_unavailable',
        'The provider is unavailable right now; try again shortly.',
        {
          retryAfterSeconds: Math.max(1, Math.ceil(((next.nextAttemptAt ?? now) - now) / 1000)),
          fields: err.fields,
          cause: err,
        },
      );
    }
    // Already logged with its reason here; the sweep must not log it a second time (the alert counts lines).
    this.#logged.add(answer);
    throw answer;
  }

  /** `consented`: scopes the account agreed to at sign-in. Microsoft's token response lists only the scopes
   * of the one resource the token is for, so the other consented resources are recorded from the request. */
  #withTokens(
    record: ConnectionRecord,
    result: TokenResult,
    previousRefreshToken: string,
    key: string | undefined,
    now: number,
    consented: readonly string[] = [],
  ): ConnectionRecord {
    const entry: AccessTokenEntry = {
      accessToken: result.accessToken,
      tokenType: result.tokenType,
      expiresAt: now + result.expiresInSeconds * 1000,
      scope: result.scope,
    };
    if (result.refreshInSeconds !== undefined) entry.refreshAt = now + result.refreshInSeconds * 1000;
    const previous = record.tokens;
    const tokens = {
      // No refresh token in the response means the old one stays valid (RFC 6749 §6).
      refreshToken: result.refreshToken ?? previousRefreshToken,
      grantedScopes: previous?.grantedScopes ?? [],
      ...(previous?.primary ? { primary: previous.primary } : {}),
      ...(previous?.extra ? { extra: { ...previous.extra } } : {}),
    };
    if (key === undefined) {
      tokens.primary = entry;
      tokens.grantedScopes = mergeGranted(
        [...tokens.grantedScopes, ...consented.filter((c) => !isOidc(c))],
        result.scope,
      );
    } else {
      tokens.extra = { ...tokens.extra, [key]: entry };
    }
    const next: ConnectionRecord = {
      ...record,
      tokens,
      updatedAt: now,
      revision: record.revision + 1,
      failures: 0,
      status: record.status === 'pending' ? 'pending' : 'active',
    };
    if (key === undefined) next.refreshedAt = now;
    delete next.nextAttemptAt;
    delete next.lastError;
    return next;
  }

  // ---------------------------------------------------------------- helpers

  #provider(name: string): ProviderClient {
    const provider = this.#d.providers.get(name);
    if (!provider) {
      throw new BrokerError(
        'invalid_request',
        `Unknown provider "${name.slice(0, 32)}". Configure it first.`,
        { detail: 'unknown provider' },
      );
    }
    return provider;
  }

  async #mustGet(name: string): Promise<ConnectionRecord> {
    assertConnectionName(name);
    const record = await this.#d.store.get(name);
    if (!record) throw unknownConnection();
    return record;
  }

  #forget(name: string): void {
    for (const key of this.#cache.keys()) if (key.startsWith(`${name}\n`)) this.#cache.delete(key);
  }

  #consumeState(state: string, exp: number): void {
    const now = this.#now();
    if (this.#usedStates.has(state)) {
      throw new BrokerError(
        'invalid_state',
        'This sign-in response was already used. Open the connect link again.',
        { detail: 'state replayed' },
      );
    }
    if (this.#usedStates.size >= USED_STATE_LIMIT) {
      for (const [k, until] of this.#usedStates) if (until <= now) this.#usedStates.delete(k);
    }
    this.#usedStates.set(state, exp);
  }

  /** Collapses concurrent calls with the same key into one promise (in-process single flight). */
  #lockedOnce<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(key) as Promise<T> | undefined;
    if (running) return running;
    const promise = fn().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, promise);
    return promise;
  }
}

function unknownConnection(): BrokerError {
  return new BrokerError('unknown_connection', 'There is no connection with this name.');
}

function notConnected(): BrokerError {
  return new BrokerError(
    'connection_not_connected',
    'No account has been connected yet: open a connect link first.',
  );
}

function backoffError(record: ConnectionRecord, now: number): BrokerError {
  const wait = Math.max(1, Math.ceil(((record.nextAttemptAt ?? now) - now) / 1000));
  return new BrokerError('provider_unavailable', 'The provider failed recently; the broker is backing off.', {
    retryAfterSeconds: wait,
    fields: { connection: record.connection },
  });
}

function assertUsable(record: ConnectionRecord): void {
  if (record.status === 'pending' || !record.tokens) throw notConnected();
  if (record.status === 'needs_reauth') {
    throw new BrokerError(
      'connection_needs_reauth',
      'The account must sign in again: open a new connect link.',
      {
        fields: { connection: record.connection, providerError: record.lastError?.providerError },
      },
    );
  }
  if (record.status === 'error') {
    throw new BrokerError(
      'connection_error',
      'The last refresh failed because of the broker configuration; an administrator must fix it.',
      {
        fields: { connection: record.connection, providerError: record.lastError?.providerError },
      },
    );
  }
}

async function* onePage<T>(list: Promise<T[]>): AsyncGenerator<T[]> {
  yield await list;
}

function withoutTokens(record: ConnectionRecord): ConnectionRecord {
  const copy = { ...record };
  delete copy.tokens;
  return copy;
}

function pickEntry(record: ConnectionRecord, key: string): AccessTokenEntry | undefined {
  return key === '' ? record.tokens?.primary : record.tokens?.extra?.[key];
}

function mergeGranted(previous: readonly string[], scope: string): string[] {
  return [...new Set([...previous, ...scope.split(' ').filter((s) => s.length > 0 && !isOidc(s))])];
}

function isOidc(scope: string): boolean {
  return scope === 'openid' || scope === 'profile' || scope === 'offline_access' || scope === 'email';
}

function isScopeRefusal(err: ProviderFailure): boolean {
  const f = err.failure;
  return (
    f.suberror === 'consent_required' ||
    f.providerError === 'consent_required' ||
    f.providerError === 'invalid_scope' ||
    f.providerError === 'invalid_resource' ||
    (f.codes ?? []).some((c) => c === 65001 || c === 70011 || c === 500011)
  );
}

function isTransient(err: unknown): boolean {
  return (
    err instanceof BrokerError &&
    (err.code === 'provider_unavailable' || err.code === 'lock_timeout' || err.code === 'store_unavailable')
  );
}

function authorizeCaller(allowed: readonly string[] | undefined, caller: Caller, name: string): void {
  if (!allowed || allowed.length === 0) return;
  if (caller.appId && allowed.some((id) => id.toLowerCase() === caller.appId?.toLowerCase())) return;
  throw new BrokerError('forbidden', 'This caller may not read this connection.', {
    fields: { connection: name, caller: caller.appId ?? caller.kind },
  });
}

function tokenResponse(name: string, entry: AccessTokenEntry, now: number): AccessTokenResponse {
  return {
    access_token: entry.accessToken,
    token_type: entry.tokenType,
    expires_at: new Date(entry.expiresAt).toISOString(),
    expires_in: Math.max(0, Math.floor((entry.expiresAt - now) / 1000)),
    scope: entry.scope,
    connection: name,
  };
}

function checkIdentity(
  expected: ConnectionSettings['expectedIdentity'],
  actual: ConnectedIdentity | undefined,
  connection: string,
): void {
  if (!expected || (!expected.tenantId && !expected.objectId && !expected.username)) return;
  const same = (a: string | undefined, b: string | undefined) =>
    a !== undefined && b !== undefined && constantTimeEqual(a.toLowerCase(), b.toLowerCase());
  const ok =
    actual !== undefined &&
    (!expected.tenantId || same(expected.tenantId, actual.tenantId)) &&
    (!expected.objectId || same(expected.objectId, actual.objectId)) &&
    (!expected.username || same(expected.username, actual.username));
  if (!ok) {
    throw new BrokerError(
      'identity_mismatch',
      'You signed in with a different account than this connection expects. Sign out at the provider and use the expected account.',
      {
        detail: actual ? 'pinned identity differs' : 'no verified identity',
        fields: { connection },
      },
    );
  }
}
