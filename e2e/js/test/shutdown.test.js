'use strict';
// Graceful shutdown: on SIGTERM every client gets close code 4200
// (reconnect now) and the process exits 0 within a few seconds.

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

describe('shutdown', () => {
  after(h.closeAll);

  it('SIGTERM closes clients with 4200 and exits 0', { timeout: 30000 }, async () => {
    const server = await h.startHerald({ apps: [h.defaultApp()] });
    let stopped = false;
    try {
      const raws = await Promise.all([1, 2, 3].map(() => h.rawConnect(server)));
      await raws[0].subscribeOK(h.uid('busy'));
      const js = await h.connectClient(server);
      await js.subscribe(h.uid('busy-js'));

      const started = Date.now();
      server.proc.kill('SIGTERM');
      const closes = await Promise.all(raws.map((r) => r.waitClose(5000)));
      for (const c of closes) assert.equal(c.code, 4200, `close code on shutdown: ${JSON.stringify(c)}`);
      await h.eventually(() => js.errors.some((e) => JSON.stringify(e).includes('4200')),
        { label: 'pusher-js to see close code 4200' });
      js.pusher.disconnect(); // stop pusher-js from reconnecting to the dying server

      const exit = await h.withTimeout(server.exited, 5000, 'herald to exit after SIGTERM');
      stopped = true;
      assert.deepEqual(exit, { code: 0, signal: null }, `exit status; output:\n${server.logs()}`);
      assert.ok(Date.now() - started < 5000);
    } finally {
      if (!stopped) await server.stop().catch(() => {});
    }
  });

  it('SIGTERM with no clients exits 0 promptly', { timeout: 15000 }, async () => {
    const server = await h.startHerald({ apps: [h.defaultApp()] });
    const exit = await server.stop(5000);
    assert.deepEqual(exit, { code: 0, signal: null }, server.logs());
  });
});
