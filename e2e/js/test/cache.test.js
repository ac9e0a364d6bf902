'use strict';
// Cache channels: a new subscriber gets pusher:cache_miss when nothing was
// triggered yet, otherwise the last REST-triggered event; for every cache
// channel kind.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('../lib/harness');

const T = { timeout: 20000 };

describe('cache channels', () => {
  let server;
  let sdk;
  const masterKey = crypto.randomBytes(32).toString('base64');

  before(async () => {
    server = await h.startHerald({ apps: [h.defaultApp()] });
    sdk = server.sdk(server.app, { encryptionMasterKeyBase64: masterKey });
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  it('cache-*: cache_miss first, then new subscribers get the last event', T, async () => {
    const ch = `cache-${h.uid('x')}`;
    const first = await h.connectClient(server);
    const miss = first.nextEvent(ch, 'pusher:cache_miss');
    await first.subscribe(ch);
    await miss;
    // raw frame order: subscription_succeeded before cache_miss
    const frames = first.log.filter((f) => f.channel === ch);
    assert.deepEqual(frames.map((f) => f.event), ['pusher_internal:subscription_succeeded', 'pusher:cache_miss']);

    const live = first.collect(ch, 'price');
    await sdk.trigger(ch, 'price', { v: 1 });
    await sdk.trigger(ch, 'price', { v: 2 });
    await h.eventually(() => live.length === 2, { label: 'two live events' });
    assert.deepEqual(live.map((e) => e.data), [{ v: 1 }, { v: 2 }]);

    const second = await h.connectClient(server);
    const cached = second.nextEvent(ch, 'price');
    await second.subscribe(ch);
    assert.deepEqual((await cached).data, { v: 2 }, 'the new subscriber gets the last event');
    await h.sleep(200);
    assert.equal(second.log.find(h.is.event('pusher:cache_miss', ch)), undefined, 'no cache_miss once something is cached');
    const priceFrames = second.log.filter(h.is.event('price', ch));
    assert.equal(priceFrames.length, 1, 'exactly one cached event is replayed');
    assert.deepEqual(priceFrames[0].data, { v: 2 }, 'the cached data is the last event\'s');
  });

  it('raw: cache_miss is a channel frame for the subscriber only', T, async () => {
    const ch = `cache-${h.uid('raw')}`;
    const a = await h.rawConnect(server);
    await a.subscribeOK(ch);
    const f = await a.wait(h.is.event('pusher:cache_miss', ch));
    assert.equal(f.channel, ch);
    const b = await h.rawConnect(server);
    const sinceA = a.mark();
    await b.subscribeOK(ch);
    await b.wait(h.is.event('pusher:cache_miss', ch));
    await h.expectNoFrame(a, h.is.event('pusher:cache_miss'), { since: sinceA, label: 'cache_miss sent to an existing subscriber' });
  });

  it('does not replay events of a non-cache channel', T, async () => {
    const ch = h.uid('plain');
    const a = await h.connectClient(server);
    await a.subscribe(ch);
    await sdk.trigger(ch, 'once', {});
    const b = await h.connectClient(server);
    const since = b.log.mark();
    await b.subscribe(ch);
    await h.expectNoFrame(b, (f) => f.channel === ch && (f.event === 'once' || f.event === 'pusher:cache_miss'),
      { since, label: 'replay on a non-cache channel' });
  });

  it('does not cache client events', T, async () => {
    const ch = `private-cache-${h.uid('ce')}`;
    const a = await h.connectClient(server);
    const b = await h.connectClient(server);
    await a.subscribe(ch);
    await b.subscribe(ch);
    const got = b.nextEvent(ch, 'client-note');
    a.pusher.channel(ch).trigger('client-note', { hi: 1 });
    await got;
    const c = await h.connectClient(server);
    const miss = c.nextEvent(ch, 'pusher:cache_miss');
    await c.subscribe(ch);
    await miss;
    assert.equal(c.log.find(h.is.event('client-note', ch)), undefined);
  });

  const variants = [
    { prefix: 'private-cache-', opts: {} },
    { prefix: 'presence-cache-', opts: { presence: { user_id: 'cacher', user_info: {} } } },
    { prefix: 'private-encrypted-cache-', opts: {}, encrypted: true },
  ];
  for (const v of variants) {
    it(`${v.prefix}*: cache_miss, then the last event for new subscribers`, T, async () => {
      const ch = `${v.prefix}${h.uid('v')}`;
      const opts = { ...v.opts, sdk };
      const a = await h.connectClient(server, opts);
      const miss = a.nextEvent(ch, 'pusher:cache_miss');
      await a.subscribe(ch);
      await miss;

      await sdk.trigger(ch, 'state', { step: 1 });
      await sdk.trigger(ch, 'state', { step: 2, secret: 'kept' });

      const b = await h.connectClient(server, { ...opts, presence: v.opts.presence && { user_id: 'cacher2', user_info: {} } });
      const cached = b.nextEvent(ch, 'state');
      await b.subscribe(ch);
      assert.deepEqual((await cached).data, { step: 2, secret: 'kept' });
      if (v.encrypted) {
        const frame = b.log.find(h.is.event('state', ch));
        assert.ok(!String(frame.data).includes('kept'), 'encrypted cache replays ciphertext');
      }
    });
  }
});
