'use strict';
// Cluster mode: Herald nodes sharing one Redis (lib/cluster.js starts a
// private redis-server and the nodes). pusher-js clients are spread over
// the nodes; events, client events, user events, terminations, watchlists,
// cache channels, presence and the REST queries answer for the whole
// cluster. A node that crashes has its presence members removed within its
// TTL, one that is stopped at once; a Redis restarted empty leaves the
// clients connected and the cluster whole again once the nodes
// re-registered.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const cl = require('../lib/cluster');

const T = { timeout: 30000 };
const SKIP = cl.haveRedis() ? false : 'redis-server is not on the PATH';

const member = (user_id, user_info = {}) => ({ user_id, user_info });

const membersOf = (channel) => {
  const list = {};
  channel.members.each((m) => { list[m.id] = m.info; });
  return list;
};

/** A pusher-js client on node, signed in as user, its user channel ready. */
async function signedIn(node, user) {
  const c = await h.connectClient(node, { user });
  await c.signin();
  await c.userChannelReady(user.id);
  return c;
}

/** Records watchlist events as 'online:<id>' / 'offline:<id>'. */
function watchlistLog(client) {
  const log = [];
  client.pusher.user.watchlist.bind('online', (e) => e.user_ids.forEach((id) => log.push(`online:${id}`)));
  client.pusher.user.watchlist.bind('offline', (e) => e.user_ids.forEach((id) => log.push(`offline:${id}`)));
  return log;
}

/** GET path through node's REST API, as parsed JSON. */
async function restGet(node, path, params) {
  const res = await h.jsonOf(await node.sdk().get({ path, params }));
  assert.equal(res.status, 200, JSON.stringify(res));
  return res.body;
}

/** Channel info of a presence channel through node: {subscription_count, user_count, users}. */
async function presenceInfo(node, ch) {
  const info = await restGet(node, `/channels/${ch}`, { info: 'subscription_count,user_count' });
  const users = await restGet(node, `/channels/${ch}/users`);
  const list = await restGet(node, '/channels', { filter_by_prefix: 'presence-', info: 'user_count' });
  return {
    subscription_count: info.subscription_count,
    user_count: info.user_count,
    listed_user_count: list.channels[ch] ? list.channels[ch].user_count : 0,
    users: users.users.map((u) => u.id).sort(),
  };
}

/** Resolves once every node answers for ch as want says. */
async function presenceEverywhere(nodes, ch, want, timeout = h.WAIT_MS) {
  let last;
  await h.eventually(async () => {
    for (const n of nodes) {
      last = { node: n.name, ...(await presenceInfo(n, ch)) };
      const { node: _, ...got } = last;
      if (JSON.stringify(got) !== JSON.stringify(want)) return false;
    }
    return true;
  }, { timeout, interval: 100, label: `presence of ${ch} to be ${JSON.stringify(want)}` }).catch((e) => {
    throw new Error(`${e.message}; last answer ${JSON.stringify(last)}`);
  });
}

describe('cluster: two nodes sharing Redis', { skip: SKIP }, () => {
  let cluster;
  let A;
  let B;

  before(async () => {
    cluster = await cl.startCluster({ nodes: 2 });
    [A, B] = cluster.nodes;
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (cluster) await cluster.stop(); });

  it('an event published through B reaches the subscribers on A and B exactly once', T, async () => {
    const ch = h.uid('news');
    const a = await h.connectClient(A);
    const b = await h.connectClient(B);
    await a.subscribe(ch);
    await b.subscribe(ch);
    const gotA = a.collect(ch, 'hello');
    const gotB = b.collect(ch, 'hello');
    const res = await h.jsonOf(await B.sdk().trigger(ch, 'hello', { n: 1 }));
    assert.deepEqual(res, { status: 200, body: {} });
    await h.eventually(() => gotA.length >= 1 && gotB.length >= 1, { label: 'the event on both nodes' });
    await h.sleep(500);
    assert.equal(gotA.length, 1, 'subscriber on A got the event more than once');
    assert.equal(gotB.length, 1, 'subscriber on B got the event more than once');
    assert.deepEqual(gotA[0].data, { n: 1 });
    assert.deepEqual(gotB[0].data, { n: 1 });
  });

  it('50 events published alternately through A and B arrive in order everywhere', T, async () => {
    const ch = h.uid('seq');
    const subs = [await h.connectClient(A), await h.connectClient(A), await h.connectClient(B), await h.connectClient(B)];
    const logs = [];
    for (const s of subs) {
      await s.subscribe(ch);
      logs.push(s.collect(ch, 'seq'));
    }
    const sdks = [A.sdk(), B.sdk()];
    for (let i = 0; i < 50; i += 1) {
      const res = await sdks[i % 2].trigger(ch, 'seq', { i });
      assert.equal(res.status, 200);
    }
    const want = [...Array(50).keys()];
    await h.eventually(() => logs.every((l) => l.length >= 50), { label: 'all 50 events at every subscriber' });
    await h.sleep(300);
    for (const [k, l] of logs.entries()) {
      assert.deepEqual(l.map((e) => e.data.i), want, `subscriber ${k} (${k < 2 ? 'A' : 'B'})`);
    }
  });

  it('a trigger naming several channels and a batch through A reach subscribers on B once each, in order per channel', T, async () => {
    const chans = [h.uid('multi'), h.uid('multi'), h.uid('multi'), `cache-${h.uid('multi')}`];
    const b = await h.connectClient(B);
    const logs = [];
    for (const ch of chans) {
      await b.subscribe(ch);
      logs.push(b.collect(ch, 'ev'));
    }
    const sdk = A.sdk();
    let res = await h.jsonOf(await sdk.trigger(chans, 'ev', { n: 0 }));
    assert.deepEqual(res, { status: 200, body: {} });
    const batch = [];
    for (let n = 1; n <= 8; n += 1) batch.push({ channel: chans[n % chans.length], name: 'ev', data: JSON.stringify({ n }) });
    res = await h.jsonOf(await sdk.triggerBatch(batch));
    assert.deepEqual(res, { status: 200, body: {} });
    const want = chans.map((ch) => [0, ...batch.filter((e) => e.channel === ch).map((e) => JSON.parse(e.data).n)]);
    await h.eventually(() => logs.every((l, i) => l.length >= want[i].length), { label: 'every message on B' });
    await h.sleep(300);
    for (const [i, l] of logs.entries()) {
      assert.deepEqual(l.map((e) => e.data.n), want[i], `channel ${chans[i]}`);
    }
    // The cache channel's last event is the batch's last one for it.
    const late = await h.connectClient(A);
    const replay = late.nextEvent(chans[3], 'ev');
    await late.subscribe(chans[3]);
    assert.equal((await replay).data.n, want[3][want[3].length - 1]);
  });

  it('a client event from a client on A reaches a client on B', T, async () => {
    const ch = `private-${h.uid('ce')}`;
    const a = await h.connectClient(A);
    const b = await h.connectClient(B);
    const aCh = await a.subscribe(ch);
    await b.subscribe(ch);
    const own = a.collect(ch, 'client-hi');
    const got = b.nextEvent(ch, 'client-hi');
    assert.equal(aCh.trigger('client-hi', { from: 'a', text: 'ünïcode' }), true);
    assert.deepEqual((await got).data, { from: 'a', text: 'ünïcode' });
    await h.sleep(200);
    assert.equal(own.length, 0, 'the sender got its own client event');
  });

  it('terminate_connections through A closes the user\'s connection on B', T, async () => {
    const victim = h.uid('victim');
    const v = await signedIn(B, { id: victim });
    const other = await signedIn(B, { id: h.uid('other') });
    const closed = v.transportClosed();
    const res = await h.jsonOf(await A.sdk().terminateUserConnections(victim));
    assert.deepEqual(res, { status: 200, body: {} });
    const info = await closed;
    assert.equal(info.code, 4009, `close code: ${JSON.stringify(info)}`);
    await h.sleep(200);
    assert.equal(other.state, 'connected', 'another user was terminated too');
  });

  it('watchlist: online and offline across nodes', T, async () => {
    const bobId = h.uid('bob');
    const watcher = await h.connectClient(A, { user: { id: h.uid('watcher'), watchlist: [bobId] } });
    const log = watchlistLog(watcher);
    await watcher.signin();
    await h.sleep(200);
    assert.ok(!log.includes(`online:${bobId}`), 'bob online before signing in');
    const bob = await signedIn(B, { id: bobId });
    await h.eventually(() => log.includes(`online:${bobId}`), { label: 'online for bob, signed in on B' });
    await bob.close();
    await h.eventually(() => log.slice(log.lastIndexOf(`online:${bobId}`) + 1).includes(`offline:${bobId}`),
      { label: 'offline for bob after he left B' });
    assert.equal(log.filter((e) => e === `online:${bobId}`).length, 1, `online reported more than once: ${log}`);
  });

  it('send-to-user through A reaches the user\'s connections on A and B', T, async () => {
    const alice = h.uid('alice');
    const onA = await signedIn(A, { id: alice });
    const onB = await signedIn(B, { id: alice });
    const bob = await signedIn(B, { id: h.uid('bob') });
    const gotA = new Promise((resolve) => onA.pusher.user.bind('notice', resolve));
    const gotB = new Promise((resolve) => onB.pusher.user.bind('notice', resolve));
    const bobGot = [];
    bob.pusher.user.bind('notice', (d) => bobGot.push(d));
    const res = await h.jsonOf(await A.sdk().sendToUser(alice, 'notice', { msg: 'hi' }));
    assert.deepEqual(res, { status: 200, body: {} });
    assert.deepEqual(await h.withTimeout(gotA, h.WAIT_MS, 'notice on A'), { msg: 'hi' });
    assert.deepEqual(await h.withTimeout(gotB, h.WAIT_MS, 'notice on B'), { msg: 'hi' });
    await h.sleep(200);
    assert.equal(bobGot.length, 0, 'another user got the notice');
  });

  it('a cache channel\'s last event published through A is replayed to a subscriber on B', T, async () => {
    const ch = `cache-${h.uid('price')}`;
    await A.sdk().trigger(ch, 'price', { v: 1 });
    await A.sdk().trigger(ch, 'price', { v: 2 });
    const late = await h.connectClient(B);
    const cached = late.nextEvent(ch, 'price');
    await late.subscribe(ch);
    assert.deepEqual((await cached).data, { v: 2 });
    await h.sleep(300);
    assert.equal(late.log.filter(h.is.event('price', ch)).length, 1, 'more than one cached event replayed');
    assert.equal(late.log.find(h.is.event('pusher:cache_miss', ch)), undefined, 'cache_miss though an event was cached');
  });

  it('presence: one member per user over both nodes, member lists and REST counts for the cluster', T, async () => {
    const ch = `presence-${h.uid('room')}`;
    const w = await h.connectClient(A, { presence: member('w', { on: 'A' }) });
    const wCh = await w.subscribe(ch);
    const added = w.collect(ch, 'pusher:member_added');
    const removed = w.collect(ch, 'pusher:member_removed');

    const u1a = await h.connectClient(A, { presence: member('u1', { n: 1 }) });
    await u1a.subscribe(ch);
    const u1b = await h.connectClient(B, { presence: member('u1', { n: 1 }) });
    const u1bCh = await u1b.subscribe(ch);
    const u2 = await h.connectClient(B, { presence: member('u2', { n: 2 }) });
    await u2.subscribe(ch);
    await h.eventually(() => added.length >= 2, { label: 'member_added for u1 and u2' });
    await h.sleep(300);
    assert.deepEqual(added.map((e) => e.data.id).sort(), ['u1', 'u2'], 'member_added once per user');
    assert.equal(wCh.members.count, 3);
    // u1's second connection, on B, sees the members of both nodes.
    assert.deepEqual(Object.keys(membersOf(u1bCh)).sort(), ['u1', 'u2', 'w']);

    const u3 = await h.connectClient(B, { presence: member('u3', { n: 3 }) });
    const u3Ch = await u3.subscribe(ch);
    assert.deepEqual(membersOf(u3Ch), { u1: { n: 1 }, u2: { n: 2 }, u3: { n: 3 }, w: { on: 'A' } });

    await presenceEverywhere([A, B], ch,
      { subscription_count: 5, user_count: 4, listed_user_count: 4, users: ['u1', 'u2', 'u3', 'w'] });

    // u1 leaves A but is still on B: still a member.
    await u1a.close();
    await h.sleep(600);
    assert.equal(removed.length, 0, `member_removed while u1 is still on B: ${JSON.stringify(removed)}`);
    await presenceEverywhere([A, B], ch,
      { subscription_count: 4, user_count: 4, listed_user_count: 4, users: ['u1', 'u2', 'u3', 'w'] });
    // Its last connection goes: removed, once.
    await u1b.close();
    await h.eventually(() => removed.length >= 1, { label: 'member_removed for u1' });
    await h.sleep(300);
    assert.deepEqual(removed.map((e) => e.data.id), ['u1']);
    await presenceEverywhere([A, B], ch,
      { subscription_count: 3, user_count: 3, listed_user_count: 3, users: ['u2', 'u3', 'w'] });
  });
});

describe('cluster: a node that crashes', { skip: SKIP }, () => {
  const TTL_MS = 3000;
  const REFRESH_MS = 1000;
  let cluster;

  before(async () => {
    cluster = await cl.startCluster({ nodes: 2, nodeTTL: `${TTL_MS / 1000}s`, refreshInterval: `${REFRESH_MS / 1000}s` });
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (cluster) await cluster.stop(); });

  it('kill -9: the others see its members removed once, within node_ttl + refresh, and counts drop', T, async () => {
    const [A, B] = cluster.nodes;
    const ch = `presence-${h.uid('crash')}`;
    const pub = h.uid('crash-pub');
    const watcher = await h.connectClient(B, { presence: member('wb') });
    await watcher.subscribe(ch);
    await watcher.subscribe(pub);
    const removed = watcher.collect(ch, 'pusher:member_removed');
    for (const id of ['ka1', 'ka2', 'both']) {
      const c = await h.connectClient(A, { presence: member(id) });
      await c.subscribe(ch);
      await c.subscribe(pub);
    }
    const bothB = await h.connectClient(B, { presence: member('both') });
    await bothB.subscribe(ch);
    await presenceEverywhere([A, B], ch,
      { subscription_count: 5, user_count: 4, listed_user_count: 4, users: ['both', 'ka1', 'ka2', 'wb'] });

    const start = Date.now();
    await cluster.kill(A);
    const bound = TTL_MS + REFRESH_MS + 3000;
    await h.eventually(() => removed.length >= 2, { timeout: bound, label: 'member_removed for A\'s users' });
    const took = Date.now() - start;
    await h.sleep(REFRESH_MS * 2);
    assert.deepEqual(removed.map((e) => e.data.id).sort(), ['ka1', 'ka2'],
      'each of A\'s users removed exactly once, and "both", still on B, kept');
    assert.ok(took < bound, `member_removed took ${took} ms`);
    await presenceEverywhere([B], ch, { subscription_count: 2, user_count: 2, listed_user_count: 2, users: ['both', 'wb'] });
    const info = await restGet(B, `/channels/${pub}`, { info: 'subscription_count' });
    assert.equal(info.subscription_count, 1, `public channel count after the crash: ${JSON.stringify(info)}`);
    assert.equal(watcher.state, 'connected');
  });
});

describe('cluster: a node that is stopped', { skip: SKIP }, () => {
  let cluster;

  // A long TTL: what the others see comes from the shutdown, not from
  // the node's registration expiring.
  before(async () => { cluster = await cl.startCluster({ nodes: 2, nodeTTL: '20s', refreshInterval: '5s' }); });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (cluster) await cluster.stop(); });

  it('SIGTERM: member_removed at once, well before the node TTL', T, async () => {
    const [A, B] = cluster.nodes;
    const ch = `presence-${h.uid('term')}`;
    const watcher = await h.connectClient(B, { presence: member('wb') });
    await watcher.subscribe(ch);
    const removed = watcher.collect(ch, 'pusher:member_removed');
    const onA = await h.connectClient(A, { presence: member('ta1') });
    await onA.subscribe(ch);
    await h.eventually(() => watcher.pusher.channel(ch).members.count === 2, { label: 'ta1 a member' });

    const start = Date.now();
    const exit = await cluster.terminate(A);
    onA.pusher.disconnect(); // pusher-js would retry the stopped node
    assert.deepEqual(exit, { code: 0, signal: null }, A.logs());
    await h.eventually(() => removed.length >= 1, { timeout: 5000, label: 'member_removed for ta1' });
    const took = Date.now() - start;
    assert.ok(took < 5000, `member_removed ${took} ms after SIGTERM`);
    await h.sleep(500);
    assert.deepEqual(removed.map((e) => e.data.id), ['ta1']);
    await presenceEverywhere([B], ch, { subscription_count: 1, user_count: 1, listed_user_count: 1, users: ['wb'] });
  });
});

describe('cluster: Redis restarted empty', { skip: SKIP }, () => {
  let cluster;

  before(async () => { cluster = await cl.startCluster({ nodes: 2, nodeTTL: '3s', refreshInterval: '1s' }); });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (cluster) await cluster.stop(); });

  it('clients stay connected, REST publish answers 503 meanwhile, and the cluster comes back whole', { timeout: 60000 }, async () => {
    const [A, B] = cluster.nodes;
    const ch = h.uid('outage');
    const pch = `presence-${h.uid('outage')}`;
    const a = await h.connectClient(A, { presence: member('pa') });
    const b = await h.connectClient(B, { presence: member('pb') });
    for (const c of [a, b]) {
      await c.subscribe(ch);
      await c.subscribe(pch);
    }
    const gotA = a.collect(ch, 'tick');
    const gotB = b.collect(ch, 'tick');
    await A.sdk().trigger(ch, 'tick', { k: 'before' });
    await h.eventually(() => gotA.length === 1 && gotB.length === 1, { label: 'the event before the outage' });
    const ids = [a.socketId, b.socketId];
    const marks = [a.states.length, b.states.length];

    await cluster.redis.stop();
    // Every publish is either refused (503) or delivered: one accepted
    // before the node noticed must still reach both nodes' subscribers.
    const accepted = [];
    const refused = [];
    let n = 0;
    for (const node of [A, B]) {
      const err = await h.eventually(async () => {
        n += 1;
        const tag = `during-${n}`;
        try {
          await node.sdk().trigger(ch, 'tick', { k: tag });
          accepted.push(tag);
          return false;
        } catch (e) {
          if (!(e instanceof h.PusherSDK.RequestError) || e.status !== 503) throw e;
          refused.push(tag);
          return e;
        }
      }, { timeout: 10000, interval: 200, label: `a 503 from ${node.name} while Redis is down` });
      assert.match(err.body, /broker is unreachable/);
      // /readyz reuses its broker check for a second.
      await h.eventually(async () => (await h.httpGet(`${node.httpBase}/readyz`)).status === 503,
        { timeout: 5000, interval: 100, label: `${node.name} /readyz to answer 503 while Redis is down` });
    }
    await h.sleep(500);

    await cluster.redis.start();
    await Promise.all([A, B].map((n) => cl.waitReady(n, 20000)));
    // Publishing through either node reaches everyone again, once the
    // nodes have re-registered their interest.
    let k = 0;
    for (const node of [A, B]) {
      await h.eventually(async () => {
        k += 1;
        const tag = `after-${node.name}-${k}`;
        const res = await node.sdk().trigger(ch, 'tick', { k: tag }).catch(() => null);
        if (!res || res.status !== 200) return false;
        await h.sleep(300);
        return gotA.some((e) => e.data.k === tag) && gotB.some((e) => e.data.k === tag);
      }, { timeout: 20000, interval: 200, label: `an event through ${node.name} reaching both nodes` });
    }
    await presenceEverywhere([A, B], pch,
      { subscription_count: 2, user_count: 2, listed_user_count: 2, users: ['pa', 'pb'] }, 20000);
    const late = await h.connectClient(B, { presence: member('pc') });
    const lateCh = await late.subscribe(pch);
    assert.deepEqual(Object.keys(membersOf(lateCh)).sort(), ['pa', 'pb', 'pc']);

    // Nobody reconnected: same sockets, no state change since.
    assert.deepEqual([a.socketId, b.socketId], ids, 'socket ids changed: pusher-js reconnected');
    assert.deepEqual(a.states.slice(marks[0]), [], `client on A changed state: ${a.states}`);
    assert.deepEqual(b.states.slice(marks[1]), [], `client on B changed state: ${b.states}`);
    for (const got of [gotA, gotB]) {
      const tags = got.map((e) => e.data.k);
      for (const tag of refused) assert.ok(!tags.includes(tag), `${tag}, refused with 503, was delivered`);
      for (const tag of accepted) assert.ok(tags.includes(tag), `${tag}, accepted with 200, was lost`);
    }
  });
});
