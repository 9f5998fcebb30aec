/**
 * @module broker/links
 * Connect links: one connection, expiring, signed with the current link key (a JWS with `exp`, crypto.ts). A
 * link names the connection and its instance (`createdAt`), so it dies with the connection it was made for
 * even if the name returns. Links in the format used before (`kid.payload.mac`) are read while their key is
 * listed.
 */
import { constantTimeEqual, type Keyring, randomToken, signJwt, verifyJwt, verifyToken } from '../crypto.ts';
import { BrokerError } from '../errors.ts';
import type { ConnectionRecord } from '../store/types.ts';

export interface LinkPayload {
  c: string;
  /** The connection's createdAt: a link dies with the connection it was made for, even if the name returns. */
  t: number;
  /** Epoch milliseconds. */
  exp: number;
  n: string;
}

const NOT_VALID = 'This connect link is not valid. Ask your administrator for a new one.';

/** The link token for `record`, valid until `exp` (epoch ms). */
export function mintLink(keyring: Keyring, record: ConnectionRecord, exp: number): Promise<string> {
  return signJwt(
    { keyring: keyring, purpose: 'connect-link' },
    { c: record.connection, t: record.createdAt, n: randomToken(9) },
    exp,
  );
}

/** The payload of a link for connection `name` that verifies and has not expired at `now`; else throws. */
export async function checkLink(
  keyring: Keyring,
  name: string,
  link: string,
  now: number,
): Promise<LinkPayload> {
  const payload = await readLink(keyring, link, now);
  if (
    !payload ||
    typeof payload.c !== 'string' ||
    typeof payload.exp !== 'number' ||
    !constantTimeEqual(payload.c, name)
  ) {
    throw new BrokerError('invalid_link', NOT_VALID, {
      detail: payload ? 'link for another connection' : 'bad link signature',
    });
  }
  if (now >= payload.exp) {
    throw new BrokerError(
      'invalid_link',
      'This connect link has expired. Ask your administrator for a new one.',
      {
        detail: 'link expired',
        fields: { reason: 'expired' },
      },
    );
  }
  return payload as LinkPayload;
}

async function readLink(
  keyring: Keyring,
  link: string,
  now: number,
): Promise<Partial<LinkPayload> | undefined> {
  const jwt = await verifyJwt({ keyring: keyring, purpose: 'connect-link' }, link, now);
  if (jwt) return { ...jwt.payload, exp: jwt.expiresAt };
  // Format used before jose: `exp` already in milliseconds.
  return verifyToken(keyring, 'connect-link', link) as Partial<LinkPayload> | undefined;
}

/** Throws unless the link was made for this instance of the connection. */
export function checkLinkInstance(payload: LinkPayload, record: ConnectionRecord): void {
  if (payload.t !== record.createdAt) {
    throw new BrokerError('invalid_link', NOT_VALID, {
      detail: 'link for an earlier connection of this name',
    });
  }
}
