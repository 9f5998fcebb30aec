import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  applyLocalValues,
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  readAppFiles,
  readDevHostOptions,
  SettingsError,
} from '../../../tools/devhost/settings.ts';

const dirs: string[] = [];
function app(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'devhost-settings-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

void describe('app settings', () => {
  void it('reads main, type, route prefix, log level and local settings', () => {
    const files = readAppFiles(
      app({
        'package.json': { main: 'dist/*.js', type: 'module' },
        'host.json': {
          extensions: { http: { routePrefix: '' } },
          logging: { logLevel: { default: 'Warning' } },
        },
        'local.settings.json': {
          Values: { A: 'x', N: 5, O: { no: 1 } },
          ConnectionStrings: { Db: 'cs' },
          Host: { LocalHttpPort: 7100 },
        },
      }),
    );
    assert.equal(files.main, 'dist/*.js');
    assert.equal(files.isModule, true);
    assert.equal(files.routePrefix, '');
    assert.equal(files.minLogLevel, 'warning');
    assert.deepEqual(files.localValues, { A: 'x', N: '5', 'ConnectionStrings:Db': 'cs' });
    assert.equal(files.localHttpPort, 7100);
  });

  void it('defaults the route prefix to api and needs a main pattern', () => {
    const files = readAppFiles(app({ 'package.json': { main: 'index.js' } }));
    assert.equal(files.routePrefix, 'api');
    assert.equal(files.isModule, false);
    assert.equal(files.minLogLevel, 'information');
    assert.throws(() => readAppFiles(app({ 'package.json': { name: 'x' } })), SettingsError);
    assert.throws(() => readAppFiles(app({ 'package.json': '{oops' })), SettingsError);
    assert.throws(
      () =>
        readAppFiles(app({ 'package.json': { main: 'a.js' }, 'local.settings.json': { IsEncrypted: true } })),
      SettingsError,
    );
  });

  void it('never overrides variables that are already set', () => {
    const env: NodeJS.ProcessEnv = { KEEP: 'real', EMPTY: '' };
    assert.deepEqual(applyLocalValues({ KEEP: 'file', EMPTY: 'file', NEW: 'file' }, env), ['NEW']);
    assert.deepEqual(env, { KEEP: 'real', EMPTY: '', NEW: 'file' });
  });

  void it('reads the dev host variables with defaults and clear errors', () => {
    const files = readAppFiles(app({ 'package.json': { main: 'a.js' } }));
    assert.deepEqual(readDevHostOptions({}, files), {
      port: 7071,
      functionKey: undefined,
      timersEnabled: true,
      bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
      routePrefix: 'api',
      targetGroup: undefined,
      allowedHosts: undefined,
      maxConnections: DEFAULT_MAX_CONNECTIONS,
    });
    const custom = readDevHostOptions(
      {
        DEVHOST_PORT: '0',
        DEVHOST_FUNCTION_KEY: 'k',
        DEVHOST_TIMERS: 'off',
        FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '10',
        AzureFunctionsJobHost__extensions__http__routePrefix: 'v2',
        FUNCTIONS_TARGET_GROUP: 'function:refresh',
        DEVHOST_ALLOWED_HOSTS: 'broker.test',
        DEVHOST_MAX_CONNECTIONS: '5',
      },
      files,
    );
    assert.deepEqual(custom, {
      port: 0,
      functionKey: 'k',
      timersEnabled: false,
      bodyLimitBytes: 10,
      routePrefix: 'v2',
      targetGroup: 'function:refresh',
      allowedHosts: 'broker.test',
      maxConnections: 5,
    });
    assert.throws(
      () => readDevHostOptions({ FUNCTIONS_TARGET_GROUP: 'timers' }, files),
      /FUNCTIONS_TARGET_GROUP must be "http" or "function:<function name>"/,
    );
    assert.equal(readDevHostOptions({ DEVHOST_FUNCTION_KEY: '' }, files).functionKey, undefined);
    assert.throws(() => readDevHostOptions({ DEVHOST_PORT: 'x' }, files), /DEVHOST_PORT/);
    assert.throws(() => readDevHostOptions({ DEVHOST_TIMERS: 'sometimes' }, files), /DEVHOST_TIMERS/);
    assert.throws(() => readDevHostOptions({ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '0' }, files), /BODY_SIZE/);
  });
});
