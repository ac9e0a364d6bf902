'use strict';
// End-to-end encrypted channels (private-encrypted-*): the SDK encrypts with
// the master key, Herald relays the ciphertext untouched, pusher-js (given the
// shared_secret by the SDK signer) decrypts. Client events are refused there.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('../lib/harness');

const T = { timeout: 20000 };

describe('encrypted channels', () => {
  let server;
  let sdk;
  const masterKey = crypto.randomBytes(32).toString('base64');

  before(async () => {
    server = await h.startHerald({ apps: [h.defaultApp({ client_events: true })] });
    sdk = server.sdk(server.app, { encryptionMasterKeyBase64: masterKey });
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  it('pusher-js decrypts an event the SDK encrypted for private-encrypted-*', T, async () => {
    const ch = `private-encrypted-${h.uid('x')}`;
    const c = await h.connectClient(server, { sdk });
    await c.subscribe(ch);
    const payload = { message: 'top secret ✓', n: [1, 2, 3] };
    const got = c.nextEvent(ch, 'classified');
    const res = await h.jsonOf(await sdk.trigger(ch, 'classified', payload));
    assert.deepEqual(res, { status: 200, body: {} });
    assert.deepEqual((await got).data, payload);
  });

  it('relays the ciphertext untouched (the server never sees the plaintext)', T, async () => {
    const ch = `private-encrypted-${h.uid('raw')}`;
    const raw = await h.rawConnect(server);
    await raw.subscribeOK(ch, { auth: sdk.authorizeChannel(raw.socketId, ch).auth });
    const since = raw.mark();
    await sdk.trigger(ch, 'sealed', { message: 'plaintext-marker' });
    const frame = await raw.wait(h.is.event('sealed', ch), { since });
    assert.equal(typeof frame.data, 'string');
    const env = JSON.parse(frame.data);
    assert.deepEqual(Object.keys(env).sort(), ['ciphertext', 'nonce']);
    assert.ok(!frame.data.includes('plaintext-marker'));
    assert.equal(Buffer.from(env.nonce, 'base64').length, 24);
  });

  it('a client with the wrong shared secret cannot read events (decryption fails)', T, async () => {
    const ch = `private-encrypted-${h.uid('wrongkey')}`;
    const wrongSDK = server.sdk(server.app, { encryptionMasterKeyBase64: crypto.randomBytes(32).toString('base64') });
    const c = await h.connectClient(server, { sdk: wrongSDK });
    await c.subscribe(ch); // the signature is valid; only the shared secret is wrong
    const events = c.collect(ch, 'classified');
    const since = c.log.mark();
    await sdk.trigger(ch, 'classified', { message: 'nope' });
    // the frame arrives, but pusher-js cannot decrypt it and emits nothing
    await c.log.wait(h.is.event('classified', ch), { since });
    await h.sleep(300);
    assert.equal(events.length, 0);
  });

  it('refuses client events on private-encrypted-* with pusher:error and does not relay them', T, async () => {
    const ch = `private-encrypted-${h.uid('ce')}`;
    const a = await h.rawConnect(server);
    const b = await h.rawConnect(server);
    await a.subscribeOK(ch, { auth: sdk.authorizeChannel(a.socketId, ch).auth });
    await b.subscribeOK(ch, { auth: sdk.authorizeChannel(b.socketId, ch).auth });
    const sinceA = a.mark();
    const sinceB = b.mark();
    a.send({ event: 'client-leak', channel: ch, data: { nonce: 'AAAA', ciphertext: 'BBBB' } });
    await a.wait(h.is.event('pusher:error'), { since: sinceA, label: 'pusher:error for an encrypted client event' });
    await h.expectNoFrame(b, h.is.event('client-leak'), { since: sinceB, label: 'client event relayed on an encrypted channel' });
    assert.ok(a.isOpen, 'connection stays open');
  });
});
