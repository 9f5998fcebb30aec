/**
 * @module host
 * Starts the dev host in the worker's order: settings → `@azure/functions-core` installed → listen (so the port
 * is known for WEBSITE_HOSTNAME) → load entry points → appStart hooks → `getCapabilities` → registration locked
 * → functions indexed (routes, timers) → ready. Shutdown stops timers and traffic, waits for running
 * invocations, then runs appTerminate hooks.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolve } from 'node:path';
import { createLogger, type Logger } from '../../shared/log.ts';
import { createAppLog, processWriter, type LineWriter } from './appLog.ts';
import { buildCatalog, type CatalogEntry, type HttpFunction } from './catalog.ts';
import { createCoreApi, installCoreModule, ReadOnlyError, Registry } from './coreApi.ts';
import { runInvocation, traceContextFor } from './invoke.ts';
import { loadEntryPoints, resolveEntryPoints } from './loader.ts';
import { buildRouteTable, compareFunctionNames, RouteTable } from './routing.ts';
import type { RpcTraceContext, RpcTypedData, WorkerCapabilities } from './rpcTypes.ts';
import { parseAllowedHosts } from './hostFilter.ts';
import {
  createRequestListener,
  type HttpInvocation,
  type InvokeExtra,
  type RequestTarget,
} from './server.ts';
import { applyLocalValues, readAppFiles, readDevHostOptions, type DevHostOptions } from './settings.ts';
import { TimerListener, type TimerRunReason } from './timers.ts';

export class StartupError extends Error {
  override name = 'StartupError';
}

/** What the worker reports to the host (worker `getWorkerCapabilities.ts`); the library may add to it. */
const WORKER_CAPABILITIES: WorkerCapabilities = {
  RawHttpBodyBytes: 'true',
  RpcHttpTriggerMetadataRemoved: 'true',
  RpcHttpBodyOnly: 'true',
  IgnoreEmptyValuedRpcHttpHeaders: 'true',
  UseNullableValueDictionaryForHttp: 'true',
  WorkerStatus: 'true',
  TypedDataCollection: 'true',
  HandlesWorkerTerminateMessage: 'true',
};

/** How long shutdown waits for running invocations before running appTerminate hooks anyway. */
const DRAIN_TIMEOUT_MS = 10_000;
/** How long shutdown lets finished connections close before cutting them. */
const CLOSE_GRACE_MS = 1_000;
export const READY_LINE_PREFIX = 'devhost: listening on';

export interface StartOptions {
  readonly appDir: string;
  readonly writer?: LineWriter;
}

export interface RunningHost {
  readonly port: number;
  readonly baseUrl: string;
  /** Idempotent; resolves once appTerminate hooks ran. */
  shutdown(): Promise<void>;
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return `non-error thrown: ${typeof err}`;
}

function hookContext(data: Record<string, unknown>, extra: Record<string, unknown>): object {
  const ctx = { ...extra };
  for (const [name, value] of Object.entries(data)) {
    Object.defineProperty(ctx, name, {
      enumerable: true,
      get: () => value,
      set: () => {
        throw new ReadOnlyError(name);
      },
    });
  }
  return ctx;
}

async function listen(server: Server, port: number): Promise<number> {
  server.listen(port, '127.0.0.1');
  try {
    await once(server, 'listening');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new StartupError(
      code === 'EADDRINUSE'
        ? `Port ${port} is already in use; set DEVHOST_PORT to another port (0 picks a free one).`
        : `Cannot listen on 127.0.0.1:${port}: ${(err as Error).message}`,
    );
  }
  const address = server.address();
  if (address === null || typeof address === 'string') throw new StartupError('Server has no TCP address.');
  return address.port;
}

function functionLine(entry: CatalogEntry, options: DevHostOptions, baseUrl: string, prefix: string): string {
  if (entry.kind === 'http') {
    const route = entry.route === undefined || entry.route.trim() === '' ? entry.name : entry.route.trim();
    const path = [prefix, route.replace(/^\/+/, '')].filter((p) => p !== '').join('/');
    const methods = entry.methods && entry.methods.length > 0 ? entry.methods.join(',') : 'ALL';
    const auth =
      entry.authLevel === 'anonymous'
        ? 'anonymous'
        : options.functionKey
          ? `${entry.authLevel} key required`
          : `${entry.authLevel} key NOT enforced`;
    return `devhost: function ${entry.name}: [${methods}] ${baseUrl}/${path} (${auth})`;
  }
  if (entry.kind === 'timer') {
    const flags = [
      entry.runOnStartup ? 'runOnStartup' : '',
      options.timersEnabled ? '' : 'scheduled firing off',
    ];
    const extra = flags.filter(Boolean).join(', ');
    return `devhost: function ${entry.name}: timer "${entry.schedule.expression}" UTC${extra ? ` (${extra})` : ''}`;
  }
  return `devhost: function ${entry.name}: ${entry.triggerType} (not fired by the dev host; POST /admin/functions/${entry.name} runs it)`;
}

/** HOST `FunctionMetadataExtensions.GetFunctionGroup`: HTTP functions form `http`, others `function:<name>`. */
export function functionGroup(entry: CatalogEntry): string {
  return entry.kind === 'http' ? 'http' : `function:${entry.name}`;
}

/** HOST `FunctionGroups.IsEnabled`: no target group = every function listens. */
export function isEnabledGroup(targetGroup: string | undefined, group: string): boolean {
  return targetGroup === undefined || targetGroup.toLowerCase() === group.toLowerCase();
}

class DevHost implements RequestTarget {
  accepting = false;
  routes: RouteTable<HttpFunction> = new RouteTable<HttpFunction>([]);
  readonly functionKey: string | undefined;
  readonly bodyLimitBytes: number;
  readonly homepageEnabled: boolean;
  readonly allowedHosts: readonly string[];
  readonly servesHttp: boolean;
  readonly targetGroup: string | undefined;
  workerHttpUri: URL | undefined;
  defaultHost = 'localhost';
  readonly #registry: Registry;
  readonly #log: Logger;
  readonly #writer: LineWriter;
  readonly #appLog: ReturnType<typeof createAppLog>;
  readonly #byName = new Map<string, CatalogEntry>();
  readonly #timers = new Map<string, TimerListener>();
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(
    registry: Registry,
    options: DevHostOptions,
    appLog: ReturnType<typeof createAppLog>,
    writer: LineWriter,
  ) {
    this.#registry = registry;
    this.functionKey = options.functionKey;
    this.bodyLimitBytes = options.bodyLimitBytes;
    this.homepageEnabled = process.env.AzureWebJobsDisableHomepage?.toLowerCase() !== 'true';
    this.allowedHosts = parseAllowedHosts(options.allowedHosts);
    this.targetGroup = options.targetGroup;
    this.servesHttp = isEnabledGroup(options.targetGroup, 'http');
    this.#appLog = appLog;
    this.#writer = writer;
    this.#log = createLogger({}, (level, line) => (level === 'info' ? writer.out(line) : writer.err(line)));
  }

  get log(): Logger {
    return this.#log;
  }

  index(entries: readonly CatalogEntry[], routePrefix: string): void {
    for (const entry of entries) this.#byName.set(entry.name.toLowerCase(), entry);
    this.routes = buildRouteTable(
      entries
        .filter((e): e is HttpFunction => e.kind === 'http')
        .map((e) => ({ functionName: e.name, route: e.route, methods: e.methods, value: e })),
      routePrefix,
    );
    for (const entry of entries) {
      if (entry.kind === 'timer') {
        this.#timers.set(
          entry.name,
          new TimerListener(entry, (payload, reason) => this.#invokeNonHttp(entry, payload, reason)),
        );
      }
    }
  }

  startTimers(): void {
    // Flex: only the listeners of the instance's group run (HOST FunctionGroupListenerDecorator); manual runs
    // through the admin API still work for the others
    for (const timer of this.#timers.values()) {
      if (isEnabledGroup(this.targetGroup, functionGroup(timer.entry))) timer.start();
    }
  }

  findFunction(name: string): CatalogEntry | undefined {
    return this.#byName.get(name.toLowerCase());
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight.add(promise);
    const remove = () => this.#inFlight.delete(promise);
    promise.then(remove, remove);
    return promise;
  }

  track(work: Promise<void>): void {
    void this.#track(work);
  }

  #reportFailure(name: string, invocationId: string, err: unknown): void {
    this.#writer.err(`[error] ${name}: invocation ${invocationId} failed: ${describeError(err)}`);
  }

  async invokeHttp(
    entry: HttpFunction,
    data: RpcTypedData,
    trace: RpcTraceContext,
    extra: InvokeExtra = {},
  ): Promise<HttpInvocation> {
    const invocationId = extra.invocationId ?? randomUUID();
    const started = performance.now();
    const run = this.#track(
      runInvocation(this.#registry, this.#appLog, {
        invocationId,
        fn: entry.fn,
        triggerBindingName: entry.triggerBindingName,
        data,
        traceContext: trace,
        triggerMetadata: extra.triggerMetadata,
      }),
    );
    let ok = true;
    let response;
    try {
      response = await run;
    } catch (err) {
      ok = false;
      this.#reportFailure(entry.name, invocationId, err);
    }
    return {
      ok,
      response,
      done: (status) => {
        this.#log.info('devhost.invocation', {
          function: entry.name,
          invocationId,
          httpStatus: status,
          durationMs: Math.round(performance.now() - started),
        });
      },
    };
  }

  async #invokeNonHttp(entry: CatalogEntry, data: RpcTypedData, reason: TimerRunReason): Promise<void> {
    const invocationId = randomUUID();
    const started = performance.now();
    let outcome = 'succeeded';
    try {
      await this.#track(
        runInvocation(this.#registry, this.#appLog, {
          invocationId,
          fn: entry.fn,
          triggerBindingName: entry.triggerBindingName,
          data,
          traceContext: traceContextFor(undefined, undefined),
        }),
      );
    } catch (err) {
      outcome = 'failed';
      this.#reportFailure(entry.name, invocationId, err);
      throw err;
    } finally {
      this.#log.info('devhost.invocation', {
        function: entry.name,
        invocationId,
        reason,
        outcome,
        durationMs: Math.round(performance.now() - started),
      });
    }
  }

  runNonHttp(entry: CatalogEntry, input: unknown): Promise<void> {
    if (entry.kind === 'timer') {
      const timer = this.#timers.get(entry.name);
      if (!timer) return Promise.reject(new Error(`timer ${entry.name} is not indexed`));
      return timer.runManually();
    }
    // the admin API's `input` is a string in the host; other JSON values are passed as their JSON text
    const text =
      input === null || input === undefined ? '' : typeof input === 'string' ? input : JSON.stringify(input);
    return this.#invokeNonHttp(entry, { string: text }, 'manual');
  }

  /** Stops firing; running timer invocations are awaited by {@link drain} (bounded). */
  stopTimers(): void {
    for (const timer of this.#timers.values()) void timer.stop();
  }

  async drain(timeoutMs: number): Promise<void> {
    if (this.#inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((done) => {
      timer = setTimeout(done, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.#inFlight]), timeout]);
    clearTimeout(timer);
  }

  async runAppHooks(name: 'appStart' | 'appTerminate', extra: Record<string, unknown>): Promise<void> {
    const ctx = hookContext(
      { hookData: this.#registry.appLevelOnlyHookData, appHookData: this.#registry.appHookData },
      extra,
    );
    for (const hook of [...this.#registry.hooks[name]]) await hook(ctx);
  }
}

export async function startDevHost(options: StartOptions): Promise<RunningHost> {
  const writer = options.writer ?? processWriter;
  const appDir = resolve(options.appDir);
  const env = process.env;

  const files = readAppFiles(appDir);
  applyLocalValues(files.localValues, env);
  const devOptions = readDevHostOptions(env, files);
  env.AZURE_FUNCTIONS_ENVIRONMENT ??= 'Development';

  const registry = new Registry();
  const appLog = createAppLog(registry, files.minLogLevel, writer);
  registry.systemLog = (level, category, message) => appLog(level, category, message);
  installCoreModule(createCoreApi(registry));

  const host = new DevHost(registry, devOptions, appLog, writer);
  const server = createServer(createRequestListener(host));
  server.keepAliveTimeout = 30_000;
  // a bound on open connections: past it node closes new sockets at once instead of exhausting the process
  server.maxConnections = devOptions.maxConnections;
  const port = await listen(server, devOptions.port);
  const baseUrl = `http://localhost:${port}`;
  host.defaultHost = `localhost:${port}`;
  env.WEBSITE_HOSTNAME ??= `localhost:${port}`;

  try {
    await loadEntryPoints(resolveEntryPoints(appDir, files.main), files.isModule);
    await host.runAppHooks('appStart', { functionAppDirectory: appDir });
    const model = registry.programmingModel;
    if (!model) throw new StartupError('The app registered no functions (no programming model was set).');
    const capabilities = model.getCapabilities ? await model.getCapabilities({ ...WORKER_CAPABILITIES }) : {};
    if (capabilities.HttpUri) {
      // HTTP streams: requests are forwarded to the library's own server (HOST GrpcWorkerChannel, HttpUri)
      try {
        host.workerHttpUri = new URL(capabilities.HttpUri);
      } catch {
        throw new StartupError(`The worker reported an invalid HttpUri capability.`);
      }
    }
    registry.finishedStartup = true;
    const entries = buildCatalog(registry, env).sort((a, b) => compareFunctionNames(a.name, b.name));
    if (entries.length === 0) throw new StartupError('The app registered no functions.');
    host.index(entries, devOptions.routePrefix);

    if (!devOptions.functionKey) {
      host.log.warn(
        'devhost: WARNING: DEVHOST_FUNCTION_KEY is not set, so function and admin keys are NOT enforced (like Core Tools without --enableAuth).',
      );
    }
    for (const entry of entries) {
      const line = functionLine(entry, devOptions, baseUrl, devOptions.routePrefix);
      const active = isEnabledGroup(devOptions.targetGroup, functionGroup(entry));
      host.log.info(active ? line : `${line} [not in group ${devOptions.targetGroup}: not listening]`);
    }
    if (devOptions.targetGroup) host.log.info(`devhost: FUNCTIONS_TARGET_GROUP=${devOptions.targetGroup}`);
    host.log.info(
      host.workerHttpUri
        ? `devhost: HTTP streams on: requests are forwarded to the worker's proxy ${host.workerHttpUri.href}`
        : 'devhost: HTTP streams off: a request body reaches the app only with Content-Length > 0',
    );
    if (devOptions.timersEnabled) host.startTimers();
  } catch (err) {
    server.close();
    server.closeAllConnections();
    throw err;
  }

  host.accepting = true;
  host.log.info(`${READY_LINE_PREFIX} ${baseUrl}`);

  let shutdown: Promise<void> | undefined;
  return {
    port,
    baseUrl,
    shutdown() {
      shutdown ??= (async () => {
        host.accepting = false;
        server.close();
        server.closeIdleConnections();
        host.stopTimers();
        await host.drain(DRAIN_TIMEOUT_MS);
        try {
          await host.runAppHooks('appTerminate', {});
        } finally {
          // connections end by themselves once their last response is out; don't wait for slow clients
          const closed = once(server, 'close').then(() => undefined);
          await Promise.race([closed, sleep(CLOSE_GRACE_MS)]);
          server.closeAllConnections();
        }
      })();
      return shutdown;
    },
  };
}
