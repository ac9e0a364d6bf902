'use strict';
// Centrifugo clients (the npm `centrifuge` package) on the same hub as
// Pusher clients: connection and subscription JWTs, forged tokens, presence
// with join/leave, client publish on and off, and publications crossing
// between the two protocols in both directions.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Centrifuge } = require('centrifuge');
const h = require('../lib/harness');
const cl = require('../lib/cluster');

const T = { timeout: 30000 };
const JWT_SECRET = 'jwt-secret-for-e2e';

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Signs claims: HS256 with key (a string), or RS256 with a private KeyObject. */
function jwt(claims, { key = JWT_SECRET, alg = 'HS256' } = {}) {
  const head = b64({ alg, typ: 'JWT' });
  const body = b64(claims);
  const input = `${head}.${body}`;
  let sig;
  if (alg === 'HS256') sig = crypto.createHmac('sha256', key).update(input).digest('base64url');
  else if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), key).toString('base64url');
  else if (alg === 'none') sig = '';
  return `${input}.${sig}`;
}

const now = () => Math.floor(Date.now() / 1000);

const clients = new Set();
function closeCentrifuges() {
  for (const c of clients) c.disconnect();
  clients.clear();
}

/** A Centrifuge client with its events recorded. */
function centrifuge(server, app, opts = {}) {
  const url = `ws://127.0.0.1:${server.port}/connection/websocket${app ? `/${app.key}` : ''}`;
  const c = new Centrifuge(url, { websocket: h.WebSocket, timeout: 4000, minReconnectDelay: 100, maxReconnectDelay: 300, ...opts });
  c.states = [];
  c.on('connected', (ctx) => c.states.push({ state: 'connected', ctx }));
  c.on('disconnected', (ctx) => c.states.push({ state: 'disconnected', ctx }));
  c.on('connecting', (ctx) => c.states.push({ state: 'connecting', ctx }));
  clients.add(c);
  return c;
}

function once(emitter, event, label) {
  return h.withTimeout(new Promise((resolve) => emitter.once(event, resolve)), h.WAIT_MS, label || event);
}

/** Resolves with the next join or leave push on sub of user. */
function nextOf(sub, event, user) {
  return h.withTimeout(new Promise((resolve) => {
    const on = (ctx) => { if (ctx.info.user === user) { sub.off(event, on); resolve(ctx); } };
    sub.on(event, on);
  }), h.WAIT_MS, `${event} of ${user}`);
}

async function connected(c) {
  const p = once(c, 'connected', 'centrifuge connected');
  c.connect();
  return p;
}

/** Resolves with the disconnected context, failing on a connect. */
async function refused(c) {
  const p = h.withTimeout(new Promise((resolve, reject) => {
    c.once('disconnected', resolve);
    c.once('connected', () => reject(new Error('connected, but refusal expected')));
  }), h.WAIT_MS, 'centrifuge disconnected');
  c.connect();
  return p;
}

async function subscribed(sub) {
  const p = h.withTimeout(new Promise((resolve, reject) => {
    sub.once('subscribed', resolve);
    sub.once('unsubscribed', (ctx) => reject(Object.assign(new Error(`unsubscribed ${ctx.code} ${ctx.reason}`), { ctx })));
  }), h.WAIT_MS, `subscribed to ${sub.channel}`);
  sub.subscribe();
  return p;
}

async function unsubscribedWith(sub) {
  const p = h.withTimeout(new Promise((resolve, reject) => {
    sub.once('unsubscribed', resolve);
    sub.once('subscribed', () => reject(new Error(`subscribed to ${sub.channel}, but refusal expected`)));
  }), h.WAIT_MS, `unsubscribed from ${sub.channel}`);
  sub.subscribe();
  return p;
}

describe('centrifugo clients', () => {
  let server;
  let tmp;
  let rsa;
  const app = h.defaultApp({ jwt_secret: JWT_SECRET, client_publish: true, api_key: 'api-key-e2e', pusher_jwt_auth: true });
  // Its own JWT key: apps sharing one would accept each other's tokens.
  const CLOSED_JWT_SECRET = 'e2e-closed-jwt-secret';
  const closedApp = h.defaultApp({ id: '1002', key: 'nopublish-key', secret: 'nopublish-secret', jwt_secret: CLOSED_JWT_SECRET });

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-cf-'));
    rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    fs.writeFileSync(path.join(tmp, 'rsa.pem'), pem);
    rsa.pem = pem;
    app.jwt_public_key = path.join(tmp, 'rsa.pem');
    server = await h.startHerald({ apps: [app, closedApp], extraEnv: { HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY: '1s' } });
  });
  afterEach(async () => { closeCentrifuges(); await h.closeAll(); });
  after(async () => { closeCentrifuges(); await h.closeAll(); if (server) await server.stop(); fs.rmSync(tmp, { recursive: true, force: true }); });

  it('connects with a token, and with an RS256 token', T, async () => {
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1', exp: now() + 600 }) });
    const ctx = await connected(c);
    assert.ok(ctx.client, 'a client id');
    const r = centrifuge(server, app, { token: jwt({ sub: 'u2' }, { alg: 'RS256', key: rsa.privateKey }) });
    await connected(r);
  });

  it('refuses an anonymous connection (3501, no reconnect)', T, async () => {
    const c = centrifuge(server, app);
    const ctx = await refused(c);
    assert.equal(ctx.code, 3501);
    await h.sleep(500);
    assert.equal(c.state, 'disconnected');
  });

  const forged = [
    ['alg none', () => jwt({ sub: 'u1' }, { alg: 'none' })],
    ['another HMAC key', () => jwt({ sub: 'u1' }, { key: 'not-the-key' })],
    ['another RSA key', () => jwt({ sub: 'u1' }, { alg: 'RS256', key: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey })],
    ['HS256 keyed with the RSA public key (algorithm confusion)', () => jwt({ sub: 'u1' }, { key: rsa.pem })],
    ['tampered payload', () => { const [hd, , sig] = jwt({ sub: 'u1' }).split('.'); return `${hd}.${b64({ sub: 'admin' })}.${sig}`; }],
  ];
  it("refuses another app's token on an app's path (3500)", T, async () => {
    const c = centrifuge(server, closedApp, { token: jwt({ sub: 'u1' }) });
    const ctx = await refused(c);
    assert.equal(ctx.code, 3500);
  });

  for (const [name, make] of forged) {
    it(`refuses a forged token: ${name} (3500)`, T, async () => {
      const c = centrifuge(server, app, { token: make() });
      const ctx = await refused(c);
      assert.equal(ctx.code, 3500);
      assert.equal(ctx.reason, 'invalid token');
    });
  }

  it('an expired connect token gets a fresh one through getToken and connects', T, async () => {
    let calls = 0;
    const c = centrifuge(server, app, {
      token: jwt({ sub: 'u1', exp: now() - 10 }),
      getToken: async () => { calls += 1; return jwt({ sub: 'u1', exp: now() + 600 }); },
    });
    await connected(c);
    assert.equal(calls, 1);
  });

  it('a $ channel needs a subscription token', T, async () => {
    const ch = `$${h.uid('secret')}`;
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1' }) });
    await connected(c);
    const without = c.newSubscription(ch);
    const ctx = await unsubscribedWith(without);
    assert.equal(ctx.code, 103);
    c.removeSubscription(without);

    const withToken = c.newSubscription(ch, { token: jwt({ sub: 'u1', channel: ch, exp: now() + 600 }) });
    await subscribed(withToken);
    const got = once(withToken, 'publication');
    await withToken.publish({ hello: 'world' });
    assert.deepEqual((await got).data, { hello: 'world' });
  });

  it('a subscription token for another user closes the connection (3500)', T, async () => {
    const ch = `$${h.uid('secret')}`;
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1' }) });
    await connected(c);
    const p = once(c, 'disconnected');
    c.newSubscription(ch, { token: jwt({ sub: 'u2', channel: ch }) }).subscribe();
    assert.equal((await p).code, 3500);
  });

  it('presence: join, presence, stats and leave', T, async () => {
    const ch = h.uid('presence-room');
    const subTok = (u) => jwt({ sub: u, channel: ch });
    const a = centrifuge(server, app, { token: jwt({ sub: 'ua', info: { name: 'A' } }) });
    const b = centrifuge(server, app, { token: jwt({ sub: 'ub', info: { name: 'B' } }) });
    await connected(a);
    await connected(b);
    const sa = a.newSubscription(ch, { token: subTok('ua'), joinLeave: true });
    await subscribed(sa);
    const joined = nextOf(sa, 'join', 'ub');
    // b does not ask for join and leave pushes: it gets none.
    const sb = b.newSubscription(ch, { token: subTok('ub') });
    let bPushes = 0;
    sb.on('join', () => { bPushes += 1; });
    sb.on('leave', () => { bPushes += 1; });
    await subscribed(sb);
    const j = await joined;
    assert.equal(j.info.user, 'ub');
    assert.deepEqual(j.info.connInfo, { name: 'B' });

    const pres = await sa.presence();
    assert.deepEqual(Object.keys(pres.clients).sort(), ['ua', 'ub']);
    const stats = await sa.presenceStats();
    assert.deepEqual(stats, { numClients: 2, numUsers: 2 });

    const left = nextOf(sa, 'leave', 'ub');
    sb.unsubscribe();
    assert.equal((await left).info.user, 'ub');
    assert.equal(bPushes, 0, 'join/leave pushes to a subscriber that did not ask');
  });

  it('presence crosses protocols: a Pusher member joins and leaves, a Centrifugo member is a Pusher member', T, async () => {
    const ch = h.uid('presence-mixed');
    const a = centrifuge(server, app, { token: jwt({ sub: 'ua', info: { name: 'A' } }) });
    await connected(a);
    const sa = a.newSubscription(ch, { token: jwt({ sub: 'ua', channel: ch }), joinLeave: true });
    await subscribed(sa);

    const joined = nextOf(sa, 'join', 'pusher-1');
    const p = await h.connectClient(server, { presence: { user_id: 'pusher-1', user_info: { name: 'P' } } });
    const pch = await p.subscribe(ch);
    const j = await joined;
    assert.equal(j.info.user, 'pusher-1');
    assert.deepEqual(j.info.connInfo, { name: 'P' });
    assert.ok(pch.members.get('ua'), 'the Centrifugo user is a Pusher member');

    const removed = h.withTimeout(new Promise((resolve) => pch.bind('pusher:member_removed', resolve)), h.WAIT_MS, 'member_removed');
    sa.unsubscribe();
    assert.equal((await removed).id, 'ua');
  });

  it('client publish is refused (103) when the app does not allow it', T, async () => {
    const ch = h.uid('news');
    const c = centrifuge(server, closedApp, { token: jwt({ sub: 'u1' }, { key: CLOSED_JWT_SECRET }) });
    await connected(c);
    const sub = c.newSubscription(ch);
    await subscribed(sub);
    let got = 0;
    sub.on('publication', () => { got += 1; });
    await assert.rejects(sub.publish({ x: 1 }), (e) => e.code === 103);
    await h.sleep(200);
    assert.equal(got, 0);
  });

  it('a REST trigger reaches a Centrifugo subscriber and a Pusher subscriber', T, async () => {
    const ch = h.uid('news');
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1' }) });
    await connected(c);
    const sub = c.newSubscription(ch);
    await subscribed(sub);
    const p = await h.connectClient(server);
    await p.subscribe(ch);

    const cf = once(sub, 'publication');
    const ps = p.nextEvent(ch, 'greeting');
    await server.sdk(app).trigger(ch, 'greeting', { text: 'héllo', n: [1, 2] });
    const pub = await cf;
    assert.deepEqual(pub.data, { text: 'héllo', n: [1, 2] });
    assert.deepEqual(pub.tags, { event: 'greeting' });
    assert.deepEqual((await ps).data, { text: 'héllo', n: [1, 2] });
  });

  it('a Centrifugo client publish reaches a pusher-js subscriber', T, async () => {
    const ch = h.uid('news');
    const p = await h.connectClient(server);
    await p.subscribe(ch);
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1' }) });
    await connected(c);
    const sub = c.newSubscription(ch);
    await subscribed(sub);
    const got = p.nextEvent(ch, 'publication');
    await sub.publish({ from: 'centrifugo' });
    const e = await got;
    assert.deepEqual(e.data, { from: 'centrifugo' });
  });
  // The server API, as a backend calls it: POST /api/<method> with the key.
  async function api(method, body, key = 'api-key-e2e') {
    const res = await fetch(`http://127.0.0.1:${server.port}/api/${method}`, {
      method: 'POST', headers: { 'X-API-Key': key, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  it('a subscription token for another channel closes the connection (3500)', T, async () => {
    const ch = `$${h.uid('secret')}`;
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1' }) });
    await connected(c);
    const p = once(c, 'disconnected');
    c.newSubscription(ch, { token: jwt({ sub: 'u1', channel: `${ch}-other` }) }).subscribe();
    const ctx = await p;
    assert.equal(ctx.code, 3500);
    assert.equal(ctx.reason, 'invalid token');
  });

  it('a badly signed subscription token is refused (103), an encrypted channel too', T, async () => {
    const ch = `$${h.uid('secret')}`;
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1' }) });
    await connected(c);
    const bad = c.newSubscription(ch, { token: jwt({ sub: 'u1', channel: ch }, { key: 'not-the-key' }) });
    assert.equal((await unsubscribedWith(bad)).code, 103);
    const enc = c.newSubscription(h.uid('private-encrypted-x'), { token: jwt({ sub: 'u1', channel: 'x' }) });
    assert.equal((await unsubscribedWith(enc)).code, 103);
    assert.equal(c.state, 'connected');
  });

  it('an expired subscription token (109) is replaced through getToken', T, async () => {
    const ch = `$${h.uid('secret')}`;
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1' }) });
    await connected(c);
    let calls = 0;
    const sub = c.newSubscription(ch, {
      token: jwt({ sub: 'u1', channel: ch, exp: now() - 5 }),
      getToken: async () => { calls += 1; return jwt({ sub: 'u1', channel: ch, exp: now() + 600 }); },
    });
    await subscribed(sub);
    assert.equal(calls, 1);
  });

  it('a refreshed token that drops a server-side channel revokes it: 3010, and the client reconnects without it', T, async () => {
    const keep = h.uid('feed-keep');
    const drop = h.uid('feed-drop');
    let refreshed = 0;
    const c = centrifuge(server, app, {
      token: jwt({ sub: 'u1', exp: now() + 2, channels: [keep, drop] }),
      getToken: async () => { refreshed += 1; return jwt({ sub: 'u1', exp: now() + 600, channels: [keep] }); },
    });
    const subscribedTo = new Set();
    c.on('subscribed', (ctx) => subscribedTo.add(ctx.channel));
    c.on('unsubscribed', (ctx) => subscribedTo.delete(ctx.channel));
    await connected(c);
    assert.deepEqual([...subscribedTo].sort(), [drop, keep].sort());
    // The refresh comes at the token's expiry; the new token lists only
    // keep, so the connection closes 3010 and the client connects again
    // with it.
    await h.eventually(() => c.states.some((st) => st.state === 'disconnected' || (st.state === 'connecting' && st.ctx.code === 3010)),
      { timeout: 8000, label: 'the 3010 close' });
    await h.eventually(() => c.state === 'connected' && !subscribedTo.has(drop), { timeout: 8000, label: 'reconnected without the dropped channel' });
    assert.ok(refreshed >= 1, 'getToken called');
    const codes = c.states.filter((st) => st.state === 'connecting' && st.ctx && st.ctx.code).map((st) => st.ctx.code);
    assert.ok(codes.includes(3010), `reconnect codes ${JSON.stringify(codes)}`);
    let dropped = 0;
    c.on('publication', (ctx) => { if (ctx.channel === drop) dropped += 1; });
    const got = h.withTimeout(new Promise((resolve) => c.on('publication', (ctx) => { if (ctx.channel === keep) resolve(ctx); })), h.WAIT_MS, 'publication on keep');
    await server.sdk(app).trigger(drop, 'x', { n: 1 });
    await server.sdk(app).trigger(keep, 'x', { n: 2 });
    assert.deepEqual((await got).data, { n: 2 });
    await h.sleep(200);
    assert.equal(dropped, 0, 'a publication on the revoked channel arrived');
  });

  it('a token used before its nbf is answered as expired: the client gets a fresh one and connects', T, async () => {
    let calls = 0;
    const c = centrifuge(server, app, {
      // A backend whose clock runs ahead of Herald's.
      token: jwt({ sub: 'u1', nbf: now() + 30, exp: now() + 600 }),
      getToken: async () => { calls += 1; return jwt({ sub: 'u1', exp: now() + 600 }); },
    });
    await connected(c);
    assert.equal(calls, 1);
  });

  it('a client with 150 subscriptions connects, and reconnects, with them all', T, async () => {
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1' }) });
    const subs = [];
    for (let i = 0; i < 150; i += 1) subs.push(c.newSubscription(h.uid(`many-${i}`)));
    // Subscribed before connecting: centrifuge-js sends them in the
    // connect's message, as it does after every reconnect.
    const all = Promise.all(subs.map((sub) => once(sub, 'subscribed', `subscribed to ${sub.channel}`)));
    for (const sub of subs) sub.subscribe();
    await connected(c);
    await all;
    const again = Promise.all(subs.map((sub) => once(sub, 'subscribed', `subscribed again to ${sub.channel}`)));
    c.disconnect();
    c.connect();
    await again;
    assert.equal(c.state, 'connected');
    assert.ok(!c.states.some((st) => st.state === 'disconnected' && st.ctx.code === 3501), JSON.stringify(c.states.map((st) => st.ctx && st.ctx.code)));
  });

  it('an expiring connection is refreshed before it is closed, and stays subscribed', T, async () => {
    const ch = h.uid('news');
    let calls = 0;
    const c = centrifuge(server, app, {
      token: jwt({ sub: 'u1', exp: now() + 2 }),
      getToken: async () => { calls += 1; return jwt({ sub: 'u1', exp: now() + 600 }); },
    });
    await connected(c);
    const sub = c.newSubscription(ch);
    await subscribed(sub);
    await h.sleep(4500); // past the expiry and its 1 s grace
    assert.ok(calls >= 1, 'getToken called');
    assert.equal(c.state, 'connected');
    assert.deepEqual(c.states.map((s) => s.state), ['connecting', 'connected']);
    const got = once(sub, 'publication');
    await server.sdk(app).trigger(ch, 'after', { ok: true });
    assert.deepEqual((await got).data, { ok: true });
  });

  it('a connection whose token is not refreshed is closed with 3005 after the grace', T, async () => {
    const c = centrifuge(server, app, {
      // now() is whole seconds: + 1 may be only milliseconds away, and a
      // token expired at connect (109) would wait for getToken forever.
      token: jwt({ sub: 'u1', exp: now() + 2 }),
      getToken: () => new Promise(() => {}), // the backend never answers
    });
    await connected(c);
    const started = Date.now();
    const ctx = await h.withTimeout(new Promise((resolve) => c.once('connecting', resolve)), 6000, 'connecting after 3005');
    assert.equal(ctx.code, 3005);
    assert.equal(ctx.reason, 'connection expired');
    assert.ok(Date.now() - started >= 900, 'closed only after the grace');
  });

  it('an expiring subscription is refreshed; one not refreshed is unsubscribed with 2501', T, async () => {
    const chA = `$${h.uid('a')}`;
    const chB = `$${h.uid('b')}`;
    const c = centrifuge(server, app, { token: jwt({ sub: 'u1' }) });
    await connected(c);
    let refreshed = 0;
    const a = c.newSubscription(chA, {
      token: jwt({ sub: 'u1', channel: chA, exp: now() + 2 }),
      getToken: async () => { refreshed += 1; return jwt({ sub: 'u1', channel: chA, exp: now() + 600 }); },
    });
    const b = c.newSubscription(chB, {
      token: jwt({ sub: 'u1', channel: chB, exp: now() + 2 }),
      getToken: () => new Promise(() => {}),
    });
    await subscribed(a);
    await subscribed(b);
    const resub = await h.withTimeout(new Promise((resolve) => b.once('subscribing', resolve)), 7000, 'b back to subscribing');
    assert.equal(resub.code, 2501);
    assert.equal(resub.reason, 'subscription expired');
    assert.ok(refreshed >= 1);
    assert.equal(a.state, 'subscribed');
    assert.equal(c.state, 'connected');
    const got = once(a, 'publication');
    assert.equal((await api('publish', { channel: chA, data: 1 })).status, 200);
    assert.equal((await got).data, 1);
  });

  it('server API: publish with tags, presence, presence_stats, unsubscribe and disconnect by user', T, async () => {
    const ch = h.uid('presence-api');
    const c = centrifuge(server, app, { token: jwt({ sub: 'api-user', info: { n: 1 } }) });
    await connected(c);
    const sub = c.newSubscription(ch, { token: jwt({ sub: 'api-user', channel: ch }) });
    await subscribed(sub);
    const p = await h.connectClient(server, { presence: { user_id: 'pusher-api', user_info: {} } });
    await p.subscribe(ch);

    const cf = once(sub, 'publication');
    const ps = p.nextEvent(ch, 'score');
    let r = await api('publish', { channel: ch, data: { goal: 1 }, tags: { event: 'score', team: 'a' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { result: {} });
    const pub = await cf;
    assert.deepEqual(pub.data, { goal: 1 });
    assert.deepEqual(pub.tags, { event: 'score', team: 'a' });
    assert.deepEqual((await ps).data, { goal: 1 });

    r = await api('presence', { channel: ch });
    assert.deepEqual(Object.keys(r.body.result.presence).sort(), ['api-user', 'pusher-api']);
    r = await api('presence_stats', { channel: ch });
    assert.deepEqual(r.body, { result: { num_clients: 2, num_users: 2 } });

    const gone = once(sub, 'unsubscribed', 'server unsubscribe');
    r = await api('unsubscribe', { user: 'api-user', channel: ch });
    assert.deepEqual(r.body, { result: {} });
    assert.equal((await gone).code, 2000);

    const closed = once(c, 'disconnected');
    r = await api('disconnect', { user: 'api-user' });
    assert.deepEqual(r.body, { result: {} });
    assert.equal((await closed).code, 3503);

    assert.equal((await api('info', {}, 'wrong-key')).status, 401);
    assert.equal((await api('publish', { channel: ch, data: {} }, 'nopublish-secret')).status, 401);
  });

  it('pusher-js: a subscription JWT as channel auth, presence from its claims', T, async () => {
    const priv = h.uid('private-jwt');
    const pres = h.uid('presence-jwt');
    const c = await h.connectClient(server, {
      // pusher-js reads its own member id from channel_data; Herald takes
      // the member from the token.
      channelAuth: ({ socketId, channelName }) => (channelName.startsWith('presence-')
        ? {
          auth: jwt({ client: socketId, sub: 'jwt-user', info: { name: 'J' }, channel: channelName, exp: now() + 600 }),
          channel_data: JSON.stringify({ user_id: 'jwt-user', user_info: { name: 'ignored' } }),
        }
        : { auth: jwt({ client: socketId, channel: channelName, exp: now() + 600 }) }),
    });
    await c.subscribe(priv);
    const got = c.nextEvent(priv, 'e');
    await server.sdk(app).trigger(priv, 'e', { via: 'jwt' });
    assert.deepEqual((await got).data, { via: 'jwt' });
    const pch = await c.subscribe(pres);
    assert.deepEqual(pch.members.get('jwt-user').info, { name: 'J' });
    assert.equal(pch.members.count, 1);

    const other = await h.connectClient(server, {
      channelAuth: ({ channelName }) => ({ auth: jwt({ client: 'someone-else', channel: channelName }) }),
    });
    await assert.rejects(other.subscribe(h.uid('private-jwt')), /refused/);
    const another = await h.connectClient(server, {
      channelAuth: ({ socketId }) => ({ auth: jwt({ client: socketId, channel: 'private-other' }) }),
    });
    await assert.rejects(another.subscribe(h.uid('private-jwt')), /refused/);
  });

  it('pusher-js: an expiring subscription JWT makes the client reconnect (4200) and fetch a new one', T, async () => {
    const ch = h.uid('private-jwt');
    let auths = 0;
    const c = await h.connectClient(server, {
      channelAuth: ({ socketId, channelName }) => {
        auths += 1;
        return { auth: jwt({ client: socketId, channel: channelName, exp: now() + (auths === 1 ? 2 : 600) }) };
      },
    });
    await c.subscribe(ch);
    const closed = c.transportClosed(6000);
    assert.equal((await closed).code, 4200);
    await h.eventually(() => auths === 2 && c.state === 'connected' && c.pusher.channel(ch).subscribed,
      { timeout: 8000, label: 'resubscribed with a fresh token' });
    const got = c.nextEvent(ch, 'e');
    await server.sdk(app).trigger(ch, 'e', 2);
    assert.equal((await got).data, 2);
  });
});

describe('centrifugo clients of a single-app node', () => {
  let server;
  before(async () => {
    server = await h.startHerald({
      env: {
        HERALD_APP_ID: '7', HERALD_APP_KEY: 'single-key', HERALD_APP_SECRET: 'single-secret',
        HERALD_CENTRIFUGO_PING_INTERVAL: '1s', HERALD_CENTRIFUGO_PONG_TIMEOUT: '1s',
      },
    });
  });
  afterEach(async () => { closeCentrifuges(); await h.closeAll(); });
  after(async () => { closeCentrifuges(); if (server) await server.stop(); });

  it('connects at /connection/websocket with a token signed with the app secret', T, async () => {
    const c = centrifuge(server, null, { token: jwt({ sub: 'u1' }, { key: 'single-secret' }) });
    await connected(c);
  });

  it('pings every second: the real client answers and stays, a silent one is closed with 3012', T, async () => {
    const c = centrifuge(server, null, { token: jwt({ sub: 'u1' }, { key: 'single-secret' }) });
    await connected(c);

    const ws = new h.WebSocket(`ws://127.0.0.1:${server.port}/connection/websocket`);
    const frames = [];
    ws.on('message', (d) => frames.push(d.toString()));
    const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
    ws.send(JSON.stringify({ id: 1, connect: { token: jwt({ sub: 'u2' }, { key: 'single-secret' }) } }));
    const got = await h.withTimeout(closed, 6000, 'the silent client to be closed');
    assert.deepEqual(got, { code: 3012, reason: 'no pong' });
    assert.ok(frames[0].includes('"ping":1'), frames[0]);
    assert.ok(frames.includes('{}'), 'a ping was sent');

    assert.equal(c.state, 'connected');
    assert.deepEqual(c.states.map((s) => s.state), ['connecting', 'connected']);
  });
});

describe('centrifugo clients on a two-node cluster', { skip: cl.haveRedis() ? false : 'redis-server is not on the PATH' }, () => {
  let cluster;
  let a;
  let b;
  const app = h.defaultApp({ jwt_secret: JWT_SECRET, client_publish: true, api_key: 'api-key-cluster' });
  before(async () => {
    cluster = await cl.startCluster({ nodes: 2, apps: [app] });
    [a, b] = cluster.nodes;
  });
  afterEach(async () => { closeCentrifuges(); await h.closeAll(); });
  after(async () => { closeCentrifuges(); await h.closeAll(); if (cluster) await cluster.stop(); });

  async function api(node, method, body) {
    const res = await fetch(`http://127.0.0.1:${node.port}/api/${method}`, {
      method: 'POST', headers: { Authorization: 'apikey api-key-cluster' }, body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  it('publications cross nodes and protocols both ways', T, async () => {
    const ch = h.uid('news');
    const c = centrifuge(a, app, { token: jwt({ sub: 'u1' }) });
    await connected(c);
    const sub = c.newSubscription(ch);
    await subscribed(sub);
    const p = await h.connectClient(b);
    await p.subscribe(ch);

    let cf = once(sub, 'publication');
    let ps = p.nextEvent(ch, 'greeting');
    await b.sdk(app).trigger(ch, 'greeting', { n: 1 });
    assert.deepEqual((await cf).data, { n: 1 });
    assert.deepEqual((await ps).data, { n: 1 });

    ps = p.nextEvent(ch, 'publication');
    const echo = once(sub, 'publication'); // the publisher gets its own publication too
    await sub.publish({ from: 'a' });
    assert.deepEqual((await ps).data, { from: 'a' });
    assert.deepEqual((await echo).data, { from: 'a' });

    cf = once(sub, 'publication');
    ps = p.nextEvent(ch, 'tick');
    assert.equal((await api(b, 'publish', { channel: ch, data: { n: 2 }, tags: { event: 'tick' } })).status, 200);
    assert.deepEqual((await cf).data, { n: 2 });
    assert.deepEqual((await ps).data, { n: 2 });
  });

  it('a server-side subscription new to its node receives what is published on the other node right after connect', T, async () => {
    for (let i = 0; i < 5; i += 1) {
      const ch = h.uid('feed');
      const c = centrifuge(a, app, { token: jwt({ sub: `u${i}`, channels: [ch] }) });
      const got = h.withTimeout(new Promise((resolve) => c.once('publication', resolve)), h.WAIT_MS, 'server-side publication');
      await connected(c);
      assert.equal((await api(b, 'publish', { channel: ch, data: { i } })).status, 200);
      const pub = await got;
      assert.equal(pub.channel, ch);
      assert.deepEqual(pub.data, { i });
      c.disconnect();
    }
  });

  it('presence spans nodes and protocols; the API on either node sees it; disconnect by user reaches the other node', T, async () => {
    const ch = h.uid('presence-room');
    const c = centrifuge(a, app, { token: jwt({ sub: 'cf-user', info: { name: 'C' } }) });
    await connected(c);
    const sub = c.newSubscription(ch, { token: jwt({ sub: 'cf-user', channel: ch }), joinLeave: true });
    await subscribed(sub);
    const joined = nextOf(sub, 'join', 'pusher-user');
    const p = await h.connectClient(b, { presence: { user_id: 'pusher-user', user_info: { name: 'P' } } });
    const pch = await p.subscribe(ch);
    assert.deepEqual((await joined).info.connInfo, { name: 'P' });
    assert.deepEqual(pch.members.get('cf-user').info, { name: 'C' });

    const pres = await sub.presence();
    assert.deepEqual(Object.keys(pres.clients).sort(), ['cf-user', 'pusher-user']);
    for (const node of [a, b]) {
      const r = await api(node, 'presence_stats', { channel: ch });
      assert.deepEqual(r.body, { result: { num_clients: 2, num_users: 2 } });
    }

    const removed = h.withTimeout(new Promise((resolve) => pch.bind('pusher:member_removed', resolve)), h.WAIT_MS, 'member_removed');
    const closed = once(c, 'disconnected');
    assert.deepEqual((await api(b, 'disconnect', { user: 'cf-user' })).body, { result: {} });
    assert.equal((await closed).code, 3503);
    assert.equal((await removed).id, 'cf-user');
  });
});
