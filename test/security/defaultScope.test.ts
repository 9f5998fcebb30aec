/**
 * The `/.default` rule, against the demo IdP in process. `{resource}/.default` means "every permission the app
 * holds on that resource" at Microsoft — consented by this user for any connection, or by an admin for everyone
 * — so passing it through would hand a Mail.Send-only connection's callers whatever else the app may do.
 * The rule (docs/security.md, "The /.default rule"): allowed only for a resource the connection holds granted
 * scopes on, alone, and the provider is asked for exactly those scopes; other resources' `.default` is refused
 * before any provider call.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BrokerError } from '../../shared/errors.ts';
import { type IdpBrokerHarness, startIdpBroker } from '../support/idpBroker.ts';

const GRAPH = 'https://graph.microsoft.com';
const caller = { kind: 'function_key' as const };
let h: IdpBrokerHarness;

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    return err instanceof BrokerError ? `${err.status} ${err.code}` : String(err);
  }
}

before(async () => {
  h = await startIdpBroker();
  await h.broker.upsertConnection('sender', { provider: 'microsoft', scopes: [`${GRAPH}/Mail.Send`] });
  const { params, cookie } = await h.connect(h.broker, 'sender');
  await h.broker.completeCallback(params, cookie);
});

after(() => h.closeAndScanLogs());

describe('the /.default rule', () => {
  it('Graph .default on a Mail.Send-only connection asks the IdP for Mail.Send, and claims nothing broader', async () => {
    const granted = (await h.store.get('sender'))?.tokens?.grantedScopes ?? [];
    h.idp.stats.reset();
    const answer = await h.broker.getAccessToken('sender', caller, [`${GRAPH}/.default`]);
    assert.equal(h.idp.stats.refreshGrants, 1);
    const sent = h.idp.tokenLog.at(-1)?.scope ?? '';
    assert.doesNotMatch(sent, /\.default/i, 'the IdP was asked for .default');
    assert.match(sent, /Mail\.Send/);
    const lower = new Set(granted.map((s) => s.toLowerCase()));
    for (const s of answer.scope.split(' ').filter((x) => x.includes('/')))
      assert.ok(lower.has(s.toLowerCase()), `answer claims ${s}, not granted to the connection`);
    // The second read is served from the cache under the same request.
    h.idp.stats.reset();
    await h.broker.getAccessToken('sender', caller, [`${GRAPH}/.default`]);
    assert.equal(h.idp.stats.tokenRequests, 0);
  });

  it('another resource’s .default is refused (403) and never reaches the IdP', async () => {
    h.idp.stats.reset();
    for (const other of [
      'https://ads.microsoft.com/.default',
      'https://api.ads.microsoft.com/.default',
      'api://token-broker/.default',
    ]) {
      assert.equal(
        await refusal(h.broker.getAccessToken('sender', caller, [other])),
        '403 scope_not_granted',
      );
    }
    assert.equal(h.idp.stats.tokenRequests, 0);
  });

  it('.default mixed with named scopes is a 400, without an IdP call', async () => {
    h.idp.stats.reset();
    assert.equal(
      await refusal(h.broker.getAccessToken('sender', caller, [`${GRAPH}/.default`, `${GRAPH}/Mail.Send`])),
      '400 invalid_request',
    );
    assert.equal(h.idp.stats.tokenRequests, 0);
  });
});
