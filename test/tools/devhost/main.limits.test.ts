// Dev host hardening against local abuse: a cap on open connections (DEVHOST_MAX_CONNECTIONS).
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, spawnDevHost, type DevHostHandle } from '../../support/devhost.ts';

const APP = join(REPO_ROOT, 'test', 'fixtures', 'devhost-app', 'variants', 'default-prefix');

/** Opens a socket; resolves with it once connected. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends one keep-alive GET and resolves with the status line, or with 'closed' if the server hung up. */
function ask(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const onData = (chunk: Buffer) => {
      data += chunk.toString();
      if (data.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(data.split('\r\n')[0] as string);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(data === '' ? 'closed' : (data.split('\r\n')[0] as string)));
    socket.on('error', () => undefined);
    socket.write('GET /api/hello HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
  });
}

void describe('dev host connection cap', () => {
  let host: DevHostHandle;
  const sockets: Socket[] = [];
  before(async () => {
    host = await spawnDevHost({ appDir: APP, env: { DEVHOST_TIMERS: 'off', DEVHOST_MAX_CONNECTIONS: '2' } });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await host?.stop();
  });

  void it('closes connections past DEVHOST_MAX_CONNECTIONS at once, and takes new ones when one ends', async () => {
    const first = await open(host.port);
    const second = await open(host.port);
    sockets.push(first, second);
    assert.equal(await ask(first), 'HTTP/1.1 200 OK');
    assert.equal(await ask(second), 'HTTP/1.1 200 OK');
    const third = await open(host.port);
    sockets.push(third);
    assert.equal(await ask(third), 'closed', 'a third open connection is refused');
    first.destroy();
    await new Promise((done) => setImmediate(done));
    // the server learns of the close asynchronously; a new connection is accepted once it has
    let status = 'closed';
    for (let attempt = 0; attempt < 50 && status === 'closed'; attempt++) {
      const next = await open(host.port);
      sockets.push(next);
      status = await ask(next);
    }
    assert.equal(status, 'HTTP/1.1 200 OK');
  });
});
