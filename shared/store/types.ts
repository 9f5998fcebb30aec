/**
 * @module store/types
 * The storage seam. A {@link ConnectionRecord} is the whole envelope for one connection; it is written in one
 * operation, so the refresh token and the access token always change together. {@link RecordMetadata} is the
 * non-secret summary the refresh sweep reads (Key Vault tags), so the sweep never reads secret values of
 * connections that are not due.
 */

export const CONNECTION_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export type ConnectionStatus = 'pending' | 'active' | 'needs_reauth' | 'error';

/** Who the connection must belong to; checked on a verified id_token at callback time. */
export interface ExpectedIdentity {
  tenantId?: string;
  objectId?: string;
  username?: string;
}

/** What an admin sets with `PUT manage/connections/{connection}`. Nothing secret. */
export interface ConnectionSettings {
  provider: string;
  scopes: string[];
  description?: string;
  expectedIdentity?: ExpectedIdentity;
  /** Caller app ids (`azp`/`appid`) allowed to read this connection's token; empty = any authorised caller. */
  allowedCallers?: string[];
}

export interface ConnectedIdentity {
  tenantId?: string;
  objectId?: string;
  subject?: string;
  username?: string;
  issuer?: string;
}

export interface AccessTokenEntry {
  accessToken: string;
  tokenType: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** Epoch milliseconds after which a proactive refresh is due (Microsoft `refresh_in`). */
  refreshAt?: number;
  /** Epoch milliseconds the broker received it: with `expiresAt`, the lifetime that bounds the refresh margin.
   * Absent in records written before it was kept. */
  issuedAt?: number;
  scope: string;
}

export interface TokenSet {
  refreshToken: string;
  /** Token for the connection's own scopes. */
  primary?: AccessTokenEntry;
  /** Tokens for other resources asked with `?scope=`; key = normalised scope string. */
  extra?: Record<string, AccessTokenEntry>;
  /** Scopes the provider reported as granted. */
  grantedScopes: string[];
  /** Epoch milliseconds the grant ends, when the provider said so (`refresh_token_expires_in`). */
  refreshTokenExpiresAt?: number;
}

export interface LastError {
  code: string;
  /** Provider `error` value and, for Microsoft, the AADSTS numbers — never descriptions. */
  providerError?: string;
  providerCodes?: number[];
  /** For `needs_reauth`: `revoked` and `consent` withhold a still-valid token, `interaction` serves it to expiry. */
  cause?: 'revoked' | 'interaction' | 'consent';
  at: number;
}

export interface ConnectionRecord {
  /** Envelope format version. */
  v: 1;
  connection: string;
  settings: ConnectionSettings;
  status: ConnectionStatus;
  tokens?: TokenSet;
  identity?: ConnectedIdentity;
  createdAt: number;
  updatedAt: number;
  connectedAt?: number;
  /** Last successful refresh (or connect). Keep-alive is measured from here. */
  refreshedAt?: number;
  /** Consecutive failed refreshes. */
  failures: number;
  /** Earliest next refresh attempt after a transient failure (backoff). */
  nextAttemptAt?: number;
  lastError?: LastError;
  /** Claims challenge (JSON text) from Microsoft's last `interaction_required`, sent with the next sign-in. */
  claims?: string;
  /** Last time a caller read a token of this connection, as known to the instance that wrote the record: it is
   * written with each refresh, never on a read. The sweep stops refreshing ahead connections idle for
   * `BROKER_IDLE_AFTER_HOURS` (they are still kept alive). */
  readAt?: number;
  /** Increases on every write; lets a refresher notice that someone else wrote after it read. */
  revision: number;
}

/** The non-secret summary of a record: what the sweep and `GET manage/connections` need. */
export interface RecordMetadata {
  connection: string;
  provider: string;
  status: ConnectionStatus;
  accessExpiresAt?: number;
  refreshAt?: number;
  refreshedAt?: number;
  nextAttemptAt?: number;
  /** When the grant ends, if the provider stated it (see {@link TokenSet.refreshTokenExpiresAt}). */
  grantExpiresAt?: number;
  readAt?: number;
  failures: number;
  revision: number;
  updatedAt: number;
}

/** One stored version of a record, as the Key Vault store lists them (no broker code reads old versions). */
export interface RecordVersion {
  /** Backend version id: 32 lowercase hex characters in both stores. */
  version: string;
  /** Epoch milliseconds the version was written. */
  createdAt: number;
  /** False when the version was disabled in Key Vault (it can then not be read). */
  enabled: boolean;
  /** Non-secret summary of that version; undefined when the backend could not tell. */
  metadata?: RecordMetadata;
}

export interface TokenStore {
  /** Human-readable kind for logs and health (`file`, `keyvault`). */
  readonly kind: string;
  get(connection: string): Promise<ConnectionRecord | undefined>;
  /** Creates or replaces the record. Must be atomic: a reader sees the old or the new record, never a mix. */
  put(record: ConnectionRecord): Promise<void>;
  /** Metadata of every record, without reading secret values where the backend allows it. */
  listMetadata(): Promise<RecordMetadata[]>;
  /** The same, page by page as the backend answers, so a sweep can start before the listing ends. Optional:
   * stores without paging (the file store) are listed with {@link listMetadata}. */
  listMetadataPages?(): AsyncIterable<RecordMetadata[]>;
  /** Removes the record (Key Vault: soft delete). Returns false when there was none. */
  delete(connection: string): Promise<boolean>;
}

export function toMetadata(record: ConnectionRecord): RecordMetadata {
  const primary = record.tokens?.primary;
  const meta: RecordMetadata = {
    connection: record.connection,
    provider: record.settings.provider,
    status: record.status,
    failures: record.failures,
    revision: record.revision,
    updatedAt: record.updatedAt,
  };
  if (primary) meta.accessExpiresAt = primary.expiresAt;
  if (primary?.refreshAt !== undefined) meta.refreshAt = primary.refreshAt;
  if (record.refreshedAt !== undefined) meta.refreshedAt = record.refreshedAt;
  if (record.nextAttemptAt !== undefined) meta.nextAttemptAt = record.nextAttemptAt;
  if (record.tokens?.refreshTokenExpiresAt !== undefined)
    meta.grantExpiresAt = record.tokens.refreshTokenExpiresAt;
  if (record.readAt !== undefined) meta.readAt = record.readAt;
  return meta;
}
