// `npm start`: build, then run the broker on the dev host with the embedded defaults. With no provider
// configured it also starts the local demo identity provider, creates a fresh demo connection and prints the
// three steps a newcomer needs: open the link, sign in, curl the token. Ctrl+C stops everything.
//
// Environment: DEVHOST_PORT (default 7071, 0 = any free port), DEMO_IDP_PORT (default 7072, 0 = any free
// port), DEVHOST_FUNCTION_KEY (default: a new random key per run); everything else as the app documents.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from './net.ts';
import { bannerConnection } from './startBanner.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// One clear line on a Node.js below package.json "engines" (npm's `prestart` runs the same check first).
const checkNode = createRequire(import.meta.url)('./checkNode.cjs') as {
  problem(version: string, packageJson: string): string | undefined;
};
const nodeProblem = checkNode.problem(process.version, join(root, 'package.json'));
if (nodeProblem) {
  process.stderr.write(`${nodeProblem}\n`);
  process.exit(1);
}
const DEMO_CONNECTION = 'demo-mailbox';
const DEMO_SCOPES = ['https://graph.microsoft.com/Mail.Send'];

function fail(message: string): never {
  process.stderr.write(`start: ${message}\n`);
  process.exit(1);
}

interface LocalSettings {
  Values?: Record<string, string>;
  Host?: { LocalHttpPort?: number };
}

function localSettings(): LocalSettings {
  const file = join(root, 'local.settings.json');
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LocalSettings;
  } catch {
    fail('local.settings.json is not valid JSON.');
  }
}

function portSetting(name: string, value: string | number | undefined, fallback: number): number {
  const port = Number(value ?? fallback);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    fail(`${name} must be a port number (0 = any free port).`);
  return port;
}

function runBuild(): Promise<void> {
  return new Promise((resolve, reject) => {
    const build = spawn(process.execPath, [join(root, 'tools/build.ts')], { cwd: root, stdio: 'inherit' });
    build.on('error', reject);
    build.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit code ${code ?? 'none'}`))));
  });
}

const local = localSettings();
const settings: Record<string, string | undefined> = { ...local.Values, ...process.env };
const demo = !(settings.MICROSOFT_CLIENT_ID || settings.BROKER_PROVIDERS);
const requestedPort = portSetting(
  'DEVHOST_PORT',
  process.env.DEVHOST_PORT ?? local.Host?.LocalHttpPort,
  7071,
);
const idpPort = portSetting('DEMO_IDP_PORT', process.env.DEMO_IDP_PORT, 7072);
const port = requestedPort === 0 ? await freePort() : requestedPort;
const baseUrl = `http://localhost:${port}`;
const api = `${baseUrl}/api`;

try {
  await runBuild();
} catch (err) {
  fail(`the build failed (${err instanceof Error ? err.message : 'error'}); see the output above.`);
}

const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  DEVHOST_PORT: String(port),
};
const keyGenerated = !env.DEVHOST_FUNCTION_KEY;
const functionKey = (env.DEVHOST_FUNCTION_KEY ||= randomBytes(24).toString('base64url'));
// The redirect URI is built from this, so it must name the port the host really listens on.
if (!settings.BROKER_PUBLIC_BASE_URL || demo) env.BROKER_PUBLIC_BASE_URL = baseUrl;

let closeIdp: () => Promise<void> = () => Promise.resolve();
let demoIdp: { origin: string; username: string; password: string } | undefined;
if (demo) {
  const { startDemoIdp } = await import('./demo-idp/server.ts');
  const clientSecret = randomBytes(24).toString('base64url');
  let idp: Awaited<ReturnType<typeof startDemoIdp>>;
  try {
    idp = await startDemoIdp({
      port: idpPort,
      host: '127.0.0.1',
      clients: [
        {
          clientId: 'token-broker-demo',
          clientSecret,
          redirectUris: [`${api}/callback`],
          name: 'Token broker (demo)',
        },
      ],
      accessTokenTtlSeconds: 3600,
      quiet: true,
    });
  } catch (err) {
    const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
    fail(
      inUse
        ? `port ${idpPort} is already in use; set DEMO_IDP_PORT to another port (0 picks a free one).`
        : `the demo identity provider did not start (${err instanceof Error ? err.message : 'error'}).`,
    );
  }
  closeIdp = () => idp.close();
  const user = idp.users[0];
  if (!user) fail('the demo identity provider has no users.');
  demoIdp = { origin: idp.authorityHost, username: user.username, password: user.password };
  Object.assign(env, {
    MICROSOFT_CLIENT_ID: 'token-broker-demo',
    MICROSOFT_CLIENT_SECRET: clientSecret,
    MICROSOFT_TENANT: 'common',
    MICROSOFT_AUTHORITY_HOST: idp.authorityHost,
    BROKER_ALLOW_INSECURE_HTTP: 'true',
  });
}

// Its own process group: a terminal's Ctrl+C then reaches only this process, which stops the host exactly once
// (the dev host takes a second signal as "exit now" and would skip the app's shutdown hooks).
const host = spawn(process.execPath, [join(root, 'tools/devhost/main.ts'), '--app-dir', root], {
  cwd: root,
  env,
  stdio: ['ignore', 'pipe', 'pipe'],
  detached: true,
});
process.on('exit', () => {
  if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
});

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (stopping) {
      host.kill('SIGKILL'); // second Ctrl+C: don't wait for the shutdown hooks
      return;
    }
    stopping = true;
    process.stdout.write('\nStopping…\n');
    host.kill(signal === 'SIGHUP' ? 'SIGTERM' : signal);
    setTimeout(() => host.kill('SIGKILL'), 10_000).unref();
  });
}
host.on('exit', (code) => {
  for (const l of held ?? []) process.stdout.write(`  ${l}\n`);
  held = undefined;
  void closeIdp()
    .catch(() => undefined)
    .finally(() => {
      if (stopping) process.stdout.write('Stopped.\n');
      process.exit(stopping ? 0 : (code ?? 1));
    });
});

// Host output is indented; while the demo connection is prepared it is held back, so the instructions come
// after the start-up lines instead of being interleaved with them.
let held: string[] | undefined;
let ready = false;
let lastLineAt = 0;
/** Resolves once the host has written nothing for a moment (its log lines for our calls trail the answers). */
async function quietHost(): Promise<void> {
  const until = Date.now() + 1000;
  while (Date.now() - lastLineAt < 150 && Date.now() < until) await delay(50);
}
const onLine = (line: string) => {
  lastLineAt = Date.now();
  if (held) held.push(line);
  else process.stdout.write(`  ${line}\n`);
  if (!ready && line.includes('devhost: listening on')) {
    ready = true;
    held = [];
    void announce()
      .catch((err: unknown) => [
        '',
        `start: could not prepare the demo connection (${err instanceof Error ? err.message : 'error'}).`,
      ])
      .then(async (lines) => {
        await quietHost();
        for (const l of held ?? []) process.stdout.write(`  ${l}\n`);
        held = undefined;
        process.stdout.write(`${lines.join('\n')}\n`);
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

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { 'x-functions-key': functionKey };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${api}/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Prepares the demo connection (when in demo mode) and returns the lines to print. */
async function announce(): Promise<string[]> {
  const rule = '─'.repeat(72);
  const key = keyGenerated
    ? `${functionKey}   (new each run; set DEVHOST_FUNCTION_KEY to keep one)`
    : 'from DEVHOST_FUNCTION_KEY';
  const lines = [
    '',
    rule,
    `Token broker is running at ${api}   (data: ${settings.KEY_VAULT_URL ?? `${settings.BROKER_DATA_DIR ?? '.data'}/`})`,
    `Function key: ${key}`,
    `Console:      ${api}/console   (paste the function key; it stays in the tab's memory)`,
    '',
  ];
  const keyHeader = `-H "x-functions-key: ${functionKey}"`;
  if (demoIdp) {
    // The demo IdP forgets its grants and signing keys when it stops, so a connection from an earlier run could
    // never refresh again: start from a clean one.
    const list = await call('GET', 'manage/connections');
    if (!list.ok) throw new Error(`GET connections answered ${list.status}`);
    const { connections } = (await list.json()) as { connections: { connection: string }[] };
    if (connections.some((c) => c.connection === DEMO_CONNECTION)) {
      const removed = await call('DELETE', `manage/connections/${DEMO_CONNECTION}`);
      if (!removed.ok) throw new Error(`DELETE connection answered ${removed.status}`);
    }
    const put = await call('PUT', `manage/connections/${DEMO_CONNECTION}`, {
      provider: 'microsoft',
      scopes: DEMO_SCOPES,
      description: 'Demo connection (local demo identity provider)',
    });
    if (!put.ok) throw new Error(`PUT connection answered ${put.status}`);
    const res = await call('POST', `manage/connections/${DEMO_CONNECTION}/link`);
    if (!res.ok) throw new Error(`POST link answered ${res.status}`);
    const link = (await res.json()) as { url: string; expiresAt: string };
    const minutes = Math.round((Date.parse(link.expiresAt) - Date.now()) / 60_000);
    lines.push(
      `Demo: no provider is configured, so a demo sign-in server runs at ${demoIdp.origin}`,
      `  1. Open this link in a browser (valid for ${minutes} minutes):`,
      `     ${link.url}`,
      `  2. Sign in as ${demoIdp.username}, password ${demoIdp.password}, and choose Allow.`,
      '  3. Fetch the access token:',
      `     curl ${keyHeader} ${api}/connections/${DEMO_CONNECTION}/token`,
      '',
      `New link later: curl -X POST ${keyHeader} ${api}/manage/connections/${DEMO_CONNECTION}/link`,
    );
  } else {
    lines.push(
      'Connect an account (see README "HTTP API"):',
      `  curl -X PUT ${keyHeader} -H "content-type: application/json" \\`,
      `       -d '${bannerConnection(settings, DEMO_SCOPES)}' ${api}/manage/connections/sales-mailbox`,
      `  curl -X POST ${keyHeader} ${api}/manage/connections/sales-mailbox/link`,
      '  Open the returned url, sign in, then:',
      `  curl ${keyHeader} ${api}/connections/sales-mailbox/token`,
    );
  }
  lines.push('', 'Press Ctrl+C to stop.', rule, '');
  return lines;
}
