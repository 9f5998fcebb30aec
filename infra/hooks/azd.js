// Small helpers the azd hooks share: talk to the `azd` CLI and check the broker's key format. Plain ESM
// JavaScript (no build step) because azd runs hooks with whatever `node` the user has.
import { execFileSync } from 'node:child_process';
import { Buffer } from 'node:buffer';
import process from 'node:process';

/**
 * Runs `azd <args>` and returns its stdout; throws an Error naming the command (never its values) on failure.
 * `secret: true` also drops azd's stderr from the error, for calls whose arguments carry a secret.
 */
export function runAzd(args, { secret = false } = {}) {
  try {
    return execFileSync('azd', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const reason = error.code === 'ENOENT' ? 'azd is not on PATH' : `exit ${error.status ?? '?'}`;
    const err = new Error(`'azd ${args[0] ?? ''} ${args[1] ?? ''}' failed (${reason})`);
    err.stderr = !secret && typeof error.stderr === 'string' ? error.stderr : '';
    throw err;
  }
}

/** The current azd environment's values (`azd env get-values --output json`). */
export function readAzdEnv() {
  const text = runAzd(['env', 'get-values', '--output', 'json']);
  const parsed = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error("'azd env get-values --output json' did not return a JSON object");
  }
  return parsed;
}

/** Value from the hook's environment (azd exports the env there) or else from `azd env get-values`. */
export function valueOf(name, values) {
  const fromProcess = process.env[name];
  if (fromProcess !== undefined && fromProcess !== '') return fromProcess;
  const fromAzd = values?.[name];
  return typeof fromAzd === 'string' ? fromAzd : '';
}

/** Same rule as shared/config.ts parseKeys: comma-separated base64url, each of at least 32 bytes. */
export function brokerKeysProblem(value) {
  // `azd env set-secret` stores a Key Vault reference azd resolves at provision time: nothing to check here.
  if (value.startsWith('akvs://')) return undefined;
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) return 'must list at least one key';
  for (const part of parts) {
    if (!/^[A-Za-z0-9_-]+={0,2}$/.test(part) || Buffer.from(part, 'base64url').length < 32) {
      return 'each key must be base64url of at least 32 random bytes';
    }
  }
  return undefined;
}

/** Same rule as shared/notify/settings.ts: `whsec_` + standard base64 of 24 to 64 bytes (Standard Webhooks). */
export function webhookSecretProblem(value) {
  if (value.startsWith('akvs://')) return undefined;
  const body = value.startsWith('whsec_') ? value.slice('whsec_'.length) : undefined;
  if (body === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return 'must be whsec_ followed by base64';
  const bytes = Buffer.from(body, 'base64').length;
  if (bytes < 24 || bytes > 64) return 'must carry 24 to 64 random bytes after whsec_';
  return undefined;
}
