'use strict';
// User authentication (pusher:signin), send-to-user, watchlist online /
// offline events, REST terminate_connections, and require_signin.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const T = { timeout: 20000 };

describe('users: signin, send-to-user, watchlist, terminate', () => {
  let server;
  let sdk;
  const app = h.defaultApp();
  const strict = h.defaultApp({ id: '1004', key: 'strict-key', secret: 'strict-secret', require_signin: true, signin_timeout: '1s' });

  before(async () => {
    server = await h.startHerald({ apps: [app, strict] });
    sdk = server.sdk(app);
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  /** A pusher-js client signed in as user (ready to receive send-to-user). */
  async function signedIn(user, opts = {}) {
    const c = await h.connectClient(server, { user, ...opts });
    await c.signin();
    await c.userChannelReady(user.id);
    return c;
  }

  /** A raw client signed in as user; resolves with the client and the signin answer. */
  async function rawSignedIn(user, key = app.key, signer = sdk) {
    const raw = await h.rawConnect(server, key);
    const since = raw.mark();
    raw.send({ event: 'pusher:signin', data: signer.authenticateUser(raw.socketId, user) });
    await raw.wait(h.is.event('pusher:signin_success'), { since, label: 'pusher:signin_success (raw)' });
    return raw;
  }

  it('pusher:signin answers signin_success with the signed user_data', T, async () => {
    const user = { id: h.uid('alice'), user_info: { name: 'Alice' } };
    const c = await h.connectClient(server, { user });
    const frame = await c.signin();
    const data = h.dataOf(frame);
    assert.equal(data.user_data, JSON.stringify(user));
    await c.userChannelReady(user.id);
    assert.equal(c.pusher.user.user_data.id, user.id);
  });

  it('sendToUser reaches every connection of that user and nobody else', T, async () => {
    const aliceId = h.uid('alice');
    const bobId = h.uid('bob');
    const alice1 = await signedIn({ id: aliceId });
    const alice2 = await signedIn({ id: aliceId });
    const bob = await signedIn({ id: bobId });
    const got1 = new Promise((resolve) => alice1.pusher.user.bind('notice', resolve));
    const got2 = new Promise((resolve) => alice2.pusher.user.bind('notice', resolve));
    const bobGot = [];
    bob.pusher.user.bind('notice', (d) => bobGot.push(d));

    const res = await h.jsonOf(await sdk.sendToUser(aliceId, 'notice', { msg: 'for alice only' }));
    assert.deepEqual(res, { status: 200, body: {} });
    assert.deepEqual(await h.withTimeout(got1, h.WAIT_MS, 'alice #1 notice'), { msg: 'for alice only' });
    assert.deepEqual(await h.withTimeout(got2, h.WAIT_MS, 'alice #2 notice'), { msg: 'for alice only' });
    await h.sleep(300);
    assert.equal(bobGot.length, 0, 'bob received alice\'s event');
  });

  it('a forged signin is refused and the connection gets no user events', T, async () => {
    const victim = h.uid('victim');
    const wrong = new h.PusherSDK({ appId: app.id, key: app.key, secret: 'wrong-secret', host: '127.0.0.1', port: '1', useTLS: false });
    const raw = await h.rawConnect(server);
    const since = raw.mark();
    raw.send({ event: 'pusher:signin', data: wrong.authenticateUser(raw.socketId, { id: victim }) });
    await Promise.race([
      raw.wait(h.is.event('pusher:error'), { since, label: 'pusher:error for a forged signin' }),
      raw.waitClose(),
    ]);
    assert.equal(raw.log.find(h.is.event('pusher:signin_success'), since), undefined, 'forged signin succeeded');
    // even trying the user channel afterwards is refused
    if (raw.isOpen) {
      const answer = await raw.subscribe(`#server-to-user-${victim}`);
      assert.equal(answer.event, 'pusher:subscription_error', JSON.stringify(answer));
      const s2 = raw.mark();
      await sdk.sendToUser(victim, 'private-note', {});
      await h.expectNoFrame(raw, h.is.event('private-note'), { since: s2, label: 'user event after forged signin' });
    }
  });

  it('a signin token for another socket is refused', T, async () => {
    const other = await h.rawConnect(server);
    const raw = await h.rawConnect(server);
    const since = raw.mark();
    raw.send({ event: 'pusher:signin', data: sdk.authenticateUser(other.socketId, { id: h.uid('someone') }) });
    await Promise.race([
      raw.wait(h.is.event('pusher:error'), { since }),
      raw.waitClose(),
    ]);
    assert.equal(raw.log.find(h.is.event('pusher:signin_success'), since), undefined);
  });

  it('a signed-in user cannot subscribe to another user\'s #server-to-user channel', T, async () => {
    const me = h.uid('me');
    const other = h.uid('other');
    const raw = await rawSignedIn({ id: me });
    const refused = await raw.subscribe(`#server-to-user-${other}`);
    h.assertSubscriptionError(refused, `#server-to-user-${other}`, ['AuthError', 'InvalidChannel']);
    await raw.subscribeOK(`#server-to-user-${me}`);

    const since = raw.mark();
    await sdk.sendToUser(other, 'for-other', { x: 1 });
    await sdk.sendToUser(me, 'for-me', { x: 2 });
    const mine = await raw.wait(h.is.event('for-me', `#server-to-user-${me}`), { since });
    assert.equal(mine.data, '{"x":2}');
    await h.expectNoFrame(raw, h.is.event('for-other'), { since, label: 'received another user\'s event' });
  });

  it('a second signin as a different user on the same connection is refused', T, async () => {
    const first = h.uid('first');
    const second = h.uid('second');
    const raw = await rawSignedIn({ id: first });
    const since = raw.mark();
    raw.send({ event: 'pusher:signin', data: sdk.authenticateUser(raw.socketId, { id: second }) });
    await Promise.race([raw.wait(h.is.event('pusher:error'), { since }), raw.waitClose()]);
    assert.equal(raw.log.find(h.is.event('pusher:signin_success'), since), undefined);
  });

  it('a watchlist naming an id no user could sign in with refuses the sign-in with 4009', T, async () => {
    const c = await h.connectClient(server, { user: { id: h.uid('w'), watchlist: ['ok', 'bad id'] } });
    c.pusher.signin();
    await h.eventually(() => c.errors.length > 0, { label: 'pusher:error for the bad watchlist' });
    const err = c.errors[0];
    assert.equal(err.data.code, 4009);
    assert.match(err.data.message, /watchlist entry 1 is not a valid user id/);
    await h.sleep(200);
    assert.equal(c.log.find(h.is.event('pusher:signin_success')), undefined, 'signin_success after a refusal');
    assert.equal(c.pusher.user.user_data, null);
    assert.equal(c.state, 'connected');
  });

  /** Records watchlist events of a client as an ordered list of 'online:<id>' / 'offline:<id>'. */
  function watchlistLog(client) {
    const log = [];
    client.pusher.user.watchlist.bind('online', (e) => e.user_ids.forEach((id) => log.push(`online:${id}`)));
    client.pusher.user.watchlist.bind('offline', (e) => e.user_ids.forEach((id) => log.push(`offline:${id}`)));
    return log;
  }
  /** Entries of log after the last `online:<id>`. */
  const afterOnline = (log, id) => log.slice(log.lastIndexOf(`online:${id}`) + 1);

  it('watchlist: online when a watched user signs in, offline when they leave', T, async () => {
    const bobId = h.uid('bob');
    const watcher = await h.connectClient(server, { user: { id: h.uid('watcher'), watchlist: [bobId] } });
    const log = watchlistLog(watcher);
    await watcher.signin();
    await h.sleep(100);
    assert.ok(!log.includes(`online:${bobId}`), 'bob reported online before signing in');

    const bob = await signedIn({ id: bobId });
    await h.eventually(() => log.includes(`online:${bobId}`), { label: 'watchlist online event for bob' });
    const frame = watcher.log.find((f) => f.event === 'pusher_internal:watchlist_events' &&
      h.dataOf(f).events.some((e) => e.name === 'online' && e.user_ids.includes(bobId)));
    assert.ok(frame, 'online delivered as pusher_internal:watchlist_events');
    assert.equal(frame.channel, undefined, 'watchlist events are connection-level (no channel)');

    await bob.close();
    await h.eventually(() => afterOnline(log, bobId).includes(`offline:${bobId}`),
      { label: 'watchlist offline event for bob after he left' });
  });

  it('watchlist: goes offline only when the last connection of the watched user leaves', T, async () => {
    const bobId = h.uid('bob');
    const watcher = await h.connectClient(server, { user: { id: h.uid('watcher'), watchlist: [bobId] } });
    const log = watchlistLog(watcher);
    await watcher.signin();
    const bob1 = await signedIn({ id: bobId });
    await h.eventually(() => log.includes(`online:${bobId}`), { label: 'online for bob' });
    const bob2 = await signedIn({ id: bobId });
    await bob1.close();
    await h.sleep(400);
    assert.deepEqual(afterOnline(log, bobId), [], 'watchlist event while bob still has a connection');
    await bob2.close();
    await h.eventually(() => afterOnline(log, bobId).includes(`offline:${bobId}`),
      { label: 'offline after bob\'s last connection' });
  });

  it('watchlist: a user already online is reported online right after signin', T, async () => {
    const carolId = h.uid('carol');
    await signedIn({ id: carolId });
    const watcher = await h.connectClient(server, { user: { id: h.uid('watcher'), watchlist: [carolId] } });
    const log = watchlistLog(watcher);
    await watcher.signin();
    await h.eventually(() => log.includes(`online:${carolId}`), { label: 'initial online status for carol' });
  });

  it('terminateUserConnections closes every signed-in connection of that user only', T, async () => {
    const aliceId = h.uid('alice');
    const bobId = h.uid('bob');
    const aliceJS = await signedIn({ id: aliceId });
    const aliceRaw = await rawSignedIn({ id: aliceId });
    const bob = await signedIn({ id: bobId });
    // a connection that only claims alice in presence channel_data (not signed in) is not terminated
    const presenceOnly = await h.rawConnect(server);
    const pch = `presence-${h.uid('term')}`;
    await presenceOnly.subscribeOK(pch, sdk.authorizeChannel(presenceOnly.socketId, pch, { user_id: aliceId }));

    const res = await h.jsonOf(await sdk.terminateUserConnections(aliceId));
    assert.deepEqual(res, { status: 200, body: {} });

    const closeInfo = await aliceRaw.waitClose();
    assert.equal(closeInfo.code, 4009, `close code for a terminated connection: ${JSON.stringify(closeInfo)}`);
    await aliceJS.closedByServer();

    await h.sleep(200);
    assert.equal(bob.state, 'connected');
    assert.ok(presenceOnly.isOpen, 'a connection that did not sign in as the user was terminated');
    const got = new Promise((resolve) => bob.pusher.user.bind('still-here', resolve));
    await sdk.sendToUser(bobId, 'still-here', 1);
    await h.withTimeout(got, h.WAIT_MS, 'bob still receives user events');
  });

  it('require_signin: an idle connection is closed with 4009 after signin_timeout', T, async () => {
    const idle = new h.RawClient(server.wsURL(strict.key));
    await idle.established();
    const strictSDK = server.sdk(strict);
    const signer = rawSignedIn({ id: h.uid('ok') }, strict.key, strictSDK);
    const priv = (async () => {
      const raw = await h.rawConnect(server, strict.key);
      const ch = `private-${h.uid('auth')}`;
      await raw.subscribeOK(ch, { auth: strictSDK.authorizeChannel(raw.socketId, ch).auth });
      return raw;
    })();
    const [signed, subscribed] = await Promise.all([signer, priv]);

    const started = Date.now();
    const info = await idle.waitClose(4000);
    assert.equal(info.code, 4009, JSON.stringify(info));
    assert.ok(Date.now() - started < 4000);
    await h.sleep(1200);
    assert.ok(signed.isOpen, 'a signed-in connection was closed');
    assert.ok(subscribed.isOpen, 'a connection with a private subscription was closed');
  });
});
