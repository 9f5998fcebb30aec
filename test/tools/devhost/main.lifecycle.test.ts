// End to end: the dev host CLI loading the fixture app in a child process — core module, entry points, hooks,
// settings, logs, startup failures and shutdown.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, spawnDevHost, type DevHostHandle } from '../../support/devhost.ts';

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'devhost-app');
const variant = (name: string) => join(FIXTURE, 'variants', name);

void describe('dev host lifecycle (fixture app, keys not enforced)', () => {
  let host: DevHostHandle;
  let markers = '';
  const get = (path: string, init?: RequestInit) => fetch(`${host.baseUrl}${path}`, init);

  before(async () => {
    markers = mkdtempSync(join(tmpdir(), 'devhost-markers-'));
    host = await spawnDevHost({
      appDir: FIXTURE,
      env: { FIXTURE_MARKER_DIR: markers, FIXTURE_OVERRIDDEN: 'from-real-env', DEVHOST_TIMERS: 'off' },
    });
  });
  after(async () => {
    await host?.stop('SIGKILL');
    rmSync(markers, { recursive: true, force: true });
  });

  void it('supplies @azure/functions-core before the app loads (the library is not in test mode)', async () => {
    const res = await get('/fx/core');
    assert.equal(res.status, 200);
    const core = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(core.keys, [
      'Disposable',
      'getProgrammingModel',
      'hostVersion',
      'log',
      'registerFunction',
      'registerHook',
      'setProgrammingModel',
      'version',
    ]);
    assert.equal(core.disposableIsClass, true);
    assert.equal(typeof core.version, 'string');
    assert.equal(typeof core.hostVersion, 'string');
    assert.deepEqual(core.bogusHook, {
      name: 'RangeError',
      isSystem: true,
      message: 'Unrecognized hook "bogus"',
    });
    assert.equal(core.lateRegistration, 'A function can only be registered during app startup.');
    assert.doesNotMatch(host.logs(), /test mode/i);
  });

  void it('loads every file the main glob matches: .mjs, nested ** .js and .cjs', async () => {
    const cjs = await get('/fx/cjs');
    assert.equal(await cjs.text(), 'from-cjs');
    const logs = host.logs();
    for (const name of ['fromCjs', 'echo', 'rInt', 'slowTick', 'queueish']) {
      assert.match(logs, new RegExp(`devhost: function ${name}: `));
    }
    assert.match(
      logs,
      new RegExp(
        `devhost: function echo: \\[GET,POST,PUT,DELETE,PATCH\\] http://localhost:${host.port}/fx/echo/\\{\\*rest\\} \\(anonymous\\)`,
      ),
    );
    assert.match(logs, /devhost: function slowTick: timer "0 0 0 1 1 \*" UTC \(scheduled firing off\)/);
  });

  void it('ran appStart hooks before announcing readiness', () => {
    const marker = JSON.parse(readFileSync(join(markers, 'appStart.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(marker, { programmingModel: '@azure/functions', pid: host.pid });
  });

  void it('runs preInvocation hooks (handler wrapped, inputs replaced) and reads postInvocation result/error back', async () => {
    const wrapped = await get('/fx/hooks/wrapped');
    assert.equal(wrapped.headers.get('x-wrapped'), 'yes');
    assert.equal(await wrapped.text(), 'w');

    const result = await get('/fx/hooks/result');
    assert.equal(result.status, 418);
    assert.deepEqual(await result.json(), { pre: 'pre:hookResult' });

    const inputs = await get('/fx/hooks/inputs');
    assert.deepEqual(await inputs.json(), { input: 'replaced-input' });

    const recovered = await get('/fx/hooks/recover');
    assert.equal(recovered.status, 200);
    assert.equal(await recovered.text(), 'recovered:to-be-recovered');
  });

  void it('applies local.settings.json without overriding real environment variables', async () => {
    const env = (await (await get('/fx/env')).json()) as Record<string, string>;
    assert.deepEqual(env, {
      FIXTURE_FROM_SETTINGS: 'from-local-settings',
      FIXTURE_OVERRIDDEN: 'from-real-env',
      AZURE_FUNCTIONS_ENVIRONMENT: 'Development',
      WEBSITE_HOSTNAME: `localhost:${host.port}`,
      'ConnectionStrings:Main': 'Server=fixture',
    });
  });

  void it('does not enforce keys without DEVHOST_FUNCTION_KEY, and says so', async () => {
    assert.equal((await get('/fx/secure/fn')).status, 200);
    assert.equal((await get('/fx/secure/admin')).status, 200);
    assert.match(host.logs(), /WARNING: DEVHOST_FUNCTION_KEY is not set/);
    assert.match(
      host.logs(),
      /devhost: function keyed: \[GET\] \S+\/fx\/secure\/fn \(function key NOT enforced\)/,
    );
  });

  void it('prints app logs with their level, applies log hooks and host.json filtering', async () => {
    assert.equal(await (await get('/fx/logs')).text(), 'logged');
    const logs = await host.waitForLog(/\[warning\] logs: rewritten-by-log-hook/);
    assert.match(logs, /^\[information\] logs: info-line$/m);
    assert.match(logs, /^\[warning\] logs: warn-line$/m);
    assert.match(logs, /^\[error\] logs: error-line$/m);
    assert.doesNotMatch(logs, /debug-line-hidden|please rewrite-me/);
  });

  void it('serves the homepage at /', async () => {
    const res = await get('/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  });

  void it('on SIGTERM finishes running requests, runs appTerminate hooks and exits 0', async () => {
    const slow = get('/fx/slow');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await host.stop('SIGTERM');
    const res = await slow;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'slow-done');
    assert.equal(await host.exited, 0);
    const marker = JSON.parse(readFileSync(join(markers, 'appTerminate.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(marker, { startedBy: 'appStart', slowInFlight: 0 });
  });
});

void describe('dev host startup variants', () => {
  void it('serves a CommonJS app under the default api prefix, and dies on kill -9', async () => {
    const host = await spawnDevHost({ appDir: variant('default-prefix'), env: { DEVHOST_TIMERS: 'off' } });
    try {
      const res = await fetch(`${host.baseUrl}/api/hello`);
      assert.equal(await res.text(), 'hello-cjs');
      assert.equal((await fetch(`${host.baseUrl}/hello`)).status, 404);
    } finally {
      host.kill9();
    }
    assert.equal(await host.exited, null);
  });

  const failures: [string, RegExp][] = [
    ['no-match', /Found zero files matching the supplied pattern "dist\/\{functions,handlers\}\/\*\.js"/],
    ['reserved-route', /route 'administration\/users' conflicts with one or more built in routes/],
    ['missing-setting', /'%DEVHOST_FIXTURE_UNSET_SCHEDULE%' does not resolve to a value/],
    ['load-error', /Unable to load entry point .*index\.js.*fixture load failure/s],
  ];
  for (const [name, expected] of failures) {
    void it(`refuses to start: ${name}`, async () => {
      await assert.rejects(
        spawnDevHost({ appDir: variant(name), env: { DEVHOST_TIMERS: 'off' } }),
        (err: Error) => {
          assert.match(err.message, /devhost exited \(code 1\)/);
          assert.match(err.message, expected);
          assert.doesNotMatch(err.message, /^devhost: listening on/m);
          return true;
        },
      );
    });
  }

  void it('fails clearly when the app folder has no package.json', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'devhost-empty-'));
    try {
      await assert.rejects(spawnDevHost({ appDir: empty }), /devhost: error: Cannot read .*package\.json/);
      assert.equal(existsSync(join(empty, 'package.json')), false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
