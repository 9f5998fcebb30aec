// Second half of `npm run build` (after tools/build.ts): stages exactly what the Functions host needs —
// package.json (main = dist/functions/*.js, type = module), host.json and the bundled dist/ (every dependency is
// inside the esbuild chunks) — into the folder azure.yaml names as the api service's `dist`. azd zips that folder
// as it is (remoteBuild: false), so no node_modules, sources, tests or tools are uploaded.
// Why inside `npm run build` and not a `prepackage` hook: azd's Node packaging runs `npm install`, then the
// `prepackage` hook, then `npm run build`, then zips `dist` (Azure/azure-dev cli/azd/pkg/project
// framework_service_node.go, service_manager.go), so a hook would run before the build and see no or stale dist/.
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import console from 'node:console';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = resolve(root, process.argv[2] ?? join('.tools', 'azd-package'));

function main() {
  const functionsDir = join(root, 'dist', 'functions');
  const entries = existsSync(functionsDir) ? readdirSync(functionsDir).filter((f) => f.endsWith('.js')) : [];
  if (entries.length === 0) {
    throw new Error(
      'dist/functions/*.js not found: tools/build.ts must run first (`npm run build` runs both)',
    );
  }
  for (const file of ['package.json', 'host.json']) {
    if (!existsSync(join(root, file))) throw new Error(`${file} not found at the project root`);
  }
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  // No scripts and no devDependencies: should a server-side build ever run on this package (azd before 1.23.5
  // ignored `remoteBuild: false`), it finds nothing to build and only installs the already-bundled dependencies.
  const {
    scripts: _scripts,
    devDependencies: _dev,
    ...runtime
  } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  writeFileSync(join(target, 'package.json'), `${JSON.stringify(runtime, null, 2)}\n`);
  copyFileSync(join(root, 'host.json'), join(target, 'host.json'));
  // Source maps stay behind: they are only useful with the sources, which are not deployed either.
  cpSync(join(root, 'dist'), join(target, 'dist'), {
    recursive: true,
    filter: (src) => !src.endsWith('.map'),
  });
  console.log(`stage-package: ${entries.length} function file(s) staged in ${target}`);
}

try {
  main();
} catch (error) {
  console.error(`stage-package: ${error.message}`);
  process.exitCode = 1;
}
