'use strict';
// Presence channels: member lists, member_added / member_removed with
// user_info, one member per user however many connections it has, tampered
// channel_data, and the member count / user_info size limits.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('../lib/harness');

const T = { timeout: 20000 };

const member = (user_id, user_info) => ({ user_id, user_info });

describe('presence channels', () => {
  let server;
  let sdk;
  const app = h.defaultApp();
  const limited = h.defaultApp({
    id: '1003',
    key: 'limited-key',
    secret: 'limited-secret',
    max_presence_members: 2,
    max_presence_user_info_bytes: 64,
  });

  before(async () => {
    server = await h.startHerald({ apps: [app, limited] });
    sdk = server.sdk(app);
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  const membersOf = (channel) => {
    const list = {};
    channel.members.each((m) => { list[m.id] = m.info; });
    return list;
  };

  it('sends the member list on subscription, member_added and member_removed to others', T, async () => {
    const ch = `presence-${h.uid('room')}`;
    const alice = await h.connectClient(server, { presence: member('alice', { name: 'Alice', tags: ['a'] }) });
    const aliceCh = await alice.subscribe(ch);
    assert.equal(aliceCh.members.count, 1);
    assert.equal(aliceCh.members.me.id, 'alice');
    assert.deepEqual(aliceCh.members.me.info, { name: 'Alice', tags: ['a'] });

    const added = alice.nextEvent(ch, 'pusher:member_added');
    const bob = await h.connectClient(server, { presence: member('bob', { name: 'Bob' }) });
    const bobCh = await bob.subscribe(ch);
    const { data: addedMember } = await added;
    assert.equal(addedMember.id, 'bob');
    assert.deepEqual(addedMember.info, { name: 'Bob' });
    assert.equal(aliceCh.members.count, 2);

    assert.equal(bobCh.members.count, 2);
    assert.equal(bobCh.members.me.id, 'bob');
    assert.deepEqual(membersOf(bobCh), { alice: { name: 'Alice', tags: ['a'] }, bob: { name: 'Bob' } });

    // the joining socket itself gets no member_added for itself
    await h.expectNoFrame(bob, h.is.event('pusher_internal:member_added', ch), { ms: 200, label: 'member_added for self' });

    const removed = alice.nextEvent(ch, 'pusher:member_removed');
    await bob.close();
    const { data: removedMember } = await removed;
    assert.equal(removedMember.id, 'bob');
    assert.equal(aliceCh.members.count, 1);
  });

  it('a quick unsubscribe and resubscribe leaves the member in its own list', T, async () => {
    // What a component mounted twice does (React's StrictMode, say).
    const ch = `presence-${h.uid('remount')}`;
    const alice = await h.connectClient(server, { presence: member('alice', { n: 1 }) });
    await alice.subscribe(ch);
    alice.pusher.unsubscribe(ch);
    const again = await alice.subscribe(ch);
    await h.sleep(300); // the first subscription's leave, announced meanwhile
    assert.ok(again.members.me, 'members.me is null: the member was told it left');
    assert.equal(again.members.me.id, 'alice');
    assert.equal(again.members.count, 1);
    assert.deepEqual(membersOf(again), { alice: { n: 1 } });
  });

  it('subscription_succeeded carries presence ids, hash and count', T, async () => {
    const ch = `presence-${h.uid('raw')}`;
    const carol = await h.connectClient(server, { presence: member('carol', { n: 1 }) });
    await carol.subscribe(ch);
    const raw = await h.rawConnect(server);
    const auth = sdk.authorizeChannel(raw.socketId, ch, member('dave', { n: 2 }));
    const ok = await raw.subscribeOK(ch, auth);
    const data = h.dataOf(ok);
    assert.equal(typeof ok.data, 'string', 'subscription_succeeded data is a JSON string');
    assert.ok(data.presence, JSON.stringify(data));
    assert.deepEqual([...data.presence.ids].sort(), ['carol', 'dave']);
    assert.deepEqual(data.presence.hash, { carol: { n: 1 }, dave: { n: 2 } });
    assert.equal(data.presence.count, 2);

    // member_added frame format seen by carol
    const frame = await carol.log.wait(h.is.event('pusher_internal:member_added', ch));
    assert.deepEqual(h.dataOf(frame), { user_id: 'dave', user_info: { n: 2 } });
  });

  it('counts a user with two connections as one member; member_removed only when both left', T, async () => {
    const ch = `presence-${h.uid('multi')}`;
    const watcher = await h.connectClient(server, { presence: member('watcher', {}) });
    const watcherCh = await watcher.subscribe(ch);
    const addedEvents = watcher.collect(ch, 'pusher:member_added');
    const removedEvents = watcher.collect(ch, 'pusher:member_removed');

    const bob1 = await h.connectClient(server, { presence: member('bob', { device: 1 }) });
    await bob1.subscribe(ch);
    await h.eventually(() => addedEvents.length === 1, { label: 'member_added for bob' });

    const bob2 = await h.connectClient(server, { presence: member('bob', { device: 1 }) });
    const bob2Ch = await bob2.subscribe(ch);
    assert.equal(bob2Ch.members.count, 2, 'second connection of bob sees 2 members, not 3');
    assert.deepEqual(Object.keys(membersOf(bob2Ch)).sort(), ['bob', 'watcher']);

    await h.sleep(300);
    assert.equal(addedEvents.length, 1, 'second connection of the same user must not add a member');
    assert.equal(watcherCh.members.count, 2);

    const users = await h.jsonOf(await sdk.get({ path: `/channels/${ch}/users` }));
    assert.deepEqual(users.body.users.map((u) => u.id).sort(), ['bob', 'watcher']);

    await bob1.close();
    await h.sleep(400);
    assert.equal(removedEvents.length, 0, 'member_removed sent while bob still has a connection');
    assert.equal(watcherCh.members.count, 2);

    await bob2.close();
    await h.eventually(() => removedEvents.length === 1, { label: 'member_removed after the last connection left' });
    assert.equal(removedEvents[0].data.id, 'bob');
    assert.equal(watcherCh.members.count, 1);
  });

  it('member_removed is sent when a member unsubscribes (connection still open)', T, async () => {
    const ch = `presence-${h.uid('unsub')}`;
    const a = await h.connectClient(server, { presence: member('ua', null) });
    await a.subscribe(ch);
    const b = await h.connectClient(server, { presence: member('ub', null) });
    await b.subscribe(ch);
    const removed = a.nextEvent(ch, 'pusher:member_removed');
    b.pusher.unsubscribe(ch);
    assert.equal((await removed).data.id, 'ub');
  });

  it('a numeric user_id written 1e2 by the backend is the member "100", pusher-js\'s own', T, async () => {
    // A PHP or Python backend may sign 1e2 or 100.0 where JSON.stringify
    // would write 100; pusher-js finds members.me by the number it parsed.
    const ch = `presence-${h.uid('numeric')}`;
    const signRaw = (channelData) => ({ socketId, channelName }) => ({
      auth: `${app.key}:${crypto.createHmac('sha256', app.secret).update(`${socketId}:${channelName}:${channelData}`).digest('hex')}`,
      channel_data: channelData,
    });
    const other = await h.connectClient(server, { presence: member('other', {}) });
    const otherCh = await other.subscribe(ch);
    const added = other.nextEvent(ch, 'pusher:member_added');
    const num = await h.connectClient(server, { channelAuth: signRaw('{"user_id":1e2,"user_info":{"n":1}}') });
    const numCh = await num.subscribe(ch);
    assert.ok(numCh.members.me, 'members.me is null: the member was announced under another id');
    assert.equal(String(numCh.members.me.id), '100');
    assert.deepEqual(numCh.members.me.info, { n: 1 });
    assert.equal((await added).data.id, '100');
    assert.deepEqual(membersOf(otherCh), { other: {}, 100: { n: 1 } });

    // 100.0 is the same user: no new member.
    const same = await h.connectClient(server, { channelAuth: signRaw('{"user_id":100.0,"user_info":{"n":1}}') });
    const sameCh = await same.subscribe(ch);
    assert.ok(sameCh.members.me, 'members.me of 100.0');
    assert.equal(sameCh.members.count, 2);
    const users = await h.jsonOf(await sdk.get({ path: `/channels/${ch}/users` }));
    assert.deepEqual(users.body.users.map((u) => u.id).sort(), ['100', 'other']);
  });

  it('refuses tampered channel_data and announces nobody', T, async () => {
    const ch = `presence-${h.uid('tamper')}`;
    const honest = await h.connectClient(server, { presence: member('honest', {}) });
    await honest.subscribe(ch);
    const since = honest.log.mark();

    const mallory = await h.connectClient(server, {
      channelAuth: ({ socketId, channelName, sdk: s }) => {
        const signed = s.authorizeChannel(socketId, channelName, member('mallory', { role: 'user' }));
        return { ...signed, channel_data: JSON.stringify(member('admin', { role: 'admin' })) };
      },
    });
    const frame = await mallory.subscribeExpectingError(ch);
    h.assertSubscriptionError(frame, ch, 'AuthError', 401);
    assert.equal(mallory.state, 'connected');

    await h.expectNoFrame(honest, h.is.event('pusher_internal:member_added', ch), { since, label: 'member_added after a refused subscription' });
    const users = await h.jsonOf(await sdk.get({ path: `/channels/${ch}/users` }));
    assert.deepEqual(users.body, { users: [{ id: 'honest' }] });
  });

  it('refuses a presence subscription signed without channel_data on a connection that is not signed in', T, async () => {
    const ch = `presence-${h.uid('nodata')}`;
    // pusher-js itself refuses to send this (no channel_data, not signed in), so use a raw socket
    const raw = await h.rawConnect(server);
    const auth = sdk.authorizeChannel(raw.socketId, ch);
    const answer = await raw.subscribe(ch, auth);
    h.assertSubscriptionError(answer, ch, 'AuthError');
    assert.ok(raw.isOpen);
  });

  it('refuses a member over max_presence_members with LimitReached', T, async () => {
    const ch = `presence-${h.uid('full')}`;
    const u1 = await h.connectClient(server, { app: limited, presence: member('u1', {}) });
    const u2 = await h.connectClient(server, { app: limited, presence: member('u2', {}) });
    await u1.subscribe(ch);
    await u2.subscribe(ch);
    // another connection of an existing member is not a new member
    const u1b = await h.connectClient(server, { app: limited, presence: member('u1', {}) });
    await u1b.subscribe(ch);

    const since = u1.log.mark();
    const u3 = await h.connectClient(server, { app: limited, presence: member('u3', {}) });
    const frame = await u3.subscribeExpectingError(ch);
    h.assertSubscriptionError(frame, ch, 'LimitReached');
    assert.equal(u3.state, 'connected');
    await h.expectNoFrame(u1, h.is.event('pusher_internal:member_added', ch), { since, label: 'member over the limit announced' });

    const limitedSDK = server.sdk(limited);
    const since3 = u3.log.mark();
    const got = u1.nextEvent(ch, 'full-house');
    await limitedSDK.trigger(ch, 'full-house', {});
    await got;
    await h.expectNoFrame(u3, h.is.event('full-house', ch), { since: since3, label: 'refused member received an event' });
  });

  it('refuses user_info larger than max_presence_user_info_bytes', T, async () => {
    const ch = `presence-${h.uid('fat')}`;
    const big = await h.connectClient(server, { app: limited, presence: member('big', { blob: 'x'.repeat(200) }) });
    const frame = await big.subscribeExpectingError(ch);
    h.assertSubscriptionError(frame, ch, 'LimitReached');
    assert.equal(big.state, 'connected');

    const small = await h.connectClient(server, { app: limited, presence: member('small', { s: 'x' }) });
    await small.subscribe(ch);
  });
});
