/**
 * @module notify/events
 * What the broker tells the outside world about a connection, as Standard Webhooks payloads
 * (`{type, timestamp, data}`; https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).
 * Built field by field from non-secret record parts: no token, code or secret can reach a payload.
 */
import { createHash } from 'node:crypto';

export const EVENT_TYPES = [
  'connection.connected',
  'connection.needs_reauth',
  'connection.error',
  'connection.deleted',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface EventSubject {
  connection: string;
  provider: string;
  status?: string;
  /** The record revision the event describes; with the type and the creation time it makes the event id. */
  revision?: string | number;
  /** When this instance of the connection was created: revisions start again when a name is reused. */
  createdAt?: number;
  username?: string;
  lastError?: { code: string; providerError?: string; providerCodes?: number[] };
}

export interface BrokerEvent {
  /** Stable for one transition of one connection: receivers de-duplicate on it (the `webhook-id` header). */
  id: string;
  type: EventType;
  timestamp: string;
  data: {
    connection: string;
    provider: string;
    status?: string;
    account?: string;
    reason?: { code: string; providerError?: string; providerCodes?: number[] };
  };
}

export function brokerEvent(type: EventType, subject: EventSubject, at: number): BrokerEvent {
  const id = createHash('sha256')
    .update(
      `${subject.connection}\n${String(subject.createdAt ?? '')}\n${String(subject.revision ?? at)}\n${type}`,
    )
    .digest('base64url')
    .slice(0, 24);
  const data: BrokerEvent['data'] = { connection: subject.connection, provider: subject.provider };
  if (subject.status !== undefined) data.status = subject.status;
  if (subject.username !== undefined) data.account = subject.username;
  if (subject.lastError && type !== 'connection.connected' && type !== 'connection.deleted') {
    data.reason = { code: subject.lastError.code };
    if (subject.lastError.providerError) data.reason.providerError = subject.lastError.providerError;
    if (subject.lastError.providerCodes) data.reason.providerCodes = [...subject.lastError.providerCodes];
  }
  return { id: `evt_${id}`, type, timestamp: new Date(at).toISOString(), data };
}

/** The event a status change calls for, if any (only changes are told, not every failed attempt). */
export function eventForTransition(before: string | undefined, after: string): EventType | undefined {
  if (before === after) return undefined;
  if (after === 'active') return 'connection.connected';
  if (after === 'needs_reauth') return 'connection.needs_reauth';
  if (after === 'error') return 'connection.error';
  return undefined;
}
