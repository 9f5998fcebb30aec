import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { buildAuthorizeRequest, driveAuthorization } from '../../../tools/demo-idp/driver.ts';
import { startDemoIdp, type DemoIdp, type RotatedRefreshTokenReuse } from '../../../tools/demo-idp/server.ts';

const CLIENT_ID = 'rotation-app';
const SECRET = 'rotation-secret';
const REDIRECT = 'http://localhost:7071/api/callback';
const GRAPH = 'https://graph.microsoft.com/Mail.Send';

interface Peer {
  idp: DemoIdp;
  refresh(refreshToken: string): Promise<Response>;
  connect(username?: string): Promise<string>;
}

async function startPeer(
  mode: RotatedRefreshTokenReuse | undefined,
  extra: { refreshTokenTtlSeconds?: number } = {},
): Promise<Peer> {
  const idp = await startDemoIdp({
    quiet: true,
    ...(mode ? { rotatedRefreshTokenReuse: mode } : {}),
    ...extra,
    clients: [{ clientId: CLIENT_ID, clientSecret: SECRET, redirectUris: [REDIRECT] }],
  });
  const token = (params: Record<string, string>) =>
    fetch(idp.endpoints().token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: CLIENT_ID, client_secret: SECRET, ...params }),
    });
  return {
    idp,
    refresh: (refreshToken) =>
      token({ grant_type: 'refresh_token', refresh_token: refreshToken, scope: `${GRAPH} offline_access` }),
    async connect(username = 'adele@demo.example') {
      const request = buildAuthorizeRequest({
        authorizationEndpoint: idp.endpoints().authorization,
        clientId: CLIENT_ID,
        redirectUri: REDIRECT,
        scope: `openid offline_access ${GRAPH}`,
      });
      const { params } = await driveAuthorization(request.url, { username });
      const res = await token({
        grant_type: 'authorization_code',
        code: params.get('code') ?? '',
        redirect_uri: REDIRECT,
        code_verifier: request.codeVerifier,
      });
      assert.equal(res.status, 200);
      return ((await res.json()) as { refresh_token: string }).refresh_token;
    },
  };
}

async function rotated(res: Response): Promise<string> {
  assert.equal(res.status, 200);
  const body = (await res.json()) as { refresh_token?: string };
  assert.equal(typeof body.refresh_token, 'string');
  return body.refresh_token ?? '';
}

async function errorCodes(res: Response): Promise<unknown> {
  assert.equal(res.status, 400);
  const body = (await res.json()) as { error: string; error_codes: number[] };
  assert.equal(body.error, 'invalid_grant');
  return body.error_codes;
}

void describe('rotatedRefreshTokenReuse', () => {
  void describe("default ('revoke-family', oidc-provider)", () => {
    let peer: Peer;
    before(async () => (peer = await startPeer(undefined)));
    after(() => peer.idp.close());

    void it('rejects a rotated token with AADSTS70000 and revokes the whole family', async () => {
      const rt0 = await peer.connect();
      const rt1 = await rotated(await peer.refresh(rt0));
      assert.deepEqual(await errorCodes(await peer.refresh(rt0)), [70000]);
      assert.deepEqual(await errorCodes(await peer.refresh(rt1)), [70000], 'the newest token died with it');
    });
  });

  void describe("'allow' (Microsoft semantics)", () => {
    let peer: Peer;
    before(async () => (peer = await startPeer('allow')));
    after(() => peer.idp.close());

    void it('keeps a superseded token working; each use returns another new token', async () => {
      const rt0 = await peer.connect();
      const rt1 = await rotated(await peer.refresh(rt0));
      const rt2 = await rotated(await peer.refresh(rt0));
      const rt3 = await rotated(await peer.refresh(rt1));
      const rt4 = await rotated(await peer.refresh(rt3));
      assert.equal(new Set([rt0, rt1, rt2, rt3, rt4]).size, 5, 'every refresh rotates');
      // The family is intact: the oldest and the newest both still work.
      await rotated(await peer.refresh(rt0));
      await rotated(await peer.refresh(rt4));
    });

    void it('a lost response (IdP rotated, client never saw it) is recovered by retrying the old token', async () => {
      const rt0 = await peer.connect();
      peer.idp.injectTokenFault({ grantType: 'refresh_token', phase: 'after', reset: true });
      await assert.rejects(peer.refresh(rt0));
      assert.equal(peer.idp.tokenLog.at(-1)?.faulted, true);
      await rotated(await peer.refresh(rt0));
    });

    void it('revokeUser still kills superseded tokens (AADSTS50173)', async () => {
      const rt0 = await peer.connect('megan@demo.example');
      const rt1 = await rotated(await peer.refresh(rt0));
      await peer.idp.revokeUser('megan@demo.example');
      assert.deepEqual(await errorCodes(await peer.refresh(rt0)), [50173]);
      assert.deepEqual(await errorCodes(await peer.refresh(rt1)), [50173]);
    });

    void it('an unknown token is still refused (AADSTS70000)', async () => {
      assert.deepEqual(await errorCodes(await peer.refresh('not-a-refresh-token')), [70000]);
    });
  });

  void it("'allow': a superseded token expires at its own idle expiry, the newest lives on", async () => {
    // Expiry has one-second resolution (`exp` is whole seconds), so a 4 s lifetime lasts 3-4 s.
    const peer = await startPeer('allow', { refreshTokenTtlSeconds: 4 });
    try {
      const rt0 = await peer.connect(); // dead by t0 + 4 s
      await sleep(1_500);
      const rt1 = await rotated(await peer.refresh(rt0)); // alive until at least t0 + 4.5 s
      await sleep(2_600);
      assert.deepEqual(await errorCodes(await peer.refresh(rt0)), [700082]);
      await rotated(await peer.refresh(rt1));
    } finally {
      await peer.idp.close();
    }
  });

  void it('refuses an unknown mode', async () => {
    await assert.rejects(
      startDemoIdp({
        quiet: true,
        rotatedRefreshTokenReuse: 'sometimes' as RotatedRefreshTokenReuse,
        clients: [{ clientId: CLIENT_ID, clientSecret: SECRET, redirectUris: [REDIRECT] }],
      }),
      /rotatedRefreshTokenReuse must be/,
    );
  });

  void it('CLI: --rotated-refresh-token-reuse takes revoke-family or allow only', async () => {
    const main = fileURLToPath(new URL('../../../tools/demo-idp/main.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      [main, '--client-id', 'x', '--client-secret', 's', '--redirect-uri', REDIRECT, '--port', '0'].concat([
        '--rotated-refresh-token-reuse',
        'never',
      ]),
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 2);
    assert.match(output, /--rotated-refresh-token-reuse must be revoke-family or allow/);
  });
});
