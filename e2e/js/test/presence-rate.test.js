'use strict';
// presence_join_rate: a connection that joins and leaves a presence channel
// in a loop is held to the app's rate, with pusher-js and with the
// centrifuge client, and the channel's members hear only of the joins that
// were let through.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Centrifuge } = require('centrifuge');
const h = require('../lib/harness');

const T = { timeout: 30000 };
const JWT_SECRET = 'presence-rate-jwt-secret';

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function jwt(claims) {
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${crypto.createHmac('sha256', JWT_SECRET).update(input).digest('base64url')}`;
}

function once(emitter, event, label) {
  return h.withTimeout(new Promise((resolve) => emitter.once(event, resolve)), h.WAIT_MS, label || event);
}

describe('presence_join_rate', () => {
  let server;
  // One join a second, in bursts of ten.
  const app = h.defaultApp({ presence_join_rate: 1, jwt_secret: JWT_SECRET });
  const centrifuges = [];

  before(async () => { server = await h.startHerald({ apps: [app] }); });
  afterEach(async () => { for (const c of centrifuges.splice(0)) c.disconnect(); await h.closeAll(); });
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  it('pusher-js: joins beyond the burst are refused with 429 and announced to nobody', T, async () => {
    const ch = `presence-${h.uid('flap')}`;
    const watcher = await h.connectClient(server, { presence: { user_id: 'watcher', user_info: {} } });
    const wch = await watcher.subscribe(ch);
    let added = 0;
    let removed = 0;
    wch.bind('pusher:member_added', () => { added += 1; });
    wch.bind('pusher:member_removed', () => { removed += 1; });

    const flapper = await h.connectClient(server, { presence: { user_id: 'flapper', user_info: {} } });
    // Joins and leaves until refused: the burst of ten, plus what the bucket
    // refilled meanwhile (one a second).
    const started = Date.now();
    let joins = 0;
    let frame;
    for (;;) {
      const since = flapper.log.mark();
      flapper.pusher.subscribe(ch);
      frame = await Promise.race([
        flapper.log.wait(h.is.event('pusher:subscription_error', ch), { since, label: 'subscription_error' }),
        flapper.log.wait(h.is.event('pusher_internal:subscription_succeeded', ch), { since, label: 'subscription_succeeded' }),
      ]);
      if (frame.event === 'pusher:subscription_error') break;
      joins += 1;
      flapper.pusher.unsubscribe(ch);
      assert.ok(joins <= 40, 'never refused');
    }
    const allowed = 10 + Math.floor((Date.now() - started) / 1000);
    assert.ok(joins >= 10 && joins <= allowed, `${joins} joins let through, want 10 to ${allowed}`);
    h.assertSubscriptionError(frame, ch, 'LimitReached', 429);
    assert.equal(flapper.state, 'connected');
    await h.eventually(() => removed === joins, { label: `${joins} member_removed` });
    await h.sleep(300);
    assert.equal(added, joins, 'member_added for the refused join');
    assert.deepEqual(Object.keys(wch.members.members).sort(), ['watcher']);

    // Another connection has a bucket of its own.
    const other = await h.connectClient(server, { presence: { user_id: 'other', user_info: {} } });
    await other.subscribe(ch);
    await h.eventually(() => added === joins + 1, { label: 'the other member announced' });
  });

  it('centrifuge: 111 is temporary, and the client gets in once the bucket refills', T, async () => {
    const ch = h.uid('presence-flap');
    const c = new Centrifuge(`ws://127.0.0.1:${server.port}/connection/websocket/${app.key}`, {
      websocket: h.WebSocket, token: jwt({ sub: 'cf' }), timeout: 4000,
    });
    centrifuges.push(c);
    const up = once(c, 'connected');
    c.connect();
    await up;
    const sub = c.newSubscription(ch, {
      getToken: async () => jwt({ sub: 'cf', channel: ch }),
      minResubscribeDelay: 100, maxResubscribeDelay: 400,
    });
    // Joins and leaves until a subscribe meets 111: the burst of ten, plus
    // what the bucket refilled meanwhile.
    const errors = [];
    sub.on('error', (ctx) => errors.push(ctx.error.code));
    const started = Date.now();
    let joins = 0;
    for (;;) {
      const on = once(sub, 'subscribed', `subscribed, round ${joins}`);
      sub.subscribe();
      await on;
      if (errors.length > 0) break;
      joins += 1;
      const off = once(sub, 'unsubscribed', `unsubscribed, round ${joins}`);
      sub.unsubscribe();
      await off;
      assert.ok(joins <= 40, 'never refused');
    }
    // The refused subscribe was tried again after a backoff and got in
    // once a token was back.
    assert.deepEqual([...new Set(errors)], [111]);
    const allowed = 10 + Math.floor((Date.now() - started) / 1000);
    assert.ok(joins >= 10 && joins <= allowed, `${joins} joins let through, want 10 to ${allowed}`);
  });
});
