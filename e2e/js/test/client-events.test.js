'use strict';
// Client events (client-*): relayed between subscribers of private and
// presence channels, never echoed, user_id added on presence, refused on
// public channels, refused when the app disables them, rate limited (4301)
// without closing the connection.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const T = { timeout: 20000 };

describe('client events', () => {
  let server;
  let sdk;
  const app = h.defaultApp({ client_events: true, client_event_rate: 10 });
  const noClientEvents = h.defaultApp({ id: '1002', key: 'quiet-key', secret: 'quiet-secret', client_events: false });

  before(async () => {
    server = await h.startHerald({ apps: [app, noClientEvents] });
    sdk = server.sdk(app);
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  it('relays client events on a private channel to others but not to the sender', T, async () => {
    const ch = `private-${h.uid('chat')}`;
    const a = await h.connectClient(server);
    const b = await h.connectClient(server);
    const [aCh] = await Promise.all([a.subscribe(ch), b.subscribe(ch)]);
    const aOwn = a.collect(ch, 'client-typing');
    const got = b.nextEvent(ch, 'client-typing');
    assert.equal(aCh.trigger('client-typing', { who: 'a', text: 'ünïcode' }), true);
    const { data } = await got;
    assert.deepEqual(data, { who: 'a', text: 'ünïcode' });
    await h.sleep(300);
    assert.equal(aOwn.length, 0, 'client event echoed to its sender');

    // the relayed frame has no user_id on a private channel
    const frame = b.log.find(h.is.event('client-typing', ch));
    assert.equal(frame.user_id, undefined);
  });

  it('relays client events on presence channels with the sender user_id as metadata', T, async () => {
    const ch = `presence-${h.uid('room')}`;
    const a = await h.connectClient(server, { presence: { user_id: 'user-a', user_info: { n: 'A' } } });
    const b = await h.connectClient(server, { presence: { user_id: 'user-b', user_info: { n: 'B' } } });
    const [aCh, bCh] = await Promise.all([a.subscribe(ch), b.subscribe(ch)]);
    const aOwn = a.collect(ch, 'client-wave');

    const got = b.nextEvent(ch, 'client-wave');
    aCh.trigger('client-wave', { hand: 'left' });
    const { data, metadata } = await got;
    assert.deepEqual(data, { hand: 'left' });
    assert.equal(metadata.user_id, 'user-a');
    const frame = b.log.find(h.is.event('client-wave', ch));
    assert.equal(frame.user_id, 'user-a', 'top-level user_id on the relayed frame');

    const back = a.nextEvent(ch, 'client-wave-back');
    bCh.trigger('client-wave-back', 'string data');
    const reply = await back;
    assert.equal(reply.data, 'string data');
    assert.equal(reply.metadata.user_id, 'user-b');
    await h.sleep(200);
    assert.equal(aOwn.length, 0);
  });

  it('refuses client events on public channels', T, async () => {
    const ch = h.uid('public');
    const a = await h.rawConnect(server);
    const b = await h.rawConnect(server);
    await a.subscribeOK(ch);
    await b.subscribeOK(ch);
    const sinceA = a.mark();
    const sinceB = b.mark();
    a.send({ event: 'client-shout', channel: ch, data: {} });
    await a.wait(h.is.event('pusher:error'), { since: sinceA, label: 'pusher:error for a public client event' });
    await h.expectNoFrame(b, h.is.event('client-shout'), { since: sinceB, label: 'client event relayed on a public channel' });
    assert.ok(a.isOpen);
  });

  it('does not relay client events from a socket that is not subscribed to the channel', T, async () => {
    const ch = `private-${h.uid('outsider')}`;
    const member = await h.rawConnect(server);
    await member.subscribeOK(ch, { auth: sdk.authorizeChannel(member.socketId, ch).auth });
    const outsider = await h.rawConnect(server);
    const since = member.mark();
    outsider.send({ event: 'client-inject', channel: ch, data: { evil: true } });
    await h.expectNoFrame(member, h.is.event('client-inject'), { since, ms: 400, label: 'client event from a non-subscriber relayed' });
  });

  it('refuses client events when the app has client_events disabled', T, async () => {
    const ch = `private-${h.uid('quiet')}`;
    const quietSDK = server.sdk(noClientEvents);
    const a = await h.rawConnect(server, noClientEvents.key);
    const b = await h.rawConnect(server, noClientEvents.key);
    await a.subscribeOK(ch, { auth: quietSDK.authorizeChannel(a.socketId, ch).auth });
    await b.subscribeOK(ch, { auth: quietSDK.authorizeChannel(b.socketId, ch).auth });
    const sinceA = a.mark();
    const sinceB = b.mark();
    a.send({ event: 'client-hello', channel: ch, data: { x: 1 } });
    await a.wait(h.is.event('pusher:error'), { since: sinceA, label: 'pusher:error when client events are disabled' });
    await h.expectNoFrame(b, h.is.event('client-hello'), { since: sinceB, label: 'client event relayed although disabled' });
    assert.ok(a.isOpen);

    // REST events still flow on that app
    await quietSDK.trigger(ch, 'server-side', {});
    await b.wait(h.is.event('server-side', ch), { since: sinceB });
  });

  it('rate limits client events with pusher:error 4301 and keeps the connection open', T, async () => {
    const ch = `private-${h.uid('flood')}`;
    const sender = await h.rawConnect(server);
    const receiver = await h.rawConnect(server);
    await sender.subscribeOK(ch, { auth: sdk.authorizeChannel(sender.socketId, ch).auth });
    await receiver.subscribeOK(ch, { auth: sdk.authorizeChannel(receiver.socketId, ch).auth });
    const since = sender.mark();
    const sinceR = receiver.mark();
    for (let i = 0; i < 30; i++) {
      sender.send({ event: 'client-flood', channel: ch, data: { i } });
    }
    const err = await sender.wait(h.is.error(4301), { since, label: 'pusher:error 4301' });
    assert.equal(typeof h.dataOf(err).message, 'string');

    // the connection is still open and usable
    await h.sleep(300);
    assert.ok(sender.isOpen, 'connection closed after a rate-limit error');
    assert.equal(sender.closeInfo, null);
    const sinceS = sender.mark();
    await sdk.trigger(ch, 'after-flood', { ok: true });
    const later = await sender.wait(h.is.event('after-flood', ch), { since: sinceS, label: 'REST event after the rate limit' });
    assert.equal(later.data, '{"ok":true}');

    // the excess was not relayed
    const relayed = receiver.log.filter(h.is.event('client-flood', ch), sinceR);
    assert.ok(relayed.length >= 1, 'events within the limit are relayed');
    assert.ok(relayed.length < 30, `all ${relayed.length} client events were relayed despite the limit`);

    // after the window passes, client events are accepted again
    await h.sleep(1100);
    const sinceR2 = receiver.mark();
    sender.send({ event: 'client-calm', channel: ch, data: {} });
    await receiver.wait(h.is.event('client-calm', ch), { since: sinceR2, label: 'client event after the rate window' });
  });

  it('pusher-js sees the 4301 error and stays connected', T, async () => {
    const ch = `private-${h.uid('flood-js')}`;
    const a = await h.connectClient(server);
    const aCh = await a.subscribe(ch);
    for (let i = 0; i < 25; i++) aCh.trigger('client-burst', { i });
    await h.eventually(() => a.errors.some((e) => e.type === 'PusherError' && e.data && e.data.code === 4301),
      { label: 'pusher-js error event with code 4301' });
    await h.sleep(200);
    assert.equal(a.state, 'connected');
  });
});
