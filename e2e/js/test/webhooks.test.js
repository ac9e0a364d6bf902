'use strict';
// Webhooks on one node, against a real HTTP receiver: every request is
// validated with the official SDK's pusher.webhook({headers, rawBody})
// .isValid() and its events checked field by field; channel_vacated and
// member_removed wait for the delay and a reload within it sends nothing;
// a receiver answering 500 twice, one refusing connections for 10 s and
// one taking 20 s per request; a signature made with another secret.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Centrifuge } = require('centrifuge');
const h = require('../lib/harness');
const { Receiver } = require('../lib/receiver');

const T = { timeout: 30000 };
const DELAY_MS = 1000; // webhook.delay below

describe('webhooks', () => {
  let server;
  let recv; // the receiver of most apps
  let down; // a receiver that starts refusing connections
  const mk = (n, path, extra = {}) => h.defaultApp({ id: `20${n}`, key: `hook-key-${n}`, secret: `hook-secret-${n}`, ...extra, webhooksPath: path });
  const apps = {
    main: mk(1, '/main'),
    retry: mk(2, '/retry'),
    refused: mk(3, null),
    slow: mk(4, '/slow'),
    filtered: mk(5, '/filtered'),
    centrifugo: mk(6, '/cf', { jwt_secret: 'cf-jwt-secret', client_publish: true }),
  };

  before(async () => {
    recv = await new Receiver().start();
    down = await new Receiver().start();
    const list = Object.values(apps).map((a) => {
      const { webhooksPath, ...app } = a;
      const url = webhooksPath ? recv.url(webhooksPath) : down.url('/refused');
      app.webhooks = [{ url, headers: { 'X-Herald-Test': a.id } }];
      return app;
    });
    list.find((a) => a.id === apps.filtered.id).webhooks[0] = {
      url: recv.url('/filtered'), event_types: ['channel_occupied'], channel_prefix: 'private-', channel_suffix: '-kept',
    };
    server = await h.startHerald({ apps: list, webhook: { delay: `${DELAY_MS}ms`, batch_window: '20ms' } });
  });
  afterEach(h.closeAll);
  after(async () => {
    await h.closeAll();
    if (server) await server.stop(15000);
    await recv.stop();
    await down.stop();
  });

  // Every request is a signed POST the SDK accepts.
  // time_ms is when the body was made: a retry repeats it.
  const assertValid = (r, app, maxAgeMs = 5000) => {
    assert.equal(r.method, 'POST');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['x-pusher-key'], app.key);
    assert.equal(r.headers['x-herald-test'], app.id, 'the target\'s own header');
    const hook = server.sdk(app).webhook({ headers: r.headers, rawBody: r.rawBody });
    assert.equal(hook.isValid(), true, `invalid webhook ${JSON.stringify(r)}`);
    const body = JSON.parse(r.rawBody);
    assert.equal(typeof body.time_ms, 'number');
    assert.ok(body.time_ms <= r.at + 50 && r.at - body.time_ms < maxAgeMs, `time_ms ${body.time_ms} far from ${r.at}`);
    assert.deepEqual(Object.keys(body), ['time_ms', 'events']);
  };
  const strip = ({ at, ...e }) => e;
  const on = (path, ch) => recv.events(path).filter((e) => e.channel === ch).map(strip);

  it('sends each event type with exactly its fields, signed', T, async () => {
    const app = apps.main;
    const presence = `presence-${h.uid('room')}`;
    const priv = `private-${h.uid('chat')}`;
    const cache = `private-cache-${h.uid('c')}`;
    const alice = await h.connectClient(server, { app, presence: { user_id: 'alice', user_info: { n: 'A' } } });
    const bob = await h.connectClient(server, { app, presence: { user_id: 'bob' } });
    const [aPres, aPriv] = await Promise.all([alice.subscribe(presence), alice.subscribe(priv)]);
    await Promise.all([bob.subscribe(presence), bob.subscribe(priv)]);
    await alice.subscribe(cache);

    const got = bob.nextEvent(presence, 'client-wave');
    aPres.trigger('client-wave', { hand: 'left', n: 1 });
    await got;
    const got2 = bob.nextEvent(priv, 'client-note');
    aPriv.trigger('client-note', 'just a string');
    await got2;

    await recv.waitEvent('/main', (e) => e.name === 'client_event' && e.channel === priv);
    await recv.waitEvent('/main', (e) => e.name === 'cache_miss');
    await recv.waitEvent('/main', (e) => e.name === 'subscription_count' && e.channel === priv && e.subscription_count === 2);
    for (const r of recv.to('/main')) assertValid(r, app);

    const pres = on('/main', presence);
    assert.deepEqual(pres.filter((e) => e.name !== 'client_event'), [
      { name: 'channel_occupied', channel: presence },
      { name: 'member_added', channel: presence, user_id: 'alice' },
      { name: 'member_added', channel: presence, user_id: 'bob' },
    ], 'presence channels have no subscription_count');
    assert.deepEqual(pres.filter((e) => e.name === 'client_event'), [{
      name: 'client_event', channel: presence, event: 'client-wave',
      data: '{"hand":"left","n":1}', socket_id: alice.socketId, user_id: 'alice',
    }], 'client_event.data is the string the client sent, with user_id on presence');

    const p = on('/main', priv);
    assert.deepEqual(p[0], { name: 'channel_occupied', channel: priv });
    assert.deepEqual(p.filter((e) => e.name === 'client_event'), [{
      name: 'client_event', channel: priv, event: 'client-note', data: 'just a string', socket_id: alice.socketId,
    }]);
    const counts = p.filter((e) => e.name === 'subscription_count');
    assert.ok(counts.length >= 1 && counts.length <= 2, JSON.stringify(counts));
    assert.deepEqual(counts[counts.length - 1], { name: 'subscription_count', channel: priv, subscription_count: 2 });
    assert.deepEqual(on('/main', cache).filter((e) => e.name === 'cache_miss'), [{ name: 'cache_miss', channel: cache }]);
  });

  it('holds channel_vacated and member_removed for the delay; a reload within it sends nothing', T, async () => {
    const app = apps.main;
    const ch = `presence-${h.uid('reload')}`;
    const who = { user_id: 'carol' };
    let carol = await h.connectClient(server, { app, presence: who });
    await carol.subscribe(ch);
    await recv.waitEvent('/main', (e) => e.name === 'member_added' && e.channel === ch);

    // A page reload: the connection goes, a new one joins within the delay.
    await carol.close();
    carol = await h.connectClient(server, { app, presence: who });
    await carol.subscribe(ch);
    await h.sleep(DELAY_MS + 1000);
    assert.deepEqual(on('/main', ch), [
      { name: 'channel_occupied', channel: ch },
      { name: 'member_added', channel: ch, user_id: 'carol' },
    ], 'a reload sent webhooks');

    // Gone for good: both after the delay, not before.
    const left = Date.now();
    await carol.close();
    const removed = await recv.waitEvent('/main', (e) => e.name === 'member_removed' && e.channel === ch);
    const vacated = await recv.waitEvent('/main', (e) => e.name === 'channel_vacated' && e.channel === ch);
    for (const e of [removed, vacated]) {
      assert.ok(e.at - left >= DELAY_MS - 50, `${e.name} after ${e.at - left} ms, before the delay`);
      assert.ok(e.at - left < DELAY_MS + 2000, `${e.name} after ${e.at - left} ms`);
    }
    assert.deepEqual(on('/main', ch).slice(2).sort((a, b) => a.name.localeCompare(b.name)), [
      { name: 'channel_vacated', channel: ch },
      { name: 'member_removed', channel: ch, user_id: 'carol' },
    ]);
    for (const r of recv.to('/main')) assertValid(r, app);
  });

  it('sends member_added once per user, whatever its connections', T, async () => {
    const app = apps.main;
    const ch = `presence-${h.uid('multi')}`;
    const tabs = await Promise.all([1, 2, 3].map(() => h.connectClient(server, { app, presence: { user_id: 'dan' } })));
    await Promise.all(tabs.map((t) => t.subscribe(ch)));
    await tabs[0].close();
    await tabs[1].close();
    await h.sleep(DELAY_MS + 500);
    assert.deepEqual(on('/main', ch), [
      { name: 'channel_occupied', channel: ch },
      { name: 'member_added', channel: ch, user_id: 'dan' },
    ]);
  });

  it('retries a receiver that answers 500 twice with the same body and signature, then stops', T, async () => {
    const app = apps.retry;
    recv.on('/retry', (n) => ({ status: n <= 2 ? 500 : 200 }));
    const ch = `private-${h.uid('retry')}`;
    const c = await h.connectClient(server, { app });
    await c.subscribe(ch);
    await h.eventually(() => recv.to('/retry').length >= 3, { timeout: 10000, label: 'three attempts' });
    const [a, b, ok] = recv.to('/retry');
    assert.deepEqual([a.status, b.status, ok.status], [500, 500, 200]);
    for (const r of [a, b, ok]) {
      assertValid(r, app);
      assert.equal(r.rawBody, a.rawBody, 'a retry changed the body');
      assert.equal(r.headers['x-pusher-signature'], a.headers['x-pusher-signature']);
    }
    // Exponential backoff: the second wait is longer than the first's minimum.
    assert.ok(b.at - a.at >= 400, `first retry after ${b.at - a.at} ms`);
    assert.ok(ok.at - b.at >= 900, `second retry after ${ok.at - b.at} ms`);
    assert.deepEqual(JSON.parse(a.rawBody).events.map((e) => e.name), ['channel_occupied', 'subscription_count']);
    await h.sleep(2500);
    assert.equal(recv.to('/retry').length, 3, 'sent again after a 2xx');
  });

  it('retries a receiver that refuses connections for 10 s until it is up', { timeout: 60000 }, async () => {
    const app = apps.refused;
    await down.stop();
    const ch = `private-${h.uid('down')}`;
    const c = await h.connectClient(server, { app });
    await c.subscribe(ch);
    const since = Date.now();
    await h.sleep(10000);
    assert.equal(down.requests.length, 0);
    await down.start();
    await h.eventually(() => down.to('/refused').length > 0, { timeout: 40000, label: 'the delivery after the receiver came back' });
    const [r] = down.to('/refused');
    assertValid(r, app, 40000);
    assert.ok(JSON.parse(r.rawBody).time_ms < since + 1000, 'the body was made again');
    assert.ok(r.at - since >= 10000);
    assert.deepEqual(JSON.parse(r.rawBody).events, [
      { name: 'channel_occupied', channel: ch },
      { name: 'subscription_count', channel: ch, subscription_count: 1 },
    ]);
    const metrics = (await h.httpGet(`${server.httpBase}/metrics`)).body;
    const value = (re) => Number((metrics.match(re) || [])[1]);
    assert.ok(value(/herald_webhook_requests_total\{app_id="203",result="error"\} (\d+)/) >= 2, metrics);
    assert.ok(value(/herald_webhook_retries_total\{app_id="203"\} (\d+)/) >= 2);
    assert.equal(value(/herald_webhook_requests_total\{app_id="203",result="success"\} (\d+)/), 1);
    assert.equal(value(/herald_webhooks_sent_total\{app_id="203"\} (\d+)/), 2);
    assert.equal(value(/herald_webhooks_dropped_total\{app_id="203",reason="retry_limit"\} (\d+)/), 0);
  });

  it('a receiver taking 20 s per request delays no client delivery', T, async () => {
    const app = apps.slow;
    recv.on('/slow', () => ({ delayMs: 20000 }));
    const ch = `private-${h.uid('slow')}`;
    const sdk = server.sdk(app);
    const a = await h.connectClient(server, { app });
    const b = await h.connectClient(server, { app });
    const [aCh] = await Promise.all([a.subscribe(ch), b.subscribe(ch)]);
    await h.eventually(() => recv.to('/slow').length > 0, { label: 'the slow request' });
    const worst = [];
    for (let i = 0; i < 10; i += 1) {
      const t0 = Date.now();
      const got = b.nextEvent(ch, 'tick');
      await sdk.trigger(ch, 'tick', { i });
      assert.deepEqual((await got).data, { i });
      const gotClient = b.nextEvent(ch, 'client-tock');
      aCh.trigger('client-tock', { i });
      await gotClient;
      worst.push(Date.now() - t0);
    }
    assert.ok(Math.max(...worst) < 1000, `deliveries took ${worst} ms`);
  });

  it('filters by event type and channel name, and a signature made with another secret is detected', T, async () => {
    const app = apps.filtered;
    const c = await h.connectClient(server, { app });
    const kept = `private-${h.uid('a')}-kept`;
    await c.subscribe(`private-${h.uid('b')}`);
    await c.subscribe(`${h.uid("pub")}-kept`);
    await c.subscribe(kept);
    await recv.waitEvent('/filtered', (e) => e.channel === kept);
    await h.sleep(300);
    assert.deepEqual(recv.events('/filtered').map(strip), [{ name: 'channel_occupied', channel: kept }]);

    const [r] = recv.to('/filtered');
    const good = server.sdk(app).webhook({ headers: r.headers, rawBody: r.rawBody });
    assert.equal(good.isValid(), true);
    const other = server.sdk({ ...app, secret: 'another-secret' }).webhook({ headers: r.headers, rawBody: r.rawBody });
    assert.equal(other.isValid(), false, 'a signature checked with another secret passed');
    const tampered = server.sdk(app).webhook({ headers: r.headers, rawBody: r.rawBody.replace('-kept', '-kepT') });
    assert.equal(tampered.isValid(), false, 'a tampered body passed');
    const charset = server.sdk(app).webhook({ headers: { ...r.headers, 'content-type': 'application/json; charset=utf-8' }, rawBody: r.rawBody });
    assert.equal(charset.isValid(), false, 'the SDK accepts a charset suffix: the exact Content-Type check proves nothing');
  });

  it('HERALD_APP_WEBHOOK_URL: on SIGTERM the held-back events and the queue are sent before exit', T, async () => {
    const env = {
      HERALD_APP_ID: '2099', HERALD_APP_KEY: 'env-hook-key', HERALD_APP_SECRET: 'env-hook-secret',
      HERALD_APP_WEBHOOK_URL: recv.url('/env'),
      HERALD_WEBHOOK_DELAY: '10s', // longer than the test: only the shutdown sends them
      HERALD_WEBHOOK_BATCH_WINDOW: '5s',
    };
    const alone = await h.startHerald({ env });
    const envApp = { id: env.HERALD_APP_ID, key: env.HERALD_APP_KEY, secret: env.HERALD_APP_SECRET };
    try {
      const ch = `presence-${h.uid('bye')}`;
      const c = await h.connectClient(alone, { app: envApp, presence: { user_id: 'erin' } });
      await c.subscribe(ch);
      await h.sleep(200);
      assert.equal(recv.to('/env').length, 0, 'sent before the batching window');
      const t0 = Date.now();
      const exit = await alone.stop(10000);
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(Date.now() - t0 < 5000, `shutdown took ${Date.now() - t0} ms`);
      // Every event type (the variable's target has no filter), presence
      // channels without subscription_count.
      const got = recv.events('/env').map(strip);
      assert.deepEqual(got.slice(0, 2), [
        { name: 'channel_occupied', channel: ch },
        { name: 'member_added', channel: ch, user_id: 'erin' },
      ]);
      assert.deepEqual(got.slice(2).sort((a, b) => a.name.localeCompare(b.name)), [
        { name: 'channel_vacated', channel: ch },
        { name: 'member_removed', channel: ch, user_id: 'erin' },
      ]);
      for (const r of recv.to('/env')) {
        assert.equal(alone.sdk(envApp).webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), true);
      }
    } finally {
      await alone.stop().catch(() => {});
    }
  });

  it('Centrifugo clients: presence and publications give the same webhooks', T, async () => {
    const app = apps.centrifugo;
    const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const jwt = (claims) => {
      const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
      return `${input}.${crypto.createHmac('sha256', app.jwt_secret).update(input).digest('base64url')}`;
    };
    const ch = h.uid('presence-cf');
    const news = h.uid('news');
    const c = new Centrifuge(`ws://127.0.0.1:${server.port}/connection/websocket/${app.key}`,
      { websocket: h.WebSocket, token: jwt({ sub: 'cf-user' }), timeout: 4000 });
    try {
      await h.withTimeout(new Promise((resolve) => { c.once('connected', resolve); c.connect(); }), h.WAIT_MS, 'centrifuge connected');
      const subscribe = (sub) => h.withTimeout(new Promise((resolve) => { sub.once('subscribed', resolve); sub.subscribe(); }), h.WAIT_MS, 'subscribed');
      const pres = c.newSubscription(ch, { token: jwt({ sub: 'cf-user', channel: ch }) });
      await subscribe(pres);
      const pub = c.newSubscription(news);
      await subscribe(pub);
      await pub.publish({ hello: 'cf' });
      await recv.waitEvent('/cf', (e) => e.name === 'client_event');
      await recv.waitEvent('/cf', (e) => e.name === 'member_added');
      assert.deepEqual(on('/cf', ch), [
        { name: 'channel_occupied', channel: ch },
        { name: 'member_added', channel: ch, user_id: 'cf-user' },
      ]);
      assert.deepEqual(on('/cf', news).filter((e) => e.name === 'client_event'), [
        { name: 'client_event', channel: news, event: 'publication', data: '{"hello":"cf"}', user_id: 'cf-user' },
      ]);
      pres.unsubscribe();
      await recv.waitEvent('/cf', (e) => e.name === 'member_removed' && e.channel === ch, { timeout: DELAY_MS + 3000 });
      await recv.waitEvent('/cf', (e) => e.name === 'channel_vacated' && e.channel === ch, { timeout: DELAY_MS + 3000 });
      for (const r of recv.to('/cf')) assertValid(r, app);
    } finally {
      c.disconnect();
    }
  });
});
