// Body reading in shared/http.ts: presence decided from the bytes read (a chunked body has no Content-Length),
// size bound enforced on the bytes however they arrive, and route params taken by the schema's own keys (with HTTP
// streams the library also puts query and body values into `params`).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import functions from '@azure/functions';
import { z } from 'zod';
import { BrokerError } from '../../shared/errors.ts';
import { parseOptionalJsonBody, parseParams, requireEmptyBody } from '../../shared/http.ts';

// The library is a CommonJS bundle whose named exports Node cannot detect from ESM.
const { HttpRequest } = functions;

const code = (c: string) => (e: unknown) => e instanceof BrokerError && e.code === c;
const schema = z.object({ ttlSeconds: z.number().int().min(60).optional() }).strict();
const post = (body: string | undefined, headers: Record<string, string> = {}) =>
  new HttpRequest({
    method: 'POST',
    url: 'https://broker.example.com/api/manage/connections/c/link',
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : { string: body },
  });

describe('optional JSON bodies', () => {
  it('reads a body that has no Content-Length (chunked), and treats zero bytes as no body', async () => {
    assert.deepEqual(await parseOptionalJsonBody(post('{"ttlSeconds":60}'), schema), { ttlSeconds: 60 });
    assert.equal(await parseOptionalJsonBody(post(undefined), schema), undefined);
    await assert.rejects(parseOptionalJsonBody(post('{"ttlSeconds":5}'), schema), code('invalid_request'));
    await assert.rejects(parseOptionalJsonBody(post('{"ttl'), schema), code('invalid_request'));
  });

  it('bounds the bytes actually read, not only the declared length', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(70_000) });
    await assert.rejects(parseOptionalJsonBody(post(big), schema), code('payload_too_large'));
    await assert.rejects(
      parseOptionalJsonBody(post('{}', { 'content-length': '999999' }), schema),
      code('payload_too_large'),
    );
  });

  it('refuses a stray body on a body-less route, chunked or not', async () => {
    await assert.rejects(
      requireEmptyBody(post('x', { 'transfer-encoding': 'chunked' })),
      code('invalid_request'),
    );
    await requireEmptyBody(post(undefined));
  });
});

describe('route params', () => {
  it("takes only the schema's keys: query and body values that stream mode adds to params are ignored", () => {
    const params = z.object({ connection: z.string().regex(/^[a-z]+$/) }).strict();
    const request = new HttpRequest({
      method: 'GET',
      url: 'https://broker.example.com/api/connections/mail/token?scope=x',
      params: { connection: 'mail', scope: 'x', ttlSeconds: '60' },
    });
    assert.deepEqual(parseParams(request, params), { connection: 'mail' });
    const bad = new HttpRequest({
      method: 'GET',
      url: 'https://b.example/',
      params: { connection: 'Mail!' },
    });
    assert.throws(() => parseParams(bad, params), code('invalid_request'));
  });
});
