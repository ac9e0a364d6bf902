'use strict';
// A client event whose data is not valid UTF-8, sent by a real pusher-js
// client on its own WebSocket, must never reach the other members of the
// channel: relayed, the bytes would make their WebSocket clients fail the
// connection (pusher-js closes with 1007 on a text frame that is not UTF-8)
// and reconnect. In a text frame the bytes break the WebSocket protocol
// itself and Herald closes the sender with 1007 (invalid payload); in a
// binary frame Herald refuses the event with pusher:error 4301 and keeps the
// sender connected. Either way the other members stay connected, receive
// nothing of the event, and still exchange valid client events afterwards.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const T = { timeout: 30000 };
const QUIET_MS = 2000; // how long the members are watched after the bad event
const BAD_BYTES = Buffer.from([0xc3, 0x28, 0xff]); // truncated sequence, then a byte UTF-8 never uses
const BAD_EVENT = 'client-bad-bytes';

/** {"event":BAD_EVENT,"channel":ch,"data":{"text":"ok <C3 28 FF> ok"}} as raw bytes. */
function badClientEvent(channel) {
  const [head, tail] = JSON.stringify({ event: BAD_EVENT, channel, data: { text: 'ok \u0000 ok' } })
    .split('\\u0000');
  return Buffer.concat([Buffer.from(head, 'utf8'), BAD_BYTES, Buffer.from(tail, 'utf8')]);
}

/** A pusher-js connection error, without its circular socket objects. */
function describeError(e) {
  if (!e || typeof e !== 'object') return e;
  const out = { type: e.type };
  if (e.data) out.data = { code: e.data.code, message: e.data.message };
  if (e.error) out.error = e.error.message || e.error.type || String(e.error);
  return out;
}

/**
 * Starts watching a member: every state change of its pusher-js
 * connection, every event pusher-js hands to the application (global,
 * channel-global and the bad event's own binding) and every frame.
 */
function watch(client, channel) {
  const w = {
    client,
    socketId: client.socketId,
    states: [],
    global: [],
    channelGlobal: [],
    named: [],
    since: client.log.mark(),
    errorsSince: client.errors.length,
  };
  client.pusher.connection.bind('state_change', (s) => w.states.push(`${s.previous}->${s.current}`));
  client.pusher.bind_global((event, data) => w.global.push({ event, data }));
  channel.bind_global((event, data) => w.channelGlobal.push({ event, data }));
  channel.bind(BAD_EVENT, (data) => w.named.push(data));
  /** The checks that nothing happened to this member, for allOf. */
  w.checks = (who) => [
    [`${who} stays connected`, () => {
      const errors = client.errors.slice(w.errorsSince).map(describeError);
      const seen = `state changes ${JSON.stringify(w.states)}, pusher-js errors ${JSON.stringify(errors)}`;
      assert.deepEqual(w.states, [], `the pusher-js connection changed state (${seen})`);
      assert.equal(client.state, 'connected', `not connected (${seen})`);
      assert.equal(client.socketId, w.socketId, `reconnected: socket id changed (${seen})`);
      assert.deepEqual(errors, [], `pusher-js reported connection errors (${seen})`);
    }],
    [`${who} receives nothing of the bad event`, () => {
      const bad = (list) => list.filter((e) => e.event === BAD_EVENT);
      assert.deepEqual(w.named, [], `received it through bind('${BAD_EVENT}')`);
      assert.deepEqual(bad(w.global), [], 'received it through pusher.bind_global');
      assert.deepEqual(bad(w.channelGlobal), [], 'received it through channel.bind_global');
      const frame = client.log.find((f) => f.event === BAD_EVENT, w.since);
      assert.equal(frame, undefined, `a frame of it arrived: ${JSON.stringify(frame)}`);
    }],
  ];
  return w;
}

/**
 * Runs every check and fails with all their messages at once, so that one
 * broken expectation does not hide the others.
 */
async function allOf(checks) {
  const problems = [];
  for (const [label, fn] of checks) {
    try {
      await fn();
    } catch (e) {
      problems.push(`${label}: ${e.message}`);
    }
  }
  if (problems.length) assert.fail(`${problems.length} of ${checks.length} checks failed:\n- ${problems.join('\n- ')}`);
}

describe('client events with invalid UTF-8 from a pusher-js client', () => {
  let server;
  const app = h.defaultApp({ client_events: true, client_event_rate: 10 });

  before(async () => {
    server = await h.startHerald({ apps: [app] });
  });
  afterEach(h.closeAll);
  after(async () => { await h.closeAll(); if (server) await server.stop(); });

  /** Three connected members of a fresh channel of `kind`: [sender, a, b] with their channels. */
  async function threeMembers(kind) {
    const name = `${kind}-${h.uid('utf8')}`;
    const members = [];
    for (const who of ['sender', 'a', 'b']) {
      const client = await h.connectClient(server, { presence: { user_id: `user-${who}`, user_info: { who } } });
      members.push({ who, client, channel: await client.subscribe(name) });
    }
    if (kind === 'presence') {
      // every member sees the other two before anything is sent
      await h.eventually(() => members.every((m) => m.channel.members.count === 3),
        { label: 'three presence members everywhere' });
    }
    for (const m of members) {
      assert.ok(m.client.socket, `pusher-js exposes its WebSocket for ${m.who}`);
    }
    return { name, members };
  }

  /** A valid client event from `from` reaches every member in `to`, with its data intact. */
  async function validEventFlows(name, from, to, label) {
    const event = `client-after-${label}`;
    const data = { from: from.who, text: 'ünïcode ✓' };
    const got = to.map((m) => m.client.nextEvent(name, event));
    assert.equal(from.channel.trigger(event, data), true, `${from.who} could not trigger ${event}`);
    for (const [i, p] of got.entries()) {
      const { data: d } = await p;
      assert.deepEqual(d, data, `${to[i].who} got ${event} from ${from.who}`);
    }
  }

  for (const kind of ['presence', 'private']) {
    it(`${kind}: invalid UTF-8 in a TEXT frame closes the sender with 1007, the others notice nothing`, T, async () => {
      const { name, members } = await threeMembers(kind);
      const [sender, a, b] = members;
      const watchers = [watch(a.client, a.channel), watch(b.client, b.channel)];
      const senderErrorsSince = sender.client.errors.length;
      const closed = sender.client.transportClosed();

      sender.client.sendFrame(badClientEvent(name), { binary: false });
      await h.sleep(QUIET_MS);

      await allOf([
        ...watchers[0].checks('member a'),
        ...watchers[1].checks('member b'),
        ['sender closed with 1007', async () => {
          const ev = await closed;
          assert.equal(ev.code, 1007, `close code of the sender's WebSocket (reason ${JSON.stringify(ev.reason)})`);
          const senderErrors = sender.client.errors.slice(senderErrorsSince);
          assert.ok(senderErrors.some((e) => e && e.data && e.data.code === 1007),
            `pusher-js reported the 1007 close to the sender's application: ${JSON.stringify(senderErrors.map(describeError))}`);
        }],
        ['a valid event from a reaches b', () => validEventFlows(name, a, [b], 'text-a')],
        ['a valid event from b reaches a', () => validEventFlows(name, b, [a], 'text-b')],
        ['the server is healthy', async () => {
          assert.equal((await h.httpGet(`${server.httpBase}/healthz`)).status, 200);
        }],
      ]);
    });

    it(`${kind}: invalid UTF-8 in a BINARY frame is refused with 4301, everyone stays connected`, T, async () => {
      const { name, members } = await threeMembers(kind);
      const [sender, a, b] = members;
      const watchers = [
        watch(a.client, a.channel),
        watch(b.client, b.channel),
      ];
      const senderSince = sender.client.log.mark();
      const senderStates = [];
      sender.client.pusher.connection.bind('state_change', (s) => senderStates.push(`${s.previous}->${s.current}`));
      const senderSocketId = sender.client.socketId;

      sender.client.sendFrame(badClientEvent(name), { binary: true });
      const refusal = sender.client.log.wait(h.is.error(), { since: senderSince, label: 'pusher:error for the binary frame' });
      await h.sleep(QUIET_MS);

      await allOf([
        ['sender refused with 4301', async () => {
          const err = await refusal;
          assert.equal(h.errorCode(err), 4301, `the refusal's code: ${JSON.stringify(err)}`);
          assert.equal(typeof h.dataOf(err).message, 'string');
        }],
        ...watchers[0].checks('member a'),
        ...watchers[1].checks('member b'),
        ['sender stays connected', () => {
          assert.deepEqual(senderStates, [], 'the sender\'s connection changed state');
          assert.equal(sender.client.state, 'connected');
          assert.equal(sender.client.socketId, senderSocketId, 'the sender reconnected');
        }],
        ['a valid event from a reaches the sender and b', () => validEventFlows(name, a, [sender, b], 'binary-a')],
        ['a valid event from the sender reaches a and b', () => validEventFlows(name, sender, [a, b], 'binary-sender')],
      ]);
    });
  }
});
