/**
 * @module broker/views
 * What the manage API shows about a connection. Built field by field from the record so that no token can
 * slip into a response when the record grows.
 */
import type { ConnectionRecord, RecordMetadata } from '../store/types.ts';

export interface ConnectionView {
  connection: string;
  provider: string;
  status: ConnectionRecord['status'];
  scopes: string[];
  description?: string;
  grantedScopes?: string[];
  identity?: { username?: string; tenantId?: string; objectId?: string };
  expectedIdentity?: { username?: string; tenantId?: string; objectId?: string };
  allowedCallers?: string[];
  createdAt: string;
  updatedAt: string;
  connectedAt?: string;
  refreshedAt?: string;
  accessTokenExpiresAt?: string;
  /** When the grant itself ends, if the provider said so (`refresh_token_expires_in`): reconnect before then. */
  grantExpiresAt?: string;
  failures: number;
  nextAttemptAt?: string;
  lastError?: {
    code: string;
    providerError?: string;
    providerCodes?: number[];
    /** Why a person must sign in (`needs_reauth`): `interaction` still serves the token it holds until expiry. */
    cause?: 'revoked' | 'interaction' | 'consent';
    at: string;
  };
  /** Microsoft sent a claims challenge; the next connect link carries it. */
  claimsChallenge?: boolean;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function connectionView(record: ConnectionRecord): ConnectionView {
  const view: ConnectionView = {
    connection: record.connection,
    provider: record.settings.provider,
    status: record.status,
    scopes: [...record.settings.scopes],
    createdAt: new Date(record.createdAt).toISOString(),
    updatedAt: new Date(record.updatedAt).toISOString(),
    failures: record.failures,
  };
  if (record.settings.description !== undefined) view.description = record.settings.description;
  if (record.tokens) view.grantedScopes = [...record.tokens.grantedScopes];
  if (record.identity) {
    view.identity = {};
    if (record.identity.username !== undefined) view.identity.username = record.identity.username;
    if (record.identity.tenantId !== undefined) view.identity.tenantId = record.identity.tenantId;
    if (record.identity.objectId !== undefined) view.identity.objectId = record.identity.objectId;
  }
  if (record.settings.expectedIdentity) view.expectedIdentity = { ...record.settings.expectedIdentity };
  if (record.settings.allowedCallers) view.allowedCallers = [...record.settings.allowedCallers];
  const optional: [keyof ConnectionView, string | undefined][] = [
    ['connectedAt', iso(record.connectedAt)],
    ['refreshedAt', iso(record.refreshedAt)],
    ['accessTokenExpiresAt', iso(record.tokens?.primary?.expiresAt)],
    ['grantExpiresAt', iso(record.tokens?.refreshTokenExpiresAt)],
    ['nextAttemptAt', iso(record.nextAttemptAt)],
  ];
  for (const [key, value] of optional)
    if (value !== undefined) (view as unknown as Record<string, string>)[key] = value;
  if (record.lastError) {
    view.lastError = { code: record.lastError.code, at: new Date(record.lastError.at).toISOString() };
    if (record.lastError.providerError) view.lastError.providerError = record.lastError.providerError;
    if (record.lastError.providerCodes) view.lastError.providerCodes = [...record.lastError.providerCodes];
    if (record.lastError.cause) view.lastError.cause = record.lastError.cause;
  }
  if (record.claims !== undefined) view.claimsChallenge = true;
  return view;
}

export interface ConnectionSummary {
  connection: string;
  provider: string;
  status: RecordMetadata['status'];
  accessTokenExpiresAt?: string;
  grantExpiresAt?: string;
  refreshedAt?: string;
  failures: number;
}

export function summaryView(meta: RecordMetadata): ConnectionSummary {
  const view: ConnectionSummary = {
    connection: meta.connection,
    provider: meta.provider,
    status: meta.status,
    failures: meta.failures,
  };
  if (meta.accessExpiresAt !== undefined)
    view.accessTokenExpiresAt = new Date(meta.accessExpiresAt).toISOString();
  if (meta.refreshedAt !== undefined) view.refreshedAt = new Date(meta.refreshedAt).toISOString();
  if (meta.grantExpiresAt !== undefined) view.grantExpiresAt = new Date(meta.grantExpiresAt).toISOString();
  return view;
}
