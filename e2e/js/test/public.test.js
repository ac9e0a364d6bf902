'use strict';
// Public channels: subscription, REST trigger fan-out with exact data,
// socket_id exclusion, unsubscribe, and the connection handshake frame.
// This file runs Herald in single-app mode (HERALD_APP_* environment).

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const T = { timeout: 20000 };

describe('public channels', () => {
  let server;
  let sdk;

  before(async () => {
    server = await h.startHerald({
      env: {
        HERALD_APP_ID: '4242',
        HERALD_APP_KEY: 'env-key',
        HERALD_APP_SECRET: 'env-secret',
        HERALD_APP_CLIENT_EVENTS: 'true',
      },
    });
    sdk = server.sdk();
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  it('sends connection_established first, with a socket id and a positive activity_timeout', T, async () => {
    const raw = new h.RawClient(server.wsURL());
    await raw.established();
    const first = raw.log.frames[0];
    assert.equal(first.event, 'pusher:connection_established');
    assert.equal(typeof first.data, 'string', 'connection_established data must be a JSON string');
    const data = JSON.parse(first.data);
    assert.match(data.socket_id, /^\d+\.\d+$/);
    assert.equal(typeof data.activity_timeout, 'number');
    assert.ok(data.activity_timeout > 0);

    const other = await h.rawConnect(server);
    assert.notEqual(other.socketId, raw.socketId, 'socket ids must be unique');
  });

  it('answers pusher:ping with pusher:pong', T, async () => {
    const raw = await h.rawConnect(server);
    const since = raw.mark();
    raw.send({ event: 'pusher:ping', data: {} });
    await raw.wait(h.is.event('pusher:pong'), { since, label: 'pusher:pong' });
  });

  it('pusher-js subscribes and receives a REST-triggered event with the exact data', T, async () => {
    const ch = h.uid('public');
    const c = await h.connectClient(server);
    await c.subscribe(ch);
    const payload = { text: 'héllo wörld ✓', n: 42, nested: { list: [1, 'two', null, true] } };
    const got = c.nextEvent(ch, 'greeting');
    const { status, body } = await h.jsonOf(await sdk.trigger(ch, 'greeting', payload));
    assert.equal(status, 200);
    assert.deepEqual(body, {});
    const { data } = await got;
    assert.deepEqual(data, payload);
  });

  it('forwards the REST data string verbatim in the channel frame', T, async () => {
    const ch = h.uid('public');
    const raw = await h.rawConnect(server);
    const ok = await raw.subscribeOK(ch, { auth: '' });
    assert.equal(ok.channel, ch);
    const since = raw.mark();
    const dataString = '{"b":2,  "a":"spaces  kept"}';
    await sdk.trigger(ch, 'verbatim', dataString);
    const frame = await raw.wait(h.is.event('verbatim', ch), { since });
    assert.equal(frame.data, dataString, 'data must be the POSTed string, unmodified');
    assert.equal(frame.user_id, undefined, 'REST events carry no user_id');

    const plain = 'just text, not JSON';
    await sdk.trigger(ch, 'plain', plain);
    const frame2 = await raw.wait(h.is.event('plain', ch), { since });
    assert.equal(frame2.data, plain);
  });

  it('trigger with socket_id excludes that socket only', T, async () => {
    const ch = h.uid('public');
    const a = await h.connectClient(server);
    const b = await h.connectClient(server);
    await Promise.all([a.subscribe(ch), b.subscribe(ch)]);
    const aEvents = a.collect(ch, 'excluded');
    const bGot = b.nextEvent(ch, 'excluded');
    const { body } = await h.jsonOf(await sdk.trigger(ch, 'excluded', { x: 1 }, { socket_id: a.socketId }));
    assert.deepEqual(body, {});
    assert.deepEqual((await bGot).data, { x: 1 });
    await h.sleep(300);
    assert.equal(aEvents.length, 0, 'the excluded socket received the event');

    // and without socket_id, both get it
    const aGot = a.nextEvent(ch, 'everyone');
    const bGot2 = b.nextEvent(ch, 'everyone');
    await sdk.trigger(ch, 'everyone', 'hi');
    assert.equal((await aGot).data, 'hi');
    assert.equal((await bGot2).data, 'hi');
  });

  it('stops delivering after pusher:unsubscribe', T, async () => {
    const ch = h.uid('public');
    const a = await h.rawConnect(server);
    const b = await h.connectClient(server);
    await a.subscribeOK(ch);
    await b.subscribe(ch);
    a.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
    // frames are handled in order: once the pong is back, the unsubscribe is done
    let since = a.mark();
    a.send({ event: 'pusher:ping', data: {} });
    await a.wait(h.is.event('pusher:pong'), { since });
    since = a.mark();
    const bGot = b.nextEvent(ch, 'after-unsub');
    await sdk.trigger(ch, 'after-unsub', {});
    await bGot;
    await h.expectNoFrame(a, h.is.event('after-unsub', ch), { since, label: 'event after unsubscribe' });
  });

  it('delivers to many subscribers of one channel', T, async () => {
    const ch = h.uid('public');
    const clients = await Promise.all(Array.from({ length: 8 }, () => h.connectClient(server)));
    await Promise.all(clients.map((c) => c.subscribe(ch)));
    const got = clients.map((c) => c.nextEvent(ch, 'fanout'));
    await sdk.trigger(ch, 'fanout', { i: 7 });
    for (const g of got) assert.deepEqual((await g).data, { i: 7 });
  });
});
