import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collectHeaders, parseQuery, toRpcHttpRequest } from '../../../tools/devhost/rpcHttp.ts';

void describe('RPC request shape', () => {
  void it('joins repeated query keys with "," and merges keys case-insensitively', () => {
    assert.deepEqual(parseQuery('?x=1&x=2&Y=a+b&y=%2C&flag&=skip&&'), {
      x: { value: '1,2' },
      Y: { value: 'a b,,' },
      flag: { value: '' },
    });
    assert.deepEqual(parseQuery(''), {});
    assert.deepEqual(parseQuery('?bad=%zz'), { bad: { value: '%zz' } });
  });

  void it('lower-cases header names, joins repeats with "," and keeps empty values (nullable map)', () => {
    assert.deepEqual(collectHeaders(['Host', 'h', 'X-A', '1', 'x-a', '2', 'X-Empty', '']), {
      host: { value: 'h' },
      'x-a': { value: '1,2' },
      'x-empty': { value: '' },
    });
  });

  void it('builds the nullable maps and sends a body only when there are bytes', () => {
    const base = {
      method: 'GET',
      url: 'http://localhost/api/x',
      headers: {},
      query: {},
      params: { id: '7' },
    };
    assert.deepEqual(toRpcHttpRequest({ ...base, body: Buffer.alloc(0) }), {
      http: {
        method: 'GET',
        url: 'http://localhost/api/x',
        nullableHeaders: {},
        nullableQuery: {},
        nullableParams: { id: { value: '7' } },
      },
    });
    const withBody = toRpcHttpRequest({ ...base, body: Buffer.from('hi') });
    assert.deepEqual(withBody.http?.body, { bytes: Buffer.from('hi') });
  });
});
