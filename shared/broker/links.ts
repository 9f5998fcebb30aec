/**
 * @module broker/links
 * Connect links: one connection, expiring, signed with the current link key. A link names the connection and
 * its instance (`createdAt`), so it dies with the connection it was made for even if the name returns.
 */
import { constantTimeEqual, type Keyring, randomToken, signToken, verifyToken } from '../crypto.ts';
import { BrokerError } from '../errors.ts';
import type { ConnectionRecord } from '../store/types.ts';

export interface LinkPayload {
  c: string;
  /** The connection's createdAt: a link dies with the connection it was made for, even if the name returns. */
  t: number;
  exp: number;
  n: string;
}

const NOT_VALID = 'This connect link is not valid. Ask your administrator for a new one.';

/** The link token for `record`, valid until `exp` (epoch ms). */
export function mintLink(keyring: Keyring, record: ConnectionRecord, exp: number): string {
  return signToken(keyring, 'connect-link', {
    c: record.connection,
    t: record.createdAt,
    exp,
    n: randomToken(9),
  } satisfies LinkPayload);
}

/** The payload of a link for connection `name` that verifies and has not expired at `now`; else throws. */
export function checkLink(keyring: Keyring, name: string, link: string, now: number): LinkPayload {
  const payload = verifyToken(keyring, 'connect-link', link) as Partial<LinkPayload> | undefined;
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

/** Throws unless the link was made for this instance of the connection. */
export function checkLinkInstance(payload: LinkPayload, record: ConnectionRecord): void {
  if (payload.t !== record.createdAt) {
    throw new BrokerError('invalid_link', NOT_VALID, {
      detail: 'link for an earlier connection of this name',
    });
  }
}
