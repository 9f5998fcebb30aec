/**
 * @module settings
 * What the host reads from the app folder and the environment before loading the app: `package.json`
 * (`main`, `type`), `host.json` (route prefix, log level), `local.settings.json` (`Values` become environment
 * variables but never override ones already set, `ConnectionStrings` become `ConnectionStrings:<name>`, as in
 * Core Tools), and the dev host's own variables.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RpcLogLevel } from './rpcTypes.ts';

export class SettingsError extends Error {
  override name = 'SettingsError';
}

export const DEFAULT_PORT = 7071;
export const DEFAULT_ROUTE_PREFIX = 'api';
/** HOST `ScriptConstants.DefaultMaxRequestBodySize`. */
export const DEFAULT_BODY_LIMIT_BYTES = 104_857_600;

export interface AppFiles {
  readonly appDir: string;
  readonly main: string;
  readonly isModule: boolean;
  readonly routePrefix: string;
  readonly minLogLevel: RpcLogLevel;
  readonly localValues: Readonly<Record<string, string>>;
  readonly localHttpPort: number | undefined;
}

export interface DevHostOptions {
  readonly port: number;
  /** Undefined = keys not enforced (like Core Tools without --enableAuth). */
  readonly functionKey: string | undefined;
  readonly timersEnabled: boolean;
  readonly bodyLimitBytes: number;
  readonly routePrefix: string;
  /** FUNCTIONS_TARGET_GROUP (Flex): `http` or `function:<name>`; undefined = every function. */
  readonly targetGroup: string | undefined;
  /** DEVHOST_ALLOWED_HOSTS: host names answered besides loopback (`*` = any). */
  readonly allowedHosts: string | undefined;
  /** DEVHOST_MAX_CONNECTIONS: open connections at most (default {@link DEFAULT_MAX_CONNECTIONS}). */
  readonly maxConnections: number;
}

export const DEFAULT_MAX_CONNECTIONS = 1024;

function readJson(path: string, required: boolean): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SettingsError(`Cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
  } catch (err) {
    throw new SettingsError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const LOG_LEVELS: Record<string, RpcLogLevel> = {
  trace: 'trace',
  debug: 'debug',
  information: 'information',
  warning: 'warning',
  error: 'error',
  critical: 'critical',
  none: 'none',
};

function hostLogLevel(hostJson: Record<string, unknown>): RpcLogLevel {
  const logging = isRecord(hostJson.logging) ? hostJson.logging : {};
  const levels = isRecord(logging.logLevel) ? logging.logLevel : {};
  // user logs are categorised "Function.<name>.User"; the closest configured prefix wins, like ILogger filters
  const configured = levels['Function'] ?? levels['default'];
  return (typeof configured === 'string' && LOG_LEVELS[configured.toLowerCase()]) || 'information';
}

export function readAppFiles(appDir: string): AppFiles {
  const pkg = readJson(join(appDir, 'package.json'), true);
  if (!isRecord(pkg)) throw new SettingsError(`${join(appDir, 'package.json')} must contain a JSON object.`);
  const main = pkg.main;
  if (typeof main !== 'string' || main.trim() === '') {
    throw new SettingsError(`${join(appDir, 'package.json')} has no "main" entry point pattern.`);
  }

  const hostJson = readJson(join(appDir, 'host.json'), false);
  const host = isRecord(hostJson) ? hostJson : {};
  const extensions = isRecord(host.extensions) ? host.extensions : {};
  const http = isRecord(extensions.http) ? extensions.http : {};
  const routePrefix = typeof http.routePrefix === 'string' ? http.routePrefix : DEFAULT_ROUTE_PREFIX;

  const localPath = join(appDir, 'local.settings.json');
  const local = readJson(localPath, false);
  const localValues: Record<string, string> = {};
  let localHttpPort: number | undefined;
  if (local !== undefined) {
    if (!isRecord(local)) throw new SettingsError(`${localPath} must contain a JSON object.`);
    if (local.IsEncrypted === true) {
      throw new SettingsError(`${localPath} is encrypted; the dev host only reads plain settings.`);
    }
    if (isRecord(local.Values)) {
      for (const [name, value] of Object.entries(local.Values)) {
        // Core Tools expects strings; numbers and booleans are accepted as their text
        if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
          localValues[name] = String(value);
        }
      }
    }
    if (isRecord(local.ConnectionStrings)) {
      for (const [name, value] of Object.entries(local.ConnectionStrings)) {
        if (typeof value === 'string') localValues[`ConnectionStrings:${name}`] = value;
      }
    }
    const port = isRecord(local.Host) ? local.Host.LocalHttpPort : undefined;
    if (typeof port === 'number' && Number.isInteger(port)) localHttpPort = port;
  }

  return {
    appDir,
    main: main.trim(),
    isModule: pkg.type === 'module',
    routePrefix,
    minLogLevel: hostLogLevel(host),
    localValues,
    localHttpPort,
  };
}

/** Copies settings into `env` without overriding what is already set; returns the names it set. */
export function applyLocalValues(values: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv): string[] {
  const applied: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (env[name] === undefined) {
      env[name] = value;
      applied.push(name);
    }
  }
  return applied;
}

function parseIntegerSetting(
  env: NodeJS.ProcessEnv,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
    throw new SettingsError(`${name} must be an integer between ${min} and ${max}.`);
  }
  return Number(raw);
}

/** The dev host's own knobs, read after local settings were applied to `env`. */
export function readDevHostOptions(env: NodeJS.ProcessEnv, files: AppFiles): DevHostOptions {
  const port = parseIntegerSetting(env, 'DEVHOST_PORT', 0, 65535) ?? files.localHttpPort ?? DEFAULT_PORT;
  const key = env.DEVHOST_FUNCTION_KEY;
  const timers = (env.DEVHOST_TIMERS ?? 'on').trim().toLowerCase();
  if (!['on', 'off', 'true', 'false', '1', '0', ''].includes(timers)) {
    throw new SettingsError(`DEVHOST_TIMERS must be "on" or "off".`);
  }
  const bodyLimitBytes =
    parseIntegerSetting(env, 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT', 1, Number.MAX_SAFE_INTEGER) ??
    DEFAULT_BODY_LIMIT_BYTES;
  // same override Core Tools honours for host.json values
  const routePrefix = env.AzureFunctionsJobHost__extensions__http__routePrefix ?? files.routePrefix;
  const group = env.FUNCTIONS_TARGET_GROUP?.trim();
  if (group !== undefined && group !== '' && !/^(http|function:[a-z][a-z0-9_-]{0,127})$/i.test(group)) {
    throw new SettingsError(`FUNCTIONS_TARGET_GROUP must be "http" or "function:<function name>".`);
  }
  return {
    port,
    targetGroup: group === undefined || group === '' ? undefined : group,
    allowedHosts: env.DEVHOST_ALLOWED_HOSTS,
    maxConnections:
      parseIntegerSetting(env, 'DEVHOST_MAX_CONNECTIONS', 1, 1_000_000) ?? DEFAULT_MAX_CONNECTIONS,
    functionKey: key === undefined || key === '' ? undefined : key,
    timersEnabled: !['off', 'false', '0'].includes(timers),
    bodyLimitBytes,
    routePrefix,
  };
}
