import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../../../shared/console/client/api.ts';
import { fieldOf, tokens } from '../../../../shared/console/client/form.ts';

describe('console form helpers', () => {
  it('splits scopes and callers on lines, spaces and commas', () => {
    assert.deepEqual(tokens(' a b\nc,d\n\n e '), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(tokens('  \n '), []);
  });
  it('maps an issue path to the field that shows it', () => {
    assert.equal(fieldOf(['scopes', 1]), 'scopes');
    assert.equal(fieldOf(['expectedIdentity', 'tenantId']), 'tenantId');
    assert.equal(fieldOf(['expectedIdentity']), 'username');
    assert.equal(fieldOf('allowedCallers.0'), 'allowedCallers');
    assert.equal(fieldOf('connection'), 'name');
    assert.equal(fieldOf(['nonsense']), undefined);
  });
  it('reads the field out of the API problem detail', () => {
    const field = (detail: string) => new ApiError(400, 'invalid_request', detail).field;
    assert.equal(field('Invalid body: scopes.1: must be a scope token'), 'scopes.1');
    assert.equal(
      field('Invalid body: expectedIdentity.tenantId: must be a GUID'),
      'expectedIdentity.tenantId',
    );
    assert.equal(field('Invalid body: unexpected body field(s): colour, size'), 'colour');
    assert.equal(field('Invalid path: connection: must be 1-63 lower-case letters'), 'connection');
    assert.equal(new ApiError(409, 'connection_needs_reauth', 'Invalid body: scopes.1: x').field, undefined);
  });
});
