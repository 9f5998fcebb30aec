/**
 * @module console/client/api
 * The console's only way to the broker: the manage API over fetch. Credentials live in this module's closure
 * (the tab's memory) and travel in headers only — never in a URL, never in Web Storage, never in a cookie — so
 * a reload forgets them and no cross-site request can carry them (CSRF).
 */
import type { LastError } from '../explain.ts';

export interface ConnectionSummary {
  connection: string;
  provider: string;
  status: string;
  accessTokenExpiresAt?: string;
  refreshedAt?: string;
  failures: number;
}

export interface Identity {
  username?: string;
  tenantId?: string;
  objectId?: string;
}

export interface ConnectionView extends ConnectionSummary {
  scopes: string[];
  description?: string;
  grantedScopes?: string[];
  identity?: Identity;
  expectedIdentity?: Identity;
  allowedCallers?: string[];
  createdAt: string;
  updatedAt: string;
  connectedAt?: string;
  /** When the grant itself ends, if the provider said so: reconnect before then. */
  grantExpiresAt?: string;
  nextAttemptAt?: string;
  lastError?: LastError;
}

export interface ProviderInfo {
  name: string;
  kind: string;
  preset?: string;
  defaultScopes: string[];
}

/** A provider preset not configured on this broker (BROKER_PROVIDERS can add it). */
export interface PresetInfo {
  name: string;
  defaultScopes: string[];
  requiresIssuer: boolean;
}

export interface ConnectionSettings {
  provider: string;
  scopes: string[];
  description?: string;
  expectedIdentity?: Identity;
  allowedCallers?: string[];
}

/** A problem+json answer (or a network failure, status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, detail: string) {
    super(detail);
    this.status = status;
    this.code = code;
  }
  /** The field a 400 `invalid_request` names: "Invalid body: scopes.0: must be …" → `scopes.0`. */
  get field(): string | undefined {
    if (this.code !== 'invalid_request') return undefined;
    const unexpected = /unexpected body field\(s\): ([\w.,\s]+)/.exec(this.message);
    if (unexpected) return unexpected[1]?.split(',')[0]?.trim();
    return /^Invalid (?:body|path): ([A-Za-z0-9_.]+):/.exec(this.message)?.[1];
  }
}

export interface Credentials {
  functionKey: string;
  /** Entra mode: a current access token for the broker API (MSAL Browser renews it). */
  bearer?: () => Promise<string>;
}

export class ManageApi {
  readonly #base: string;
  readonly #credentials: Credentials;

  constructor(apiBase: string, credentials: Credentials) {
    this.#base = apiBase;
    this.#credentials = credentials;
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {
      'x-functions-key': this.#credentials.functionKey,
      accept: 'application/json, application/problem+json',
    };
    if (this.#credentials.bearer) headers.authorization = `Bearer ${await this.#credentials.bearer()}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.#base}/${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
    } catch {
      throw new ApiError(0, 'network_error', 'The broker could not be reached. Check your connection.');
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const problem = (json ?? {}) as { code?: unknown; detail?: unknown };
      const code =
        typeof problem.code === 'string' ? problem.code : res.status === 401 ? 'unauthorized' : 'http_error';
      const detail =
        typeof problem.detail === 'string'
          ? problem.detail
          : res.status === 401
            ? 'The function key was not accepted.'
            : `The broker answered ${res.status}.`;
      throw new ApiError(res.status, code, detail);
    }
    return json as T;
  }

  list(): Promise<{ connections: ConnectionSummary[] }> {
    return this.#call('GET', 'manage/connections');
  }
  get(name: string): Promise<ConnectionView> {
    return this.#call('GET', `manage/connections/${encodeURIComponent(name)}`);
  }
  put(name: string, settings: ConnectionSettings): Promise<ConnectionView> {
    return this.#call('PUT', `manage/connections/${encodeURIComponent(name)}`, settings);
  }
  delete(name: string): Promise<void> {
    return this.#call('DELETE', `manage/connections/${encodeURIComponent(name)}`);
  }
  link(name: string, ttlSeconds: number): Promise<{ url: string; expiresAt: string }> {
    return this.#call('POST', `manage/connections/${encodeURIComponent(name)}/link`, { ttlSeconds });
  }
  refresh(name: string): Promise<ConnectionView> {
    return this.#call('POST', `manage/connections/${encodeURIComponent(name)}/refresh`);
  }
  importToken(name: string, refreshToken: string): Promise<ConnectionView> {
    return this.#call('POST', `manage/connections/${encodeURIComponent(name)}/import`, { refreshToken });
  }
  providers(): Promise<{ providers: ProviderInfo[]; presets?: PresetInfo[] }> {
    return this.#call('GET', 'manage/providers');
  }
}
