/**
 * Dev host CLI: serves an unmodified `@azure/functions` v4 app like Core Tools would.
 *
 *   node tools/devhost/main.ts [--app-dir <dir>]
 *
 * Environment: DEVHOST_PORT (default: local.settings.json Host.LocalHttpPort, else 7071; 0 = any free port),
 * DEVHOST_FUNCTION_KEY (enforce function/admin keys), DEVHOST_TIMERS=off (no scheduled or runOnStartup runs),
 * FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (bytes, default 100 MB), FUNCTIONS_TARGET_GROUP (Flex instance group: `http` or
 * `function:<name>`), DEVHOST_ALLOWED_HOSTS (Host names besides loopback), DEVHOST_MAX_CONNECTIONS (default 1024).
 * Listens on 127.0.0.1 only; see tools/devhost/README.md.
 * SIGINT/SIGTERM run the app's appTerminate hooks, then exit 0; a second signal exits at once.
 */
import { parseArgs } from 'node:util';
import { startDevHost, type RunningHost } from './host.ts';

const USAGE = 'usage: node tools/devhost/main.ts [--app-dir <dir>]';

function fail(message: string): never {
  process.stderr.write(`devhost: error: ${message}\n`);
  process.exit(1);
}

let args;
try {
  args = parseArgs({ options: { 'app-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`);
}
if (args.values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

let host: RunningHost | undefined;
let stopping = false;

function onSignal(signal: NodeJS.Signals): void {
  if (stopping) process.exit(1);
  stopping = true;
  process.stdout.write(`devhost: ${signal} received, shutting down\n`);
  if (!host) process.exit(0);
  host.shutdown().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(
        `devhost: appTerminate failed: ${err instanceof Error ? err.message : 'unknown error'}\n`,
      );
      process.exit(1);
    },
  );
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// Started by a test harness with an IPC channel: when that process dies (even by SIGKILL or a runner timeout),
// the channel closes and this host shuts down instead of living on as an orphan.
if (process.send) process.once('disconnect', () => onSignal('SIGTERM'));

try {
  host = await startDevHost({ appDir: args.values['app-dir'] ?? process.cwd() });
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
