import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const REPO_ROOT = join(import.meta.dirname, '..', '..');

// `npm start` with only a generic provider configured: the banner must suggest that provider, not Microsoft.
describe('npm start banner with only a generic provider', () => {
  let child: ChildProcess;
  let output = '';
  let exited: Promise<number | null>;
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'start-banner-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DEVHOST_PORT: '0',
      BROKER_DATA_DIR: dataDir,
      // Provider calls happen only at connect time; the banner needs a valid configuration, not a live server.
      BROKER_PROVIDERS: JSON.stringify({
        keycloak: {
          kind: 'oauth2',
          issuer: 'https://id.example.com/realms/acme',
          clientId: 'token-broker',
          clientAuthMethod: 'none',
        },
      }),
      MICROSOFT_CLIENT_ID: '',
    };
    for (const name of ['NODE_TEST_CONTEXT', 'DEVHOST_FUNCTION_KEY', 'KEY_VAULT_URL']) delete env[name];
    child = spawn(process.execPath, [join(REPO_ROOT, 'tools', 'start.ts')], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const collect = (chunk: Buffer) => (output += chunk.toString('utf8'));
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  });

  after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('suggests "provider":"keycloak" and starts no demo IdP', async () => {
    const deadline = Date.now() + 110_000;
    while (!/Press Ctrl\+C to stop/.test(output)) {
      if (child.exitCode !== null) assert.fail(`start exited early:\n${output}`);
      if (Date.now() > deadline) assert.fail(`no banner:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(output, /-d '\{"provider":"keycloak","scopes":\[\]\}'/);
    assert.doesNotMatch(output, /"provider":"microsoft"/);
    assert.doesNotMatch(output, /demo sign-in server/);
  });
});
