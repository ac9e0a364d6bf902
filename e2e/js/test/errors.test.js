'use strict';
// Connection refusals and malformed input, at the wire level with raw `ws`:
// unknown key 4001, protocol version 4007, disabled app 4003, quota 4004,
// invalid channel names, and malformed frames that must not break the
// connection.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const T = { timeout: 20000 };

describe('errors and malformed input', () => {
  let server;
  let sdk;
  const app = h.defaultApp();
  const disabled = h.defaultApp({ id: '1005', key: 'disabled-key', secret: 'disabled-secret', enabled: false });
  const quota = h.defaultApp({ id: '1006', key: 'quota-key', secret: 'quota-secret', max_connections: 1 });

  before(async () => {
    server = await h.startHerald({ apps: [app, disabled, quota] });
    sdk = server.sdk(app);
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  /** Connects and expects pusher:error <code> followed by close <code>. */
  async function expectRefused(url, code) {
    const raw = new h.RawClient(url);
    const info = await raw.waitClose();
    assert.equal(info.code, code, `close code; frames: ${JSON.stringify(raw.log.frames)}`);
    const err = raw.log.find(h.is.event('pusher:error'));
    assert.ok(err, `no pusher:error before close ${code}`);
    const data = h.dataOf(err);
    assert.equal(data.code, code);
    assert.equal(typeof data.message, 'string');
    assert.equal(raw.log.find(h.is.event('pusher:connection_established')), undefined,
      'a refused connection must not be established');
    return raw;
  }

  it('unknown app key: pusher:error 4001 then close 4001', T, async () => {
    await expectRefused(server.wsURL('no-such-key'), 4001);
  });

  it('pusher-js gives up (no reconnect loop) on an unknown key', T, async () => {
    const c = new h.Client(server, { app: { id: '9', key: 'no-such-key', secret: 'x' } });
    await h.eventually(() => c.errors.some((e) => JSON.stringify(e).includes('4001')), { label: 'pusher-js error with 4001' });
    await h.eventually(() => c.state === 'disconnected' || c.state === 'failed', { label: 'pusher-js to stop' });
  });

  for (const protocol of [3, 8, 1]) {
    it(`protocol=${protocol} is refused with 4007`, T, async () => {
      await expectRefused(server.wsURL(app.key, `protocol=${protocol}&client=js&version=8.6.0`), 4007);
    });
  }

  for (const protocol of [4, 5, 6, 7]) {
    it(`protocol=${protocol} is accepted`, T, async () => {
      const raw = new h.RawClient(server.wsURL(app.key, `protocol=${protocol}&client=java-client&version=2.4.0`));
      await raw.established();
    });
  }

  it('disabled app: pusher:error 4003 then close 4003', T, async () => {
    await expectRefused(server.wsURL(disabled.key), 4003);
  });

  it('over max_connections: 4004; a slot frees up when the connection leaves', T, async () => {
    const first = await h.rawConnect(server, quota.key);
    await expectRefused(server.wsURL(quota.key), 4004);
    assert.ok(first.isOpen, 'the connection within quota stays open');
    await first.close();
    await h.eventually(async () => {
      const again = new h.RawClient(server.wsURL(quota.key));
      const outcome = await Promise.race([
        again.established().then(() => 'ok'),
        again.waitClose().then(() => 'closed'),
      ]);
      if (outcome !== 'ok') await again.close();
      return outcome === 'ok';
    }, { label: 'a new connection after the first one left', interval: 100 });
  });

  it('other apps are unaffected by one app\'s quota', T, async () => {
    const q = await h.rawConnect(server, quota.key);
    const a = await h.rawConnect(server, app.key);
    const b = await h.rawConnect(server, app.key);
    assert.ok(q.isOpen && a.isOpen && b.isOpen);
  });

  const badNames = [
    { name: 'bad$name', what: 'a $ character' },
    { name: 'a'.repeat(201), what: '201 characters' },
    { name: 'spaces are bad', what: 'spaces' },
    { name: 'ünïcode', what: 'non-ASCII letters' },
    { name: '#private-thing', what: 'a reserved # prefix' },
  ];
  for (const bad of badNames) {
    it(`refuses a channel name with ${bad.what} (InvalidChannel) and stays usable`, T, async () => {
      const raw = await h.rawConnect(server);
      const answer = await raw.subscribe(bad.name);
      h.assertSubscriptionError(answer, bad.name, 'InvalidChannel', 400);
      await raw.wait(h.is.event('pusher:error'), { label: 'pusher:error accompanying the subscription_error' });
      const ch = h.uid('good');
      await raw.subscribeOK(ch);
      const since = raw.mark();
      await sdk.trigger(ch, 'still-works', { ok: 1 });
      await raw.wait(h.is.event('still-works', ch), { since });
    });
  }

  it('accepts a 200-character channel name', T, async () => {
    const name = `x${h.uid('long')}`.padEnd(200, 'y');
    assert.equal(name.length, 200);
    const raw = await h.rawConnect(server);
    await raw.subscribeOK(name);
    const since = raw.mark();
    await sdk.trigger(name, 'long-name', 'ok');
    await raw.wait(h.is.event('long-name', name), { since });
  });

  it('refuses #server-to-user-<someone else> on a connection that is not signed in', T, async () => {
    const raw = await h.rawConnect(server);
    const ch = `#server-to-user-${h.uid('someoneelse')}`;
    const answer = await raw.subscribe(ch);
    h.assertSubscriptionError(answer, ch, ['InvalidChannel', 'AuthError']);
    const since = raw.mark();
    await sdk.sendToUser(ch.slice('#server-to-user-'.length), 'spy', {});
    await h.expectNoFrame(raw, h.is.event('spy'), { since, label: 'user event leaked to an unsigned connection' });
    assert.ok(raw.isOpen);
  });

  const malformed = [
    { what: 'a non-JSON text frame', send: (raw) => raw.sendText('this is not json {') },
    { what: 'a JSON array', send: (raw) => raw.sendText('[1,2,3]') },
    { what: 'JSON without an event', send: (raw) => raw.send({ data: { channel: 'x' } }) },
    { what: 'an unknown pusher: event', send: (raw) => raw.send({ event: 'pusher:frobnicate', data: {} }) },
    { what: 'a subscribe without a channel', send: (raw) => raw.send({ event: 'pusher:subscribe', data: { auth: '' } }) },
    { what: 'a subscribe with string data that is not JSON', send: (raw) => raw.send({ event: 'pusher:subscribe', data: 'nope' }) },
    { what: 'a subscribe with null data', send: (raw) => raw.send({ event: 'pusher:subscribe', data: null }) },
  ];
  for (const m of malformed) {
    it(`answers ${m.what} with pusher:error and keeps the connection usable`, T, async () => {
      const raw = await h.rawConnect(server);
      const since = raw.mark();
      m.send(raw);
      const err = await raw.wait(h.is.event('pusher:error'), { since, label: `pusher:error for ${m.what}` });
      assert.equal(typeof h.dataOf(err).message, 'string');
      await h.sleep(100);
      assert.ok(raw.isOpen, `connection closed after ${m.what}: ${JSON.stringify(raw.closeInfo)}`);
      const ch = h.uid('after-bad-frame');
      await raw.subscribeOK(ch);
      const s2 = raw.mark();
      await sdk.trigger(ch, 'recovered', { fine: true });
      const ev = await raw.wait(h.is.event('recovered', ch), { since: s2 });
      assert.equal(ev.data, '{"fine":true}');
    });
  }

  it('survives a burst of garbage followed by a valid subscription', T, async () => {
    const raw = await h.rawConnect(server);
    const garbage = ['', '{', 'null', '"str"', '{"event":123}', '{"event":"pusher:subscribe","data":{"channel":""}}',
      '{"event":"pusher:unsubscribe","data":{}}', '{"event":"client-x","channel":"private-none","data":{}}'];
    for (const g of garbage) raw.sendText(g);
    await h.sleep(200);
    assert.ok(raw.isOpen, `closed: ${JSON.stringify(raw.closeInfo)}`);
    const ch = h.uid('after-garbage');
    await raw.subscribeOK(ch);
  });
});
