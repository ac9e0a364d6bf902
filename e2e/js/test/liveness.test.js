'use strict';
// Liveness: an idle client is pinged after activity_timeout; one that never
// answers is closed (4201) after pong_timeout, one that answers stays.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

describe('ping / pong liveness', () => {
  let server;

  before(async () => {
    server = await h.startHerald({
      pong_timeout: '1s',
      apps: [h.defaultApp({ activity_timeout: '1s' })],
    });
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  it('announces the configured activity_timeout in seconds', { timeout: 10000 }, async () => {
    const raw = await h.rawConnect(server);
    assert.equal(raw.established_.activity_timeout, 1);
  });

  it('closes a client that answers no ping with 4201; keeps one that answers', { timeout: 20000 }, async () => {
    // deaf: ignores pusher:ping and does not answer WebSocket pings either
    const deaf = new h.RawClient(server.wsURL(), { autoPong: false });
    await deaf.established();
    // alive: answers pusher:ping with pusher:pong (ws answers protocol pings itself)
    const alive = await h.rawConnect(server);
    alive.log.onFrame((f) => {
      if (f.event === 'pusher:ping') alive.send({ event: 'pusher:pong', data: {} });
    });
    let wsPings = 0;
    alive.ws.on('ping', () => { wsPings += 1; });

    const info = await deaf.waitClose(8000);
    assert.equal(info.code, 4201, JSON.stringify(info));
    const sawPing = wsPings > 0 || alive.log.find(h.is.event('pusher:ping'));
    assert.ok(sawPing, 'the idle client was never pinged');
    assert.ok(alive.isOpen, 'a client that answers pings was closed');
  });

  it('pusher-js stays connected across several activity periods', { timeout: 20000 }, async () => {
    const c = await h.connectClient(server);
    const id = c.socketId;
    await h.sleep(3500);
    assert.equal(c.state, 'connected');
    assert.equal(c.socketId, id, 'pusher-js had to reconnect');
  });
});
