/**
 * A small typed client for server-side callers of the token broker. It caches each access token until shortly
 * before `expires_at`, collapses concurrent calls for the same token into one request, retries a 503 after its
 * `Retry-After`, and authenticates with a function key and/or a Microsoft Entra bearer from any
 * `@azure/identity` credential. Types come from the broker's OpenAPI document (`schema.ts`, generated).
 */
import type { components } from './schema.ts';

export type AccessToken = components['schemas']['AccessToken'];
export type Problem = components['schemas']['Problem'];

/** What `@azure/identity` credentials implement (`TokenCredential`); only `getToken` is used. */
export interface TokenCredentialLike {
  getToken(scopes: string | string[]): Promise<{ token: string; expiresOnTimestamp: number } | null>;
}

export interface BrokerClientOptions {
  /** The broker's API root, e.g. `https://my-broker.azurewebsites.net/api`. */
  baseUrl: string;
  /** An Azure Functions key for the `token` function (sent as `x-functions-key`). */
  functionKey?: string;
  /** Entra mode: a credential and the broker API's scope, e.g. `api://<broker app id>/.default`. */
  credential?: TokenCredentialLike;
  credentialScope?: string;
  /** Serve a cached token until this many seconds before it expires (default 120; at most half its lifetime). */
  refreshBeforeSeconds?: number;
  /** How many times a 503 is retried (default 3); each wait honours `Retry-After`, capped by `maxRetryWaitSeconds`. */
  maxRetries?: number;
  maxRetryWaitSeconds?: number;
  /** Seams for tests and special runtimes. */
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** A problem answer from the broker (or a transport-level failure, with `status` 0). */
export class BrokerClientError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problem: Problem | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, code: string, message: string, problem?: Problem, retryAfterSeconds?: number) {
    super(message);
    this.name = 'BrokerClientError';
    this.status = status;
    this.code = code;
    this.problem = problem;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

interface Cached {
  token: AccessToken;
  /** Epoch ms after which the cached token is no longer handed out. */
  useUntil: number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class BrokerClient {
  readonly #options: Required<
    Pick<BrokerClientOptions, 'refreshBeforeSeconds' | 'maxRetries' | 'maxRetryWaitSeconds'>
  > &
    BrokerClientOptions;
  readonly #cache = new Map<string, Cached>();
  readonly #inFlight = new Map<string, Promise<AccessToken>>();

  constructor(options: BrokerClientOptions) {
    if (!options.functionKey && !options.credential)
      throw new TypeError('BrokerClient needs a functionKey, a credential, or both');
    if (options.credential && !options.credentialScope)
      throw new TypeError('BrokerClient: credentialScope is required with a credential');
    this.#options = { refreshBeforeSeconds: 120, maxRetries: 3, maxRetryWaitSeconds: 30, ...options };
  }

  /** The current access token string for `connection` (and optional other-resource `scope`). */
  async token(connection: string, options: { scope?: string } = {}): Promise<string> {
    return (await this.getAccessToken(connection, options)).access_token;
  }

  /** The whole answer: token, type, expiry, scopes. Cached; concurrent calls share one request. */
  getAccessToken(connection: string, options: { scope?: string } = {}): Promise<AccessToken> {
    const key = `${connection}\n${options.scope ?? ''}`;
    const cached = this.#cache.get(key);
    if (cached && this.#now() < cached.useUntil) return Promise.resolve(cached.token);
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = this.#fetchToken(connection, options.scope)
        .then((token) => {
          this.#cache.set(key, { token, useUntil: this.#useUntil(token) });
          return token;
        })
        .finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  /** Drops a cached token, e.g. after the resource server rejected it. */
  invalidate(connection: string, options: { scope?: string } = {}): void {
    this.#cache.delete(`${connection}\n${options.scope ?? ''}`);
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }

  #useUntil(token: AccessToken): number {
    const expiresAt = Date.parse(token.expires_at);
    const lifetimeMs = Math.max(0, token.expires_in * 1000);
    const marginMs = Math.min(this.#options.refreshBeforeSeconds * 1000, lifetimeMs / 2);
    return expiresAt - marginMs;
  }

  async #fetchToken(connection: string, scope: string | undefined): Promise<AccessToken> {
    const url = new URL(
      `${this.#options.baseUrl.replace(/\/+$/, '')}/connections/${encodeURIComponent(connection)}/token`,
    );
    if (scope) url.searchParams.set('scope', scope);
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.#options.functionKey) headers['x-functions-key'] = this.#options.functionKey;
      if (this.#options.credential) {
        const bearer = await this.#options.credential.getToken(this.#options.credentialScope ?? '');
        if (!bearer)
          throw new BrokerClientError(0, 'credential_unavailable', 'The credential returned no token');
        headers.authorization = `Bearer ${bearer.token}`;
      }
      let res: Response;
      try {
        res = await (this.#options.fetch ?? fetch)(url, { headers });
      } catch (err) {
        throw new BrokerClientError(
          0,
          'network_error',
          `The broker could not be reached: ${(err as Error).name}`,
        );
      }
      if (res.status === 200) return (await res.json()) as AccessToken;
      const error = await toError(res);
      if (res.status !== 503 || attempt >= this.#options.maxRetries) throw error;
      const waitSeconds = Math.min(
        error.retryAfterSeconds ?? 2 ** attempt,
        this.#options.maxRetryWaitSeconds,
      );
      await (this.#options.sleep ?? defaultSleep)(waitSeconds * 1000);
    }
  }
}

async function toError(res: Response): Promise<BrokerClientError> {
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
  const text = await res.text();
  let problem: Problem | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    if (typeof parsed.code === 'string') problem = parsed as Problem;
  } catch {
    // Not problem+json: the host's own 401/404 have no body.
  }
  const code = problem?.code ?? (res.status === 401 ? 'unauthorized' : `http_${res.status}`);
  const message = problem?.detail ?? `The broker answered ${res.status}`;
  return new BrokerClientError(res.status, code, message, problem, retryAfter);
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}
