import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const MAIN = fileURLToPath(new URL('../../../tools/demo-idp/main.ts', import.meta.url));
const SECRET = 'cli-secret-do-not-log';

function run(args: string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

async function waitFor(get: () => string, pattern: RegExp, ms = 10_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = pattern.exec(get());
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(pattern)}; got: ${get()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

void describe('demo-idp CLI', () => {
  void it('prints one ready line, serves the configured client, logs no secrets and stops on SIGTERM', async () => {
    const { child, output } = run([
      '--port',
      '0',
      '--client-id',
      'cli-app',
      '--client-secret',
      SECRET,
      '--redirect-uri',
      'http://localhost:7071/api/callback',
    ]);
    try {
      const [, origin = ''] = await waitFor(output, /^demo-idp: listening on (http:\/\/127\.0\.0\.1:\d+)$/m);
      const doc = (await (await fetch(`${origin}/common/v2.0/.well-known/openid-configuration`)).json()) as {
        issuer: string;
      };
      assert.equal(doc.issuer, `${origin}/{tenantid}/v2.0`);
      const res = await fetch(`${origin}/common/oauth2/v2.0/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: 'cli-app',
          client_secret: SECRET,
          scope: 'api://token-broker/.default',
        }),
      });
      assert.equal(res.status, 200);
      const { access_token: token } = (await res.json()) as { access_token: string };
      await waitFor(output, /demo-idp\.token .*httpStatus=200/);
      assert.equal(output().match(/listening on/g)?.length, 1);
      assert.ok(!output().includes(SECRET), 'the client secret is not logged');
      assert.ok(!output().includes(token), 'tokens are not logged');
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
  });

  void it('exits with status 2 and a message naming the missing option', async () => {
    const { child, output } = run(['--client-id', 'x']);
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 2);
    assert.match(output(), /--redirect-uri is required/);
  });
});
