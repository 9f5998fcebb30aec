import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import functions, { type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { BrokerError } from '../../shared/errors.ts';
import { apiHandler, type Handler, pageHandler } from '../../shared/functionKit.ts';

// The library is a CommonJS bundle whose named exports Node cannot detect from ESM.
const { HttpRequest } = functions;

/** The part of the host's InvocationContext the wrappers use, recording every line written through it. */
function context(invocationId = 'inv-123') {
  const lines: { level: string; line: string }[] = [];
  const ctx = {
    invocationId,
    info: (line: string) => lines.push({ level: 'info', line }),
    warn: (line: string) => lines.push({ level: 'warn', line }),
    error: (line: string) => lines.push({ level: 'error', line }),
  };
  return { ctx: ctx as unknown as InvocationContext, lines };
}

const request = (accept?: string) =>
  new HttpRequest({
    method: 'GET',
    url: 'http://localhost/api/connect/c',
    headers: accept === undefined ? {} : { accept },
  });

const headers = (res: HttpResponseInit) => res.headers as Record<string, string>;
const text = (res: HttpResponseInit) => (typeof res.body === 'string' ? res.body : '');
const code = (res: HttpResponseInit) => (JSON.parse(text(res)) as { code?: string }).code;
const failing =
  (err: unknown): Handler =>
  () =>
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- handlers may throw anything
    Promise.reject(err);

describe('apiHandler', () => {
  it("returns the handler's answer and logs through the invocation with the function name and id", async () => {
    const { ctx, lines } = context();
    const res = await apiHandler('token', (_req, log) => {
      log.info('token.served', { connection: 'c' });
      return Promise.resolve({ status: 200, jsonBody: { ok: true } });
    })(request(), ctx);
    assert.deepEqual(res, { status: 200, jsonBody: { ok: true } });
    assert.deepEqual(lines, [
      { level: 'info', line: 'token.served function=token invocationId=inv-123 connection=c' },
    ]);
  });

  it('maps a thrown BrokerError to problem+json with its status and code, logged on the invocation', async () => {
    const { ctx, lines } = context();
    const res = await apiHandler(
      'token',
      failing(new BrokerError('unknown_connection', 'No such connection.')),
    )(request('text/html'), ctx);
    assert.equal(res.status, 404);
    assert.equal(headers(res)['content-type'], 'application/problem+json');
    assert.equal(code(res), 'unknown_connection');
    assert.equal(lines.length, 1);
    assert.match(
      lines[0]?.line ?? '',
      /^request\.failed function=token invocationId=inv-123 code=unknown_connection/,
    );
  });

  it('maps anything else to a 500 internal_error', async () => {
    const { ctx } = context();
    const res = await apiHandler('token', failing(new TypeError('boom')))(request(), ctx);
    assert.equal(res.status, 500);
    assert.equal(code(res), 'internal_error');
  });
});

describe('pageHandler', () => {
  const err = new BrokerError('invalid_link', 'The link is not valid.');

  it("returns the handler's answer unchanged when it succeeds", async () => {
    const { ctx } = context();
    const answer = { status: 302, headers: { location: 'https://idp.example/authorize' } };
    assert.deepEqual(
      await pageHandler('connect', () => Promise.resolve(answer))(request('text/html'), ctx),
      answer,
    );
  });

  it('answers a browser with an error page of the same status and code, naming the invocation', async () => {
    const { ctx, lines } = context('inv-page');
    const res = await pageHandler('connect', failing(err))(request('text/html,application/xhtml+xml'), ctx);
    assert.equal(res.status, 403);
    assert.equal(headers(res)['x-broker-error'], 'invalid_link');
    assert.match(headers(res)['content-type'] ?? '', /^text\/html/);
    assert.match(text(res), /data-code="invalid_link"/);
    assert.match(text(res), /This connect link has expired or is not valid/);
    assert.match(text(res), /<code class="ref">inv-page<\/code>/);
    assert.equal(res.cookies, undefined);
    assert.match(
      lines[0]?.line ?? '',
      /^request\.failed function=connect invocationId=inv-page code=invalid_link/,
    );
  });

  it('treats no Accept header and */* as a browser', async () => {
    for (const accept of [undefined, '', '*/*', 'application/json, */*;q=0.1']) {
      const { ctx } = context();
      const res = await pageHandler('connect', failing(err))(request(accept), ctx);
      assert.equal(headers(res)['x-broker-error'], 'invalid_link', `accept=${String(accept)}`);
    }
  });

  it('answers an API client (Accept: application/json) with problem+json', async () => {
    const { ctx } = context();
    const res = await pageHandler('connect', failing(err))(request('application/json'), ctx);
    assert.equal(res.status, 403);
    assert.equal(headers(res)['content-type'], 'application/problem+json');
    assert.equal(code(res), 'invalid_link');
  });

  it('shows an unknown failure as a 500 internal_error page', async () => {
    const { ctx } = context();
    const res = await pageHandler('connect', failing(new Error('x')))(request('text/html'), ctx);
    assert.equal(res.status, 500);
    assert.equal(headers(res)['x-broker-error'], 'internal_error');
    assert.match(text(res), /data-code="internal_error"/);
  });

  it('sets fixed error cookies on both the page and the problem answer', async () => {
    const cookies = [{ name: 'login', value: '', maxAge: 0 }];
    const page = await pageHandler('connect', failing(err), { errorCookies: cookies })(
      request('text/html'),
      context().ctx,
    );
    assert.deepEqual(page.cookies, cookies);
    const problem = await pageHandler('connect', failing(err), { errorCookies: cookies })(
      request('application/json'),
      context().ctx,
    );
    assert.deepEqual(problem.cookies, cookies);
  });

  it('sets no cookies on an error answer when none are configured', async () => {
    const res = await pageHandler('connect', failing(err))(request('application/json'), context().ctx);
    assert.equal('cookies' in res, false);
  });

  it('computes per-request error cookies from the failing request', async () => {
    const seen: string[] = [];
    const handler = pageHandler('connect', failing(err), {
      errorCookies: (req) => {
        seen.push(req.url);
        return [{ name: 'login', value: '', maxAge: 0 }];
      },
    });
    const res = await handler(request('text/html'), context().ctx);
    assert.deepEqual(seen, ['http://localhost/api/connect/c']);
    assert.deepEqual(res.cookies, [{ name: 'login', value: '', maxAge: 0 }]);
    const problem = await handler(request('application/json'), context().ctx);
    assert.deepEqual(problem.cookies, [{ name: 'login', value: '', maxAge: 0 }]);
  });
});
