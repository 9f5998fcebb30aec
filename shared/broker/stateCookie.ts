import { createHash } from 'node:crypto';

/** Prefix of the sealed login cookie set by `connect` and read by `callback` (docs/security.md). */
export const STATE_COOKIE_NAME = '__Host-token-broker-login';
export const STATE_COOKIE_MAX_AGE_SECONDS = 600;

/**
 * The login cookie of one sign-in, named after its `state`: a second sign-in started in the same browser (or
 * pushed into it by another site) sets a cookie of its own instead of overwriting this one. The callback finds
 * the cookie from the `state` the provider sends back.
 */
export function stateCookieName(state: string): string {
  return `${STATE_COOKIE_NAME}-${createHash('sha256').update(`login\n${state}`).digest('base64url').slice(0, 16)}`;
}
