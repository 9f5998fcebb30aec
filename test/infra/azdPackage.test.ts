// Replays what `azd package` / `azd up` does with service `api`, in azd's real order, on a fresh copy of the
// repository (tracked and new, not-ignored files only: no node_modules, no dist/, no .tools/), then serves the
// resulting zip, unpacked into an empty folder, with the dev host.
//
// azd's order, read in Azure/azure-dev (cli/azd):
//   pkg/project/service_manager.go  Package(): Restore first (the Node framework has RequireRestore: true), no
//                                   separate Build (RequireBuild: false), then the `prepackage` hooks fire
//                                   around the framework's Package step (runCommand → pre/post events);
//   pkg/project/framework_service_node.go  Restore = `npm install`; Package = `npm run build`, then the
//                                   package source is <project>/<dist> and must not be empty;
//   pkg/project/service_target_functionapp.go + project_utils.go createDeployableZip(): zips that folder; the
//                                   ignore file (.funcignore) is read from the ZIP ROOT; `.azure` folders, the
//                                   ignore file itself and local.settings.json are always left out; without an
//                                   ignore file node_modules is left out unless `remoteBuild: false`;
//                                   resolveFunctionAppRemoteBuild() rejects `remoteBuild: false` when the
//                                   PROJECT's .funcignore excludes node_modules.
// The zip is made with the `zip` CLI from the file list azd's rules select (symlinks followed, as rzip does).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT, spawnDevHost, type DevHostHandle } from '../support/devhost.ts';

interface HookConfig {
  run?: string;
  shell?: string;
  posix?: { run?: string; shell?: string };
}
interface AzureYaml {
  hooks?: Record<string, HookConfig>;
  services: Record<
    string,
    {
      project: string;
      language: string;
      host: string;
      dist?: string;
      remoteBuild?: boolean;
      hooks?: Record<string, HookConfig>;
    }
  >;
}

const work = mkdtempSync(join(tmpdir(), 'azd-package-'));
const clone = join(work, 'clone');
const unpacked = join(work, 'app');
const zipFile = join(work, 'api.zip');
// Node 22 first, like a developer whose `node` is the supported one (the machine's default node is older).
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter),
  npm_config_update_notifier: 'false',
};
delete env.NODE_TEST_CONTEXT;

function run(command: string, args: string[], cwd: string, timeoutMs = 300_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new Error(
              `${command} ${args.join(' ')} failed in ${cwd}: ${error.message}\n${stdout}\n${stderr}`,
            ),
          );
        else resolve(`${stdout}${stderr}`);
      },
    );
  });
}

/**
 * A fresh clone's files. Default: tracked plus new not-ignored files as they are in the working tree (what the
 * next commit would hold). AZD_REPLAY_SOURCE=<commit> (e.g. HEAD) takes that commit instead (`git archive`), exactly
 * what a clone checks out.
 */
function copyRepository(): number {
  const commit = process.env.AZD_REPLAY_SOURCE;
  if (commit) {
    mkdirSync(clone);
    const archived = spawnSync('sh', ['-c', `git archive --format=tar "${commit}" | tar -x -C "${clone}"`], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    assert.equal(archived.status, 0, archived.stderr);
    const listed = spawnSync('git', ['ls-tree', '-r', '--name-only', commit], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    return listed.stdout.split('\n').filter(Boolean).length;
  }
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  assert.equal(listed.status, 0, listed.stderr);
  let copied = 0;
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const source = join(REPO_ROOT, file);
    if (!existsSync(source) || !lstatSync(source).isFile()) continue; // deleted in the working tree
    mkdirSync(dirname(join(clone, file)), { recursive: true });
    copyFileSync(source, join(clone, file));
    copied += 1;
  }
  return copied;
}

/** Runs a hook the way azd does on Linux/macOS: `sh -c <run>` (shell `sh` is azure.yaml's posix choice). */
async function runHook(name: string, hook: HookConfig | undefined, cwd: string): Promise<void> {
  if (!hook) return;
  const posix = hook.posix ?? hook;
  assert.ok(posix.run, `hook ${name} has no posix run command`);
  assert.ok(!posix.shell || posix.shell === 'sh', `hook ${name}: shell ${posix.shell} is not replayed here`);
  await run('sh', ['-c', posix.run], cwd);
}

/** The files createDeployableZip() puts into the zip, relative to the zip root. */
function azdZipEntries(root: string, remoteBuild: boolean | undefined): string[] {
  assert.ok(
    !existsSync(join(root, '.funcignore')),
    "the package folder has a .funcignore: this replay models only azd's defaults, not ignore-file patterns",
  );
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      const isDir = statSync(full).isDirectory(); // follows symlinks, as azd does
      if (name === '.azure' && isDir) continue;
      if (name === 'local.settings.json' && !isDir) continue;
      if (name === 'node_modules' && isDir && remoteBuild !== false) continue;
      if (isDir) walk(full);
      else out.push(relative(root, full));
    }
  };
  walk(root);
  return out.sort();
}

/** Does the project's .funcignore exclude node_modules (azd then refuses `remoteBuild: false`)? */
function funcignoreExcludesNodeModules(project: string): boolean {
  const file = join(project, '.funcignore');
  if (!existsSync(file)) return false;
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .some((l) => /^(\*\*\/|\/)?node_modules\/?(\*\*)?$/.test(l));
}

/** Function names the app registers (app.http('name', …), app.timer('name', …)) in functions/*.ts. */
function declaredFunctions(project: string): string[] {
  const names: string[] = [];
  for (const file of readdirSync(join(project, 'functions')).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(project, 'functions', file), 'utf8');
    for (const m of text.matchAll(/\bapp\.\w+\(\s*'([^']+)'/g)) names.push(m[1] ?? '');
  }
  return names.sort();
}

let host: DevHostHandle | undefined;
let entries: string[] = [];
let serviceDist = '';

void describe(
  'azd package replay (fresh clone → npm install → prepackage hooks → npm run build → zip)',
  { timeout: 900_000 },
  () => {
    before(
      async () => {
        const copied = copyRepository();
        assert.ok(copied > 50, `only ${copied} files copied`);
        assert.ok(
          !existsSync(join(clone, 'dist')) &&
            !existsSync(join(clone, '.tools')) &&
            !existsSync(join(clone, 'node_modules')),
          'the clone is not fresh',
        );
        // Leftovers of an older build in both places a stale package could come from: none may reach the zip
        // (they would show up as an extra indexed function, or break the start-up).
        const stale =
          "import { app } from '@azure/functions';\napp.http('staleLeftover', { handler: async () => ({}) });\n";
        for (const dir of ['dist/functions', '.tools/azd-package/dist/functions']) {
          mkdirSync(join(clone, dir), { recursive: true });
          writeFileSync(join(clone, dir, 'staleLeftover.js'), stale);
        }

        const project = parse(readFileSync(join(clone, 'azure.yaml'), 'utf8')) as AzureYaml;
        const service = project.services.api;
        assert.ok(service, 'azure.yaml has no service api');
        assert.equal(service.host, 'function');
        assert.equal(service.language, 'ts');
        const servicePath = join(clone, service.project);
        assert.ok(service.dist, 'azure.yaml names no dist folder for api');
        serviceDist = join(servicePath, service.dist);
        assert.ok(
          !(service.remoteBuild === false && funcignoreExcludesNodeModules(servicePath)),
          "azd refuses 'remoteBuild: false' when .funcignore excludes node_modules",
        );

        // 1. Restore (RequireRestore), 2. prepackage hooks (project-level command hook, then the service's),
        // 3. the Node framework's Package step = `npm run build`, 4. zip <project>/<dist>.
        const phases: string[] = [];
        let mark = Date.now();
        const phase = (name: string) => {
          phases.push(`${name} ${((Date.now() - mark) / 1000).toFixed(1)} s`);
          mark = Date.now();
        };
        phase('copy');
        await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], servicePath, 600_000);
        phase('npm install');
        await runHook('prepackage (project)', project.hooks?.prepackage, clone);
        await runHook('prepackage (api)', service.hooks?.prepackage, servicePath);
        phase('prepackage hooks');
        await run('npm', ['run', 'build'], servicePath);
        phase('npm run build');
        assert.ok(
          existsSync(serviceDist) && readdirSync(serviceDist).length > 0,
          `package source '${service.dist}' is empty or does not exist (azd stops here)`,
        );
        entries = azdZipEntries(serviceDist, service.remoteBuild);
        const list = join(work, 'entries.txt');
        writeFileSync(list, `${entries.join('\n')}\n`);
        await run('sh', ['-c', `zip -q -X "${zipFile}" -@ < "${list}"`], serviceDist);
        mkdirSync(unpacked);
        await run('unzip', ['-q', zipFile, '-d', unpacked], work);
        phase('zip + unzip');

        const data = join(work, 'data');
        mkdirSync(data);
        host = await spawnDevHost({
          appDir: unpacked,
          env: { BROKER_DATA_DIR: data, DEVHOST_TIMERS: 'off', DEVHOST_FUNCTION_KEY: 'replay-key' },
          readyTimeoutMs: 30_000,
        });
        phase('dev host ready');
        console.log(`azd package replay: ${entries.length} zip entries; ${phases.join(', ')}`);
      },
      // npm install + build take about 30 s on a warm npm cache; a slow CI machine gets room.
      { timeout: 600_000 },
    );

    after(async () => {
      const stopping = Date.now();
      await host?.stop();
      rmSync(work, { recursive: true, force: true });
      console.log(`azd package replay: teardown ${((Date.now() - stopping) / 1000).toFixed(1)} s`);
    });

    void it('zips a package the Functions host can load: host.json and package.json at the root, no node_modules', () => {
      assert.ok(entries.includes('host.json'), `host.json is not at the zip root: ${entries.join(', ')}`);
      assert.ok(entries.includes('package.json'), 'package.json is not at the zip root');
      assert.ok(!existsSync(join(unpacked, 'node_modules')), 'node_modules was zipped');
      assert.deepEqual(
        entries.filter((e) => /(^|\/)node_modules\/|\.ts$|\.map$/.test(e)),
        [],
        'sources, maps or node_modules in the zip',
      );
      const pkg = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8')) as { main?: string };
      assert.ok(pkg.main, 'package.json has no main');
    });

    void it('serves /api/health from the unpacked zip with every function of functions/*.ts indexed', async () => {
      assert.ok(host);
      const res = await fetch(`${host.baseUrl}/api/health`);
      assert.equal(res.status, 200, await res.text());
      const indexed = [...host.logs().matchAll(/^devhost: function (\w+):/gm)].map((m) => m[1] ?? '').sort();
      assert.deepEqual(indexed, declaredFunctions(clone));
    });
  },
);
