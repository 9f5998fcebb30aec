import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostName, isAllowedHost, parseAllowedHosts } from '../../../tools/devhost/hostFilter.ts';

void describe('Host allow-list', () => {
  void it('reads the host name out of a Host header', () => {
    assert.equal(hostName('[::1]:7071'), '::1');
    assert.equal(hostName('Example.COM:80'), 'example.com');
    assert.equal(hostName('localhost'), 'localhost');
  });

  void it('answers loopback names and configured ones only; * allows all', () => {
    const allowed = parseAllowedHosts(' Broker.test , ');
    for (const ok of ['localhost:7071', '127.0.0.1', '[::1]:1', 'broker.test:8080', 'localhost.']) {
      assert.equal(isAllowedHost(ok, allowed), true, ok);
    }
    for (const bad of ['evil.example', 'localhost.evil.example', '127.0.0.2', '[::2]', 'broker.test.evil']) {
      assert.equal(isAllowedHost(bad, allowed), false, bad);
    }
    assert.equal(isAllowedHost('anything.example', parseAllowedHosts('*')), true);
  });
});
