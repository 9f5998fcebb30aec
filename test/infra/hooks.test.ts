// The azd hooks run as real child processes against a stand-in `azd` on PATH that keeps its environment in a
// JSON file and records every call, so "generated once, then kept" and "never printed" are observable.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../shared/config.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = mkdtempSync(join(tmpdir(), 'azd-hooks-'));
const binDir = join(work, 'bin');
after(() => rmSync(work, { recursive: true, force: true }));

mkdirSync(binDir);
writeFileSync(
  join(binDir, 'azd'),
  `#!/usr/bin/env node
const fs = require('node:fs');
const state = process.env.FAKE_AZD_STATE;
const env = JSON.parse(fs.readFileSync(state, 'utf8'));
const args = process.argv.slice(2);
fs.appendFileSync(state + '.calls', args.slice(0, 3).join(' ') + '\\n');
if (args[0] === 'env' && args[1] === 'get-values' && args.includes('json')) {
  process.stdout.write(JSON.stringify(env));
} else if (args[0] === 'env' && args[1] === 'set' && args.length === 4) {
  env[args[2]] = args[3];
  fs.writeFileSync(state, JSON.stringify(env));
} else {
  process.stderr.write('fake azd: unsupported ' + args.join(' '));
  process.exit(2);
}
`,
  { mode: 0o755 },
);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** The fake azd environment after the run. */
  env: Record<string, string>;
  /** First three words of every azd call (never the value of `env set`). */
  calls: string[];
}

let counter = 0;
function newState(azdEnv: Record<string, string>): string {
  const state = join(work, `env-${(counter += 1)}.json`);
  writeFileSync(state, JSON.stringify(azdEnv));
  return state;
}

/** Runs `node infra/hooks/<script> [...args]` against the fake azd whose state file is `state`. */
function runHook(
  script: string,
  state: string,
  processEnv: Record<string, string> = {},
  args: string[] = [],
) {
  const env: NodeJS.ProcessEnv = {
    PATH: [binDir, dirname(process.execPath), process.env.PATH ?? ''].join(delimiter),
    FAKE_AZD_STATE: state,
    ...processEnv,
  };
  return new Promise<Run>((resolve) => {
    const file = join(root, 'infra', 'hooks', script);
    execFile(process.execPath, [file, ...args], { env, cwd: root }, (error, stdout, stderr) => {
      const callsFile = `${state}.calls`;
      const calls = existsSync(callsFile) ? readFileSync(callsFile, 'utf8').split('\n').filter(Boolean) : [];
      resolve({
        code: error ? Number(error.code ?? 1) : 0,
        stdout,
        stderr,
        env: JSON.parse(readFileSync(state, 'utf8')) as Record<string, string>,
        calls,
      });
    });
  });
}

/** The broker's own parser must accept the keys the hook writes. */
function parsedKeyCount(brokerKeys: string): number {
  const config = parseConfig({
    BROKER_KEYS: brokerKeys,
    KEY_VAULT_URL: 'https://kv-test.vault.azure.net',
    AzureWebJobsStorage__blobServiceUri: 'https://sttest.blob.core.windows.net',
  });
  return config.keys?.length ?? 0;
}

void describe('preprovision hook', () => {
  void it('sets nothing in the azd environment: azd generates and keeps BROKER_KEYS itself', async () => {
    const state = newState({ AZURE_ENV_NAME: 'dev', AZURE_LOCATION: 'swedencentral' });
    const first = await runHook('preprovision.js', state);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.calls, ['env get-values --output'], 'the hook must only read');
    assert.equal(first.env.BROKER_KEYS, undefined);
  });

  void it('refuses a region without Flex Consumption, naming the variable and the choices', async () => {
    const run = await runHook('preprovision.js', newState({ AZURE_LOCATION: 'westindia' }));
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /AZURE_LOCATION=westindia does not offer the Flex Consumption plan; pick one of: .*swedencentral/,
    );
    const ok = await runHook('preprovision.js', newState({ AZURE_LOCATION: 'EastUS2' }));
    assert.equal(ok.code, 0, ok.stderr);
  });

  void it('refuses to change the Key Vault retention the vault was created with (creation-only)', async () => {
    const changed = await runHook(
      'preprovision.js',
      newState({
        AZURE_KEY_VAULT_SOFT_DELETE_RETENTION_DAYS: '90',
        KEY_VAULT_SOFT_DELETE_RETENTION_DAYS: '7',
      }),
    );
    assert.equal(changed.code, 1);
    assert.match(changed.stderr, /vault was created with 90 days and Key Vault cannot change it/);
    // Unset means the Bicep default (90): no change either.
    const same = await runHook(
      'preprovision.js',
      newState({ AZURE_KEY_VAULT_SOFT_DELETE_RETENTION_DAYS: '90' }),
    );
    assert.equal(same.code, 0, same.stderr);
    // Before the first provision nothing is recorded: any valid value goes.
    const first = await runHook('preprovision.js', newState({ KEY_VAULT_SOFT_DELETE_RETENTION_DAYS: '7' }));
    assert.equal(first.code, 0, first.stderr);
  });

  void it('checks VNET_ENABLED and BROKER_SWEEP_ALERT_MINUTES', async () => {
    const run = await runHook(
      'preprovision.js',
      newState({ VNET_ENABLED: 'yes', BROKER_SWEEP_ALERT_MINUTES: '3000' }),
    );
    assert.equal(run.code, 1);
    assert.match(run.stderr, /VNET_ENABLED must be true or false/);
    assert.match(run.stderr, /BROKER_SWEEP_ALERT_MINUTES must be a whole number of minutes from 0/);
    const ok = await runHook(
      'preprovision.js',
      newState({ VNET_ENABLED: 'true', BROKER_SWEEP_ALERT_MINUTES: '45' }),
    );
    assert.equal(ok.code, 0, ok.stderr);
  });

  void it('keeps a rotated key list (new key first, old one still accepted)', async () => {
    const oldKey = Buffer.alloc(32, 1).toString('base64url');
    const newKey = Buffer.alloc(48, 2).toString('base64url');
    const state = newState({ BROKER_KEYS: `${newKey},${oldKey}` });
    const run = await runHook('preprovision.js', state);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.env.BROKER_KEYS, `${newKey},${oldKey}`);
    assert.equal(parsedKeyCount(`${newKey},${oldKey}`), 2);
  });

  void it('fails on a malformed BROKER_KEYS without printing it or replacing it', async () => {
    const state = newState({ BROKER_KEYS: 'too-short-secret-value' });
    const run = await runHook('preprovision.js', state);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /BROKER_KEYS each key must be base64url of at least 32 random bytes/);
    assert.ok(
      !run.stderr.includes('too-short-secret-value') && !run.stdout.includes('too-short-secret-value'),
    );
    assert.equal(run.env.BROKER_KEYS, 'too-short-secret-value');
  });

  void it('stops on inputs that would only fail after deployment', async () => {
    const key = Buffer.alloc(32, 3).toString('base64url');
    const state = newState({ BROKER_KEYS: key, BROKER_AUTH_MODE: 'entra', MICROSOFT_CREDENTIAL: 'secret' });
    const run = await runHook('preprovision.js', state);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /BROKER_AUTH_MODE=entra needs BROKER_AUTH_AUDIENCE/);
    assert.match(run.stderr, /MICROSOFT_CREDENTIAL=secret needs MICROSOFT_CLIENT_SECRET/);

    const fixed = await runHook(
      'preprovision.js',
      newState({
        BROKER_KEYS: key,
        BROKER_AUTH_MODE: 'entra',
        BROKER_AUTH_AUDIENCE: 'api://broker',
        MICROSOFT_CREDENTIAL: 'secret',
        MICROSOFT_CLIENT_SECRET: 'shh-do-not-print',
      }),
    );
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.ok(!fixed.stdout.includes('shh-do-not-print'));
  });

  void it('stops on notification settings the app would refuse, agreeing with its parser, never printing the secret', async () => {
    const secret = (bytes: number) => `whsec_${Buffer.alloc(bytes, 7).toString('base64')}`;
    const url = 'https://hooks.example.com/broker';
    // The app's own verdict on the same values (shared/notify/settings.ts through parseConfig).
    const appRefuses = (env: Record<string, string>): string[] => {
      try {
        parseConfig({
          BROKER_KEYS: Buffer.alloc(32, 4).toString('base64url'),
          KEY_VAULT_URL: 'https://kv-test.vault.azure.net',
          AzureWebJobsStorage__blobServiceUri: 'https://sttest.blob.core.windows.net',
          AzureWebJobsStorage__queueServiceUri: 'https://sttest.queue.core.windows.net',
          ...env,
        });
        return [];
      } catch (err) {
        return ((err as { variables?: string[] }).variables ?? ['?']).filter((v) =>
          /^BROKER_(WEBHOOK|NOTIFY)_/.test(v),
        );
      }
    };
    const cases: { env: Record<string, string>; refused: string[] }[] = [
      { env: { BROKER_WEBHOOK_URL: url, BROKER_WEBHOOK_SECRET: secret(32) }, refused: [] },
      { env: { BROKER_WEBHOOK_URL: url, BROKER_WEBHOOK_SECRET: secret(24) }, refused: [] },
      { env: { BROKER_WEBHOOK_URL: url, BROKER_WEBHOOK_SECRET: secret(64) }, refused: [] },
      {
        env: { BROKER_WEBHOOK_URL: url, BROKER_WEBHOOK_SECRET: secret(23) },
        refused: ['BROKER_WEBHOOK_SECRET'],
      },
      {
        env: { BROKER_WEBHOOK_URL: url, BROKER_WEBHOOK_SECRET: secret(65) },
        refused: ['BROKER_WEBHOOK_SECRET'],
      },
      {
        env: { BROKER_WEBHOOK_URL: url, BROKER_WEBHOOK_SECRET: secret(32).slice('whsec_'.length) },
        refused: ['BROKER_WEBHOOK_SECRET'],
      },
      {
        env: { BROKER_WEBHOOK_URL: url, BROKER_WEBHOOK_SECRET: 'whsec_not base64!' },
        refused: ['BROKER_WEBHOOK_SECRET'],
      },
      { env: { BROKER_WEBHOOK_URL: url }, refused: ['BROKER_WEBHOOK_SECRET'] },
      { env: { BROKER_WEBHOOK_SECRET: secret(32) }, refused: ['BROKER_WEBHOOK_URL'] },
      {
        env: { BROKER_WEBHOOK_URL: 'http://hooks.example.com/x', BROKER_WEBHOOK_SECRET: secret(32) },
        refused: ['BROKER_WEBHOOK_URL'],
      },
      {
        env: { BROKER_NOTIFY_CONNECTION: 'sales-mailbox', BROKER_NOTIFY_TO: 'owner@example.com' },
        refused: [],
      },
      { env: { BROKER_NOTIFY_CONNECTION: 'Sales_Mailbox' }, refused: ['BROKER_NOTIFY_CONNECTION'] },
      {
        env: { BROKER_NOTIFY_CONNECTION: 'sales-mailbox', BROKER_NOTIFY_TO: 'a@example.com,b@example.com' },
        refused: ['BROKER_NOTIFY_TO'],
      },
    ];
    for (const { env, refused } of cases) {
      const label = JSON.stringify(Object.keys(env)) + ' ' + JSON.stringify(refused);
      assert.deepEqual([...new Set(appRefuses(env))].sort(), refused, `the app's parser disagrees: ${label}`);
      const run = await runHook('preprovision.js', newState(env));
      assert.equal(run.code, refused.length > 0 ? 1 : 0, `${label}: ${run.stderr}`);
      for (const variable of refused)
        assert.match(run.stderr, new RegExp(`preprovision: ${variable}\\b`), label);
      const printed = run.stdout + run.stderr;
      if (env.BROKER_WEBHOOK_SECRET) {
        assert.ok(
          !printed.includes(env.BROKER_WEBHOOK_SECRET.slice(8, 24)),
          `${label}: the secret was printed`,
        );
      }
    }
    // `azd env set-secret` leaves a reference azd resolves at provision time: nothing to check here.
    const reference = await runHook(
      'preprovision.js',
      newState({ BROKER_WEBHOOK_URL: url, BROKER_WEBHOOK_SECRET: 'akvs://sub/vault/broker-webhook-secret' }),
    );
    assert.equal(reference.code, 0, reference.stderr);
  });

  void it('fails loudly when azd cannot be run', async () => {
    const state = newState({});
    const run = await runHook('preprovision.js', state, { PATH: dirname(process.execPath) });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /'azd env get-values' failed \(azd is not on PATH\)/);
  });
});

void describe('postprovision hook', () => {
  const outputs = {
    FUNCTION_APP_URL: 'https://func-broker-abc.azurewebsites.net',
    REDIRECT_URI: 'https://func-broker-abc.azurewebsites.net/api/callback',
    AZURE_KEY_VAULT_ENDPOINT: 'https://kv-abc.vault.azure.net/',
    AZURE_FUNCTION_APP_NAME: 'func-broker-abc',
    AZURE_RESOURCE_GROUP: 'rg-dev',
    MANAGED_IDENTITY_CLIENT_ID: '11111111-1111-1111-1111-111111111111',
    MANAGED_IDENTITY_PRINCIPAL_ID: '22222222-2222-2222-2222-222222222222',
    FEDERATED_CREDENTIAL_ISSUER:
      'https://login.microsoftonline.com/33333333-3333-3333-3333-333333333333/v2.0',
    FEDERATED_CREDENTIAL_AUDIENCE: 'api://AzureADTokenExchange',
  };

  void it('prints the redirect URI and the federated credential for the managed identity', async () => {
    const run = await runHook('postprovision.js', newState({}), outputs);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.calls, [], 'outputs came from the hook environment; azd need not be asked');
    assert.match(run.stdout, /Redirect URI {3}https:\/\/func-broker-abc\.azurewebsites\.net\/api\/callback/);
    assert.match(
      run.stdout,
      /redirect URI, platform "Web": https:\/\/func-broker-abc\.azurewebsites\.net\/api\/callback/,
    );
    assert.match(run.stdout, /"subject":"22222222-2222-2222-2222-222222222222"/);
    assert.match(
      run.stdout,
      /"issuer":"https:\/\/login\.microsoftonline\.com\/3{8}-3{4}-3{4}-3{4}-3{12}\/v2\.0"/,
    );
    assert.match(run.stdout, /az functionapp keys list -g rg-dev -n func-broker-abc/);
  });

  void it('reads missing values through azd and never prints the client secret', async () => {
    const state = newState({
      ...outputs,
      MICROSOFT_CLIENT_ID: 'app-id-1',
      MICROSOFT_CLIENT_SECRET: 'hunter2-secret',
    });
    const run = await runHook('postprovision.js', state);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.calls, ['env get-values --output']);
    assert.match(run.stdout, /Credential {5}secret\n/);
    assert.match(run.stdout, /Check that app app-id-1 lists exactly this Web redirect URI/);
    assert.ok(!run.stdout.includes('hunter2-secret') && !run.stderr.includes('hunter2-secret'));
  });

  void it('fails when provisioning outputs are missing', async () => {
    const run = await runHook('postprovision.js', newState({ FUNCTION_APP_URL: outputs.FUNCTION_APP_URL }));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /provisioning outputs missing: REDIRECT_URI, AZURE_KEY_VAULT_ENDPOINT/);
  });
});

void describe('package staging (infra/stage-package.js, the second half of npm run build)', () => {
  void it('stages package.json, host.json and dist/ only (no sources, maps or node_modules)', async () => {
    const built = join(root, 'dist', 'functions');
    // `npm test` builds first; a lone `node --test` on a fresh clone needs `npm run build` before it.
    assert.ok(
      existsSync(built) && readdirSync(built).some((f) => f.endsWith('.js')),
      'run npm run build first',
    );
    const target = join(work, 'package');
    const run = await runHook('../stage-package.js', newState({}), {}, [target]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(readdirSync(target).sort(), ['dist', 'host.json', 'package.json']);
    const staged = readdirSync(join(target, 'dist'), { recursive: true, encoding: 'utf8' });
    assert.ok(
      staged.some((f) => /^functions[/\\][^/\\]+\.js$/.test(f)),
      'no function entry points staged',
    );
    assert.deepEqual(
      staged.filter((f) => f.endsWith('.map') || f.endsWith('.ts')),
      [],
    );
    const pkg = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8')) as Record<string, unknown>;
    const source = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(pkg.main, 'dist/functions/*.js');
    assert.equal(pkg.type, 'module');
    assert.deepEqual(pkg.dependencies, source.dependencies);
    assert.equal(pkg.scripts, undefined, 'a remote build must find no build script');
    assert.equal(pkg.devDependencies, undefined);
  });

  void it('agrees with azure.yaml (dist folder) and keeps node_modules out of .funcignore', () => {
    const yaml = readFileSync(join(root, 'azure.yaml'), 'utf8');
    assert.match(yaml, /^ {4}dist: \.tools\/azd-package$/m);
    // azd runs prepackage hooks BEFORE `npm run build`: staging belongs to the build script, not to a hook.
    const project = parseYaml(yaml) as { hooks?: object; services: Record<string, { hooks?: object }> };
    assert.ok(
      !('prepackage' in (project.hooks ?? {})) && !('prepackage' in (project.services.api?.hooks ?? {})),
    );
    const scripts = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    assert.match(scripts.build ?? '', /^node tools\/build\.ts && node infra\/stage-package\.js$/);
    assert.match(
      readFileSync(join(root, 'infra', 'stage-package.js'), 'utf8'),
      /join\('\.tools', 'azd-package'\)/,
    );
    // azd refuses `remoteBuild: false` when .funcignore excludes node_modules (service_target_functionapp.go).
    const ignored = readFileSync(join(root, '.funcignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    assert.ok(!ignored.some((l) => /^\/?node_modules\/?$/.test(l)), '.funcignore excludes node_modules');
  });
});
