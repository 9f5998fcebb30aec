/**
 * @module invoke
 * One invocation through the app's registered ProgrammingModel, step for step as the worker's
 * `InvocationHandler` does it: getInvocationModel → getArguments → preInvocation hooks (then `inputs` and
 * `functionCallback` are read back) → invokeFunction → postInvocation hooks (then `result`/`error` are read
 * back; any non-null error is rethrown) → getResponse.
 */
import { randomBytes } from 'node:crypto';
import type { AppLogFn, InvocationLogScope } from './appLog.ts';
import { AzFuncSystemError, ReadOnlyError, type RegisteredFunction, type Registry } from './coreApi.ts';
import type {
  CoreInvocationContext,
  HookData,
  RpcInvocationResponse,
  RpcTraceContext,
  RpcTypedData,
} from './rpcTypes.ts';

const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/;

/** Continues an incoming W3C trace (new span id) or starts a new one, as the host's request Activity does. */
export function traceContextFor(
  traceparent: string | undefined,
  tracestate: string | undefined,
): RpcTraceContext {
  const m = traceparent ? TRACEPARENT.exec(traceparent.trim()) : null;
  const traceId = m?.[1] && !/^0+$/.test(m[1]) ? m[1] : randomBytes(16).toString('hex');
  const flags = m?.[2] ?? '00';
  return {
    traceParent: `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}`,
    traceState: m ? (tracestate ?? '') : '',
    attributes: {},
  };
}

export interface InvocationRequest {
  readonly invocationId: string;
  readonly fn: RegisteredFunction;
  readonly triggerBindingName: string;
  readonly data: RpcTypedData;
  readonly traceContext: RpcTraceContext;
  /** Sent with proxied (HTTP stream) invocations; the library ignores it otherwise for HTTP and timers. */
  readonly triggerMetadata?: Record<string, RpcTypedData>;
}

function readOnly<T extends object>(target: T, name: string, value: unknown): T {
  Object.defineProperty(target, name, {
    enumerable: true,
    get: () => value,
    set: () => {
      throw new ReadOnlyError(name);
    },
  });
  return target;
}

/** Runs the invocation; resolves with the RPC response or rejects with what the function (or a hook) threw. */
export async function runInvocation(
  registry: Registry,
  appLog: AppLogFn,
  request: InvocationRequest,
): Promise<RpcInvocationResponse> {
  const model = registry.programmingModel;
  if (!model) throw new AzFuncSystemError('No programming model was registered by the app.');
  const { invocationId, fn } = request;
  const hookData: HookData = {};
  const scope: { -readonly [K in keyof InvocationLogScope]: InvocationLogScope[K] } = {
    functionName: fn.metadata.name,
    hookData,
    invocationContext: undefined,
  };

  const coreCtx: CoreInvocationContext = {
    invocationId,
    request: {
      invocationId,
      functionId: fn.id,
      inputData: [{ name: request.triggerBindingName, data: request.data }],
      triggerMetadata: request.triggerMetadata ?? {},
      traceContext: request.traceContext,
    },
    metadata: fn.metadata,
    state: undefined,
    log: (level, category, message) => appLog(level, category, message, scope),
  };

  const invocationModel = await model.getInvocationModel(coreCtx);
  const args = await invocationModel.getArguments();
  const context = args.context;
  scope.invocationContext = context;

  const pre = { functionCallback: fn.callback, inputs: args.inputs };
  readOnly(pre, 'hookData', hookData);
  readOnly(pre, 'appHookData', registry.appHookData);
  readOnly(pre, 'invocationContext', context);
  coreCtx.state = 'preInvocationHooks';
  try {
    for (const hook of [...registry.hooks.preInvocation]) await hook(pre);
  } finally {
    coreCtx.state = undefined;
  }

  const post: { inputs: unknown[]; result: unknown; error: unknown } = {
    inputs: pre.inputs,
    result: null,
    error: null,
  };
  readOnly(post, 'hookData', hookData);
  readOnly(post, 'appHookData', registry.appHookData);
  readOnly(post, 'invocationContext', context);
  coreCtx.state = 'invocation';
  try {
    post.result = await invocationModel.invokeFunction(context, pre.inputs, pre.functionCallback);
  } catch (err) {
    post.error = err;
  } finally {
    coreCtx.state = undefined;
  }

  coreCtx.state = 'postInvocationHooks';
  try {
    for (const hook of [...registry.hooks.postInvocation]) await hook(post);
  } finally {
    coreCtx.state = undefined;
  }

  // rethrown as-is, like the worker: whatever the function threw is the invocation's failure
  // eslint-disable-next-line @typescript-eslint/only-throw-error
  if (post.error !== null && post.error !== undefined) throw post.error;
  return invocationModel.getResponse(context, post.result);
}
