/**
 * @module broker/consent
 * The explicit "continue" between opening a connect link and signing in (forced-connect defence): the link
 * shows a page naming the connection and the permissions, and only a POST from that page starts the sign-in.
 *
 * CSRF: a signed double-submit token bound to the link. The page sets a random value in a `__Host-`,
 * `SameSite=Strict`, HttpOnly cookie whose name is derived from the link (two links open in one browser do
 * not overwrite each other), and puts a token signed with the broker key into the form: the token names a
 * hash of the cookie value and of the link, and expires with the cookie. A cross-site page can neither read
 * the token nor make the browser send a Strict cookie with its POST.
 * @see https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html#signed-double-submit-cookie-recommended
 */
import { createHash } from 'node:crypto';
import { constantTimeEqual, type Keyring, randomToken, signToken, verifyToken } from '../crypto.ts';
import { BrokerError } from '../errors.ts';

export const CONSENT_COOKIE_PREFIX = '__Host-token-broker-consent-';
/** The page's continue button works this long (the login cookie then lives its own 10 minutes). */
export const CONSENT_MAX_AGE_SECONDS = 600;

interface ConsentPayload {
  /** sha256 of the cookie value. */
  r: string;
  /** sha256 of the link. */
  l: string;
  exp: number;
}

const digest = (text: string) => createHash('sha256').update(text).digest('base64url');

/** One consent cookie per link: a second link opened in the same browser gets its own. */
export function consentCookieName(link: string): string {
  return `${CONSENT_COOKIE_PREFIX}${digest(`consent\n${link}`).slice(0, 16)}`;
}

/** A fresh cookie value and the matching form token for `link`. */
export function newConsent(
  keyring: Keyring,
  link: string,
  now: number,
): { cookieValue: string; token: string } {
  const cookieValue = randomToken(24);
  const token = signToken(keyring, 'connect-consent', {
    r: digest(cookieValue),
    l: digest(link),
    exp: now + CONSENT_MAX_AGE_SECONDS * 1000,
  } satisfies ConsentPayload);
  return { cookieValue, token };
}

/** Throws unless `token` was issued by this broker, for `link`, with this browser's cookie, and is current. */
export function checkConsent(
  keyring: Keyring,
  link: string,
  cookieValue: string | undefined,
  token: string,
  now: number,
): void {
  const payload = verifyToken(keyring, 'connect-consent', token) as Partial<ConsentPayload> | undefined;
  const refuse = (detail: string) =>
    new BrokerError(
      'invalid_state',
      'This page was not opened in this browser, or it is too old. Open the connect link again.',
      { detail },
    );
  if (!payload || typeof payload.r !== 'string' || typeof payload.l !== 'string')
    throw refuse('consent token invalid');
  if (typeof payload.exp !== 'number' || now >= payload.exp) throw refuse('consent token expired');
  if (!constantTimeEqual(payload.l, digest(link))) throw refuse('consent token for another link');
  if (cookieValue === undefined) throw refuse('consent cookie missing');
  if (!constantTimeEqual(payload.r, digest(cookieValue))) throw refuse('consent cookie mismatch');
}
