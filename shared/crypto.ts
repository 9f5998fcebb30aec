/**
 * @module crypto
 * Signed connect links and sealed login cookies, as JOSE with jose: links are JWS (HS256) and cookies JWE
 * (`dir`, A256GCM), both JWTs with `exp` and the key id in the protected header. Keys are derived (HKDF) per
 * purpose from the configured key list, so one rotation of `BROKER_KEYS` rotates all of them; the first key
 * signs/seals, every listed key still verifies. The formats used before jose (`kid.payload.mac` and
 * `kid.iv.ciphertext.tag`) are still read while their key is listed, so links and cookies issued before an
 * upgrade keep working through one rotation.
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
import {
  type CompactJWEHeaderParameters,
  EncryptJWT,
  errors as joseErrors,
  type JWSHeaderParameters,
  jwtDecrypt,
  jwtVerify,
  type JWTPayload,
  SignJWT,
} from 'jose';
import type { SecretKey } from './config.ts';

export type KeyPurpose = 'connect-link' | 'state-cookie' | 'connect-consent';

interface DerivedKey {
  kid: string;
  key: Buffer;
}

/** `v1`: keys of the formats used before jose (still read); `jose`: keys of the JWS/JWE formats. */
export type KeyFormat = 'v1' | 'jose';

export class Keyring {
  readonly #derived: Map<KeyPurpose, DerivedKey[]> = new Map();
  readonly #jose: Map<KeyPurpose, DerivedKey[]> = new Map();

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
      // A key of its own per format: a v1 MAC or ciphertext can never be taken for a JOSE one, or back.
      this.#jose.set(
        purpose,
        keys.map((k) => ({
          kid: k.kid,
          key: Buffer.from(hkdfSync('sha256', k.key, Buffer.alloc(0), `token-broker/${purpose}/jose`, 32)),
        })),
      );
    }
  }

  current(purpose: KeyPurpose, format: KeyFormat = 'v1'): DerivedKey {
    const first = this.#keys(format).get(purpose)?.[0];
    if (!first) throw new Error('no key');
    return first;
  }

  find(purpose: KeyPurpose, kid: string, format: KeyFormat = 'v1'): DerivedKey | undefined {
    return this.#keys(format)
      .get(purpose)
      ?.find((k) => k.kid === kid);
  }

  #keys(format: KeyFormat): Map<KeyPurpose, DerivedKey[]> {
    return format === 'jose' ? this.#jose : this.#derived;
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

/** The login-cookie format used before jose: AES-256-GCM `kid.iv.ciphertext.tag`, base64url, with `kid|aad` as
 * additional data. The broker only reads it now ({@link unseal}); tests write it to prove old cookies open. */
export function seal(keyring: Keyring, purpose: KeyPurpose, payload: object, aad: string): string {
  const { kid, key } = keyring.current(purpose);
  const box = aesGcmEncrypt(key, JSON.stringify(payload), `${kid}|${aad}`);
  return [kid, ...[box.iv, box.data, box.tag].map((b) => b.toString('base64url'))].join('.');
}

/** Reads {@link seal}'s format: undefined unless it opens under a listed key with this `aad`. */
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

/** A token that checked out: its claims (without `exp`), when it expires, and whether that has passed. */
export interface JwtResult {
  payload: JWTPayload;
  /** Epoch milliseconds. */
  expiresAt: number;
  expired: boolean;
}

/** JWT `exp` counts whole seconds; the exact expiry (epoch ms) travels beside it, so a token lives exactly as
 * long as asked. `exp` is rounded up, so a standard validator never rejects a token we still accept. */
const EXP_MS = 'exp_ms';

const typOf = (purpose: KeyPurpose) => `token-broker-${purpose}+jwt`;

/** A JWS (HS256) JWT carrying `claims`, valid until `expMs` (epoch ms, rounded down to the second). */
/** Which keys a JWT is made and checked with. */
export interface JwtUse {
  keyring: Keyring;
  purpose: KeyPurpose;
}

export async function signJwt(
  { keyring, purpose }: JwtUse,
  claims: JWTPayload,
  expMs: number,
): Promise<string> {
  const { kid, key } = keyring.current(purpose, 'jose');
  return new SignJWT({ ...claims, [EXP_MS]: expMs })
    .setProtectedHeader({ alg: 'HS256', kid, typ: typOf(purpose) })
    .setExpirationTime(Math.ceil(expMs / 1000))
    .sign(key);
}

/** The checked payload of a JWS from {@link signJwt} under any listed key, else undefined. */
export async function verifyJwt(use: JwtUse, token: string, nowMs: number): Promise<JwtResult | undefined> {
  const options = { ...claimChecks(use.purpose, nowMs), algorithms: ['HS256'] };
  return checkJwt(nowMs, () =>
    jwtVerify(token, (header: JWSHeaderParameters) => keyFor(use, header.kid), options),
  );
}

/** A JWE (`dir`, A256GCM) JWT carrying `claims`, valid until `expMs`; `audience` binds it to its use. */
export async function encryptJwt(
  { keyring, purpose }: JwtUse,
  claims: JWTPayload,
  expMs: number,
  audience: string,
): Promise<string> {
  const { kid, key } = keyring.current(purpose, 'jose');
  return new EncryptJWT({ ...claims, [EXP_MS]: expMs })
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid, typ: typOf(purpose) })
    .setAudience(audience)
    .setExpirationTime(Math.ceil(expMs / 1000))
    .encrypt(key);
}

/** The checked payload of a JWE from {@link encryptJwt} under any listed key, else undefined. */
export async function decryptJwt(
  use: JwtUse,
  token: string,
  nowMs: number,
  audience: string,
): Promise<JwtResult | undefined> {
  const options = {
    ...claimChecks(use.purpose, nowMs),
    keyManagementAlgorithms: ['dir'],
    contentEncryptionAlgorithms: ['A256GCM'],
    audience,
  };
  return checkJwt(nowMs, () =>
    jwtDecrypt(token, (header: CompactJWEHeaderParameters) => keyFor(use, header.kid), options),
  );
}

/** What every token must carry: its purpose's `typ`, an `exp`, judged on the broker's clock. */
function claimChecks(purpose: KeyPurpose, nowMs: number) {
  return { typ: typOf(purpose), currentDate: new Date(nowMs), requiredClaims: ['exp'] };
}

function keyFor({ keyring, purpose }: JwtUse, kid: string | undefined): Uint8Array {
  const derived = kid === undefined ? undefined : keyring.find(purpose, kid, 'jose');
  // jose reports this as a failed check like any other; the caller learns only "invalid".
  if (!derived) throw new Error('no listed key for this kid');
  return derived.key;
}

async function checkJwt(
  nowMs: number,
  check: () => Promise<{ payload: JWTPayload }>,
): Promise<JwtResult | undefined> {
  let payload: JWTPayload;
  try {
    payload = (await check()).payload;
  } catch (err) {
    // Thrown only after the signature or decryption checked out, so the payload is authentic.
    if (!(err instanceof joseErrors.JWTExpired)) return undefined;
    payload = err.payload;
  }
  const { exp, [EXP_MS]: expMs, ...claims } = payload;
  const expiresAt = typeof expMs === 'number' ? expMs : (exp ?? 0) * 1000;
  return { payload: claims, expiresAt, expired: nowMs >= expiresAt };
}
