// tools/checkNode.cjs: `npm install` / `npm start` / `npm run build` on a Node.js below package.json "engines"
// stop with one clear line instead of ERR_UNKNOWN_FILE_EXTENSION (Node 20 cannot load the .ts tools). Runs the real
// npm under the machine's Node 20 (/usr/bin/node) in a scratch project that has the repository's package.json
// scripts and engines (dependencies left out: the guard runs before anything is installed).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const checkNode = createRequire(import.meta.url)('../../tools/checkNode.cjs') as {
  problem(version: string, packageJson: string): string | undefined;
};
const pkgPath = join(root, 'package.json');
const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
};

const OLD_NODE = '/usr/bin/node';
const oldVersion = spawnSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
const haveOldNode = oldVersion !== '' && checkNode.problem(oldVersion, pkgPath) !== undefined;

const work = mkdtempSync(join(tmpdir(), 'check-node-'));
after(() => rmSync(work, { recursive: true, force: true }));
mkdirSync(join(work, 'tools'));
copyFileSync(join(root, 'tools', 'checkNode.cjs'), join(work, 'tools', 'checkNode.cjs'));
writeFileSync(
  join(work, 'package.json'),
  JSON.stringify({ name: 'check-node-scratch', private: true, engines: pkg.engines, scripts: pkg.scripts }),
);

function npm(args: string[], nodeDir: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: [nodeDir, process.env.PATH ?? ''].join(delimiter),
      npm_config_update_notifier: 'false',
    };
    delete env.NODE_TEST_CONTEXT;
    execFile('npm', args, { cwd: work, env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

const LINE =
  /^token-broker needs Node\.js >=22\.19\.0 \(package\.json "engines"\), but this is Node\.js v\d+\.\d+\.\d+ at \S+\. Install Node\.js 22\.19\.0 or newer/m;

void describe('tools/checkNode.cjs', () => {
  void it('knows the real floor: undici 8 needs Node >= 22.19', () => {
    const undici = JSON.parse(readFileSync(join(root, 'node_modules', 'undici', 'package.json'), 'utf8')) as {
      engines: { node: string };
    };
    assert.equal(pkg.engines.node, undici.engines.node);
    assert.match(checkNode.problem('v22.18.9', pkgPath) ?? '', /needs Node\.js >=22\.19\.0/);
    assert.match(checkNode.problem('v20.20.2', pkgPath) ?? '', /this is Node\.js v20\.20\.2/);
    for (const ok of ['v22.19.0', 'v22.100.0', 'v23.0.0', 'v24.1.0', process.version]) {
      assert.equal(checkNode.problem(ok, pkgPath), undefined, ok);
    }
  });

  void it('guards npm install, npm run build and npm start', () => {
    for (const script of ['preinstall', 'prebuild', 'prestart']) {
      assert.equal(pkg.scripts[script], 'node tools/checkNode.cjs', script);
    }
  });

  void it('lets Node 22 through: npm start runs the real start script after the check', async () => {
    writeFileSync(
      join(work, 'package.json'),
      JSON.stringify({
        name: 'check-node-scratch',
        private: true,
        engines: pkg.engines,
        scripts: { prestart: pkg.scripts.prestart, start: 'node -e "console.log(\'started\')"' },
      }),
    );
    const run = await npm(['start'], dirname(process.execPath));
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /^started$/m);
  });

  void it(
    'stops npm install and npm start on Node 20 with one line',
    { skip: !haveOldNode && `no old Node at ${OLD_NODE}` },
    async () => {
      writeFileSync(
        join(work, 'package.json'),
        JSON.stringify({
          name: 'check-node-scratch',
          private: true,
          engines: pkg.engines,
          scripts: pkg.scripts,
        }),
      );
      for (const args of [['install', '--no-audit', '--no-fund'], ['start'], ['run', 'build']]) {
        const run = await npm(args, dirname(OLD_NODE));
        assert.notEqual(run.code, 0, `npm ${args[0]} succeeded on ${oldVersion}`);
        assert.match(run.output, LINE, run.output);
        assert.doesNotMatch(run.output, /ERR_UNKNOWN_FILE_EXTENSION/);
        assert.equal(run.output.split('\n').filter((l) => l.startsWith('token-broker needs')).length, 1);
      }
    },
  );
});
