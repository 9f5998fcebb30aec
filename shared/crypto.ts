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

export type KeyPurpose = 'connect-link' | 'state-cookie' | 'connect-consent';

interface DerivedKey {
  kid: string;
  key: Buffer;
}

export class Keyring {
  readonly #derived: Map<KeyPurpose, DerivedKey[]> = new Map();

  constructor(keys: readonly SecretKey[]) {
    if (keys.length === 0) throw new Error('Keyring needs at least one key');
    for (const purpose of ['connect-link', 'state-cookie', 'connect-consent'] as const) {
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
  const box = aesGcmEncrypt(key, JSON.stringify(payload), `${kid}|${aad}`);
  return [kid, ...[box.iv, box.data, box.tag].map((b) => b.toString('base64url'))].join('.');
}

export function unseal(keyring: Keyring, purpose: KeyPurpose, sealed: string, aad: string): unknown {
  const parts = sealed.split('.');
  if (parts.length !== 4) return undefined;
  const [kid, iv, ct, tag] = parts as [string, string, string, string];
  const derived = keyring.find(purpose, kid);
  if (!derived) return undefined;
  try {
    const box = {
      iv: Buffer.from(iv, 'base64url'),
      data: Buffer.from(ct, 'base64url'),
      tag: Buffer.from(tag, 'base64url'),
    };
    return JSON.parse(aesGcmDecrypt(derived.key, box, `${kid}|${aad}`).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export const AES_GCM_IV_BYTES = 12;
/** Pinned: without `authTagLength`, Node's decipher accepts truncated tags down to 4 bytes. */
export const AES_GCM_TAG_BYTES = 16;

export interface AesGcmBox {
  iv: Buffer;
  data: Buffer;
  tag: Buffer;
}

/** AES-256-GCM with a fresh random 96-bit IV; `aad` binds the ciphertext to its context. */
export function aesGcmEncrypt(key: Buffer, plaintext: string | Buffer, aad: string): AesGcmBox {
  const iv = randomBytes(AES_GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: AES_GCM_TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, data, tag: cipher.getAuthTag() };
}

/** The plaintext; throws when the IV or tag has the wrong length or the box does not authenticate. */
export function aesGcmDecrypt(key: Buffer, box: AesGcmBox, aad: string): Buffer {
  if (box.iv.length !== AES_GCM_IV_BYTES) throw new Error('bad AES-GCM IV length');
  // With authTagLength, setAuthTag throws on any other tag length.
  const decipher = createDecipheriv('aes-256-gcm', key, box.iv, { authTagLength: AES_GCM_TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(box.tag);
  return Buffer.concat([decipher.update(box.data), decipher.final()]);
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
