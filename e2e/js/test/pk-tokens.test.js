'use strict';
// Tokens signed with a public key (ES256, RS256, ES512) are checked off the
// transport's loop, in the connection's off-loop work, while the messages
// the connection sends meanwhile are held and handled afterwards in order.
// These tests drive the real clients so that a broken hand-over shows:
// centrifuge-js sends its subscribes in the same message as the connect, and
// pusher-js sends a subscribe for every channel at once on connecting, or a
// client event right behind a subscribe. Every answer must be the one the
// token deserves (success, 103, 109, subscription_error 401), and arrive in
// the order the commands were sent. Each case runs on both transports
// (epoll and goroutine).

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { Centrifuge } = require('centrifuge');
const h = require('../lib/harness');

const T = { timeout: 30000 };
const TRANSPORTS = ['epoll', 'goroutine'];

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

// The public-key algorithms tested, each on an app of its own (an app has
// one public key): key generation and the digest of each.
const ALGS = {
  ES256: { gen: () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }), hash: 'sha256', ec: true },
  RS256: { gen: () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }), hash: 'sha256', ec: false },
  ES512: { gen: () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' }), hash: 'sha512', ec: true },
};

/**
 * Signs claims as a JWT: HS256 with a string key, or alg (ES256, RS256,
 * ES512) with a private KeyObject. ECDSA signatures are r||s (IEEE P1363),
 * as JWS requires, not DER.
 */
function sign(claims, alg, key) {
  const input = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`;
  let sig;
  if (alg === 'HS256') {
    sig = crypto.createHmac('sha256', key).update(input).digest();
  } else {
    const a = ALGS[alg];
    sig = crypto.sign(a.hash, Buffer.from(input), a.ec ? { key, dsaEncoding: 'ieee-p1363' } : key);
  }
  return `${input}.${sig.toString('base64url')}`;
}

/** The same token with its payload replaced: the signature no longer matches. */
function tampered(token, claims) {
  const [head, , sig] = token.split('.');
  return `${head}.${b64(claims)}.${sig}`;
}

// ---------------------------------------------------------------------------
// centrifuge-js with the frames it sends and receives recorded

const centrifuges = new Set();
function closeCentrifuges() {
  for (const c of centrifuges) c.disconnect();
  centrifuges.clear();
}

/**
 * A WebSocket class for centrifuge-js that records, in wire, every message
 * the client sends and receives (each a list of the JSON commands or
 * replies it carries: centrifuge-js batches them one per line).
 */
function recordingWebSocket(wire) {
  const lines = (data) => String(data).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  return class RecordingWebSocket extends h.WebSocket {
    constructor(...args) {
      super(...args);
      this.on('message', (data) => wire.received.push(lines(data)));
    }

    send(data, ...rest) {
      wire.sent.push(lines(data));
      return super.send(data, ...rest);
    }
  };
}

function centrifuge(server, app, opts = {}) {
  const wire = { sent: [], received: [] };
  const url = `ws://127.0.0.1:${server.port}/connection/websocket/${app.key}`;
  const c = new Centrifuge(url, {
    websocket: recordingWebSocket(wire), timeout: 4000, minReconnectDelay: 100, maxReconnectDelay: 300, ...opts,
  });
  c.wire = wire;
  centrifuges.add(c);
  return c;
}

/** Every reply the client received, in order of arrival ({id, ...}). */
const replies = (c) => c.wire.received.flat().filter((r) => r.id);

/** Settles with {ok: true, ctx} on subscribed or {ok: false, ctx} on unsubscribed. */
function outcome(sub) {
  return h.withTimeout(new Promise((resolve) => {
    sub.once('subscribed', (ctx) => resolve({ ok: true, ctx }));
    sub.once('unsubscribed', (ctx) => resolve({ ok: false, ctx }));
  }), h.WAIT_MS, `subscribed or unsubscribed: ${sub.channel}`);
}

function connected(c) {
  const p = h.withTimeout(new Promise((resolve, reject) => {
    c.once('connected', resolve);
    c.once('disconnected', (ctx) => reject(new Error(`disconnected ${ctx.code} ${ctx.reason}`)));
  }), h.WAIT_MS, 'centrifuge connected');
  c.connect();
  return p;
}

/** Collects the publications of sub. */
function publications(sub) {
  const list = [];
  sub.on('publication', (ctx) => list.push(ctx.data));
  return list;
}

// ---------------------------------------------------------------------------
// a channel authorization endpoint for pusher-js

/**
 * An HTTP endpoint as pusher-js's channelAuthorization.endpoint posts to
 * (socket_id and channel_name, form-encoded): answer(socketId, channel)
 * returns the JSON body. Resolves with {url, requests, close}.
 */
async function authEndpoint(answer) {
  const requests = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const socketId = form.get('socket_id');
      const channel = form.get('channel_name');
      requests.push(channel);
      let out;
      try {
        out = answer(socketId, channel);
      } catch (e) {
        res.writeHead(500).end(String(e));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(out));
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}/pusher/auth`,
    requests,
    close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(resolve); }),
  };
}

/** Settles with {ok, data} once pusher-js's subscription to name succeeds or is refused. */
function pusherOutcome(pusher, name) {
  const ch = pusher.channel(name) || pusher.subscribe(name);
  return h.withTimeout(new Promise((resolve) => {
    ch.bind('pusher:subscription_succeeded', (data) => resolve({ ok: true, data, ch }));
    ch.bind('pusher:subscription_error', (data) => resolve({ ok: false, data, ch }));
  }), h.WAIT_MS, `subscription outcome on ${name}`);
}

const pusherClients = new Set();
function closePushers() {
  for (const p of pusherClients) { try { p.disconnect(); } catch (_) { /* ignore */ } }
  pusherClients.clear();
}

// ---------------------------------------------------------------------------

for (const transport of TRANSPORTS) {
  describe(`public-key tokens checked off the loop (${transport} transport)`, () => {
    let server;
    let tmp;
    const apps = {};

    before(async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-pk-'));
      let n = 0;
      for (const [alg, a] of Object.entries(ALGS)) {
        n += 1;
        const pair = a.gen();
        const pem = path.join(tmp, `${alg}.pem`);
        fs.writeFileSync(pem, pair.publicKey.export({ type: 'spki', format: 'pem' }));
        // Another key of the same kind signs the forged tokens.
        const other = a.gen();
        const app = h.defaultApp({
          id: String(3000 + n),
          key: `pk-${alg.toLowerCase()}-key`,
          secret: `pk-${alg.toLowerCase()}-secret`,
          // Each app its own HMAC key: apps sharing one would accept each other's tokens.
          jwt_secret: `pk-${alg.toLowerCase()}-jwt-secret`,
          jwt_public_key: pem,
          pusher_jwt_auth: true,
          client_events: true,
          client_publish: true,
          // A test publishes more than the default 10 a second on one connection.
          client_event_rate: 100,
          api_key: `pk-${alg.toLowerCase()}-api-key`,
        });
        apps[alg] = {
          app,
          /** A token signed with the app's private key. */
          pk: (claims) => sign(claims, alg, pair.privateKey),
          /** A token of the same algorithm signed with another key. */
          forged: (claims) => sign(claims, alg, other.privateKey),
          /** An HS256 token signed with the app's jwt_secret. */
          hmac: (claims) => sign(claims, 'HS256', app.jwt_secret),
        };
      }
      server = await h.startHerald({ transport, apps: Object.values(apps).map((a) => a.app) });
    });
    afterEach(async () => { closeCentrifuges(); closePushers(); await h.closeAll(); });
    after(async () => {
      closeCentrifuges();
      closePushers();
      await h.closeAll();
      if (server) await server.stop();
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    /** The Centrifugo server API of an app: POST /api/<method>. */
    async function api(app, method, body) {
      const res = await fetch(`http://127.0.0.1:${server.port}/api/${method}`, {
        method: 'POST', headers: { 'X-API-Key': app.api_key, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      const text = await res.text();
      assert.equal(res.status, 200, `server API ${method}: ${res.status} ${text}`);
      const out = JSON.parse(text);
      assert.ok(!out.error, `server API ${method}: ${text}`);
      return out;
    }

    for (const alg of Object.keys(ALGS)) {
      it(`centrifuge-js, ${alg}: a connect batch of public-key and HMAC subscription tokens, a forged one 103, an expired one 109`, T, async () => {
        const { app, pk, forged, hmac } = apps[alg];
        const user = h.uid('user');
        const exp = now() + 600;
        const ch = (name) => `$${h.uid(name)}`;
        const plan = [
          { name: ch('pk-a'), token: (c) => pk({ sub: user, channel: c, exp }), want: 'ok' },
          { name: ch('hmac'), token: (c) => hmac({ sub: user, channel: c, exp }), want: 'ok' },
          { name: ch('pk-b'), token: (c) => pk({ sub: user, channel: c, exp }), want: 'ok' },
          { name: ch('forged'), token: (c) => forged({ sub: user, channel: c, exp }), want: 103 },
          { name: ch('pk-c'), token: (c) => pk({ sub: user, channel: c, exp }), want: 'ok' },
          { name: ch('tampered'), token: (c) => tampered(pk({ sub: user, channel: `${c}-other`, exp }), { sub: user, channel: c, exp }), want: 103 },
          { name: ch('expired'), token: (c) => pk({ sub: user, channel: c, exp: now() - 10 }), want: 109 },
          { name: ch('pk-d'), token: (c) => pk({ sub: user, channel: c }), want: 'ok' },
        ];
        const c = centrifuge(server, app, { token: pk({ sub: user, exp }) });
        let refetched = 0;
        for (const p of plan) {
          const opts = { token: p.token(p.name) };
          if (p.want === 109) {
            opts.getToken = async () => { refetched += 1; return pk({ sub: user, channel: p.name, exp }); };
          }
          p.sub = c.newSubscription(p.name, opts);
          p.outcome = outcome(p.sub);
          p.pubs = publications(p.sub);
          p.sub.subscribe(); // subscribing before connect: sent with the connect
        }
        await connected(c);
        const results = await Promise.all(plan.map((p) => p.outcome));

        // The connect and every subscribe went out in one message.
        const first = c.wire.sent[0];
        assert.ok(first[0].connect, `first message is not the connect: ${JSON.stringify(first)}`);
        assert.deepEqual(first.slice(1).map((cmd) => cmd.subscribe && cmd.subscribe.channel), plan.map((p) => p.name),
          'the subscribes were batched with the connect');
        // Answered in the order they were sent, each as its token deserves.
        const ids = first.map((cmd) => cmd.id);
        const answers = replies(c).filter((r) => ids.includes(r.id));
        assert.deepEqual(answers.map((r) => r.id), ids, 'the replies to the connect batch, in order');
        assert.ok(answers[0].connect, `connect reply: ${JSON.stringify(answers[0])}`);
        plan.forEach((p, i) => {
          const r = answers[i + 1];
          if (p.want === 'ok') assert.ok(r.subscribe && !r.error, `${p.name}: ${JSON.stringify(r)}`);
          else assert.equal(r.error && r.error.code, p.want, `${p.name}: ${JSON.stringify(r)}`);
        });

        plan.forEach((p, i) => {
          if (p.want === 103) {
            assert.equal(results[i].ok, false, `${p.name} subscribed`);
            assert.equal(results[i].ctx.code, 103, `${p.name}: ${JSON.stringify(results[i].ctx)}`);
          } else {
            assert.equal(results[i].ok, true, `${p.name}: ${JSON.stringify(results[i].ctx)}`);
          }
        });
        assert.equal(refetched, 1, 'getToken called once, for the expired token');
        assert.equal(c.state, 'connected');

        // A publication to each channel reaches its subscription only.
        for (const p of plan) await api(app, 'publish', { channel: p.name, data: { to: p.name } });
        const good = plan.filter((p) => p.want !== 103);
        await h.eventually(() => good.every((p) => p.pubs.length === 1), { label: 'a publication on every subscribed channel' });
        await h.sleep(100);
        for (const p of plan) assert.deepEqual(p.pubs, p.want === 103 ? [] : [{ to: p.name }], p.name);
      });

      it(`centrifuge-js, ${alg}: connected with a public-key token, a client publish right behind each public-key subscribe is handled after it`, T, async () => {
        const { app, pk, hmac } = apps[alg];
        const user = h.uid('user');
        const c = centrifuge(server, app, { token: pk({ sub: user }) });
        await connected(c);
        // Many public-key subscribes: each queues its check behind the
        // previous ones, so that the later publishes arrive while checks
        // are still under way even for the fast algorithms.
        const plan = [
          { name: `$${h.uid('pk')}`, sign: pk },
          { name: `$${h.uid('hmac')}`, sign: hmac },
          { name: `$${h.uid('pk')}`, sign: pk },
          { name: h.uid('news'), sign: null }, // no token at all
          ...Array.from({ length: 8 }, () => ({ name: `$${h.uid('pk')}`, sign: pk })),
          { name: `$${h.uid('hmac')}`, sign: hmac },
        ];
        const sentBefore = c.wire.sent.length;
        // Each subscribe, then a publish to its channel, each in its own
        // message, all before any reply can be read: the client sends the
        // subscribe at once and the publish a few microtasks later, and
        // only microtasks run in between. A publish handled before its
        // subscribe would be refused 103 (not subscribed).
        const sentPublish = (name) => c.wire.sent.flat().some((cmd) => cmd.publish && cmd.publish.channel === name);
        for (const p of plan) {
          p.sub = c.newSubscription(p.name, p.sign ? { token: p.sign({ sub: user, channel: p.name }) } : {});
          p.outcome = outcome(p.sub);
          p.pubs = publications(p.sub);
          p.sub.subscribe();
          p.published = c.publish(p.name, { from: p.name });
          for (let i = 0; i < 100 && !sentPublish(p.name); i += 1) await Promise.resolve();
        }
        const receivedBefore = c.wire.received.length;
        const results = await Promise.all(plan.map((p) => p.outcome));
        results.forEach((r, i) => assert.equal(r.ok, true, `${plan[i].name}: ${JSON.stringify(r.ctx)}`));
        const pubResults = await Promise.allSettled(plan.map((p) => p.published));
        pubResults.forEach((r, i) => assert.equal(r.status, 'fulfilled', `publish to ${plan[i].name}: ${JSON.stringify(r.reason)}`));

        assert.equal(receivedBefore, 1, 'nothing but the connect reply was read before everything was sent');
        assert.deepEqual(c.wire.sent.slice(sentBefore).map((m) => m.length), plan.flatMap(() => [1, 1]), 'one command per message');
        const sent = c.wire.sent.slice(sentBefore).flat();
        const kinds = sent.map((cmd) => (cmd.subscribe ? `subscribe ${cmd.subscribe.channel}` : cmd.publish ? `publish ${cmd.publish.channel}` : JSON.stringify(cmd)));
        assert.deepEqual(kinds, plan.flatMap((p) => [`subscribe ${p.name}`, `publish ${p.name}`]), 'what the client sent');
        // The subscribes are answered in order (a publish is answered once
        // the hub has taken it, which a later subscribe may overtake).
        const ids = sent.filter((cmd) => cmd.subscribe).map((cmd) => cmd.id);
        assert.deepEqual(replies(c).filter((r) => ids.includes(r.id)).map((r) => r.id), ids, 'subscribes answered in order');
        // Each subscriber gets its own publication (a publisher receives its own).
        await h.eventually(() => plan.every((p) => p.pubs.length === 1), { label: 'every publication delivered' });
        for (const p of plan) assert.deepEqual(p.pubs, [{ from: p.name }]);
      });

      it(`centrifuge-js, ${alg}: a forged public-key connection token is refused (3500) with its batched subscribes unanswered; an expired one (109) is replaced through getToken`, T, async () => {
        const { app, pk, forged } = apps[alg];
        const user = h.uid('user');
        const names = [`$${h.uid('pk')}`, h.uid('news'), h.uid('presence-pk')];
        const subscribeAll = (c) => names.map((name) => {
          const sub = c.newSubscription(name, name.startsWith('news') ? {} : { token: pk({ sub: user, channel: name }) });
          const out = outcome(sub);
          sub.subscribe();
          return { sub, out };
        });

        const bad = centrifuge(server, app, { token: forged({ sub: user }) });
        subscribeAll(bad);
        const closed = h.withTimeout(new Promise((resolve, reject) => {
          bad.once('disconnected', resolve);
          bad.once('connected', () => reject(new Error('connected with a forged token')));
        }), h.WAIT_MS, 'disconnected');
        bad.connect();
        const ctx = await closed;
        assert.equal(ctx.code, 3500);
        assert.equal(ctx.reason, 'invalid token');
        assert.equal(bad.wire.sent[0].length, 1 + names.length, 'the subscribes were batched with the connect');
        assert.deepEqual(replies(bad), [], 'nothing answered');

        let calls = 0;
        const c = centrifuge(server, app, {
          token: pk({ sub: user, exp: now() - 10 }),
          getToken: async () => { calls += 1; return pk({ sub: user, exp: now() + 600 }); },
        });
        const subs = subscribeAll(c);
        await connected(c);
        const results = await Promise.all(subs.map((x) => x.out));
        results.forEach((r, i) => assert.equal(r.ok, true, `${names[i]}: ${JSON.stringify(r.ctx)}`));
        assert.equal(calls, 1);
        const first = c.wire.sent[0];
        assert.equal(first.length, 1 + names.length, 'the subscribes were batched with the connect');
        const firstReplies = replies(c).filter((r) => first.some((cmd) => cmd.id === r.id));
        assert.deepEqual(firstReplies.map((r) => r.error && r.error.code), [109], 'only the connect answered, 109');
        const pres = await subs[2].sub.presence();
        assert.deepEqual(Object.keys(pres.clients).map((id) => pres.clients[id].user), [user]);
        for (const x of subs) x.pubs = publications(x.sub);
        for (const name of names) await api(app, 'publish', { channel: name, data: { to: name } });
        await h.eventually(() => subs.every((x) => x.pubs.length === 1), { label: 'a publication on each channel' });
        subs.forEach((x, i) => assert.deepEqual(x.pubs, [{ to: names[i] }]));
      });

      it(`pusher-js, ${alg}: subscriptions through an auth endpoint answering public-key JWTs, an HMAC JWT and key:signature; forged and expired ones refused`, T, async () => {
        const { app, pk, forged, hmac } = apps[alg];
        const sdk = server.sdk(app);
        const exp = now() + 600;
        const kinds = {
          pk: (socketId, channel) => ({ auth: pk({ channel, client: socketId, exp }) }),
          hmacjwt: (socketId, channel) => ({ auth: hmac({ channel, client: socketId, exp }) }),
          sig: (socketId, channel) => sdk.authorizeChannel(socketId, channel),
          forged: (socketId, channel) => ({ auth: forged({ channel, client: socketId, exp }) }),
          expired: (socketId, channel) => ({ auth: pk({ channel, client: socketId, exp: now() - 5 }) }),
          presence: (socketId, channel) => ({
            auth: pk({ channel, client: socketId, sub: 'pk-member', info: { alg }, exp }),
            channel_data: JSON.stringify({ user_id: 'pk-member', user_info: { ignored: true } }),
          }),
        };
        const plan = [
          { name: h.uid('private-pk'), kind: 'pk' },
          { name: h.uid('private-sig'), kind: 'sig' },
          { name: h.uid('private-pk'), kind: 'pk' },
          { name: h.uid('private-forged'), kind: 'forged' },
          { name: h.uid('private-pk'), kind: 'pk' },
          { name: h.uid('private-hs'), kind: 'hmacjwt' },
          { name: h.uid('private-expired'), kind: 'expired' },
          { name: h.uid('presence-pk'), kind: 'presence' },
        ];
        const byName = new Map(plan.map((p) => [p.name, p]));
        const endpoint = await authEndpoint((socketId, channel) => kinds[byName.get(channel).kind](socketId, channel));
        try {
          const pusher = new h.PusherJS(app.key, {
            cluster: 'local', wsHost: '127.0.0.1', wsPort: server.port, forceTLS: false, enabledTransports: ['ws'],
            disableStats: true, channelAuthorization: { endpoint: endpoint.url },
          });
          pusherClients.add(pusher);
          const frames = [];
          pusher.connection.bind('message', (f) => frames.push(f));
          const outcomes = plan.map((p) => pusherOutcome(pusher, p.name));
          const results = await Promise.all(outcomes);
          assert.deepEqual([...endpoint.requests].sort(), plan.map((p) => p.name).sort(), 'one auth request per channel');
          plan.forEach((p, i) => {
            const bad = p.kind === 'forged' || p.kind === 'expired';
            assert.equal(results[i].ok, !bad, `${p.name} (${p.kind}): ${JSON.stringify(results[i].data)}`);
            if (bad) {
              const f = frames.find((x) => x.event === 'pusher:subscription_error' && x.channel === p.name);
              h.assertSubscriptionError(f, p.name, 'AuthError', 401);
            }
          });
          const presence = results[plan.findIndex((p) => p.kind === 'presence')].ch;
          assert.equal(presence.members.count, 1);
          assert.deepEqual(presence.members.get('pk-member').info, { alg }, 'the member is the token\'s');
          assert.equal(pusher.connection.state, 'connected');

          // An event triggered over REST on each channel reaches it.
          const got = new Map();
          for (const p of plan) {
            pusher.channel(p.name).bind('news', (data) => got.set(p.name, (got.get(p.name) || []).concat([data])));
          }
          const names = plan.map((p) => p.name);
          for (const name of names) await sdk.trigger(name, 'news', { to: name });
          const good = plan.filter((p) => p.kind !== 'forged' && p.kind !== 'expired');
          await h.eventually(() => good.every((p) => (got.get(p.name) || []).length === 1), { label: 'an event on every subscribed channel' });
          await h.sleep(100);
          for (const p of plan) {
            assert.deepEqual(got.get(p.name) || [], good.includes(p) ? [{ to: p.name }] : [], `${p.name} (${p.kind})`);
          }
        } finally {
          await endpoint.close();
        }
      });

      it(`pusher-js, ${alg}: the subscribes sent on connecting are answered in order; a client event right behind a public-key subscribe is relayed`, T, async () => {
        const { app, pk, forged, hmac } = apps[alg];
        const exp = now() + 600;
        const sign = {
          pk: ({ socketId, channelName }) => ({ auth: pk({ channel: channelName, client: socketId, exp }) }),
          forged: ({ socketId, channelName }) => ({ auth: forged({ channel: channelName, client: socketId, exp }) }),
          hmacjwt: ({ socketId, channelName }) => ({ auth: hmac({ channel: channelName, client: socketId, exp }) }),
          sig: ({ socketId, channelName, sdk }) => sdk.authorizeChannel(socketId, channelName),
        };
        const plan = [
          { name: h.uid('private-pk'), kind: 'pk' },
          { name: h.uid('private-pk'), kind: 'pk' },
          { name: h.uid('private-pk'), kind: 'pk' },
          { name: h.uid('private-sig'), kind: 'sig' },
          { name: h.uid('news'), kind: 'public' },
          { name: h.uid('private-forged'), kind: 'forged' },
          { name: h.uid('private-pk'), kind: 'pk' },
          { name: h.uid('private-hs'), kind: 'hmacjwt' },
          { name: h.uid('private-pk'), kind: 'pk' },
          { name: h.uid('private-sig'), kind: 'sig' },
        ];
        const byName = new Map(plan.map((p) => [p.name, p]));
        // Signed synchronously: pusher-js sends each subscribe as soon as
        // it asks, so they leave in this order, back to back.
        const channelAuth = (args) => {
          const p = byName.get(args.channelName);
          return sign[p ? p.kind : 'pk'](args);
        };
        const a = new h.Client(server, { app, channelAuth });
        // Subscribed before connecting: all sent the moment it connects.
        const outcomes = plan.map((p) => pusherOutcome(a.pusher, p.name));
        const results = await Promise.all(outcomes);
        plan.forEach((p, i) => assert.equal(results[i].ok, p.kind !== 'forged', `${p.name} (${p.kind}): ${JSON.stringify(results[i].data)}`));
        const answers = a.log.frames.filter((f) => f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error');
        assert.deepEqual(answers.map((f) => f.channel), plan.map((p) => p.name), 'answered in the order subscribed');

        // A listener on a channel, and a client event sent right behind
        // the subscribe of another client: held until its check is done,
        // then relayed (handled before it, it would be refused 4301).
        const room = h.uid('private-room');
        byName.set(room, { kind: 'sig' });
        const b = await h.connectClient(server, { app, channelAuth });
        await b.subscribe(room);
        const heard = b.collect(room, 'client-hello');
        const c = await h.connectClient(server, { app, channelAuth: sign.pk });
        const since = c.log.mark();
        // Checks queued ahead of the room's, so that the client event
        // arrives while they are under way even for the fast algorithms.
        const ahead = Array.from({ length: 8 }, () => h.uid('private-pk'));
        for (const name of ahead) c.pusher.subscribe(name);
        const chan = c.pusher.subscribe(room);
        chan.trigger('client-hello', { n: 1 });
        const after = h.uid('private-pk');
        c.pusher.subscribe(after);
        c.pusher.channel(after).trigger('client-hello', { n: 2 });
        await h.eventually(() => heard.length === 1, { label: 'the client event relayed' });
        assert.deepEqual(heard[0].data, { n: 1 });
        await c.log.wait(h.is.event('pusher_internal:subscription_succeeded', after), { since, label: `subscribed to ${after}` });
        await h.sleep(100);
        const errors = c.log.filter((f) => f.event === 'pusher:error' || f.event === 'pusher:subscription_error', since);
        assert.deepEqual(errors, [], 'no error for the client events');
        assert.deepEqual(c.log.filter((f) => f.event === 'pusher_internal:subscription_succeeded', since).map((f) => f.channel), [...ahead, room, after]);
        assert.equal(heard.length, 1);
      });
    }

    it('centrifuge-js: refresh and sub_refresh with public-key tokens, for every algorithm at once', T, async () => {
      const cases = Object.keys(ALGS).map((alg) => {
        const { app, pk } = apps[alg];
        const user = h.uid('user');
        const name = `$${h.uid('refresh')}`;
        const counts = { connection: 0, subscription: 0 };
        const c = centrifuge(server, app, {
          token: pk({ sub: user, exp: now() + 2 }),
          getToken: async () => { counts.connection += 1; return pk({ sub: user, exp: now() + 600 }); },
        });
        const sub = c.newSubscription(name, {
          token: pk({ sub: user, channel: name, exp: now() + 2 }),
          getToken: async () => { counts.subscription += 1; return pk({ sub: user, channel: name, exp: now() + 600 }); },
        });
        return { alg, app, c, sub, name, counts, pubs: publications(sub) };
      });
      const disconnects = [];
      const unsubscribes = [];
      for (const k of cases) {
        k.c.on('disconnected', (ctx) => disconnects.push([k.alg, ctx]));
        k.c.on('connecting', (ctx) => { if (ctx.code !== 0) disconnects.push([k.alg, ctx]); });
        k.sub.on('unsubscribed', (ctx) => unsubscribes.push([k.alg, ctx]));
        k.sub.on('subscribing', (ctx) => { if (ctx.code !== 0) unsubscribes.push([k.alg, ctx]); });
        const out = outcome(k.sub);
        k.sub.subscribe();
        await connected(k.c);
        assert.equal((await out).ok, true, k.alg);
      }
      await h.sleep(4500); // past both expiries and their grace
      assert.deepEqual(disconnects, [], 'no connection lost');
      assert.deepEqual(unsubscribes, [], 'no subscription lost');
      for (const k of cases) {
        assert.ok(k.counts.connection >= 1 && k.counts.subscription >= 1, `${k.alg}: ${JSON.stringify(k.counts)}`);
        const sent = k.c.wire.sent.flat();
        assert.ok(sent.some((cmd) => cmd.refresh), `${k.alg}: a refresh was sent`);
        assert.ok(sent.some((cmd) => cmd.sub_refresh), `${k.alg}: a sub_refresh was sent`);
        const ids = sent.filter((cmd) => cmd.refresh || cmd.sub_refresh).map((cmd) => cmd.id);
        for (const r of replies(k.c).filter((x) => ids.includes(x.id))) assert.ok(!r.error, `${k.alg}: ${JSON.stringify(r)}`);
        assert.equal(k.c.state, 'connected');
        assert.equal(k.sub.state, 'subscribed');
        await api(k.app, 'publish', { channel: k.name, data: { alg: k.alg } });
      }
      await h.eventually(() => cases.every((k) => k.pubs.length === 1), { label: 'a publication after the refreshes' });
      for (const k of cases) assert.deepEqual(k.pubs, [{ alg: k.alg }]);
    });
  });
}
