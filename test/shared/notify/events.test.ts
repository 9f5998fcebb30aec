/**
 * The events the broker tells about a connection: which status changes call for one, what a payload carries
 * (and leaves out), and the id receivers de-duplicate on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  brokerEvent,
  EVENT_TYPES,
  eventForTransition,
  type EventSubject,
} from '../../../shared/notify/events.ts';

const AT = Date.parse('2026-11-29T12:00:00.000Z');

const full: EventSubject = {
  connection: 'mail',
  provider: 'microsoft',
  status: 'needs_reauth',
  revision: 7,
  createdAt: 1_700_000_000_000,
  username: 'adele@demo.example',
  lastError: {
    code: 'connection_needs_reauth',
    providerError: 'invalid_grant',
    providerCodes: [70008, 50173],
  },
};

describe('eventForTransition', () => {
  it('tells each change into active, needs_reauth and error, whatever the status before (or none)', () => {
    for (const before of [undefined, 'pending', 'active', 'needs_reauth', 'error']) {
      if (before !== 'active') assert.equal(eventForTransition(before, 'active'), 'connection.connected');
      if (before !== 'needs_reauth')
        assert.equal(eventForTransition(before, 'needs_reauth'), 'connection.needs_reauth');
      if (before !== 'error') assert.equal(eventForTransition(before, 'error'), 'connection.error');
    }
  });

  it('tells nothing when the status stays the same, or for a change into pending', () => {
    for (const s of ['active', 'needs_reauth', 'error', 'pending'])
      assert.equal(eventForTransition(s, s), undefined, s);
    assert.equal(eventForTransition('active', 'pending'), undefined);
    assert.equal(eventForTransition(undefined, 'pending'), undefined);
  });
});

describe('brokerEvent', () => {
  it('carries the type, the ISO time and the non-secret record parts, with the reason for a failure', () => {
    const e = brokerEvent('connection.needs_reauth', full, AT);
    assert.equal(e.type, 'connection.needs_reauth');
    assert.equal(e.timestamp, '2026-11-29T12:00:00.000Z');
    assert.match(e.id, /^evt_[A-Za-z0-9_-]{24}$/);
    assert.deepEqual(e.data, {
      connection: 'mail',
      provider: 'microsoft',
      status: 'needs_reauth',
      account: 'adele@demo.example',
      reason: {
        code: 'connection_needs_reauth',
        providerError: 'invalid_grant',
        providerCodes: [70008, 50173],
      },
    });
  });

  it('copies the provider codes, so a later change to the record does not change a stored event', () => {
    const codes = [70008];
    const e = brokerEvent(
      'connection.error',
      { ...full, lastError: { code: 'x', providerCodes: codes } },
      AT,
    );
    codes.push(1);
    assert.deepEqual(e.data.reason, { code: 'x', providerCodes: [70008] });
  });

  it('leaves out what the subject does not have', () => {
    const e = brokerEvent('connection.error', { connection: 'bare', provider: 'google' }, AT);
    assert.deepEqual(e.data, { connection: 'bare', provider: 'google' });
    const onlyCode = brokerEvent('connection.error', { ...full, lastError: { code: 'provider_error' } }, AT);
    assert.deepEqual(onlyCode.data.reason, { code: 'provider_error' });
  });

  it('gives no reason for connected and deleted (an old error is not why it changed), but does for error', () => {
    assert.equal(brokerEvent('connection.connected', full, AT).data.reason, undefined);
    assert.equal(brokerEvent('connection.deleted', full, AT).data.reason, undefined);
    assert.equal(brokerEvent('connection.error', full, AT).data.reason?.code, 'connection_needs_reauth');
    assert.equal(
      brokerEvent('connection.needs_reauth', full, AT).data.reason?.code,
      'connection_needs_reauth',
    );
  });

  it('has an id stable for one transition: the same for the same revision, new for any other part', () => {
    const id = brokerEvent('connection.needs_reauth', full, AT).id;
    assert.equal(brokerEvent('connection.needs_reauth', full, AT + 5000).id, id, 'told again later');
    const others = [
      brokerEvent('connection.error', full, AT),
      brokerEvent('connection.needs_reauth', { ...full, revision: 8 }, AT),
      brokerEvent('connection.needs_reauth', { ...full, createdAt: 1 }, AT),
      brokerEvent('connection.needs_reauth', { ...full, connection: 'mail2' }, AT),
    ].map((e) => e.id);
    assert.equal(new Set([id, ...others]).size, 5);
  });

  it('without a revision, takes the time into the id (two such events are two events)', () => {
    const { revision: _r, ...noRevision } = full;
    const a = brokerEvent('connection.deleted', noRevision, AT);
    const b = brokerEvent('connection.deleted', noRevision, AT + 1);
    assert.notEqual(a.id, b.id);
    assert.equal(brokerEvent('connection.deleted', noRevision, AT).id, a.id);
  });

  it('builds every declared event type', () => {
    assert.deepEqual(
      EVENT_TYPES.map((t) => brokerEvent(t, full, AT).type),
      ['connection.connected', 'connection.needs_reauth', 'connection.error', 'connection.deleted'],
    );
  });
});
