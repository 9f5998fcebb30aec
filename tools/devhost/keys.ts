/**
 * @module keys
 * Function-key checks (HOST `AuthenticationLevelHandler`): the key comes from the `x-functions-key` header if
 * that header is present at all, else from the first `code` query value. Core Tools authenticates everyone as
 * admin unless started with `--enableAuth`; the dev host enforces keys only when a key is configured.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export function normalizeAuthLevel(value: unknown): AuthLevel {
  const level = typeof value === 'string' ? value.toLowerCase() : 'anonymous';
  if (level === 'function' || level === 'admin' || level === 'anonymous') return level;
  throw new Error(`Unknown authLevel '${String(value)}' (expected anonymous, function or admin).`);
}

/** Header wins over `?code=`, even when the header's value is wrong or empty. */
export function presentedKey(headers: IncomingHttpHeaders, rawQuery: string): string | undefined {
  const header = headers['x-functions-key'];
  if (header !== undefined) return Array.isArray(header) ? header[0] : header;
  const query = rawQuery.startsWith('?') ? rawQuery.slice(1) : rawQuery;
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    if (decodeSafe(name).toLowerCase() === 'code') return eq === -1 ? '' : decodeSafe(pair.slice(eq + 1));
  }
  return undefined;
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** Constant-time comparison: both sides hashed first, so length differences leak nothing either. */
export function keysEqual(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(presented), digest(expected));
}

/** Whether a request may call a route of `level`, given the configured key (undefined = not enforced). */
export function isAuthorized(
  level: AuthLevel,
  configuredKey: string | undefined,
  headers: IncomingHttpHeaders,
  rawQuery: string,
): boolean {
  if (level === 'anonymous' || configuredKey === undefined) return true;
  return keysEqual(presentedKey(headers, rawQuery), configuredKey);
}
