import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import functions from '@azure/functions';
import { z } from 'zod';

// The library is a CommonJS bundle whose named exports Node cannot detect from ESM.
const { HttpRequest } = functions;
import { BrokerError } from '../../shared/errors.ts';
import {
  jsonResponse,
  parseFormBody,
  parseJsonBody,
  parseOptionalJsonBody,
  parseParams,
  parseQuery,
  problemResponse,
  readCookie,
  requireEmptyBody,
} from '../../shared/http.ts';
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

describe('problemResponse in detail', () => {
  const capture = () => {
    const out: string[] = [];
    return { out, log: createLogger({}, (level, line) => out.push(`${level} ${line}`)) };
  };
  const body = (res: { body?: unknown }) => JSON.parse(bodyText(res)) as Record<string, unknown>;

  it('logs client errors as warnings and server errors as errors, with code, status, detail and fields', () => {
    const { out, log } = capture();
    problemResponse(new BrokerError('forbidden', 'no', { detail: 'why', fields: { connection: 'c' } }), log);
    problemResponse(new BrokerError('store_unavailable', 'later'), log);
    assert.deepEqual(out, [
      'warn request.failed code=forbidden httpStatus=403 detail=why connection=c',
      'error request.failed code=store_unavailable httpStatus=503',
    ]);
  });

  it('logs the name of an unknown error, never its message', () => {
    const { out, log } = capture();
    problemResponse(new TypeError('token=SECRET'), log);
    problemResponse('a string with SECRET', log);
    assert.deepEqual(out, [
      'error request.failed code=internal_error httpStatus=500 detail=TypeError',
      'error request.failed code=internal_error httpStatus=500 detail=Error',
    ]);
  });

  it('logs at most the first stack frame of an unknown error without a name', () => {
    const { out, log } = capture();
    const err = new Error('token=SECRET');
    Object.defineProperty(err, 'name', { value: undefined });
    err.stack = 'Error: token=SECRET\n    at handler (file:///app/x.js:1:2)\n    at next (y.js:3:4)';
    problemResponse(err, log);
    assert.deepEqual(out, [
      'error request.failed code=internal_error httpStatus=500 detail="undefined at handler (file:///app/x.js:1:2)"',
    ]);
    const bare = new Error('SECRET');
    Object.defineProperty(bare, 'name', { value: undefined });
    bare.stack = undefined;
    problemResponse(bare, log);
    assert.equal(out[1], 'error request.failed code=internal_error httpStatus=500 detail="undefined "');
  });

  it('answers with the RFC 9457 members: type, title, status, detail and code', () => {
    assert.deepEqual(body(problemResponse(new BrokerError('lock_timeout', 'Busy.'), log)), {
      type: 'urn:token-broker:problem:lock_timeout',
      title: 'Service Unavailable',
      status: 503,
      detail: 'Busy.',
      code: 'lock_timeout',
    });
    assert.deepEqual(
      body(problemResponse(new BrokerError('record_too_large', 'Big.'), log)).title,
      'Insufficient Storage',
    );
    assert.deepEqual(body(problemResponse(new Error('x'), log)), {
      type: 'urn:token-broker:problem:internal_error',
      title: 'Internal Server Error',
      status: 500,
      detail: 'The broker hit an unexpected error.',
      code: 'internal_error',
    });
  });

  it('rounds Retry-After up to whole seconds, at least 1, and sends none without a hint', () => {
    const retry = (s: number) =>
      (
        problemResponse(new BrokerError('provider_unavailable', 'x', { retryAfterSeconds: s }), log)
          .headers as Record<string, string>
      )['retry-after'];
    assert.equal(retry(0), '1');
    assert.equal(retry(0.2), '1');
    assert.equal(retry(3), '3');
    assert.equal(retry(3.01), '4');
    const none = problemResponse(new BrokerError('provider_unavailable', 'x'), log).headers as Record<
      string,
      string
    >;
    assert.equal('retry-after' in none, false);
  });

  it("lets the caller's headers win over the error's, and both over the defaults", () => {
    const res = problemResponse(
      new BrokerError('unauthorized', 'x', {
        headers: { 'www-authenticate': 'Bearer', 'cache-control': 'private' },
      }),
      log,
      { headers: { 'www-authenticate': 'Bearer realm="b"' } },
    );
    assert.deepEqual(res.headers, {
      'content-type': 'application/problem+json',
      'cache-control': 'private',
      pragma: 'no-cache',
      'x-content-type-options': 'nosniff',
      'www-authenticate': 'Bearer realm="b"',
    });
  });

  it('jsonResponse sends the body as JSON with no-store and nosniff, extra headers last', () => {
    assert.deepEqual(jsonResponse(201, { a: 1 }, { location: '/x', pragma: 'x' }), {
      status: 201,
      jsonBody: { a: 1 },
      headers: {
        'cache-control': 'no-store',
        pragma: 'x',
        'x-content-type-options': 'nosniff',
        location: '/x',
      },
    });
  });
});

describe('http survivors', () => {
  const req = (url: string, init: Partial<ConstructorParameters<typeof functions.HttpRequest>[0]> = {}) =>
    new HttpRequest({ method: 'POST', url, ...init });
  const schema = z.object({ a: z.string() }).strict();
  const failure = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return err instanceof BrokerError ? `${err.code}: ${err.message}` : err;
    }
    return assert.fail('expected a rejection');
  };

  it('logs a nameless unknown error without stack frames as its name alone', () => {
    const out: string[] = [];
    const err = new Error('SECRET');
    Object.defineProperty(err, 'name', { value: undefined });
    err.stack = 'Error: SECRET';
    problemResponse(
      err,
      createLogger({}, (_l, line) => out.push(line)),
    );
    assert.deepEqual(out, ['request.failed code=internal_error httpStatus=500 detail="undefined "']);
  });

  it('calls a repeated parameter unprintable unless its whole name is plain', () => {
    const repeated = (name: string) => {
      try {
        parseQuery(req(`http://x/?${name}=1&${name}=2`), schema);
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    };
    assert.equal(repeated('%3Cab'), 'Invalid query: parameter (unprintable) is repeated');
    assert.equal(repeated('ab%3C'), 'Invalid query: parameter (unprintable) is repeated');
    assert.equal(repeated('a'.repeat(41)), 'Invalid query: parameter (unprintable) is repeated');
    assert.equal(repeated('a'.repeat(40)), `Invalid query: parameter ${'a'.repeat(40)} is repeated`);
  });

  it('refuses a wrong media type before reading the body (an oversized body is not read)', async () => {
    const big = 'x'.repeat(100);
    for (const type of ['text/plain', 'foo/application/json', 'application/jsonx'])
      assert.equal(
        await failure(
          parseJsonBody(
            req('http://x/', { body: { string: big }, headers: { 'content-type': type } }),
            schema,
            10,
          ),
        ),
        'unsupported_media_type: Send the body as application/json.',
        type,
      );
  });

  it('checks the media type of an optional body as strictly as a required one', async () => {
    const body = (type: string) =>
      req('http://x/', { body: { string: '{"a":"x"}' }, headers: { 'content-type': type } });
    for (const type of ['foo/application/json', 'application/jsonx'])
      assert.equal(
        await failure(parseOptionalJsonBody(body(type), schema)),
        'unsupported_media_type: Send the body as application/json.',
        type,
      );
    assert.deepEqual(await parseOptionalJsonBody(body('application/json ; charset=utf-8'), schema), {
      a: 'x',
    });
    const broken = req('http://x/', {
      body: { string: '{"a":' },
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(
      await failure(parseOptionalJsonBody(broken, z.unknown())),
      'invalid_request: The body is not valid JSON.',
    );
  });

  it('refuses a form post whose media type only ends like a form', async () => {
    const form = z.object({ a: z.string() }).strict();
    assert.equal(
      await failure(
        parseFormBody(
          req('http://x/', {
            body: { string: 'a=1' },
            headers: { 'content-type': 'x/application/x-www-form-urlencoded' },
          }),
          form,
        ),
      ),
      'unsupported_media_type: Send the form as application/x-www-form-urlencoded.',
    );
  });

  it('accepts a body-less request on a body-less route without reading it, whatever it declares', async () => {
    await requireEmptyBody(req('http://x/', { headers: { 'content-length': '999999' } }));
  });

  it('passes a failure of the body stream on instead of calling it a stray body', async () => {
    const broken = {
      headers: new Headers({ 'transfer-encoding': 'chunked' }),
      body: (async function* () {
        yield await Promise.resolve(new Uint8Array(0));
        throw new Error('connection reset');
      })(),
    } as unknown as InstanceType<typeof functions.HttpRequest>;
    const err = await failure(requireEmptyBody(broken));
    assert.ok(err instanceof Error && err.message === 'connection reset');
  });

  it('decodes a cookie value once, so an encoded percent sign stays a percent sign', () => {
    assert.equal(readCookie(req('http://x/', { headers: { cookie: 'b=%2541' } }), 'b'), '%41');
  });

  it('logs why a cookie was refused, without its value', () => {
    try {
      readCookie(req('http://x/', { headers: { cookie: 'b=%E0%A4%A' } }), 'b');
      assert.fail('expected invalid_request');
    } catch (err) {
      assert.ok(err instanceof BrokerError);
      assert.equal(err.detail, 'cookie percent-encoding invalid');
    }
  });
});

describe('request parsing in detail', () => {
  const req = (url: string, init: Partial<ConstructorParameters<typeof functions.HttpRequest>[0]> = {}) =>
    new HttpRequest({ method: 'POST', url, ...init });
  const message = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof BrokerError && err.code === 'invalid_request');
      return err.message;
    }
    return assert.fail('expected invalid_request');
  };
  const rejection = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof BrokerError);
      return `${err.code}: ${err.message}`;
    }
    return assert.fail('expected a BrokerError');
  };
  const schema = z.object({ a: z.string().min(2) }).strict();

  it('says which parameter is repeated, unless its name is not printable', () => {
    assert.equal(
      message(() => parseQuery(req('http://x/?a=1&a=2'), schema)),
      'Invalid query: parameter a is repeated',
    );
    assert.equal(
      message(() => parseQuery(req('http://x/?%3Cb%3E=1&%3Cb%3E=2'), schema)),
      'Invalid query: parameter (unprintable) is repeated',
    );
  });

  it('names unknown fields and the failing path, never the value', () => {
    assert.equal(
      message(() => parseQuery(req('http://x/?a=xx&b=1&c=2'), schema)),
      'Invalid query: unexpected query field(s): b, c',
    );
    assert.equal(
      message(() => parseQuery(req('http://x/?a=x'), schema)),
      `Invalid query: a: ${z.string().min(2).safeParse('x').error?.issues[0]?.message}`,
    );
    // A schema issue without a path is reported against the whole query.
    assert.match(
      message(() => parseQuery(req('http://x/?a=1'), z.string())),
      /^Invalid query: query: /,
    );
    // A very long message is cut.
    const long = z.object({ a: z.string().refine(() => false, 'x'.repeat(400)) });
    assert.equal(message(() => parseQuery(req('http://x/?a=1'), long)).length, 300);
  });

  it('keeps ?code= for validation unless the route carries the function key there', () => {
    assert.equal(
      message(() => parseQuery(req('http://x/?a=xx&code=k'), schema)),
      'Invalid query: unexpected query field(s): code',
    );
  });

  it('accepts JSON media types with a suffix or parameters, and nothing else', async () => {
    const json = (type: string) =>
      req('http://x/', { body: { string: '{"a":"xx"}' }, headers: { 'content-type': type } });
    for (const type of [
      'application/json',
      'application/merge-patch+json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
    ])
      assert.deepEqual(await parseJsonBody(json(type), schema), { a: 'xx' }, type);
    for (const type of ['application/jsonx', 'text/json', 'application/x-json', ''])
      assert.equal(
        await rejection(parseJsonBody(json(type), schema)),
        'unsupported_media_type: Send the body as application/json.',
        type,
      );
    assert.equal(
      await rejection(parseJsonBody(req('http://x/', { body: { string: '{"a":"xx"}' } }), schema)),
      'unsupported_media_type: Send the body as application/json.',
    );
  });

  it('checks the media type of an optional body only when there is one', async () => {
    const text = req('http://x/', {
      body: { string: '{"a":"xx"}' },
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(
      await rejection(parseOptionalJsonBody(text, schema)),
      'unsupported_media_type: Send the body as application/json.',
    );
    assert.equal(
      await parseOptionalJsonBody(req('http://x/', { headers: { 'content-type': 'text/plain' } }), schema),
      undefined,
    );
  });

  it('allows a body of exactly the limit and says the limit when refusing more', async () => {
    const exact = JSON.stringify({ a: 'x'.repeat(42) });
    assert.equal(exact.length, 50);
    const json = (text: string) =>
      req('http://x/', { body: { string: text }, headers: { 'content-type': 'application/json' } });
    assert.deepEqual(await parseJsonBody(json(exact), schema, 50), { a: 'x'.repeat(42) });
    assert.equal(
      await rejection(parseJsonBody(json(`${exact} `), schema, 50)),
      'payload_too_large: The body may be at most 50 bytes.',
    );
    // A declared length of exactly the limit is fine.
    const declared = req('http://x/', {
      body: { string: exact },
      headers: { 'content-type': 'application/json', 'content-length': '50' },
    });
    assert.deepEqual(await parseJsonBody(declared, schema, 50), { a: 'x'.repeat(42) });
  });

  it('reads a form post: media type, repeated fields refused, strict schema, size bound', async () => {
    const form = z.object({ link: z.string(), consent: z.string() }).strict();
    const post = (text: string, type = 'application/x-www-form-urlencoded') =>
      req('http://x/', { body: { string: text }, headers: { 'content-type': type } });
    assert.deepEqual(await parseFormBody(post('link=a%20b&consent=c'), form), { link: 'a b', consent: 'c' });
    assert.deepEqual(
      await parseFormBody(post('link=a&consent=c', 'application/x-www-form-urlencoded; charset=UTF-8'), form),
      { link: 'a', consent: 'c' },
    );
    assert.equal(
      await rejection(parseFormBody(post('link=a&consent=c', 'application/json'), form)),
      'unsupported_media_type: Send the form as application/x-www-form-urlencoded.',
    );
    assert.equal(
      await rejection(parseFormBody(post('link=a&consent=c', 'application/x-www-form-urlencodedx'), form)),
      'unsupported_media_type: Send the form as application/x-www-form-urlencoded.',
    );
    assert.equal(
      await rejection(parseFormBody(req('http://x/', { body: { string: 'link=a' } }), form)),
      'unsupported_media_type: Send the form as application/x-www-form-urlencoded.',
    );
    assert.equal(
      await rejection(parseFormBody(post('link=a&link=b&consent=c'), form)),
      'invalid_request: Invalid form: field link is repeated',
    );
    assert.equal(
      await rejection(parseFormBody(post('link=a&consent=c&x=1'), form)),
      'invalid_request: Invalid form: unexpected form field(s): x',
    );
    assert.equal(
      await rejection(parseFormBody(post(`link=${'a'.repeat(8 * 1024)}&consent=c`), form)),
      'payload_too_large: The body may be at most 8192 bytes.',
    );
    assert.equal(
      await rejection(parseFormBody(post('link=abcdef&consent=c'), form, 10)),
      'payload_too_large: The body may be at most 10 bytes.',
    );
  });

  it('refuses any body on a body-less route, a large one included, and accepts none', async () => {
    await requireEmptyBody(req('http://x/'));
    await requireEmptyBody(req('http://x/', { body: { string: '' } }));
    assert.equal(
      await rejection(requireEmptyBody(req('http://x/', { body: { string: 'x' } }))),
      'invalid_request: This request takes no body.',
    );
    assert.equal(
      await rejection(requireEmptyBody(req('http://x/', { body: { string: 'x'.repeat(70_000) } }))),
      'invalid_request: This request takes no body.',
    );
  });

  it('in HTTP streams mode reads a chunked request without bytes as no body (the host passes streams on)', async () => {
    const chunked = () =>
      req('http://x/', {
        body: { string: '' },
        headers: { 'transfer-encoding': 'chunked', 'content-type': 'application/json' },
      });
    await requireEmptyBody(chunked());
    assert.equal(await parseOptionalJsonBody(chunked(), schema), undefined);
  });

  it('passes every route value to a schema without a shape', () => {
    const request = new HttpRequest({ method: 'GET', url: 'http://x/', params: { a: '1', b: '2' } });
    assert.deepEqual(parseParams(request, z.record(z.string(), z.string())), { a: '1', b: '2' });
    assert.equal(
      message(() =>
        parseParams(
          new HttpRequest({ method: 'GET', url: 'http://x/', params: {} }),
          z.object({ c: z.string() }),
        ),
      ),
      `Invalid path: c: ${z.object({ c: z.string() }).safeParse({}).error?.issues[0]?.message}`,
    );
  });

  it('finds a cookie whose name has regex characters, and refuses it when repeated', () => {
    const cookie = (header: string) =>
      readCookie(req('http://x/', { headers: { cookie: header } }), '__Host-a.b');
    assert.equal(cookie('__Host-a.b=1'), '1');
    assert.equal(cookie('__Host-aXb=1; __Host-a.b=2'), '2');
    assert.equal(cookie('__Host-a.b=1; __Host-a.b=2'), undefined);
    assert.equal(readCookie(req('http://x/'), 'b'), undefined);
  });
});
