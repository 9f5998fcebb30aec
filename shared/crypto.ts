/**
 * @module crypto
 * Signed connect links and sealed state cookies. Both use keys derived (HKDF) from the configured key list,
 * so one rotation of `BROKER_KEYS` rotates both; the first key signs/seals, every listed key still verifies.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  createHash,
} from 'node:crypto';
import type { SecretKey } from './config.ts';

export type KeyPurpose = 'connect-link' | 'state-cookie';

interface DerivedKey {
  kid: string;
  key: Buffer;
}

export class Keyring {
  readonly #derived: Map<KeyPurpose, DerivedKey[]> = new Map();

  constructor(keys: readonly SecretKey[]) {
    if (keys.length === 0) throw new Error('Keyring needs at least one key');
    for (const purpose of ['connect-link', 'state-cookie'] as const) {
      this.#derived.set(
        purpose,
        keys.map((k) => ({
          kid: k.kid,
          key: Buffer.from(hkdfSync('sha256', k.key, Buffer.alloc(0), `token-broker/${purpose}/v1`, 32)),
        })),
      );
    }
  }

  current(purpose: KeyPurpose): DerivedKey {
    const first = this.#derived.get(purpose)?.[0];
    if (!first) throw new Error('no key');
    return first;
  }

  find(purpose: KeyPurpose, kid: string): DerivedKey | undefined {
    return this.#derived.get(purpose)?.find((k) => k.kid === kid);
  }
}

/** Constant-time string comparison that does not leak length differences through an early exit. */
export function constantTimeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

/** `kid.payload.mac`, all base64url. The payload is readable (not secret) but cannot be altered. */
export function signToken(keyring: Keyring, purpose: KeyPurpose, payload: object): string {
  const { kid, key } = keyring.current(purpose);
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const mac = createHmac('sha256', key).update(`${purpose}.${kid}.${body}`).digest('base64url');
  return `${kid}.${body}.${mac}`;
}

/** Returns the payload when the MAC verifies under any listed key, else undefined. */
export function verifyToken(keyring: Keyring, purpose: KeyPurpose, token: string): unknown {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [kid, body, mac] = parts as [string, string, string];
  const derived = keyring.find(purpose, kid);
  if (!derived) return undefined;
  const expected = createHmac('sha256', derived.key).update(`${purpose}.${kid}.${body}`).digest('base64url');
  if (!constantTimeEqual(expected, mac)) return undefined;
  try {
    return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** AES-256-GCM: `kid.iv.ciphertext.tag`, base64url; `aad` binds the blob to its context. */
export function seal(keyring: Keyring, purpose: KeyPurpose, payload: object, aad: string): string {
  const { kid, key } = keyring.current(purpose);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(`${kid}|${aad}`));
  const ct = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return [
    kid,
    iv.toString('base64url'),
    ct.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
  ].join('.');
}

export function unseal(keyring: Keyring, purpose: KeyPurpose, sealed: string, aad: string): unknown {
  const parts = sealed.split('.');
  if (parts.length !== 4) return undefined;
  const [kid, iv, ct, tag] = parts as [string, string, string, string];
  const derived = keyring.find(purpose, kid);
  if (!derived) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', derived.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(`${kid}|${aad}`));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const pt = Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
    return JSON.parse(pt.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
