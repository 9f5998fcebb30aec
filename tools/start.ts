// `npm start`: build, then run the broker on the dev host with the embedded defaults. With no provider
// configured it also starts the local demo identity provider, creates a demo connection and prints the
// three steps a newcomer needs: open the link, sign in, curl the token.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const port = Number(process.env.DEVHOST_PORT ?? 7071);
const idpPort = Number(process.env.DEMO_IDP_PORT ?? 7072);
const baseUrl = `http://localhost:${port}`;

function localSettings(): Record<string, string> {
  const file = join(root, 'local.settings.json');
  if (!existsSync(file)) return {};
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, string> };
  return parsed.Values ?? {};
}

const settings = { ...localSettings(), ...process.env } as Record<string, string | undefined>;
const hasProvider = Boolean(settings.MICROSOFT_CLIENT_ID || settings.BROKER_PROVIDERS);

await runBuild();

const env: Record<string, string> = { ...(process.env as Record<string, string>), DEVHOST_PORT: String(port) };
let keyGenerated = false;
if (!env.DEVHOST_FUNCTION_KEY) {
  env.DEVHOST_FUNCTION_KEY = randomBytes(24).toString('base64url');
  keyGenerated = true;
}
const functionKey = env.DEVHOST_FUNCTION_KEY;

let idpClose: (() => Promise<void>) | undefined;
let demoUser: { username: string; password: string } | undefined;
if (!hasProvider) {
  const { startDemoIdp } = await import('./demo-idp/server.ts');
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startDemoIdp({
    port: idpPort,
    host: '127.0.0.1',
    clients: [{ clientId: 'token-broker-demo', clientSecret, redirectUris: [`${baseUrl}/api/callback`], name: 'Token broker (demo)' }],
    accessTokenTtlSeconds: 3600,
    quiet: true,
  });
  idpClose = () => idp.close();
  demoUser = idp.users[0];
  Object.assign(env, {
    MICROSOFT_CLIENT_ID: 'token-broker-demo',
    MICROSOFT_CLIENT_SECRET: clientSecret,
    MICROSOFT_TENANT: 'common',
    MICROSOFT_AUTHORITY_HOST: idp.authorityHost,
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    BROKER_PUBLIC_BASE_URL: baseUrl,
  });
}

const host = spawn(process.execPath, [join(root, 'tools/devhost/main.ts'), '--app-dir', root], {
  cwd: root,
  env,
  stdio: ['ignore', 'pipe', 'pipe'],
});
let ready = false;
const onLine = (line: string) => {
  process.stdout.write(`  ${line}\n`);
  if (!ready && line.includes('devhost: listening on')) {
    ready = true;
    void announce().catch((err: unknown) => {
      console.error(`start: could not prepare the demo connection: ${err instanceof Error ? err.message : 'error'}`);
    });
  }
};
for (const stream of [host.stdout, host.stderr]) {
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      onLine(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  });
}
host.on('exit', (code) => {
  void (idpClose?.() ?? Promise.resolve()).finally(() => process.exit(code ?? 0));
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => host.kill(signal));
}

async function announce(): Promise<void> {
  const api = `${baseUrl}/api`;
  const keyLine = keyGenerated ? `${functionKey}   (generated; set DEVHOST_FUNCTION_KEY to choose your own)` : '(from DEVHOST_FUNCTION_KEY)';
  const lines = ['', `Token broker is running at ${api}  (embedded file store in ${settings.BROKER_DATA_DIR ?? '.data'}/)`, `Function key: ${keyLine}`];
  if (demoUser) {
    const headers = { 'x-functions-key': functionKey, 'content-type': 'application/json' };
    const put = await fetch(`${api}/manage/connections/demo-mailbox`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ provider: 'microsoft', scopes: ['https://graph.microsoft.com/Mail.Send'], description: 'Demo connection (local demo identity provider)' }),
    });
    if (!put.ok) throw new Error(`PUT connection answered ${put.status}`);
    const link = await fetch(`${api}/manage/connections/demo-mailbox/link`, { method: 'POST', headers: { 'x-functions-key': functionKey } });
    if (!link.ok) throw new Error(`POST link answered ${link.status}`);
    const { url } = (await link.json()) as { url: string };
    lines.push(
      '',
      'Demo (no provider configured, so a local demo identity provider is running):',
      `  1. Open this link in a browser (valid 15 minutes):`,
      `     ${url}`,
      `  2. Sign in as ${demoUser.username} with password "${demoUser.password}", then choose Allow.`,
      `  3. Fetch the access token:`,
      `     curl -H "x-functions-key: ${functionKey}" ${api}/connections/demo-mailbox/token`,
    );
  } else {
    lines.push(
      '',
      'Next steps (see README "HTTP API"):',
      `  curl -X PUT -H "x-functions-key: ${functionKey}" -H "content-type: application/json" \\`,
      `       -d '{"provider":"microsoft","scopes":["https://graph.microsoft.com/Mail.Send"]}' ${api}/manage/connections/sales-mailbox`,
      `  curl -X POST -H "x-functions-key: ${functionKey}" ${api}/manage/connections/sales-mailbox/link`,
      `  …open the returned url, sign in, then:`,
      `  curl -H "x-functions-key: ${functionKey}" ${api}/connections/sales-mailbox/token`,
    );
  }
  lines.push('', 'Press Ctrl+C to stop.', '');
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function runBuild(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const build = spawn(process.execPath, [join(root, 'tools/build.ts')], { cwd: root, stdio: 'inherit' });
    build.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`build failed (${code})`))));
  });
}
