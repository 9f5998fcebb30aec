/**
 * @module catalog
 * Turns what the app registered into what the host serves, with the host's indexing checks: valid function
 * names (`^[a-z][a-z0-9_-]{0,127}$`, case-insensitive, not `host`), one trigger per function, `%Setting%`
 * resolution in timer schedules (missing setting = startup error), and NCRONTAB validation.
 */
import type { RegisteredFunction, Registry } from './coreApi.ts';
import { normalizeAuthLevel, type AuthLevel } from './keys.ts';
import { nextOccurrences, NcrontabError, parseNcrontab, type CronSchedule } from '../../shared/schedule.ts';
import type { RpcBindingInfo } from './rpcTypes.ts';

export class CatalogError extends Error {
  override name = 'CatalogError';
}

interface Base {
  readonly name: string;
  readonly fn: RegisteredFunction;
  readonly triggerBindingName: string;
  readonly triggerType: string;
}

export interface HttpFunction extends Base {
  readonly kind: 'http';
  readonly route: string | undefined;
  readonly methods: readonly string[] | undefined;
  readonly authLevel: AuthLevel;
}

export interface TimerFunction extends Base {
  readonly kind: 'timer';
  readonly schedule: CronSchedule;
  readonly runOnStartup: boolean;
  /** False when the host would not persist schedule status (then `scheduleStatus` is null). */
  readonly useMonitor: boolean;
}

export interface OtherFunction extends Base {
  readonly kind: 'other';
}

export type CatalogEntry = HttpFunction | TimerFunction | OtherFunction;

const NAME = /^[a-z][a-z0-9_-]{0,127}$/i;
const isTrigger = (type: unknown): type is string => typeof type === 'string' && /trigger$/i.test(type);

/** Resolves every `%Name%` from `env` (the host's `ResolveWholeString`). */
export function resolveAppSettings(text: string, env: NodeJS.ProcessEnv, what: string): string {
  return text.replace(/%([^%]+)%/g, (_match, name: string) => {
    const value = env[name];
    if (value === undefined) {
      throw new CatalogError(
        `${what}: '%${name}%' does not resolve to a value (app setting ${name} is not set).`,
      );
    }
    return value;
  });
}

/** The timers extension turns the status monitor off for schedules firing more than once a minute. */
function firesMoreThanOncePerMinute(schedule: CronSchedule, now: Date): boolean {
  const [first, second] = nextOccurrences(schedule, now, 2);
  return first !== undefined && second !== undefined && second.getTime() - now.getTime() < 60_000;
}

export function parseSchedule(expression: string, what: string): CronSchedule {
  try {
    return parseNcrontab(expression);
  } catch (err) {
    if (/^\s*(\d+\.)?\d+:\d+(:\d+)*(\.\d+)?\s*$/.test(expression)) {
      throw new CatalogError(
        `${what}: TimeSpan schedules ('${expression}') are only supported on App Service plans, not on ` +
          `Consumption or Flex Consumption; use an NCRONTAB expression.`,
      );
    }
    const reason = err instanceof NcrontabError ? err.message : String(err);
    throw new CatalogError(`${what}: ${reason}`);
  }
}

function classify(fn: RegisteredFunction, env: NodeJS.ProcessEnv, now: Date): CatalogEntry {
  const name = fn.metadata.name;
  if (!NAME.test(name) || name.toLowerCase() === 'host') {
    throw new CatalogError(`'${name}' is not a valid function name.`);
  }
  const triggers = Object.entries(fn.metadata.bindings ?? {}).filter(([, b]) => isTrigger(b?.type));
  if (triggers.length !== 1) {
    throw new CatalogError(
      `Function '${name}' must have exactly one trigger binding, found ${triggers.length}.`,
    );
  }
  const [triggerBindingName, binding] = triggers[0] as [string, RpcBindingInfo];
  const triggerType = binding.type as string;
  const base = { name, fn, triggerBindingName, triggerType };
  switch (triggerType.toLowerCase()) {
    case 'httptrigger': {
      const methods = Array.isArray(binding.methods)
        ? binding.methods.map((m) => String(m).toUpperCase())
        : undefined;
      let authLevel: AuthLevel;
      try {
        authLevel = normalizeAuthLevel(binding.authLevel);
      } catch (err) {
        throw new CatalogError(`Function '${name}': ${(err as Error).message}`);
      }
      const route = typeof binding.route === 'string' ? binding.route : undefined;
      return { ...base, kind: 'http', route, methods, authLevel };
    }
    case 'timertrigger': {
      const what = `Function '${name}' timer schedule`;
      if (typeof binding.schedule !== 'string') throw new CatalogError(`${what} is missing.`);
      // a schedule taken from an app setting is reported under that setting's name, so it can be fixed there
      const setting = /^%([^%]+)%$/.exec(binding.schedule.trim())?.[1];
      const resolved = resolveAppSettings(binding.schedule, env, what);
      const schedule = parseSchedule(resolved, setting ? `${what} (app setting ${setting})` : what);
      const useMonitor = binding.useMonitor !== false && !firesMoreThanOncePerMinute(schedule, now);
      return { ...base, kind: 'timer', schedule, runOnStartup: binding.runOnStartup === true, useMonitor };
    }
    default:
      return { ...base, kind: 'other' };
  }
}

export function buildCatalog(registry: Registry, env: NodeJS.ProcessEnv, now = new Date()): CatalogEntry[] {
  const seen = new Set<string>();
  const entries: CatalogEntry[] = [];
  for (const fn of registry.functions.values()) {
    const key = fn.metadata.name.toLowerCase();
    if (seen.has(key)) throw new CatalogError(`Two functions are named '${fn.metadata.name}'.`);
    seen.add(key);
    entries.push(classify(fn, env, now));
  }
  return entries;
}
