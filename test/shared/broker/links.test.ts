import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { checkLink, checkLinkInstance, mintLink } from '../../../shared/broker/links.ts';
import { keyIdOf } from '../../../shared/config.ts';
import { Keyring, signToken } from '../../../shared/crypto.ts';
import { BrokerError } from '../../../shared/errors.ts';
import { legacyLink } from '../legacyFormats.ts';
import { activeRecord, harness, T0 } from './fixture.ts';

const invalid = (detail: string) => (e: unknown) =>
  e instanceof BrokerError && e.code === 'invalid_link' && e.detail === detail;
const key = () => {
  const k = randomBytes(32);
  return { kid: keyIdOf(k), key: k };
};

describe('connect links', () => {
  const { ctx } = harness();
  const record = activeRecord();

  it('a minted link checks out for its connection until it expires', async () => {
    const link = await mintLink(ctx.keyring, record, T0 + 1000);
    const payload = await checkLink(ctx.keyring, 'sales-mailbox', link, T0 + 999);
    assert.equal(payload.c, 'sales-mailbox');
    assert.equal(payload.t, record.createdAt);
    assert.equal(payload.exp, T0 + 1000);
    checkLinkInstance(payload, record);
    // Valid signature and instance, only the expiry differs: refused as expired, not as forged.
    await assert.rejects(checkLink(ctx.keyring, 'sales-mailbox', link, T0 + 1000), invalid('link expired'));
    // The expiry is told apart for the page and the logs (reason=expired), not just by its message.
    await assert.rejects(
      checkLink(ctx.keyring, 'sales-mailbox', link, T0 + 1000),
      (e) => e instanceof BrokerError && e.fields?.reason === 'expired',
    );
  });

  it('refuses another connection, a changed signature and an earlier instance of the name', async () => {
    const link = await mintLink(ctx.keyring, record, T0 + 1000);
    await assert.rejects(checkLink(ctx.keyring, 'other', link, T0), invalid('link for another connection'));
    await assert.rejects(
      checkLink(ctx.keyring, 'sales-mailbox', `${link.slice(0, -3)}AAA`, T0),
      invalid('bad link signature'),
    );
    const payload = await checkLink(ctx.keyring, 'sales-mailbox', link, T0);
    assert.throws(
      () => checkLinkInstance(payload, { ...record, createdAt: T0 + 1 }),
      invalid('link for an earlier connection of this name'),
    );
  });

  it('a link lives exactly as long as asked, to the millisecond', async () => {
    const link = await mintLink(ctx.keyring, record, T0 + 1500);
    assert.equal((await checkLink(ctx.keyring, 'sales-mailbox', link, T0 + 1499)).exp, T0 + 1500);
    await assert.rejects(checkLink(ctx.keyring, 'sales-mailbox', link, T0 + 1500), invalid('link expired'));
  });

  it('a link in the format used before jose works while its key is listed, through one rotation', async () => {
    const old = key();
    const before = new Keyring([old]);
    const link = legacyLink(before, { c: 'sales-mailbox', t: record.createdAt, exp: T0 + 5000, n: 'x' });
    const rotated = new Keyring([key(), old]);
    assert.equal((await checkLink(rotated, 'sales-mailbox', link, T0)).exp, T0 + 5000);
    await assert.rejects(checkLink(rotated, 'sales-mailbox', link, T0 + 5000), invalid('link expired'));
    await assert.rejects(
      checkLink(new Keyring([key()]), 'sales-mailbox', link, T0),
      invalid('bad link signature'),
    );
  });

  it('refuses a signed payload whose connection is not a string, as not for this connection', async () => {
    const numeric = signToken(ctx.keyring, 'connect-link', { c: 42, t: T0, n: 'x', exp: T0 + 1000 });
    await assert.rejects(checkLink(ctx.keyring, '42', numeric, T0), invalid('link for another connection'));
  });

  it('refuses a signed payload without an expiry, in either format', async () => {
    const noExp = signToken(ctx.keyring, 'connect-link', { c: 'sales-mailbox', t: T0, n: 'x' });
    await assert.rejects(
      checkLink(ctx.keyring, 'sales-mailbox', noExp, T0),
      invalid('link for another connection'),
    );
  });
});
