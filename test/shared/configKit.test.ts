import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bool,
  httpsOrLocalUrl,
  isLoopback,
  isUnresolvedKeyVaultReference,
  nonEmpty,
  splitScopes,
} from '../../shared/configKit.ts';

describe('configKit', () => {
  it('recognises an App Service Key Vault reference left unresolved, in either form and any case', () => {
    for (const value of [
      '@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x/)',
      '  @microsoft.keyvault (VaultName=kv;SecretName=x)',
    ])
      assert.equal(isUnresolvedKeyVaultReference(value), true, value);
    for (const value of [
      'secret@Microsoft.KeyVault(x)',
      '@Microsoft.KeyVaultX(',
      'Microsoft.KeyVault(x)',
      '',
    ])
      assert.equal(isUnresolvedKeyVaultReference(value), false, value);
  });

  it('splits scopes on spaces, commas and line breaks, dropping empties', () => {
    assert.deepEqual(splitScopes(' a, b\nc,,d  '), ['a', 'b', 'c', 'd']);
    assert.deepEqual(splitScopes(''), []);
  });

  it('counts only localhost, 127.0.0.1 and [::1] as loopback', () => {
    for (const host of ['localhost', '127.0.0.1', '[::1]']) assert.equal(isLoopback(host), true, host);
    for (const host of ['localhost.example', 'example.com', '::1', '10.0.0.1'])
      assert.equal(isLoopback(host), false, host);
  });

  it('takes http(s) URLs without trailing slashes', () => {
    assert.equal(httpsOrLocalUrl.parse('https://a.example//'), 'https://a.example');
    assert.equal(httpsOrLocalUrl.parse('http://localhost:7071/x/'), 'http://localhost:7071/x');
    assert.equal(httpsOrLocalUrl.safeParse('ftp://a.example').success, false);
    assert.equal(httpsOrLocalUrl.safeParse('xhttp://a.example').success, false);
    assert.equal(httpsOrLocalUrl.safeParse('httpsx://a.example').success, false);
  });

  it('reads flags as true for true/1 and false for false/0/empty or unset, nothing else', () => {
    assert.deepEqual(
      ['true', '1', 'false', '0', '', undefined].map((v) => bool.parse(v)),
      [true, true, false, false, false, false],
    );
    assert.equal(bool.safeParse('yes').success, false);
  });

  it('trims values and refuses blank ones', () => {
    assert.equal(nonEmpty.parse('  x '), 'x');
    assert.equal(nonEmpty.safeParse('   ').success, false);
  });
});
