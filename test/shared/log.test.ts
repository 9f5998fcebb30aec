import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createLogger,
  escapeLogValue,
  formatLine,
  type InvocationLogTarget,
  type LogLevel,
  runInInvocation,
  setDefaultLogSink,
} from '../../shared/log.ts';

/** Records what a function's InvocationContext would receive. */
function fakeContext(invocationId: string): InvocationLogTarget & { lines: [LogLevel, string][] } {
  const lines: [LogLevel, string][] = [];
  return {
    invocationId,
    lines,
    info: (line: unknown) => lines.push(['info', String(line)]),
    warn: (line: unknown) => lines.push(['warn', String(line)]),
    error: (line: unknown) => lines.push(['error', String(line)]),
  };
}

describe('formatLine', () => {
  it('escapes control characters from request input: ANSI escapes, CR/LF forgery, bidi overrides', () => {
    const line = formatLine('connect.denied', {
      providerError: '\u001b[31mred\u001b[0m',
      detail: 'x\r\nrefresh.succeeded connection=forged',
      reason: 'abc\u202edcb\u0007\u0085',
    });
    assert.equal(
      line,
      'connect.denied providerError=\\u001b[31mred\\u001b[0m detail="x refresh.succeeded connection=forged" ' +
        'reason=abc\\u202edcb\\u0007\\u0085',
    );
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
    assert.equal(line.split('\n').length, 1);
  });

  it('keeps ordinary text, drops unknown fields and cuts long values', () => {
    assert.equal(escapeLogValue('Ünïcode ok – fine'), 'Ünïcode ok – fine');
    const line = formatLine('e', { connection: 'a'.repeat(300), ['secret' as 'code']: 'x' });
    assert.equal(line, `e connection=${'a'.repeat(200)}…`);
  });
});

describe('runInInvocation', () => {
  it("writes every default-sink logger's lines through the invocation's context, with its id", async () => {
    const ctx = fakeContext('inv-1');
    const broker = createLogger(); // built once per process, like the runtime's
    const store = createLogger({ store: 'file' });
    await runInInvocation(ctx, { function: 'token' }, async (log) => {
      log.info('handler.line', { connection: 'a' });
      await Promise.resolve();
      broker.warn('refresh.failed', { connection: 'a' });
      store.error('store.record_unreadable');
    });
    assert.deepEqual(ctx.lines, [
      ['info', 'handler.line function=token invocationId=inv-1 connection=a'],
      ['warn', 'refresh.failed function=token invocationId=inv-1 connection=a'],
      ['error', 'store.record_unreadable function=token invocationId=inv-1 store=file'],
    ]);
  });

  it('keeps concurrent invocations apart, and leaves loggers with their own sink alone', async () => {
    const a = fakeContext('inv-a');
    const b = fakeContext('inv-b');
    const own: string[] = [];
    const shared = createLogger();
    const pinned = createLogger({}, (_l, line) => own.push(line));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = runInInvocation(a, {}, async () => {
      await gate;
      shared.info('from.a');
    });
    const second = runInInvocation(b, {}, () => {
      shared.info('from.b');
      pinned.info('pinned');
      release();
      return Promise.resolve();
    });
    await Promise.all([first, second]);
    assert.deepEqual(a.lines, [['info', 'from.a invocationId=inv-a']]);
    assert.deepEqual(b.lines, [['info', 'from.b invocationId=inv-b']]);
    assert.deepEqual(own, ['pinned']);
  });
});

describe('log lines in detail', () => {
  it('quotes values with spaces, quotes or equals signs, folds whitespace, and drops undefined fields', () => {
    assert.equal(
      formatLine('e', {
        detail: 'a  b\t\tc',
        reason: 'x="y"',
        code: 'k=v',
        status: undefined,
        count: 3,
        skipped: false,
      }),
      'e detail="a b c" reason="x=\\"y\\"" code="k=v" count=3 skipped=false',
    );
    assert.equal(formatLine('e', {}), 'e');
    assert.equal(formatLine('e', { detail: 'x'.repeat(200) }), `e detail=${'x'.repeat(200)}`);
  });

  it('writes control characters as four-digit escapes', () => {
    assert.equal(escapeLogValue('\u0000\u009f\u202a\u2066'), '\\u0000\\u009f\\u202a\\u2066');
  });

  it('lets call fields win over logger fields, and a child add to its parent (same sink)', () => {
    const lines: [LogLevel, string][] = [];
    const log = createLogger({ connection: 'a', store: 'file' }, (level, line) => lines.push([level, line]));
    log.info('one', { connection: 'b' });
    const child = log.child({ provider: 'p', store: 'kv' });
    child.warn('two');
    child.error('three', { count: 1 });
    assert.deepEqual(lines, [
      ['info', 'one connection=b store=file'],
      ['warn', 'two connection=a store=kv provider=p'],
      ['error', 'three connection=a store=kv provider=p count=1'],
    ]);
  });

  it('lets a logger field override an invocation field', () => {
    const ctx = fakeContext('inv-1');
    runInInvocation(ctx, { function: 'token' }, () => createLogger({ function: 'sweep' }).info('x'));
    assert.deepEqual(ctx.lines, [['info', 'x function=sweep invocationId=inv-1']]);
  });

  it('routes default-sink loggers to the test sink, and back to the console by level', (t) => {
    const seen: [LogLevel, string][] = [];
    setDefaultLogSink((level, line) => seen.push([level, line]));
    const log = createLogger();
    log.info('captured');
    setDefaultLogSink(undefined);
    const out = { log: t.mock.method(console, 'log', () => undefined) };
    const warn = t.mock.method(console, 'warn', () => undefined);
    const error = t.mock.method(console, 'error', () => undefined);
    log.info('i');
    log.warn('w');
    log.error('e');
    assert.deepEqual(seen, [['info', 'captured']]);
    assert.deepEqual(
      [out.log, warn, error].map((m) => m.mock.calls.map((c) => c.arguments)),
      [[['i']], [['w']], [['e']]],
    );
  });
});
