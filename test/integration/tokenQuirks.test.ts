import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_EXPIRES_IN_SECONDS } from '../../shared/oauth/provider.ts';
import type { TokenQuirks } from '../../tools/demo-idp/server.ts';
import { caller, type GenericHarness, startGenericHarness } from './genericHarness.ts';

// Each quirk is produced by the demo IdP on the wire; the broker is the unmodified one, configured as an admin would.
const SCOPE = 'https://graph.microsoft.com/Mail.Read';

async function withProvider(
  quirks: TokenQuirks,
  extra: Record<string, unknown>,
  run: (h: GenericHarness) => Promise<void>,
  idp: { rotateRefreshTokens?: boolean; accessTokenTtlSeconds?: number } = {},
): Promise<void> {
  const h = await startGenericHarness({
    idp: { oidc: {}, tokenQuirks: quirks, ...idp },
    provider: (i) => ({
      issuer: i.endpoints('realms/demo').issuer,
      defaultScopes: ['offline_access', SCOPE],
      ...extra,
    }),
  });
  try {
    await run(h);
    h.secrets.assertAbsent(h.logs.join('\n'), 'logs');
  } finally {
    await h.close();
  }
}

const lifetimeSeconds = async (h: GenericHarness, name: string) => {
  const primary = (await h.store.get(name))?.tokens?.primary;
  assert.ok(primary?.issuedAt !== undefined);
  return (primary.expiresAt - primary.issuedAt) / 1000;
};

describe('token-response quirks', () => {
  it('no expires_in: the provider setting defaultExpiresInSeconds is used, never a silent 3600', async () => {
    await withProvider({ omitExpiresIn: true }, { defaultExpiresInSeconds: 900 }, async (h) => {
      await h.connect(h.broker, 'q');
      assert.equal(await lifetimeSeconds(h, 'q'), 900);
      const token = await h.broker.getAccessToken('q', caller);
      assert.equal(token.expires_in, 900);
      await h.broker.forceRefresh('q');
      assert.ok(
        h.logs.some((l) => l.startsWith('refresh.succeeded') && l.includes('no expires_in: assumed 900 s')),
        'the assumption is logged',
      );
    });
  });

  it('no expires_in and no setting: the documented generic default', async () => {
    await withProvider({ omitExpiresIn: true }, {}, async (h) => {
      await h.connect(h.broker, 'q');
      assert.equal(await lifetimeSeconds(h, 'q'), DEFAULT_EXPIRES_IN_SECONDS.oauth2);
      assert.notEqual(DEFAULT_EXPIRES_IN_SECONDS.oauth2, 3600);
    });
  });

  it('expires_in as a string is read as seconds', async () => {
    await withProvider(
      { expiresInAsString: true },
      {},
      async (h) => {
        await h.connect(h.broker, 'q');
        assert.equal(await lifetimeSeconds(h, 'q'), 120);
      },
      { accessTokenTtlSeconds: 120 },
    );
  });

  it('no refresh_token in a refresh response: the old one is kept and keeps working', async () => {
    await withProvider(
      { omitRefreshTokenOnRefresh: true },
      {},
      async (h) => {
        await h.connect(h.broker, 'q');
        const before = (await h.store.get('q'))?.tokens?.refreshToken;
        h.idp.stats.reset();
        await h.broker.forceRefresh('q');
        await h.broker.forceRefresh('q');
        const after = await h.store.get('q');
        assert.equal(h.idp.stats.refreshGrants, 2);
        assert.equal(after?.status, 'active');
        assert.equal(after?.tokens?.refreshToken, before);
      },
      { rotateRefreshTokens: false },
    );
  });

  it('refresh_token_expires_in: the status shows when the grant dies and the sweep flags it ahead of time', async () => {
    const days = 30;
    await withProvider({ refreshTokenExpiresInSeconds: days * 24 * 3600 }, {}, async (h) => {
      const connectedAt = h.clock.now;
      await h.connect(h.broker, 'q');
      const grantEnd = new Date(connectedAt + days * 24 * 3600_000).toISOString();
      assert.equal((await h.broker.getConnection('q')).grantExpiresAt, grantEnd);
      assert.equal((await h.broker.listConnections())[0]?.grantExpiresAt, grantEnd);
      const flagged = () => h.logs.filter((l) => l.startsWith('refresh.grant_expiring')).length;
      await h.broker.refreshDue();
      assert.equal(flagged(), 0, 'four weeks ahead: nothing to say');
      h.clock.now = connectedAt + (days - 2) * 24 * 3600_000;
      await h.broker.refreshDue();
      assert.equal(flagged(), 1, 'two days ahead: flagged');
      assert.match(
        h.logs.find((l) => l.startsWith('refresh.grant_expiring')) ?? '',
        /connection=q reason=expiring/,
      );
    });
  });

  it('no scope in the response: the scopes asked for are recorded', async () => {
    await withProvider({ omitScope: true }, {}, async (h) => {
      await h.connect(h.broker, 'q');
      const record = await h.store.get('q');
      assert.ok(record?.tokens?.grantedScopes.includes(SCOPE));
      await h.broker.forceRefresh('q');
      assert.match((await h.broker.getAccessToken('q', caller)).scope, /Mail\.Read/);
    });
  });
});
