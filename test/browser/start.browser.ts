/**
 * `npm start` as a newcomer meets it: run tools/start.ts with no configuration, follow the printed steps in
 * Chromium and with the printed curl (sent with fetch), then stop it with SIGINT and check nothing is left.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { REPO_ROOT } from '../support/devhost.ts';
import { launchChromium, newContext, openPage } from './chromium.ts';

const settingsFile = join(REPO_ROOT, 'local.settings.json');
const configured =
  existsSync(settingsFile) && /MICROSOFT_CLIENT_ID|BROKER_PROVIDERS/.test(readFileSync(settingsFile, 'utf8'));

let child: ChildProcess;
let output = '';
let exited: Promise<number | null>;
let dataDir: string;
let browser: Browser;

/** Resolves with the output once `pattern` matches it. */
function waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${String(pattern)}; output so far:\n${output}`));
    }, timeoutMs);
    const check = () => {
      const match = pattern.exec(output);
      if (match) {
        cleanup();
        resolve(match);
      }
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', check);
    };
    child.stdout?.on('data', check);
    check();
  });
}

describe(
  'npm start (tools/start.ts) with no configuration',
  { skip: configured && 'local.settings.json configures a provider' },
  () => {
    before(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'broker-start-'));
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DEVHOST_PORT: '0',
        DEMO_IDP_PORT: '0',
        BROKER_DATA_DIR: dataDir,
      };
      for (const name of [
        'NODE_TEST_CONTEXT',
        'DEVHOST_FUNCTION_KEY',
        'MICROSOFT_CLIENT_ID',
        'BROKER_PROVIDERS',
        'KEY_VAULT_URL',
      ]) {
        delete env[name];
      }
      child = spawn(process.execPath, [join(REPO_ROOT, 'tools', 'start.ts')], {
        cwd: REPO_ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group, like a terminal's foreground job: Ctrl+C is a SIGINT to the whole group.
        detached: true,
      });
      const collect = (chunk: Buffer) => (output += chunk.toString('utf8'));
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
      browser = await launchChromium();
    });
    after(async () => {
      await browser?.close();
      // SIGINT first: start.ts then stops its dev host (own process group), which a SIGKILL would orphan.
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    });

    it('prints the link, the demo sign-in and the curl; following them yields a token; Ctrl+C stops everything', async () => {
      const [, link = ''] = await waitForOutput(
        /Open this link in a browser.*\n\s+(http:\/\/localhost:\d+\/api\/connect\/demo-mailbox\?link=\S+)/,
      );
      const [, username = '', password = ''] = await waitForOutput(
        /Sign in as (\S+), password (\S+), and choose Allow/,
      );
      const [, key = '', tokenUrl = ''] = await waitForOutput(
        /curl -H "x-functions-key: (\S+)" (http:\/\/\S+\/token)\n/,
      );
      await waitForOutput(/Press Ctrl\+C to stop/);
      const idpOrigin = /a demo sign-in server runs at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
      assert.ok(idpOrigin, 'the demo IdP address is printed');

      const before = await fetch(tokenUrl, { headers: { 'x-functions-key': key } });
      assert.equal(before.status, 409, 'nothing is connected yet');
      await before.arrayBuffer();

      const context = await newContext(browser);
      const { page } = await openPage(context);
      await page.goto(link);
      // The broker's connect page first; its Continue goes to the IdP.
      await Promise.all([page.waitForURL(`${idpOrigin}/**`), page.locator('main form button').click()]);
      assert.equal(new URL(page.url()).origin, idpOrigin);
      await page.locator('#login').fill(username);
      await page.locator('#password').fill(password);
      await Promise.all([page.waitForURL(/\/interaction\//), page.locator('#sign-in').click()]);
      await Promise.all([page.waitForURL(/\/api\/callback\?/), page.locator('#allow').click()]);
      assert.equal(await page.locator('main').getAttribute('data-code'), 'connected');
      await context.close();

      const res = await fetch(tokenUrl, { headers: { 'x-functions-key': key } });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { access_token?: string; connection?: string };
      assert.equal(body.connection, 'demo-mailbox');
      assert.ok(body.access_token);

      assert.ok(child.pid);
      process.kill(-child.pid, 'SIGINT'); // what Ctrl+C in a terminal does: the whole foreground group
      assert.equal(await exited, 0);
      assert.match(output, /Stopped\.\n$/);
      const apiOrigin = new URL(tokenUrl).origin;
      for (const origin of [apiOrigin, idpOrigin]) {
        await assert.rejects(fetch(origin, { signal: AbortSignal.timeout(2000) }), `${origin} is closed`);
      }
    });
  },
);
