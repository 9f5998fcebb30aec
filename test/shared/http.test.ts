import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import functions from '@azure/functions';
import { z } from 'zod';

// The library is a CommonJS bundle whose named exports Node cannot detect from ESM.
const { HttpRequest } = functions;
import { BrokerError } from '../../shared/errors.ts';
import { jsonResponse, parseJsonBody, parseQuery, problemResponse, readCookie } from '../../shared/http.ts';
import { createLogger } from '../../shared/log.ts';

const lines: string[] = [];
const bodyText = (res: { body?: unknown }): string => (typeof res.body === 'string' ? res.body : '');
const log = createLogger({}, (_l, line) => lines.push(line));

describe('problemResponse', () => {
  it('maps a BrokerError to problem+json with its code, status and public message only', () => {
    const err = new BrokerError('connection_needs_reauth', 'Sign in again.', {
      detail: 'private reason',
      fields: { connection: 'c' },
    });
    const res = problemResponse(err, log);
    assert.equal(res.status, 409);
    assert.equal((res.headers as Record<string, string>)['content-type'], 'application/problem+json');
    assert.equal((res.headers as Record<string, string>)['cache-control'], 'no-store');
    const body = JSON.parse(bodyText(res)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['code', 'detail', 'status', 'title', 'type']);
    assert.equal(body.code, 'connection_needs_reauth');
    assert.ok(!bodyText(res).includes('private reason'));
    assert.ok(lines.at(-1)?.includes('detail="private reason"'));
  });

  it('answers 500 with a fixed message for unknown errors and never echoes their message', () => {
    const res = problemResponse(new Error('refresh_token=SECRET-abc123 in a foreign message'), log);
    assert.equal(res.status, 500);
    assert.equal((JSON.parse(bodyText(res)) as { code: string }).code, 'internal_error');
    assert.ok(!bodyText(res).includes('SECRET'));
    assert.ok(!lines.join('\n').includes('SECRET'));
  });

  it('adds Retry-After and error-specific headers', () => {
    const res = problemResponse(
      new BrokerError('provider_unavailable', 'later', {
        retryAfterSeconds: 7.2,
        headers: { 'www-authenticate': 'Bearer' },
      }),
      log,
    );
    const h = res.headers as Record<string, string>;
    assert.equal(h['retry-after'], '8');
    assert.equal(h['www-authenticate'], 'Bearer');
  });
});

describe('parseQuery / parseJsonBody', () => {
  const schema = z.object({ a: z.string() }).strict();
  const req = (url: string, init: Partial<ConstructorParameters<typeof functions.HttpRequest>[0]> = {}) =>
    new HttpRequest({ method: 'POST', url, ...init });

  it('rejects repeated, unknown and missing parameters without echoing values', () => {
    assert.throws(
      () => parseQuery(req('http://x/?a=1&a=2'), schema),
      (e: unknown) => e instanceof BrokerError && e.code === 'invalid_request',
    );
    assert.throws(
      () => parseQuery(req('http://x/?a=1&zz=SECRETVALUE'), schema),
      (e: unknown) => e instanceof BrokerError && !e.message.includes('SECRETVALUE'),
    );
    assert.throws(() => parseQuery(req('http://x/'), schema), BrokerError);
    assert.deepEqual(parseQuery(req('http://x/?a=1&code=key'), schema, { functionKeyInQuery: true }), {
      a: '1',
    });
  });

  it('checks content type, size and shape of JSON bodies', async () => {
    const body = (text: string, type = 'application/json') =>
      req('http://x/', { body: { string: text }, headers: { 'content-type': type } });
    assert.deepEqual(await parseJsonBody(body('{"a":"x"}'), schema), { a: 'x' });
    await assert.rejects(
      parseJsonBody(body('{"a":"x"}', 'text/plain'), schema),
      (e: BrokerError) => e.code === 'unsupported_media_type',
    );
    await assert.rejects(
      parseJsonBody(body('{"a":'), schema),
      (e: BrokerError) => e.code === 'invalid_request',
    );
    await assert.rejects(
      parseJsonBody(body('{"a":"x","b":1}'), schema),
      (e: BrokerError) => e.code === 'invalid_request' && e.message.includes('b'),
    );
    await assert.rejects(
      parseJsonBody(body(JSON.stringify({ a: 'x'.repeat(100) })), schema, 50),
      (e: BrokerError) => e.code === 'payload_too_large',
    );
  });

  it('reads one cookie and refuses duplicated ones', () => {
    assert.equal(readCookie(req('http://x/', { headers: { cookie: 'a=1; b=2' } }), 'b'), '2');
    assert.equal(readCookie(req('http://x/', { headers: { cookie: 'b=1; b=2' } }), 'b'), undefined);
    assert.equal(readCookie(req('http://x/', { headers: { cookie: 'b=1;b=2' } }), 'b'), undefined);
    assert.equal(readCookie(req('http://x/', { headers: { cookie: 'ab=1; b=2' } }), 'b'), '2');
    assert.equal(readCookie(req('http://x/', { headers: { cookie: 'a=1' } }), 'b'), undefined);
    assert.equal(readCookie(req('http://x/', { headers: { cookie: 'b=%41%20b' } }), 'b'), 'A b');
  });

  it('answers broken percent-encoding in a cookie with a 400 and ignores it in foreign cookies', () => {
    for (const bad of ['%E0%A4%A', '%', 'abc%', '%zz']) {
      assert.throws(
        () => readCookie(req('http://x/', { headers: { cookie: `b=${bad}` } }), 'b'),
        (e: unknown) =>
          e instanceof BrokerError &&
          e.status === 400 &&
          e.code === 'invalid_request' &&
          !e.message.includes(bad),
        bad,
      );
    }
    assert.equal(readCookie(req('http://x/', { headers: { cookie: 'other=%E0%A4%A; b=ok' } }), 'b'), 'ok');
  });
});

describe('content sniffing', () => {
  it('JSON and problem answers carry X-Content-Type-Options: nosniff', () => {
    const json = jsonResponse(200, { access_token: 'x' });
    assert.equal((json.headers as Record<string, string>)['x-content-type-options'], 'nosniff');
    assert.equal((json.headers as Record<string, string>)['cache-control'], 'no-store');
    const problem = problemResponse(new BrokerError('forbidden', 'no'), log);
    assert.equal((problem.headers as Record<string, string>)['x-content-type-options'], 'nosniff');
    const crash = problemResponse(new Error('x'), log);
    assert.equal((crash.headers as Record<string, string>)['x-content-type-options'], 'nosniff');
  });
});
