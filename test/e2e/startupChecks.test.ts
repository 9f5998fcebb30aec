// Start-up checks on the real app served by the dev host: what must stop the app before it serves anything.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../shared/config.ts';
import { REPO_ROOT, spawnDevHost } from '../support/devhost.ts';

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

void describe("the redirect URI and links follow host.json's routePrefix", () => {
  void it('config.redirectUri and connect links are routes the host actually serves', async () => {
    const host = await spawnDevHost({ env: { DEVHOST_TIMERS: 'off' } });
    try {
      const logs = host.logs();
      const route = (fn: string) => {
        const m = new RegExp(
          `devhost: function ${fn}: \\[[A-Z,]*GET[A-Z,]*\\] http://localhost:\\d+(/\\S*)`,
        ).exec(logs);
        assert.ok(m, `no route line for ${fn}:\n${logs}`);
        return m[1] as string;
      };
      const config = parseConfig({ BROKER_PUBLIC_BASE_URL: 'https://broker.example.com' });
      assert.equal(new URL(config.redirectUri).pathname, route('callback'));
      // links are `${base}/<prefix>/connect/<name>?link=…` (shared/broker/broker.ts createLink)
      assert.equal(route('connect'), '/api/connect/{connection}');
      const prefix = (JSON.parse(readFileSync(join(REPO_ROOT, 'host.json'), 'utf8')) as HostJson).extensions
        ?.http?.routePrefix;
      assert.equal(
        prefix,
        'api',
        'host.json routePrefix changed: update the redirect URI and link paths with it',
      );
    } finally {
      await host.stop();
    }
  });
});

interface HostJson {
  extensions?: { http?: { routePrefix?: string } };
}
