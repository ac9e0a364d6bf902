'use strict';
// Webhooks in a cluster: two nodes on a private Redis (lib/cluster.js),
// one receiver. Each webhook is sent once for the cluster, from
// cluster-wide state: a channel with subscribers on both nodes is occupied
// once and vacated once, after the last subscriber anywhere left; a user
// on both nodes is added once and removed once, also when joins and leaves
// race on both nodes; one client_event per client event; kill -9 of the
// node that held a presence channel's only member still sends its
// member_removed and channel_vacated, once, within node_ttl + the delay;
// and a node stopped with SIGTERM sends what it owed before it exits.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const cl = require('../lib/cluster');
const { Receiver } = require('../lib/receiver');

const T = { timeout: 30000 };
const SKIP = cl.haveRedis() ? false : 'redis-server is not on the PATH';
const DELAY_MS = 1500; // webhook.delay below
const NODE_TTL_MS = 3000; // the cluster harness's default node_ttl

describe('webhooks in a cluster', { skip: SKIP }, () => {
  let cluster;
  let recv;
  let A;
  let B;
  const app = h.defaultApp({ id: '3001', key: 'cl-hook-key', secret: 'cl-hook-secret' });

  before(async () => {
    recv = await new Receiver().start();
    cluster = await cl.startCluster({
      apps: [{ ...app, webhooks: [{ url: recv.url('/cluster') }] }],
      extra: { webhook: { delay: `${DELAY_MS}ms`, batch_window: '20ms' } },
    });
    [A, B] = cluster.nodes;
  });
  afterEach(h.closeAll);
  after(async () => {
    await h.closeAll();
    if (cluster) await cluster.stop();
    if (recv) await recv.stop();
  });

  const on = (ch) => recv.events('/cluster').filter((e) => e.channel === ch).map(({ at, ...e }) => e);
  const names = (ch) => on(ch).filter((e) => e.name !== 'subscription_count').map((e) => `${e.name}${e.user_id ? ` ${e.user_id}` : ''}`);
  const assertAllValid = () => {
    for (const r of recv.to('/cluster')) {
      assert.equal(A.sdk(app).webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), true, r.rawBody);
    }
  };

  it('occupied and vacated once for a channel on both nodes, members once per user', T, async () => {
    const ch = `presence-${h.uid('both')}`;
    const onA = await h.connectClient(A, { app, presence: { user_id: 'ann' } });
    const onB = await h.connectClient(B, { app, presence: { user_id: 'ann' } });
    const bob = await h.connectClient(B, { app, presence: { user_id: 'bob' } });
    await onA.subscribe(ch);
    await onB.subscribe(ch);
    await bob.subscribe(ch);
    const got = onA.nextEvent(ch, 'client-hi');
    bob.pusher.channel(ch).trigger('client-hi', { n: 1 });
    await got;
    await recv.waitEvent('/cluster', (e) => e.name === 'client_event' && e.channel === ch);
    await h.sleep(300);
    assert.deepEqual(names(ch).sort(), ['channel_occupied', 'client_event bob', 'member_added ann', 'member_added bob']);

    // ann leaves one node, bob leaves: only bob is removed.
    await onA.close();
    await bob.close();
    await recv.waitEvent('/cluster', (e) => e.name === 'member_removed' && e.channel === ch);
    await h.sleep(DELAY_MS / 2);
    assert.deepEqual(names(ch).slice(4), ['member_removed bob']);

    // The last subscriber anywhere: ann and the channel, once, after the delay.
    const left = Date.now();
    await onB.close();
    const vacated = await recv.waitEvent('/cluster', (e) => e.name === 'channel_vacated' && e.channel === ch, { timeout: DELAY_MS + 5000 });
    assert.ok(vacated.at - left >= DELAY_MS - 100, `vacated after ${vacated.at - left} ms`);
    await h.sleep(DELAY_MS + 500);
    assert.deepEqual(names(ch).slice(5).sort(), ['channel_vacated', 'member_removed ann']);
    assertAllValid();
  });

  it('racing joins and leaves of one user on both nodes: added once, removed once', T, async () => {
    const ch = `presence-${h.uid('race')}`;
    for (let round = 0; round < 6; round += 1) {
      const clients = await Promise.all([A, B, A, B].map((node) => h.connectClient(node, { app, presence: { user_id: 'racer' } })));
      await Promise.all(clients.map((c) => c.subscribe(ch)));
      // Leaves on both nodes at once, then the next round joins at once:
      // never out of the channel for the delay.
      await Promise.all(clients.map(async (c) => { await h.sleep(Math.random() * 50); await c.close(); }));
    }
    const end = Date.now();
    await recv.waitEvent('/cluster', (e) => e.name === 'channel_vacated' && e.channel === ch, { timeout: DELAY_MS + 5000 });
    await h.sleep(DELAY_MS + 500);
    const seen = names(ch);
    // The first joins race on two nodes: one node may make the channel
    // occupied while the other's join makes the member.
    assert.deepEqual(seen.slice(0, 2).sort(), ['channel_occupied', 'member_added racer']);
    assert.deepEqual(seen.slice(2).sort(), ['channel_vacated', 'member_removed racer'], `webhooks: ${seen}`);
    const removed = recv.events('/cluster').find((e) => e.name === 'member_removed' && e.channel === ch);
    assert.ok(removed.at - end >= DELAY_MS - 100, `removed ${removed.at - end} ms after the last leave`);
    assertAllValid();
  });

  it('kill -9 of the node holding the only member: removed and vacated once, within node_ttl + delay', { timeout: 40000 }, async () => {
    const ch = `presence-${h.uid('crash')}`;
    const lonely = await h.connectClient(A, { app, presence: { user_id: 'lonely' } });
    await lonely.subscribe(ch);
    // B watches another channel, so that it is a live node with clients.
    const other = await h.connectClient(B, { app });
    await other.subscribe(`private-${h.uid('alive')}`);
    await recv.waitEvent('/cluster', (e) => e.name === 'member_added' && e.channel === ch);

    const killed = Date.now();
    await cluster.kill(A);
    const budget = NODE_TTL_MS + 1000 /* refresh */ + DELAY_MS + 3000 /* sweep round, batching, slack */;
    const removed = await recv.waitEvent('/cluster', (e) => e.name === 'member_removed' && e.channel === ch, { timeout: budget });
    const vacated = await recv.waitEvent('/cluster', (e) => e.name === 'channel_vacated' && e.channel === ch, { timeout: budget });
    for (const e of [removed, vacated]) {
      assert.ok(e.at - killed < budget, `${e.name} ${e.at - killed} ms after the kill`);
      assert.ok(e.at - killed >= DELAY_MS, `${e.name} only ${e.at - killed} ms after the kill`);
    }
    await h.sleep(DELAY_MS + 1000);
    assert.deepEqual(names(ch).slice(0, 2), ['channel_occupied', 'member_added lonely']);
    assert.deepEqual(names(ch).slice(2).sort(), ['channel_vacated', 'member_removed lonely']);
    assertAllValid();
  });

  it('SIGTERM of a node sends, before it exits, the removals and vacancies it decided', T, async () => {
    const ch = `presence-${h.uid('term')}`;
    const last = await h.connectClient(B, { app, presence: { user_id: 'leaver' } });
    await last.subscribe(ch);
    await recv.waitEvent('/cluster', (e) => e.name === 'member_added' && e.channel === ch);
    const t0 = Date.now();
    const exit = await cluster.terminate(B);
    assert.deepEqual(exit, { code: 0, signal: null });
    // Held for the delay (the clients may come back on another node), sent
    // within the shutdown grace period.
    assert.ok(Date.now() - t0 >= DELAY_MS - 100, `exited after ${Date.now() - t0} ms, before the delay`);
    assert.deepEqual(names(ch).slice(2).sort(), ['channel_vacated', 'member_removed leaver']);
    assertAllValid();
  });
});
