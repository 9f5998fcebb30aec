/**
 * CLI for the demo IdP (used by `npm start` when no real provider is configured):
 *
 *   node tools/demo-idp/main.ts --port 7072 --client-id <id> --client-secret <s> --redirect-uri <uri>
 *
 * Options: --host (loopback, default 127.0.0.1), --redirect-uri (repeatable), --auth-method
 * (client_secret_post | client_secret_basic | none), --client-name, --role (repeatable), --access-token-ttl <s>,
 * --refresh-in <s>, --rotated-refresh-token-reuse (revoke-family | allow), --quiet. The secret may come from
 * DEMO_IDP_CLIENT_SECRET instead of the command line.
 * Prints exactly one ready line, `demo-idp: listening on <origin>`, then request log lines (no secrets).
 */
import { parseArgs } from 'node:util';
import type { ClientAuthMethod } from './directory.ts';
import { startDemoIdp } from './server.ts';

const AUTH_METHODS = new Set<ClientAuthMethod>(['client_secret_post', 'client_secret_basic', 'none']);

function fail(message: string): never {
  console.error(`demo-idp: ${message}`);
  process.exit(2);
}

function seconds(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) fail(`--${name} must be a positive integer (seconds)`);
  return n;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7072' },
    host: { type: 'string', default: '127.0.0.1' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'client-name': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'auth-method': { type: 'string' },
    role: { type: 'string', multiple: true },
    'access-token-ttl': { type: 'string' },
    'refresh-in': { type: 'string' },
    'rotated-refresh-token-reuse': { type: 'string', default: 'revoke-family' },
    quiet: { type: 'boolean', default: false },
  },
  strict: true,
});

const clientId = values['client-id'] ?? fail('--client-id is required');
const redirectUris = values['redirect-uri'] ?? fail('--redirect-uri is required');
const clientSecret = values['client-secret'] ?? process.env.DEMO_IDP_CLIENT_SECRET;
const authMethod = (values['auth-method'] ??
  (clientSecret ? 'client_secret_post' : 'none')) as ClientAuthMethod;
if (!AUTH_METHODS.has(authMethod))
  fail('--auth-method must be client_secret_post, client_secret_basic or none');
if (authMethod !== 'none' && !clientSecret) fail('--client-secret (or DEMO_IDP_CLIENT_SECRET) is required');
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail('--port must be a port number');
const accessTokenTtlSeconds = seconds('access-token-ttl', values['access-token-ttl']);
const refreshInSeconds = seconds('refresh-in', values['refresh-in']);
const reuse = values['rotated-refresh-token-reuse'];
if (reuse !== 'revoke-family' && reuse !== 'allow')
  fail('--rotated-refresh-token-reuse must be revoke-family or allow');

try {
  const idp = await startDemoIdp({
    port,
    host: values.host,
    quiet: values.quiet,
    rotatedRefreshTokenReuse: reuse,
    ...(accessTokenTtlSeconds !== undefined ? { accessTokenTtlSeconds } : {}),
    ...(refreshInSeconds !== undefined ? { refreshInSeconds } : {}),
    clients: [
      {
        clientId,
        ...(clientSecret && authMethod !== 'none' ? { clientSecret } : {}),
        redirectUris,
        authMethod,
        name: values['client-name'] ?? 'token-broker (local)',
        ...(values.role ? { roles: values.role } : {}),
      },
    ],
  });
  console.log(`demo-idp: listening on ${idp.origin}`);
  const stop = () => {
    idp.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (err) {
  fail(err instanceof Error ? err.message : 'failed to start');
}
