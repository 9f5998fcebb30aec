// An App Service Key Vault reference the platform could not resolve stays literal text in the setting; every
// secret-bearing setting must be refused by name, generic providers' `clientSecretSetting` included.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, isUnresolvedKeyVaultReference, parseConfig, SETTINGS } from '../../shared/config.ts';

const REF = '@Microsoft.KeyVault(SecretUri=https://kv-broker.vault.azure.net/secrets/client-secret/)';

const refused = (variable: string) => (err: unknown) =>
  err instanceof ConfigError &&
  err.variables.includes(variable) &&
  /Key Vault reference not resolved/.test(err.message);

void describe('unresolved Key Vault references', () => {
  void it('are recognised in both documented forms, any case, with leading space', () => {
    for (const text of [
      REF,
      '@Microsoft.KeyVault(VaultName=kv;SecretName=s)',
      '  @microsoft.keyvault (SecretUri=x)',
    ]) {
      assert.equal(isUnresolvedKeyVaultReference(text), true, text);
    }
    assert.equal(isUnresolvedKeyVaultReference('a-real-secret-@Microsoft.KeyVault('), false);
  });

  void it('are refused in every secret setting, by name', () => {
    const secretSettings = Object.entries(SETTINGS)
      .filter(([, s]) => s.secret)
      .map(([name]) => name);
    assert.ok(secretSettings.includes('MICROSOFT_CLIENT_SECRET'));
    for (const name of secretSettings) {
      assert.throws(() => parseConfig({ [name]: REF }), refused(name), name);
    }
  });

  void it("are refused in a generic provider's clientSecretSetting, naming that setting", () => {
    const env = {
      BROKER_PROVIDERS: JSON.stringify({
        acme: {
          kind: 'oauth2',
          authorizationUrl: 'https://id.acme.test/authorize',
          tokenUrl: 'https://id.acme.test/token',
          clientId: 'x',
          clientSecretSetting: 'ACME_SECRET',
        },
      }),
    };
    assert.throws(
      () => parseConfig({ ...env, ACME_SECRET: ` ${REF.toLowerCase()}` }),
      refused('ACME_SECRET'),
    );
    assert.equal(parseConfig({ ...env, ACME_SECRET: 'shh' }).providers.acme?.credential.kind, 'secret');
  });
});
