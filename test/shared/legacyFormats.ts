/**
 * The link and login-cookie formats the broker wrote before it used jose (the product only reads them now), so
 * tests can prove that links and cookies issued before an upgrade keep working.
 */
import { type Keyring, seal, signToken } from '../../shared/crypto.ts';

/** `kid.payload.mac` with `exp` in epoch milliseconds, as connect links were signed. */
export function legacyLink(
  keyring: Keyring,
  payload: { c: string; t: number; exp: number; n: string },
): string {
  return signToken(keyring, 'connect-link', payload);
}

/** `kid.iv.ciphertext.tag` with `kid|cookieName` as additional data, as login cookies were sealed. */
export function legacyLoginCookie(keyring: Keyring, state: object, cookieName: string): string {
  return seal(keyring, 'state-cookie', state, cookieName);
}
