// Start-up checks on the real app served by the dev host: what must stop the app before it serves anything.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spawnDevHost } from '../support/devhost.ts';

void describe('start-up checks (real app)', () => {
  void it('a BROKER_REFRESH_SCHEDULE that is not NCRONTAB stops the app at start-up, naming the setting', async () => {
    for (const bad of ['0 0 0 L * *', '*/5 * * *']) {
      await assert.rejects(
        spawnDevHost({ env: { DEVHOST_TIMERS: 'off', BROKER_REFRESH_SCHEDULE: bad } }),
        (err: Error) => /BROKER_REFRESH_SCHEDULE: '.*' is not a valid NCRONTAB expression/.test(err.message),
        bad,
      );
    }
  });
});
