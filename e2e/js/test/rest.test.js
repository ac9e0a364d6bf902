'use strict';
// REST API through the official `pusher` SDK, with pusher-js clients
// connected: multi-channel trigger, batch trigger, channel listing and
// channel / users queries with exact JSON bodies, and request errors.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const T = { timeout: 20000 };

describe('REST API via the pusher SDK', () => {
  let server;
  let sdk;
  const app = h.defaultApp({ max_event_bytes: 10240, max_batch_events: 10 });

  before(async () => {
    server = await h.startHerald({ apps: [app] });
    sdk = server.sdk(app);
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  const get = async (path, params) => h.jsonOf(await sdk.get({ path, params }));
  const presenceClient = (user_id) => h.connectClient(server, { presence: { user_id, user_info: { name: user_id } } });

  it('trigger to several channels delivers to each and answers {}', T, async () => {
    const chans = [h.uid('multi-a'), h.uid('multi-b'), `private-${h.uid('multi-c')}`];
    const clients = await Promise.all(chans.map(() => h.connectClient(server)));
    await Promise.all(clients.map((c, i) => c.subscribe(chans[i])));
    const got = clients.map((c, i) => c.nextEvent(chans[i], 'multi'));
    const res = await h.jsonOf(await sdk.trigger(chans, 'multi', { to: 'all' }));
    assert.deepEqual(res, { status: 200, body: {} });
    for (const g of got) assert.deepEqual((await g).data, { to: 'all' });
  });

  it('a client subscribed to two of the target channels gets the event once per channel', T, async () => {
    const [a, b] = [h.uid('dup-a'), h.uid('dup-b')];
    const c = await h.connectClient(server);
    await c.subscribe(a);
    await c.subscribe(b);
    const since = c.log.mark();
    await sdk.trigger([a, b], 'twice', 1);
    await h.eventually(() => c.log.filter(h.is.event('twice'), since).length === 2, { label: 'one frame per channel' });
    await h.sleep(200);
    const frames = c.log.filter(h.is.event('twice'), since);
    assert.deepEqual(frames.map((f) => f.channel).sort(), [a, b].sort());
  });

  it('triggerBatch delivers every event and answers {}', T, async () => {
    const [a, b] = [h.uid('batch-a'), h.uid('batch-b')];
    const ca = await h.connectClient(server);
    const cb = await h.connectClient(server);
    await ca.subscribe(a);
    await cb.subscribe(b);
    const gotA = ca.nextEvent(a, 'first');
    const gotB = cb.nextEvent(b, 'second');
    const res = await h.jsonOf(await sdk.triggerBatch([
      { channel: a, name: 'first', data: { n: 1 } },
      { channel: b, name: 'second', data: 'two' },
    ]));
    assert.deepEqual(res, { status: 200, body: {} });
    assert.deepEqual((await gotA).data, { n: 1 });
    assert.equal((await gotB).data, 'two');
  });

  it('triggerBatch honours a per-event socket_id', T, async () => {
    const ch = h.uid('batch-excl');
    const a = await h.connectClient(server);
    const b = await h.connectClient(server);
    await a.subscribe(ch);
    await b.subscribe(ch);
    const sinceA = a.log.mark();
    const got = b.nextEvent(ch, 'excl');
    await sdk.triggerBatch([{ channel: ch, name: 'excl', data: {}, socket_id: a.socketId }]);
    await got;
    await h.expectNoFrame(a, h.is.event('excl', ch), { since: sinceA, label: 'excluded socket received the batch event' });
  });

  it('GET /channels?filter_by_prefix=presence-&info=user_count counts distinct users', T, async () => {
    const prefix = `presence-${h.uid('ls')}-`;
    const r1 = `${prefix}one`;
    const r2 = `${prefix}two`;
    const u1 = await presenceClient('u1');
    const u1b = await presenceClient('u1');
    const u2 = await presenceClient('u2');
    await Promise.all([u1.subscribe(r1), u1b.subscribe(r1), u2.subscribe(r1), u2.subscribe(r2)]);
    const res = await get('/channels', { filter_by_prefix: prefix, info: 'user_count' });
    assert.deepEqual(res, {
      status: 200,
      body: { channels: { [r1]: { user_count: 2 }, [r2]: { user_count: 1 } } },
    });
  });

  it('GET /channels lists occupied channels only, with {} values', T, async () => {
    const prefix = h.uid('lsp');
    const [a, b] = [`${prefix}-a`, `${prefix}-b`];
    const c = await h.connectClient(server);
    await c.subscribe(a);
    await c.subscribe(b);
    const res = await get('/channels', { filter_by_prefix: prefix });
    assert.deepEqual(res, { status: 200, body: { channels: { [a]: {}, [b]: {} } } });

    const all = await get('/channels');
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.channels[a], {});
    assert.deepEqual(all.body.channels[b], {});

    // after the client leaves, the channels are no longer listed
    await c.close();
    await h.eventually(async () => {
      const after = await get('/channels', { filter_by_prefix: prefix });
      return after.status === 200 && Object.keys(after.body.channels).length === 0;
    }, { label: 'vacated channels to disappear from /channels' });
  });

  it('GET /channels with info=user_count and no presence- filter is a 400', T, async () => {
    const err = await h.requestError(sdk.get({ path: '/channels', params: { info: 'user_count' } }));
    assert.equal(err.status, 400);
  });

  it('GET /channels/<channel> reports occupied and subscription_count', T, async () => {
    const ch = h.uid('info');
    const a = await h.connectClient(server);
    const b = await h.connectClient(server);
    await a.subscribe(ch);
    await b.subscribe(ch);
    const plain = await get(`/channels/${ch}`);
    assert.equal(plain.status, 200);
    assert.equal(plain.body.occupied, true);
    if ('subscription_count' in plain.body) assert.equal(plain.body.subscription_count, 2);
    const withCount = await get(`/channels/${ch}`, { info: 'subscription_count' });
    assert.deepEqual(withCount, { status: 200, body: { occupied: true, subscription_count: 2 } });

    const empty = await get(`/channels/${h.uid('nobody')}`);
    assert.deepEqual(empty, { status: 200, body: { occupied: false } });
  });

  it('GET /channels/<presence channel>?info=user_count,subscription_count', T, async () => {
    const ch = `presence-${h.uid('pinfo')}`;
    const a = await presenceClient('pa');
    const a2 = await presenceClient('pa');
    const b = await presenceClient('pb');
    await Promise.all([a.subscribe(ch), a2.subscribe(ch), b.subscribe(ch)]);
    const res = await get(`/channels/${ch}`, { info: 'user_count' });
    assert.deepEqual(res, { status: 200, body: { occupied: true, user_count: 2 } });
  });

  it('GET /channels/<public channel>?info=user_count is a 400', T, async () => {
    const err = await h.requestError(sdk.get({ path: `/channels/${h.uid('pub')}`, params: { info: 'user_count' } }));
    assert.equal(err.status, 400);
  });

  it('GET /channels/<presence channel>/users lists distinct user ids', T, async () => {
    const ch = `presence-${h.uid('users')}`;
    const clients = await Promise.all(['zed', 'amy', 'amy', 'bo'].map(presenceClient));
    await Promise.all(clients.map((c) => c.subscribe(ch)));
    const res = await get(`/channels/${ch}/users`);
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body), ['users']);
    const sorted = [...res.body.users].sort((x, y) => x.id.localeCompare(y.id));
    assert.deepEqual(sorted, [{ id: 'amy' }, { id: 'bo' }, { id: 'zed' }]);
  });

  it('GET /channels/<public channel>/users is a 400', T, async () => {
    const err = await h.requestError(sdk.get({ path: `/channels/${h.uid('pub')}/users` }));
    assert.equal(err.status, 400);
  });

  it('trigger with info returns counts for the channels', T, async () => {
    const pub = h.uid('tinfo');
    const pres = `presence-${h.uid('tinfo')}`;
    const c1 = await presenceClient('ia');
    const c2 = await presenceClient('ib');
    await Promise.all([c1.subscribe(pub), c2.subscribe(pub), c1.subscribe(pres), c2.subscribe(pres)]);
    const r1 = await h.jsonOf(await sdk.trigger(pub, 'e', {}, { info: 'subscription_count' }));
    assert.deepEqual(r1, { status: 200, body: { channels: { [pub]: { subscription_count: 2 } } } });
    const r2 = await h.jsonOf(await sdk.trigger(pres, 'e', {}, { info: 'user_count' }));
    assert.deepEqual(r2, { status: 200, body: { channels: { [pres]: { user_count: 2 } } } });
  });

  it('rejects a request signed with the wrong secret with 401 and delivers nothing', T, async () => {
    const ch = h.uid('unauth');
    const c = await h.connectClient(server);
    await c.subscribe(ch);
    const since = c.log.mark();
    const bad = server.sdk({ ...app, secret: 'wrong-secret' });
    const err = await h.requestError(bad.trigger(ch, 'forged', {}));
    assert.equal(err.status, 401);
    const err2 = await h.requestError(bad.get({ path: '/channels' }));
    assert.equal(err2.status, 401);
    await h.expectNoFrame(c, h.is.event('forged'), { since, label: 'event from an unauthenticated request delivered' });
  });

  it('rejects a request signed with another key for this app id', T, async () => {
    const bad = server.sdk({ ...app, key: 'someone-elses-key' });
    const err = await h.requestError(bad.trigger(h.uid('x'), 'e', {}));
    assert.ok(err.status === 401 || err.status === 403 || err.status === 404, `status ${err.status}`);
  });

  it('rejects an unknown app id', T, async () => {
    const bad = server.sdk({ ...app, id: '999999' });
    const err = await h.requestError(bad.trigger(h.uid('x'), 'e', {}));
    assert.ok(err.status >= 400 && err.status < 500, `status ${err.status}`);
  });

  it('rejects event data over max_event_bytes with 413 and accepts it at the limit', T, async () => {
    const ch = h.uid('big');
    const c = await h.connectClient(server);
    await c.subscribe(ch);
    const err = await h.requestError(sdk.trigger(ch, 'huge', 'x'.repeat(10241)));
    assert.equal(err.status, 413);
    const got = c.nextEvent(ch, 'fits');
    const ok = await h.jsonOf(await sdk.trigger(ch, 'fits', 'y'.repeat(10240)));
    assert.deepEqual(ok, { status: 200, body: {} });
    assert.equal((await got).data.length, 10240);
  });

  it('rejects a batch of more than max_batch_events with 400 and delivers none of it', T, async () => {
    const ch = h.uid('bigbatch');
    const c = await h.connectClient(server);
    await c.subscribe(ch);
    const since = c.log.mark();
    const batch = Array.from({ length: 11 }, (_, i) => ({ channel: ch, name: 'b', data: { i } }));
    const err = await h.requestError(sdk.triggerBatch(batch));
    assert.equal(err.status, 400);
    await h.expectNoFrame(c, h.is.event('b', ch), { since, label: 'part of a refused batch delivered' });
  });

  it('rejects a trigger to an invalid channel name with 400', T, async () => {
    // bypass the SDK's own validation with a raw signed POST
    const body = { name: 'e', data: '{}', channels: ['bad$name'] };
    const err = await h.requestError(sdk.post({ path: '/events', body }));
    assert.equal(err.status, 400);
  });
});
