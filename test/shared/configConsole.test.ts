// The admin console's Entra settings: parsed with the rest of the configuration, public values only, and only
// in Entra mode.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../shared/config.ts';

const TENANT = '11111111-1111-1111-1111-111111111111';
const CONSOLE = '00000000-0000-0000-0000-0000000000c1';
const entra = {
  BROKER_AUTH_MODE: 'entra',
  BROKER_AUTH_TENANT_ID: TENANT,
  BROKER_AUTH_AUDIENCE: 'api://22222222-2222-2222-2222-222222222222, api://broker',
};

void describe('console settings', () => {
  void it('in Entra mode give the console its client id, the tenant authority and the API scope', () => {
    assert.deepEqual(parseConfig({ ...entra, BROKER_CONSOLE_CLIENT_ID: CONSOLE }).console, {
      clientId: CONSOLE,
      authority: `https://login.microsoftonline.com/${TENANT}`,
      scope: 'api://22222222-2222-2222-2222-222222222222/.default',
    });
    const scoped = parseConfig({
      ...entra,
      BROKER_CONSOLE_CLIENT_ID: CONSOLE,
      BROKER_CONSOLE_SCOPE: 'api://broker/Console.Access',
    });
    assert.equal(scoped.console?.scope, 'api://broker/Console.Access');
  });

  void it('are absent without a console client id, and ignored in function-key mode', () => {
    assert.equal(parseConfig(entra).console, undefined);
    assert.equal(parseConfig({ BROKER_CONSOLE_CLIENT_ID: CONSOLE }).console, undefined);
  });

  void it('refuse a client id that is not a GUID, naming the setting', () => {
    assert.throws(
      () => parseConfig({ ...entra, BROKER_CONSOLE_CLIENT_ID: 'console-app' }),
      (err: unknown) => err instanceof ConfigError && err.variables.includes('BROKER_CONSOLE_CLIENT_ID'),
    );
  });
});
