import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { azureCredential } from '../../shared/identity.ts';

describe('azureCredential', () => {
  it("uses the app's user-assigned managed identity when its client id is given", () => {
    assert.ok(azureCredential('11111111-1111-1111-1111-111111111111') instanceof ManagedIdentityCredential);
  });

  it('falls back to DefaultAzureCredential (developer sign-ins) without a client id', () => {
    assert.ok(azureCredential() instanceof DefaultAzureCredential);
    assert.ok(azureCredential(undefined) instanceof DefaultAzureCredential);
  });

  it('builds one credential per client id per process, so its token cache is shared', () => {
    const a = azureCredential('22222222-2222-2222-2222-222222222222');
    assert.equal(azureCredential('22222222-2222-2222-2222-222222222222'), a);
    assert.notEqual(azureCredential('33333333-3333-3333-3333-333333333333'), a);
    assert.equal(azureCredential(), azureCredential());
    assert.notEqual(azureCredential(), a);
  });
});
