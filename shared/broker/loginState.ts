/**
 * @module broker/loginState
 * The sealed login cookie's content: what the callback needs to finish one sign-in (state, nonce, PKCE
 * verifier, scopes), encrypted (JWE `dir` + A256GCM with `exp`, crypto.ts) and bound to the cookie's name.
 * Cookies in the format used before (`kid.iv.ciphertext.tag`) are read while their key is listed.
 */
import { decryptJwt, encryptJwt, type Keyring, unseal } from '../crypto.ts';

export interface LoginState {
  /** Connection. */
  c: string;
  /** Provider name when the sign-in started. */
  p: string;
  /** The connection's createdAt when the sign-in started (the link's `t`): the sign-in finishes only into that
   * instance of the connection. Absent in cookies sealed before it was added. */
  t?: number;
  /** OAuth `state`. */
  s: string;
  /** OpenID Connect nonce. */
  n: string;
  /** PKCE code verifier. */
  v: string;
  /** Epoch milliseconds. */
  exp: number;
  scopes: string[];
}

export function sealLoginState(keyring: Keyring, state: LoginState, cookieName: string): Promise<string> {
  const { exp, ...claims } = state;
  return encryptJwt({ keyring: keyring, purpose: 'state-cookie' }, claims, exp, cookieName);
}

/** The state in `cookie` (expired or not: the caller decides), or undefined when it does not open. */
export async function openLoginState(
  keyring: Keyring,
  cookie: string,
  cookieName: string,
  now: number,
): Promise<LoginState | undefined> {
  const jwt = await decryptJwt({ keyring: keyring, purpose: 'state-cookie' }, cookie, now, cookieName);
  let state: Partial<LoginState> | undefined;
  if (jwt) {
    const { aud: _aud, ...claims } = jwt.payload;
    state = { ...claims, exp: jwt.expiresAt };
  } else {
    state = unseal(keyring, 'state-cookie', cookie, cookieName) as Partial<LoginState> | undefined;
  }
  if (
    !state ||
    typeof state.s !== 'string' ||
    typeof state.exp !== 'number' ||
    !Array.isArray(state.scopes) ||
    (state.t !== undefined && typeof state.t !== 'number')
  )
    return undefined;
  return state as LoginState;
}
