/**
 * @module appLog
 * Logs that reach the host through the core API: user logs (`context.log/warn/…` → `coreCtx.log(level,
 * 'user', message)`) and the library's system logs (`coreApi.log`). Log hooks run first and may rewrite the level
 * and message of user logs only; a throwing hook never blocks a log (worker `WorkerContext.log`). Lines below
 * host.json's level are dropped; the rest print as `[level] function: message`, warnings and worse on stderr.
 */
import { ReadOnlyError, type Registry } from './coreApi.ts';
import type { HookData, RpcLogCategory, RpcLogLevel } from './rpcTypes.ts';

const RANK: Record<RpcLogLevel, number> = {
  trace: 0,
  debug: 1,
  information: 2,
  warning: 3,
  error: 4,
  critical: 5,
  none: 6,
};

export interface InvocationLogScope {
  readonly functionName: string;
  readonly hookData: HookData;
  readonly invocationContext: unknown;
}

export interface LineWriter {
  out(line: string): void;
  err(line: string): void;
}

export const processWriter: LineWriter = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
};

export type AppLogFn = (
  level: RpcLogLevel,
  category: RpcLogCategory,
  message: string,
  scope?: InvocationLogScope,
) => void;

function logHookContext(
  registry: Registry,
  level: RpcLogLevel,
  category: RpcLogCategory,
  message: string,
  scope: InvocationLogScope | undefined,
) {
  const hookData = scope?.hookData ?? {};
  return {
    level,
    message,
    get category() {
      return category;
    },
    set category(_v: unknown) {
      throw new ReadOnlyError('category');
    },
    get hookData() {
      return hookData;
    },
    set hookData(_v: unknown) {
      throw new ReadOnlyError('hookData');
    },
    get appHookData() {
      return registry.appHookData;
    },
    set appHookData(_v: unknown) {
      throw new ReadOnlyError('appHookData');
    },
    get invocationContext() {
      return scope?.invocationContext;
    },
    set invocationContext(_v: unknown) {
      throw new ReadOnlyError('invocationContext');
    },
  };
}

export function createAppLog(
  registry: Registry,
  minLevel: RpcLogLevel,
  writer: LineWriter = processWriter,
): AppLogFn {
  return (level, category, message, scope) => {
    let finalLevel = level;
    let finalMessage = message;
    if (registry.hooks.log.length > 0) {
      const ctx = logHookContext(registry, level, category, message, scope);
      try {
        for (const hook of registry.hooks.log) hook(ctx);
        if (category === 'user') {
          finalLevel = ctx.level in RANK ? ctx.level : level;
          finalMessage = String(ctx.message);
        }
      } catch {
        // user hooks can't prevent logs
      }
    }
    if (finalLevel === 'none' || (RANK[finalLevel] ?? RANK.information) < RANK[minLevel]) return;
    const line = scope
      ? `[${finalLevel}] ${scope.functionName}: ${finalMessage}`
      : `[${finalLevel}] ${finalMessage}`;
    if (RANK[finalLevel] >= RANK.warning) writer.err(line);
    else writer.out(line);
  };
}
