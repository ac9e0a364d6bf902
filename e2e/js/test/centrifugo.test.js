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
  const app = h.defaultApp({ jwt_secret: JWT_SECRET, client_publish: true });
  const closedApp = h.defaultApp({ id: '1002', key: 'nopublish-key', secret: 'nopublish-secret', jwt_secret: JWT_SECRET });

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-cf-'));
    rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    fs.writeFileSync(path.join(tmp, 'rsa.pem'), pem);
    rsa.pem = pem;
    app.jwt_public_key = path.join(tmp, 'rsa.pem');
    server = await h.startHerald({ apps: [app, closedApp] });
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
    const sa = a.newSubscription(ch, { token: subTok('ua') });
    await subscribed(sa);
    const joined = nextOf(sa, 'join', 'ub');
    const sb = b.newSubscription(ch, { token: subTok('ub') });
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
  });

  it('presence crosses protocols: a Pusher member joins and leaves, a Centrifugo member is a Pusher member', T, async () => {
    const ch = h.uid('presence-mixed');
    const a = centrifuge(server, app, { token: jwt({ sub: 'ua', info: { name: 'A' } }) });
    await connected(a);
    const sa = a.newSubscription(ch, { token: jwt({ sub: 'ua', channel: ch }) });
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
    const c = centrifuge(server, closedApp, { token: jwt({ sub: 'u1' }) });
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
});

describe('centrifugo clients of a single-app node', () => {
  let server;
  before(async () => {
    server = await h.startHerald({ env: { HERALD_APP_ID: '7', HERALD_APP_KEY: 'single-key', HERALD_APP_SECRET: 'single-secret' } });
  });
  afterEach(async () => { closeCentrifuges(); await h.closeAll(); });
  after(async () => { closeCentrifuges(); if (server) await server.stop(); });

  it('connects at /connection/websocket with a token signed with the app secret', T, async () => {
    const c = centrifuge(server, null, { token: jwt({ sub: 'u1' }, { key: 'single-secret' }) });
    await connected(c);
  });
});
