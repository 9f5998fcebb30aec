/**
 * @module coreApi
 * The `@azure/functions-core` object the Node worker hands to the app (worker `src/setupCoreModule.ts`), plus
 * the registry it fills. The library `require`s this module lazily on its first `app.*` call; if the require
 * fails it silently switches to "test mode" and registers nothing, so the interception must be in place before
 * the app (and with it the library) is first loaded.
 */
import Module from 'node:module';
import { HOOK_NAMES } from './rpcTypes.ts';
import type {
  FunctionCallback,
  FunctionMetadata,
  HookCallback,
  HookData,
  HookName,
  ProgrammingModel,
  RpcLogCategory,
  RpcLogLevel,
} from './rpcTypes.ts';

/** Version strings reported to the app. The host version is the snapshot whose behaviour this emulates. */
export const WORKER_VERSION = '3.10.1-devhost';
export const HOST_VERSION = '4.1037.0';

/** Errors the worker marks as its own (the library checks `isAzureFunctionsSystemError`, e.g. for log hooks). */
export class AzFuncSystemError extends Error {
  readonly isAzureFunctionsSystemError = true;
}

export class AzFuncRangeError extends RangeError {
  readonly isAzureFunctionsSystemError = true;
}

export class ReadOnlyError extends TypeError {
  readonly isAzureFunctionsSystemError = true;
  constructor(propertyName: string) {
    super(`Cannot assign to read only property '${propertyName}'`);
  }
}

/** Same contract as the worker's Disposable: `dispose()` runs the callback once. */
export class Disposable {
  #callOnDispose: (() => unknown) | undefined;

  static from(...inDisposables: { dispose(): unknown }[]): Disposable {
    let disposables: { dispose(): unknown }[] | undefined = inDisposables;
    return new Disposable(() => {
      if (disposables) {
        for (const disposable of disposables) disposable.dispose();
        disposables = undefined;
      }
    });
  }

  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }

  dispose(): void {
    const callback = this.#callOnDispose;
    this.#callOnDispose = undefined;
    if (callback) callback();
  }
}

export interface RegisteredFunction {
  readonly id: string;
  readonly metadata: FunctionMetadata;
  readonly callback: FunctionCallback;
}

export type SystemLogSink = (level: RpcLogLevel, category: RpcLogCategory, message: string) => void;

/** Everything the app registered through the core API. */
export class Registry {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks: Record<HookName, HookCallback[]> = {
    appStart: [],
    appTerminate: [],
    preInvocation: [],
    postInvocation: [],
    log: [],
  };
  /** Shared by every hook (`appHookData`). */
  readonly appHookData: HookData = {};
  /** Shared by appStart and appTerminate only (their `hookData`). */
  readonly appLevelOnlyHookData: HookData = {};
  programmingModel: ProgrammingModel | undefined;
  /** Set once the host has "asked for metadata"; later (un)registration throws like the worker. */
  finishedStartup = false;
  systemLog: SystemLogSink = () => {};
}

export interface CoreApi {
  readonly version: string;
  readonly hostVersion: string;
  registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable;
  registerHook(hookName: string, callback: HookCallback): Disposable;
  setProgrammingModel(model: ProgrammingModel): void;
  getProgrammingModel(): ProgrammingModel | undefined;
  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void;
  readonly Disposable: typeof Disposable;
}

function isHookName(name: string): name is HookName {
  return (HOOK_NAMES as readonly string[]).includes(name);
}

export function createCoreApi(registry: Registry): CoreApi {
  return {
    version: WORKER_VERSION,
    hostVersion: HOST_VERSION,
    registerFunction(metadata, callback) {
      if (registry.finishedStartup) {
        throw new AzFuncSystemError('A function can only be registered during app startup.');
      }
      const name = metadata?.name;
      const id = metadata?.functionId || name;
      if (typeof id !== 'string' || id === '') {
        throw new AzFuncSystemError('A function must have a name to be registered.');
      }
      if (registry.functions.has(id)) {
        throw new AzFuncSystemError(`A function with id "${id}" has already been registered.`);
      }
      if (typeof callback !== 'function') {
        throw new AzFuncSystemError(`The callback for function "${id}" must be a function.`);
      }
      registry.functions.set(id, { id, metadata: { ...metadata, name: name || id }, callback });
      return new Disposable(() => {
        if (registry.finishedStartup) {
          throw new AzFuncSystemError('A function can only be disposed during app startup.');
        }
        registry.functions.delete(id);
      });
    },
    registerHook(hookName, callback) {
      if (!isHookName(hookName)) throw new AzFuncRangeError(`Unrecognized hook "${hookName}"`);
      const hooks = registry.hooks[hookName];
      hooks.push(callback);
      return new Disposable(() => {
        const index = hooks.indexOf(callback);
        if (index > -1) hooks.splice(index, 1);
      });
    },
    setProgrammingModel(model) {
      registry.programmingModel = model;
    },
    getProgrammingModel() {
      return registry.programmingModel;
    },
    log(level, category, message) {
      registry.systemLog(level, category, message);
    },
    Disposable,
  };
}

const CORE_MODULE_ID = '@azure/functions-core';
let installed: CoreApi | undefined;

/**
 * Makes `require('@azure/functions-core')` return `api`, exactly as the worker does: a Proxy around
 * `Module.prototype.require`, so CJS code, ESM bundles using `createRequire`, and the library all see it.
 * One process hosts one app, so a second install is a programming error.
 */
export function installCoreModule(api: CoreApi): void {
  if (installed) throw new Error('@azure/functions-core is already installed in this process');
  installed = api;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- the Proxy calls it with the original receiver
  Module.prototype.require = new Proxy(Module.prototype.require, {
    apply(target, thisArg, argArray: unknown[]) {
      if (argArray[0] === CORE_MODULE_ID) return api;
      return Reflect.apply(target, thisArg, argArray) as unknown;
    },
  });
}
