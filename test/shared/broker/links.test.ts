import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLink, checkLinkInstance, mintLink } from '../../../shared/broker/links.ts';
import { signToken } from '../../../shared/crypto.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { activeRecord, harness, T0 } from './fixture.ts';

const invalid = (detail: string) => (e: unknown) =>
  e instanceof BrokerError && e.code === 'invalid_link' && e.detail === detail;

describe('connect links', () => {
  const { ctx } = harness();
  const record = activeRecord();

  it('a minted link checks out for its connection until it expires', () => {
    const link = mintLink(ctx.keyring, record, T0 + 1000);
    const payload = checkLink(ctx.keyring, 'sales-mailbox', link, T0 + 999);
    assert.equal(payload.c, 'sales-mailbox');
    assert.equal(payload.t, record.createdAt);
    checkLinkInstance(payload, record);
    // Valid signature and instance, only the expiry differs: refused as expired, not as forged.
    assert.throws(() => checkLink(ctx.keyring, 'sales-mailbox', link, T0 + 1000), invalid('link expired'));
  });

  it('refuses another connection, a changed signature and an earlier instance of the name', () => {
    const link = mintLink(ctx.keyring, record, T0 + 1000);
    assert.throws(() => checkLink(ctx.keyring, 'other', link, T0), invalid('link for another connection'));
    assert.throws(
      () => checkLink(ctx.keyring, 'sales-mailbox', `${link.slice(0, -3)}AAA`, T0),
      invalid('bad link signature'),
    );
    const payload = checkLink(ctx.keyring, 'sales-mailbox', link, T0);
    assert.throws(
      () => checkLinkInstance(payload, { ...record, createdAt: T0 + 1 }),
      invalid('link for an earlier connection of this name'),
    );
  });

  it('refuses a signed payload without an expiry', () => {
    const noExp = signToken(ctx.keyring, 'connect-link', { c: 'sales-mailbox', t: T0, n: 'x' });
    assert.throws(
      () => checkLink(ctx.keyring, 'sales-mailbox', noExp, T0),
      invalid('link for another connection'),
    );
  });
});
