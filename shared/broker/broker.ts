/**
 * @module broker/broker
 * The broker service as the functions see it: one facade over the parts, each with one concern —
 * connection administration ({@link Connections}), connect links and the connect flow ({@link ConnectFlow}),
 * the caller-facing token read ({@link AccessTokens}), refresh coordination ({@link Refresher}) and the
 * timer sweep ({@link sweep}). Every dependency (store, lock, providers, keys, clock, logger) is injected,
 * so tests, the embedded defaults and Azure use the same code through the same seams.
 */
import type { Keyring } from '../crypto.ts';
import type { ConnectionSettings, TokenStore } from '../store/types.ts';
import { assertConnectionName } from '../store/validate.ts';
import { type AccessTokenResponse, AccessTokens, type Caller } from './accessTokens.ts';
import {
  type CallbackResult,
  type ConnectDescription,
  ConnectFlow,
  type ConnectStart,
} from './connectFlow.ts';
import { Connections } from './connections.ts';
import { type BrokerContext, type BrokerDeps, createBrokerContext } from './context.ts';
import { mintLink } from './links.ts';
import { mustGet } from './records.ts';
import { Refresher } from './refresher.ts';
import { sweep, type SweepResult } from './sweep.ts';
import { type ConnectionSummary, type ConnectionView, connectionView } from './views.ts';

export type {
  AccessTokenResponse,
  BrokerDeps,
  CallbackResult,
  Caller,
  ConnectDescription,
  ConnectStart,
  SweepResult,
};

export class Broker {
  readonly #ctx: BrokerContext;
  readonly #connections: Connections;
  readonly #flow: ConnectFlow;
  readonly #refresher: Refresher;
  readonly #tokens: AccessTokens;

  constructor(deps: BrokerDeps) {
    this.#ctx = createBrokerContext(deps);
    this.#connections = new Connections(this.#ctx);
    this.#flow = new ConnectFlow(this.#ctx);
    this.#refresher = new Refresher(this.#ctx);
    this.#tokens = new AccessTokens(this.#ctx, this.#refresher);
  }

  get store(): TokenStore {
    return this.#ctx.store;
  }

  upsertConnection(
    name: string,
    settings: ConnectionSettings,
  ): Promise<{ created: boolean; view: ConnectionView }> {
    return this.#connections.upsert(name, settings);
  }

  getConnection(name: string): Promise<ConnectionView> {
    return this.#connections.get(name);
  }

  listConnections(): Promise<ConnectionSummary[]> {
    return this.#connections.list();
  }

  deleteConnection(name: string): Promise<void> {
    return this.#connections.delete(name);
  }

  /** Stores an existing refresh token (migration from a manual setup) after proving it works. */
  importRefreshToken(name: string, refreshToken: string): Promise<ConnectionView> {
    return this.#connections.importRefreshToken(name, refreshToken);
  }

  /** A one-connection, expiring, signed link the account owner opens to connect. */
  async createLink(name: string, ttlSeconds?: number): Promise<{ url: string; expiresAt: string }> {
    const ctx = this.#ctx;
    const record = await mustGet(ctx.store, name);
    const exp = ctx.now() + (ttlSeconds ?? ctx.linkTtlSeconds) * 1000;
    const url = `${ctx.publicBaseUrl}/api/connect/${name}?link=${await mintLink(ctx.keyring, record, exp)}`;
    ctx.log.info('link.created', { connection: name });
    return { url, expiresAt: new Date(exp).toISOString() };
  }

  /** What the consent page shows for a valid link (connection, permissions, pin); changes nothing. */
  describeConnect(name: string, link: string): Promise<ConnectDescription> {
    return this.#flow.describe(name, link);
  }

  /** The signing key ring (the consent page signs its CSRF token with it). */
  get keyring(): Keyring {
    return this.#ctx.keyring;
  }

  /** The broker's clock (tests control it). */
  now(): number {
    return this.#ctx.now();
  }

  beginConnect(name: string, link: string): Promise<ConnectStart> {
    return this.#flow.begin(name, link);
  }

  /** Finishes the connect flow: checks the sealed state, redeems the code, pins the identity, stores tokens. */
  completeCallback(query: URLSearchParams, cookie: string | undefined): Promise<CallbackResult> {
    return this.#flow.complete(query, cookie);
  }

  /** The caller-facing read: a current access token for the connection (and `scopes`, if given). */
  getAccessToken(name: string, caller: Caller, scopes?: readonly string[]): Promise<AccessTokenResponse> {
    return this.#tokens.get(name, caller, scopes);
  }

  /** Admin-triggered refresh: bypasses backoff and status, so a fixed configuration can be retried. */
  async forceRefresh(name: string): Promise<ConnectionView> {
    assertConnectionName(name);
    return connectionView(await this.#refresher.refresh(name, undefined, { force: true, reason: 'manual' }));
  }

  /** The timer sweep: refreshes every connection that is due. */
  refreshDue(): Promise<SweepResult> {
    return sweep(this.#ctx, this.#refresher);
  }
}
