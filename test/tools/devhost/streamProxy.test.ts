import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isForwardableResponseHeader, streamTriggerMetadata } from '../../../tools/devhost/streamProxy.ts';

void describe('stream-mode trigger metadata (the HTTP extension binding data)', () => {
  void it('body scalars, then query (not code), then route values; keys case-insensitive, first spelling kept', () => {
    const data = streamTriggerMetadata({
      headers: { 'x-a': { value: '1' }, 'x-empty': { value: '' } },
      query: { Id: { value: 'q' }, code: { value: 'secret' }, scope: { value: 's' } },
      params: { id: '7' },
      contentLengthBody: Buffer.from('{"ID":"b","n":3,"ok":true,"o":{"a":1},"l":[1],"z":null}'),
    });
    assert.deepEqual(data.ID, { string: '7' });
    assert.deepEqual(data.n, { string: '3' });
    assert.deepEqual(data.ok, { string: 'True' });
    assert.deepEqual(data.scope, { string: 's' });
    for (const absent of ['code', 'o', 'l', 'z', 'Id', 'id']) assert.equal(absent in data, false, absent);
    assert.deepEqual(JSON.parse(data.Query?.json as string), { Id: 'q', code: 'secret', scope: 's' });
    assert.deepEqual(JSON.parse(data.Headers?.json as string), { 'x-a': '1', 'x-empty': '' });
  });

  void it('reads no body for binding data when none was declared, and ignores a body that is not a JSON object', () => {
    assert.deepEqual(
      Object.keys(
        streamTriggerMetadata({ headers: {}, query: {}, params: {}, contentLengthBody: undefined }),
      ),
      ['Query', 'Headers'],
    );
    const text = streamTriggerMetadata({
      headers: {},
      query: {},
      params: {},
      contentLengthBody: Buffer.from('[1]'),
    });
    assert.deepEqual(Object.keys(text), ['Query', 'Headers']);
  });

  void it('copies answers back without hop-by-hop headers', () => {
    assert.equal(isForwardableResponseHeader('Transfer-Encoding'), false);
    assert.equal(isForwardableResponseHeader('connection'), false);
    assert.equal(isForwardableResponseHeader('set-cookie'), true);
    assert.equal(isForwardableResponseHeader('x-ms-invocation-id'), true);
  });
});
