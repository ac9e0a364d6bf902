'use strict';
// Private channels: a correctly signed subscription receives events; forged
// signatures are refused with pusher:subscription_error (+ pusher:error), the
// connection stays open, and the refused socket receives nothing.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const T = { timeout: 20000 };

describe('private channels', () => {
  let server;
  let sdk;
  const app = h.defaultApp();
  const otherApp = h.defaultApp({ id: '1002', key: 'other-key', secret: 'other-secret' });

  before(async () => {
    server = await h.startHerald({ apps: [app, otherApp] });
    sdk = server.sdk(app);
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  it('a correctly signed subscription succeeds and receives events', T, async () => {
    const ch = h.uid('private');
    const c = await h.connectClient(server);
    await c.subscribe(ch);
    const got = c.nextEvent(ch, 'secret-news');
    const res = await h.jsonOf(await sdk.trigger(ch, 'secret-news', { a: [1, 2, 3] }));
    assert.deepEqual(res, { status: 200, body: {} });
    assert.deepEqual((await got).data, { a: [1, 2, 3] });

    // the subscribe frame pusher-js sent carried the SDK's token, which the server accepted
    const ok = c.log.find(h.is.event('pusher_internal:subscription_succeeded', ch));
    assert.ok(ok, 'no pusher_internal:subscription_succeeded frame');
  });

  const wrongSecretSDK = () => new h.PusherSDK({ appId: app.id, key: app.key, secret: 'not-the-secret', host: '127.0.0.1', port: '1', useTLS: false });

  const forgeries = [
    {
      name: 'signed with the wrong secret',
      auth: ({ socketId, channelName }) => wrongSecretSDK().authorizeChannel(socketId, channelName),
    },
    {
      name: "signed for another socket's id",
      needsVictim: true,
      auth: ({ channelName, sdk: s, victim }) => s.authorizeChannel(victim.socketId, channelName),
    },
    {
      name: 'signed for another channel',
      auth: ({ socketId, channelName, sdk: s }) => s.authorizeChannel(socketId, `${channelName}-other`),
    },
    {
      name: "signed with another app's key and secret",
      auth: ({ socketId, channelName }) => server.sdk(otherApp).authorizeChannel(socketId, channelName),
    },
    {
      name: 'this app key with a garbage signature',
      auth: () => ({ auth: `${app.key}:${'0'.repeat(64)}` }),
    },
    {
      name: 'signature without the key prefix',
      auth: ({ socketId, channelName, sdk: s }) => ({ auth: s.authorizeChannel(socketId, channelName).auth.split(':')[1] }),
    },
    {
      name: 'empty auth',
      auth: () => ({ auth: '' }),
    },
  ];

  for (const forgery of forgeries) {
    it(`refuses a token ${forgery.name}, keeps the connection, delivers nothing`, T, async () => {
      const ch = h.uid('private');
      const good = await h.connectClient(server);
      await good.subscribe(ch);
      const victim = forgery.needsVictim ? await h.connectClient(server) : null;
      const bad = await h.connectClient(server, {
        channelAuth: (params) => forgery.auth({ ...params, victim }),
      });

      const frame = await bad.subscribeExpectingError(ch);
      h.assertSubscriptionError(frame, ch, 'AuthError', 401);
      await bad.log.wait(h.is.event('pusher:error'), { label: 'pusher:error accompanying the subscription_error' });

      const since = bad.log.mark();
      const got = good.nextEvent(ch, 'after-forgery');
      await sdk.trigger(ch, 'after-forgery', { leaked: true });
      await got;
      await h.expectNoFrame(bad, (f) => f.channel === ch && f.event === 'after-forgery',
        { since, label: 'refused socket received an event' });
      assert.equal(bad.state, 'connected', 'connection must stay open after a refused subscription');

      // the connection is still usable: a public subscription works
      const pub = h.uid('public');
      await bad.subscribe(pub);
    });
  }

  it('refuses a private subscription without auth (raw frame) and delivers nothing', T, async () => {
    const ch = h.uid('private');
    const raw = await h.rawConnect(server);
    const answer = await raw.subscribe(ch);
    h.assertSubscriptionError(answer, ch, 'AuthError', 401);
    const since = raw.mark();
    await sdk.trigger(ch, 'nope', {});
    await h.expectNoFrame(raw, (f) => f.channel === ch && f.event === 'nope', { since, ms: 400 });
    assert.ok(raw.isOpen);
  });

  it('refuses a token for one app on a connection to another app', T, async () => {
    // connection to otherApp presenting app's valid token
    const ch = h.uid('private');
    const c = await h.connectClient(server, {
      app: otherApp,
      channelAuth: ({ socketId, channelName }) => sdk.authorizeChannel(socketId, channelName),
    });
    const frame = await c.subscribeExpectingError(ch);
    h.assertSubscriptionError(frame, ch, 'AuthError', 401);
  });

  it('keeps apps isolated: a trigger on one app does not reach the same channel name on another', T, async () => {
    const ch = h.uid('private');
    const mine = await h.connectClient(server);
    const theirs = await h.connectClient(server, { app: otherApp });
    await Promise.all([mine.subscribe(ch), theirs.subscribe(ch)]);
    const since = theirs.log.mark();
    const got = mine.nextEvent(ch, 'isolated');
    await sdk.trigger(ch, 'isolated', 1);
    await got;
    await h.expectNoFrame(theirs, (f) => f.event === 'isolated', { since, label: 'event crossed apps' });
  });
});
