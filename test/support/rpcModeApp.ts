/**
 * The broker built with HTTP streams off (`HTTP_STREAMS = false` in shared/httpStreams.ts), everything else exactly
 * like the production build (tools/buildOptions.ts), into a temporary app folder the dev host can serve: the
 * token-path benchmark measures both modes of the same code in the same run, and the e2e tests check the RPC mode's
 * 411 for chunked bodies.
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { PRODUCTION_BUILD_OPTIONS } from '../../tools/buildOptions.ts';
import { REPO_ROOT } from './devhost.ts';

const STREAMS_ON = 'export const HTTP_STREAMS: boolean = true;';

const streamsOff: Plugin = {
  name: 'http-streams-off',
  setup(b) {
    b.onLoad({ filter: /[\\/]shared[\\/]httpStreams\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes(STREAMS_ON)) throw new Error(`${args.path} no longer declares "${STREAMS_ON}"`);
      return {
        contents: source.replace(STREAMS_ON, 'export const HTTP_STREAMS: boolean = false;'),
        loader: 'ts',
      };
    });
  },
};

export async function buildRpcModeApp(outDir: string): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  copyFileSync(join(REPO_ROOT, 'package.json'), join(outDir, 'package.json'));
  copyFileSync(join(REPO_ROOT, 'host.json'), join(outDir, 'host.json'));
  const functionsDir = join(REPO_ROOT, 'functions');
  await build({
    ...PRODUCTION_BUILD_OPTIONS,
    entryPoints: readdirSync(functionsDir)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(functionsDir, f)),
    outdir: join(outDir, 'dist'),
    outbase: REPO_ROOT,
    plugins: [streamsOff],
  });
}
