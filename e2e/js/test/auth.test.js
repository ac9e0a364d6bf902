'use strict';
// The backend half of authorization from outside: herald auth-server and
// herald token answer exactly what the official pusher SDK's
// authorizeChannel / authenticateUser produce, and pusher-js subscribes to
// Herald with them; a Herald serving its development app authorizes its own
// clients at /pusher/auth.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const h = require('../lib/harness');

const T = { timeout: 20000 };
const app = { HERALD_APP_ID: '7', HERALD_APP_KEY: 'auth-key', HERALD_APP_SECRET: 'auth-secret' };
const masterKey = crypto.randomBytes(32).toString('base64');

function post(url, form) {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) })
    .then(async (res) => ({ status: res.status, text: await res.text() }));
}

/** A pusher-js client authorizing through endpoint, as user. */
function pusherJS(server, endpoint, key, user) {
  const p = new h.PusherJS(key, {
    cluster: 'local', wsHost: '127.0.0.1', wsPort: server.port, forceTLS: false, enabledTransports: ['ws'],
    channelAuthorization: { endpoint, params: user ? { user_id: user } : {} },
  });
  clients.push(p);
  return p;
}
const clients = [];

function subscribed(p, name) {
  return h.withTimeout(new Promise((resolve) => {
    const ch = p.subscribe(name);
    ch.bind('pusher:subscription_succeeded', (data) => resolve({ ok: true, ch, data }));
    ch.bind('pusher:subscription_error', (error) => resolve({ ok: false, error }));
  }), h.WAIT_MS, `subscription to ${name}`);
}

describe('herald auth-server and herald token', () => {
  let server, authProc, authBase, sdk;
  const bin = () => h.buildHerald();
  const token = (...args) => execFileSync(bin(), ['token', ...args], { env: { ...process.env, ...app } }).toString().trim();

  before(async () => {
    server = await h.startHerald({ env: app });
    sdk = new h.PusherSDK({ appId: app.HERALD_APP_ID, key: app.HERALD_APP_KEY, secret: app.HERALD_APP_SECRET, encryptionMasterKeyBase64: masterKey });
    const port = await (async () => { const srv = require('node:net').createServer(); await new Promise((r) => srv.listen(0, '127.0.0.1', r)); const p = srv.address().port; await new Promise((r) => srv.close(r)); return p; })();
    authBase = `http://127.0.0.1:${port}`;
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
    authProc = spawn(bin(), ['auth-server', '--addr', `127.0.0.1:${port}`, '--deny', 'private-no-', '--encryption-master-key', masterKey],
      { env: { ...env, ...app }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    authProc.stdout.on('data', (d) => { out += d; });
    authProc.stderr.on('data', (d) => { out += d; });
    await h.eventually(() => out.includes('listening on'), { timeout: 10000, label: 'herald auth-server to listen' });
    assert.match(out, /authorize EVERYONE/);
  });
  afterEach(() => { for (const p of clients.splice(0)) p.disconnect(); });
  after(async () => {
    if (authProc) authProc.kill('SIGTERM');
    if (server) await server.stop();
  });

  it('answers what the pusher SDK signs: private, presence, encrypted, user', T, async () => {
    const cases = [
      [{ socket_id: '123.456', channel_name: 'private-a' }, sdk.authorizeChannel('123.456', 'private-a')],
      [{ socket_id: '123.456', channel_name: 'presence-r', user_id: 'bob', user_info: '{"name":"Bob <b>"}' },
        sdk.authorizeChannel('123.456', 'presence-r', { user_id: 'bob', user_info: { name: 'Bob <b>' } })],
      [{ socket_id: '123.456', channel_name: 'private-encrypted-e' }, sdk.authorizeChannel('123.456', 'private-encrypted-e')],
    ];
    for (const [form, want] of cases) {
      const res = await post(`${authBase}/pusher/auth`, form);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(JSON.parse(res.text), want, form.channel_name);
    }
    const user = await post(`${authBase}/pusher/user-auth`, { socket_id: '123.456', user_id: 'carol' });
    assert.deepEqual(JSON.parse(user.text), sdk.authenticateUser('123.456', { id: 'carol' }));
  });

  it('refuses what it is told to, and what is malformed', T, async () => {
    assert.equal((await post(`${authBase}/pusher/auth`, { socket_id: '1.2', channel_name: 'private-no-x' })).status, 403);
    assert.equal((await post(`${authBase}/pusher/auth`, { socket_id: '1.2x', channel_name: 'private-a' })).status, 400);
    assert.equal((await post(`${authBase}/pusher/auth`, { socket_id: '1.2' })).status, 400);
    const jsonp = await fetch(`${authBase}/pusher/auth?callback=alert(1);//&socket_id=1.2&channel_name=private-a`);
    assert.equal(jsonp.status, 400);
  });

  it('pusher-js subscribes to Herald through it', T, async () => {
    const alice = pusherJS(server, `${authBase}/pusher/auth`, app.HERALD_APP_KEY, 'alice');
    assert.equal((await subscribed(alice, 'private-x')).ok, true);
    const room = await subscribed(alice, 'presence-x');
    assert.equal(room.data.me.id, 'alice');
    const denied = await subscribed(alice, 'private-no-x');
    assert.equal(denied.ok, false);
    assert.equal(denied.error.status, 403);
  });

  it('herald token prints what the SDK signs, and Herald accepts it', T, async () => {
    assert.deepEqual(JSON.parse(token('channel', '--socket-id', '123.456', '--channel', 'private-a')), sdk.authorizeChannel('123.456', 'private-a'));
    assert.deepEqual(JSON.parse(token('channel', '--socket-id', '123.456', '--channel', 'presence-r', '--user-id', 'u', '--user-info', '{"name":"x"}')),
      sdk.authorizeChannel('123.456', 'presence-r', { user_id: 'u', user_info: { name: 'x' } }));
    assert.deepEqual(JSON.parse(token('user', '--socket-id', '123.456', '--user-id', 'u')), sdk.authenticateUser('123.456', { id: 'u' }));
    assert.deepEqual(JSON.parse(token('channel', '--socket-id', '123.456', '--channel', 'private-encrypted-e', '--encryption-master-key', masterKey)),
      sdk.authorizeChannel('123.456', 'private-encrypted-e'));

    // A raw client with its own socket id subscribes with the token.
    const c = await h.rawConnect(server, app.HERALD_APP_KEY);
    const sid = h.dataOf(await c.log.wait(h.is.event('pusher:connection_established'))).socket_id;
    const auth = JSON.parse(token('channel', '--socket-id', sid, '--channel', 'presence-t', '--user-id', 'u'));
    c.send({ event: 'pusher:subscribe', data: { channel: 'presence-t', auth: auth.auth, channel_data: auth.channel_data } });
    await c.log.wait(h.is.event('pusher_internal:subscription_succeeded', 'presence-t'));
    assert.match(token('check', JSON.stringify(auth), '--socket-id', sid, '--channel', 'presence-t'), /^valid: /);
    c.close();
  });
});

describe('the development app', () => {
  let server;
  before(async () => { server = await h.startHerald({ env: {} }); });
  afterEach(() => { for (const p of clients.splice(0)) p.disconnect(); });
  after(async () => { if (server) await server.stop(); });

  it('authorizes its own clients at /pusher/auth, with client events on', T, async () => {
    const endpoint = `${server.httpBase}/pusher/auth`;
    const alice = pusherJS(server, endpoint, 'app-key', 'alice');
    const chat = await subscribed(alice, 'private-chat');
    assert.equal(chat.ok, true);
    assert.equal((await subscribed(alice, 'presence-room')).ok, true);
    const bob = pusherJS(server, endpoint, 'app-key', 'bob');
    const bobChat = await subscribed(bob, 'private-chat');
    const room = await subscribed(bob, 'presence-room');
    assert.deepEqual(Object.keys(room.data.members).sort(), ['alice', 'bob']);
    const got = h.withTimeout(new Promise((resolve) => chat.ch.bind('client-hello', resolve)), h.WAIT_MS, 'client-hello');
    bobChat.ch.trigger('client-hello', { from: 'bob' });
    assert.deepEqual(await got, { from: 'bob' });
  });
});
