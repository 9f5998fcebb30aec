/**
 * @module demo-idp/store
 * In-memory storage for oidc-provider models (grants, codes, refresh tokens, sessions, interactions), shared by
 * every tenant's provider and namespaced per tenant. Unlike oidc-provider's dev adapter it can be enumerated, which
 * `revokeUser` needs, and it never prints a "development only" warning. Clients are not stored here: the `Client`
 * model is answered from the demo's client registry so clients can be added at runtime.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';

/**
 * Refresh tokens and codes stay findable for a while after they expire: oidc-provider then answers "expired"
 * (Microsoft's AADSTS700082 / 70008) instead of "not found".
 */
const RETAIN_EXPIRED_MS = 24 * 3600 * 1000;
const RETAINED_MODELS = new Set(['RefreshToken', 'AuthorizationCode']);

/** What presenting a rotated (superseded) refresh token does; see `StartDemoIdpOptions.rotatedRefreshTokenReuse`. */
export type RotatedRefreshTokenReuse = 'revoke-family' | 'allow';

export interface MemoryStoreOptions {
  /**
   * `revoke-family` (default): rotation consumes the old refresh token, and oidc-provider treats a later reuse as
   * theft (invalid_grant, whole grant revoked). `allow` (Microsoft): rotation leaves the old token untouched, so
   * it keeps working until its own expiry.
   */
  rotatedRefreshTokenReuse?: RotatedRefreshTokenReuse;
}

interface Entry {
  payload: AdapterPayload;
  /** Epoch milliseconds; Infinity when the model has no expiry. */
  expiresAt: number;
}

export class MemoryStore {
  readonly #items = new Map<string, Entry>();
  /** `${ns}:${grantId}` → keys of the tokens/codes issued under that grant. */
  readonly #grantMembers = new Map<string, Set<string>>();
  /** `${ns}:${uid}` → session id (oidc-provider looks sessions up by uid). */
  readonly #sessionUids = new Map<string, string>();
  readonly #now: () => number;
  readonly #keepRotated: boolean;

  constructor(now: () => number = Date.now, options: MemoryStoreOptions = {}) {
    this.#now = now;
    this.#keepRotated = (options.rotatedRefreshTokenReuse ?? 'revoke-family') === 'allow';
  }

  /** An oidc-provider adapter factory for one tenant namespace. */
  adapterFactory(
    ns: string,
    findClient: (id: string) => AdapterPayload | undefined,
  ): (model: string) => Adapter {
    return (model) => (model === 'Client' ? clientAdapter(findClient) : this.#adapter(ns, model));
  }

  /** Live (unexpired) payloads of one model in one namespace, with their ids. */
  *entries(ns: string, model: string): Generator<[string, AdapterPayload]> {
    const prefix = `${ns}:${model}:`;
    for (const [key, entry] of this.#items) {
      if (!key.startsWith(prefix) || entry.expiresAt <= this.#now()) continue;
      yield [key.slice(prefix.length), structuredClone(entry.payload)];
    }
  }

  get(ns: string, model: string, id: string): AdapterPayload | undefined {
    return this.#get(`${ns}:${model}:${id}`);
  }

  delete(ns: string, model: string, id: string): void {
    this.#delete(ns, model, id);
  }

  revokeByGrantId(ns: string, grantId: string): void {
    const members = this.#grantMembers.get(`${ns}:${grantId}`);
    for (const key of members ?? []) this.#items.delete(key);
    this.#grantMembers.delete(`${ns}:${grantId}`);
  }

  #get(key: string): AdapterPayload | undefined {
    const entry = this.#items.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#items.delete(key);
      return undefined;
    }
    return structuredClone(entry.payload);
  }

  #delete(ns: string, model: string, id: string): void {
    const key = `${ns}:${model}:${id}`;
    const entry = this.#items.get(key);
    this.#items.delete(key);
    if (!entry) return;
    const { grantId, uid } = entry.payload;
    if (typeof grantId === 'string') this.#grantMembers.get(`${ns}:${grantId}`)?.delete(key);
    if (typeof uid === 'string' && this.#sessionUids.get(`${ns}:${uid}`) === id)
      this.#sessionUids.delete(`${ns}:${uid}`);
  }

  #prune(): void {
    const now = this.#now();
    for (const [key, entry] of this.#items) if (entry.expiresAt <= now) this.#items.delete(key);
  }

  #adapter(ns: string, model: string): Adapter {
    const keyOf = (id: string) => `${ns}:${model}:${id}`;
    return {
      upsert: (id, payload, expiresIn) => {
        // Opportunistic cleanup keeps a long-running `npm start` from growing without bound.
        if (this.#items.size % 256 === 0) this.#prune();
        const key = keyOf(id);
        const retain = RETAINED_MODELS.has(model) ? RETAIN_EXPIRED_MS : 0;
        const expiresAt = typeof expiresIn === 'number' ? this.#now() + expiresIn * 1000 + retain : Infinity;
        this.#items.set(key, { payload: structuredClone(payload), expiresAt });
        const { grantId, uid } = payload;
        if (typeof grantId === 'string' && model !== 'Grant') {
          const members = this.#grantMembers.get(`${ns}:${grantId}`) ?? new Set<string>();
          members.add(key);
          this.#grantMembers.set(`${ns}:${grantId}`, members);
        }
        if (model === 'Session' && typeof uid === 'string') this.#sessionUids.set(`${ns}:${uid}`, id);
        return Promise.resolve();
      },
      find: (id) => Promise.resolve(this.#get(keyOf(id))),
      findByUid: (uid) => {
        const id = this.#sessionUids.get(`${ns}:${uid}`);
        return Promise.resolve(id === undefined ? undefined : this.#get(keyOf(id)));
      },
      findByUserCode: () => Promise.resolve(undefined),
      consume: (id) => {
        // oidc-provider consumes a refresh token only when it rotates it; an unconsumed token stays redeemable.
        if (model === 'RefreshToken' && this.#keepRotated) return Promise.resolve();
        const entry = this.#items.get(keyOf(id));
        if (entry) entry.payload.consumed = Math.floor(this.#now() / 1000);
        return Promise.resolve();
      },
      destroy: (id) => {
        this.#delete(ns, model, id);
        return Promise.resolve();
      },
      revokeByGrantId: (grantId) => {
        this.revokeByGrantId(ns, grantId);
        return Promise.resolve();
      },
    };
  }
}

function clientAdapter(findClient: (id: string) => AdapterPayload | undefined): Adapter {
  const readOnly = () => Promise.reject(new Error('demo-idp clients are configured programmatically'));
  return {
    find: (id) => Promise.resolve(findClient(id)),
    upsert: readOnly,
    findByUid: () => Promise.resolve(undefined),
    findByUserCode: () => Promise.resolve(undefined),
    consume: readOnly,
    destroy: readOnly,
    revokeByGrantId: () => Promise.resolve(),
  };
}
