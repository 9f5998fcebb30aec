import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  distinctResources,
  isSubsetOfGranted,
  primaryResourceScopes,
  resourceOf,
  scopeKey,
} from '../../../shared/oauth/scopes.ts';

describe('Microsoft scopes', () => {
  it('finds the resource of a scope', () => {
    assert.equal(resourceOf('https://graph.microsoft.com/Mail.Send'), 'https://graph.microsoft.com');
    assert.equal(resourceOf('Mail.Send'), 'https://graph.microsoft.com');
    assert.equal(resourceOf('https://ads.microsoft.com/msads.manage'), 'https://ads.microsoft.com');
    assert.equal(resourceOf('api://1234/.default'), 'api://1234');
    assert.equal(resourceOf('offline_access'), undefined);
  });
  it('keeps one resource per token request', () => {
    const s = [
      'openid',
      'https://graph.microsoft.com/Mail.Send',
      'https://ads.microsoft.com/msads.manage',
      'https://graph.microsoft.com/User.Read',
    ];
    assert.deepEqual(primaryResourceScopes(s), [
      'https://graph.microsoft.com/Mail.Send',
      'https://graph.microsoft.com/User.Read',
    ]);
    assert.deepEqual(distinctResources(s), ['https://graph.microsoft.com', 'https://ads.microsoft.com']);
  });
  it('normalises cache keys and checks consent', () => {
    assert.equal(scopeKey(['b', 'a', 'offline_access', 'a']), 'a b');
    assert.equal(isSubsetOfGranted(['Mail.Send'], ['https://graph.microsoft.com/Mail.Send']), true);
    assert.equal(
      isSubsetOfGranted(
        ['https://ads.microsoft.com/msads.manage'],
        ['https://graph.microsoft.com/Mail.Send'],
      ),
      false,
    );
  });
});
