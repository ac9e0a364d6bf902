'use strict';
// Test harness for Herald's end-to-end suite: builds the server binary,
// starts it on a free loopback port with a given configuration, and creates
// pusher-js clients, raw WebSocket clients and server-SDK (REST) clients
// against it. Every wait is bounded so that a broken server fails a test
// instead of hanging the run.

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const PusherJS = require('pusher-js');
const PusherSDK = require('pusher');
const WebSocket = require('ws');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const WAIT_MS = Number(process.env.HERALD_E2E_WAIT_MS || 5000);
const VERBOSE = !!process.env.HERALD_E2E_VERBOSE;

// ---------------------------------------------------------------------------
// small utilities

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Rejects with a labelled error if promise does not settle within ms. The
 * returned promise never causes an unhandledRejection when nobody awaits it
 * (a test that failed early leaves waits behind); cancelPendingWaits() ends
 * such leftovers at the end of each test.
 */
const pendingWaits = new Set();
function withTimeout(promise, ms, label) {
  let timer;
  let entry;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
    entry = { timer, reject };
    pendingWaits.add(entry);
  });
  const result = Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
    pendingWaits.delete(entry);
  });
  result.catch(() => {});
  return result;
}

function cancelPendingWaits() {
  for (const entry of [...pendingWaits]) {
    clearTimeout(entry.timer);
    entry.reject(new Error('cancelled: the test ended'));
  }
  pendingWaits.clear();
}

/** A name that no other test in this run uses. */
let uniqueCounter = 0;
function uid(prefix = 'ch') {
  uniqueCounter += 1;
  return `${prefix}-${process.pid}-${uniqueCounter}-${crypto.randomBytes(3).toString('hex')}`;
}

/** Polls fn until it returns a truthy value; returns that value. */
async function eventually(fn, { timeout = WAIT_MS, interval = 25, label = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${label}` +
        (last instanceof Error ? `: ${last.message}` : ''));
    }
    await sleep(interval);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function httpGet(url, timeout = 1000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('request timeout')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------
// building and running the server

/**
 * Builds ./cmd/herald into a fresh temporary directory (the Go build cache
 * makes repeated builds cheap). HERALD_BIN skips the build and uses the
 * given binary instead.
 */
let builtBinary = null;
function buildHerald() {
  if (process.env.HERALD_BIN) return process.env.HERALD_BIN;
  if (builtBinary && fs.existsSync(builtBinary)) return builtBinary;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-bin-'));
  const out = path.join(dir, 'herald');
  try {
    execFileSync('go', ['build', '-o', out, './cmd/herald'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300000,
    });
  } catch (e) {
    const stderr = e.stderr ? e.stderr.toString() : '';
    throw new Error(`go build ./cmd/herald failed:\n${stderr || e.message}`);
  }
  builtBinary = out;
  return out;
}

/** Default application used by most test files. */
function defaultApp(overrides = {}) {
  return {
    id: '1001',
    key: 'app-key',
    secret: 'app-secret',
    enabled: true,
    client_events: true,
    ...overrides,
  };
}

function yamlScalar(v) {
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  // Lists and maps (an app's webhooks, the webhook settings) as JSON,
  // which is YAML's flow syntax.
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return JSON.stringify(String(v)); // a JSON string is a valid YAML double-quoted scalar
}

/** Serialises {pong_timeout, apps:[{...}]} into Herald's YAML config. */
function toYAML(config) {
  const lines = [];
  for (const [k, v] of Object.entries(config)) {
    if (k === 'apps') continue;
    lines.push(`${k}: ${yamlScalar(v)}`);
  }
  lines.push('apps:');
  for (const app of config.apps) {
    let first = true;
    for (const [k, v] of Object.entries(app)) {
      if (v === undefined) continue;
      lines.push(`${first ? '  - ' : '    '}${k}: ${yamlScalar(v)}`);
      first = false;
    }
  }
  return lines.join('\n') + '\n';
}

class HeraldServer {
  constructor({ port, apps, proc, configPath, tmpDir }) {
    this.port = port;
    this.apps = apps;
    this.app = apps[0];
    this.proc = proc;
    this.configPath = configPath;
    this.tmpDir = tmpDir;
    this.output = [];
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    const keep = (chunk) => {
      const text = chunk.toString();
      if (VERBOSE) process.stderr.write(`[herald:${port}] ${text}`);
      this.output.push(text);
      if (this.output.length > 500) this.output.shift();
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
  }

  get httpBase() { return `http://127.0.0.1:${this.port}`; }

  appByKey(key) { return this.apps.find((a) => a.key === key); }

  /** ws:// URL for an app key, with pusher-js's query string by default. */
  wsURL(key = this.app.key, query = 'protocol=7&client=js&version=8.6.0') {
    return `ws://127.0.0.1:${this.port}/app/${key}${query ? `?${query}` : ''}`;
  }

  /** Official server SDK (REST client and auth signer) for an app. */
  sdk(app = this.app, extra = {}) {
    return new PusherSDK({
      appId: String(app.id),
      key: app.key,
      secret: app.secret,
      host: '127.0.0.1',
      port: String(this.port),
      useTLS: false,
      timeout: WAIT_MS,
      ...extra,
    });
  }

  logs() { return this.output.join(''); }

  /**
   * Sends SIGTERM and waits for the process to exit. Returns {code, signal}.
   * If it does not exit within timeout ms it is killed and an error thrown.
   */
  async stop(timeout = 5000) {
    if (!this.exitInfo) {
      this.proc.kill('SIGTERM');
      try {
        await withTimeout(this.exited, timeout, 'herald to exit after SIGTERM');
      } catch (e) {
        this.proc.kill('SIGKILL');
        await withTimeout(this.exited, 2000, 'herald to exit after SIGKILL').catch(() => {});
        throw e;
      }
    }
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
    return this.exitInfo;
  }
}

/**
 * The environment Herald is started with: the test process's own, minus
 * every HERALD_* variable. Herald reads its settings from HERALD_*, so one
 * exported in the shell that runs the suite (HERALD_APP_CLIENT_EVENTS=true,
 * HERALD_TRANSPORT=goroutine, ...) would otherwise change or break the
 * server each test file configures; only what startHerald sets explicitly
 * reaches it.
 */
function inheritedEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.toUpperCase().startsWith('HERALD_')) env[k] = v;
  }
  return env;
}

/**
 * Starts Herald. Either {apps:[...], pong_timeout?} (written to a YAML file
 * passed as HERALD_CONFIG) or {env:{HERALD_APP_ID,...}} for single-app mode;
 * extraEnv adds variables in either mode. No HERALD_* variable of the test
 * process reaches the server (see inheritedEnv). Resolves once GET /healthz
 * answers 200.
 */
async function startHerald(options = {}) {
  const bin = buildHerald();
  const port = await freePort();
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-run-'));
  const env = inheritedEnv();
  env.HERALD_ADDR = `127.0.0.1:${port}`;
  let apps;
  let configPath = null;
  if (options.env) {
    Object.assign(env, options.env);
    apps = [{
      id: options.env.HERALD_APP_ID,
      key: options.env.HERALD_APP_KEY,
      secret: options.env.HERALD_APP_SECRET,
    }];
  } else {
    const config = { ...options };
    delete config.extraEnv;
    if (!config.apps) config.apps = [defaultApp()];
    apps = config.apps;
    configPath = path.join(tmpDir, 'herald.yaml');
    fs.writeFileSync(configPath, toYAML(config));
    env.HERALD_CONFIG = configPath;
  }
  Object.assign(env, options.extraEnv || {});

  const proc = spawn(bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new HeraldServer({ port, apps, proc, configPath, tmpDir });

  const deadline = Date.now() + 15000;
  for (;;) {
    if (server.exitInfo) {
      throw new Error(`herald exited during start-up (${JSON.stringify(server.exitInfo)}):\n${server.logs()}`);
    }
    try {
      const res = await httpGet(`${server.httpBase}/healthz`, 500);
      if (res.status === 200) return server;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`herald did not answer /healthz within 15 s:\n${server.logs()}`);
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------
// frame recording shared by both client kinds

class FrameLog {
  constructor() {
    this.frames = [];
    this.waiters = new Set();
    this.listeners = [];
  }

  /** Calls fn(frame) for every frame from now on. */
  onFrame(fn) { this.listeners.push(fn); }

  push(frame) {
    this.frames.push(frame);
    for (const fn of this.listeners) fn(frame);
    for (const w of [...this.waiters]) {
      if (w.pred(frame)) {
        this.waiters.delete(w);
        w.resolve(frame);
      }
    }
  }

  /** Index to pass as `since` to only look at frames arriving after now. */
  mark() { return this.frames.length; }

  find(pred, since = 0) { return this.frames.slice(since).find(pred); }

  filter(pred, since = 0) { return this.frames.slice(since).filter(pred); }

  /** Resolves with the first frame (at index >= since) matching pred. */
  wait(pred, { since = 0, timeout = WAIT_MS, label = 'frame' } = {}) {
    const existing = this.find(pred, since);
    if (existing) return Promise.resolve(existing);
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { pred, resolve };
      this.waiters.add(waiter);
    });
    return withTimeout(p, timeout, label).finally(() => this.waiters.delete(waiter));
  }
}

/** Predicate helpers for frames ({event, channel, data, user_id}). */
const is = {
  event: (event, channel) => (f) => f.event === event && (channel === undefined || f.channel === channel),
  error: (code) => (f) => f.event === 'pusher:error' && (code === undefined || errorCode(f) === code),
};

/** data of a frame as an object, whether the server string-encoded it or not. */
function dataOf(frame) {
  if (typeof frame.data === 'string') {
    try { return JSON.parse(frame.data); } catch (_) { return frame.data; }
  }
  return frame.data;
}

function errorCode(frame) {
  const d = dataOf(frame);
  return d && typeof d === 'object' ? d.code : undefined;
}

// ---------------------------------------------------------------------------
// clients

const openClients = new Set();

/** Disconnects every client created since the last call. Use in afterEach. */
async function closeAll() {
  cancelPendingWaits();
  const clients = [...openClients];
  openClients.clear();
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
}

/**
 * A pusher-js client. Channel authorization and user authentication are
 * done in-process by customHandlers that sign with the official server SDK.
 *
 * options:
 *   app         app entry of the server to use (default server.app)
 *   sdk         SDK used for signing (default server.sdk(app))
 *   presence    {user_id, user_info} or fn(channelName) -> that, for presence channels
 *   channelAuth fn({socketId, channelName, sdk, client}) -> auth data, overrides the signer
 *   user        user_data object for signin ({id, user_info, watchlist})
 *   userAuth    fn({socketId, sdk, client}) -> {auth, user_data}, overrides the signer
 */
class Client {
  constructor(server, options = {}) {
    this.server = server;
    this.app = options.app || server.app;
    this.sdk = options.sdk || server.sdk(this.app);
    this.options = options;
    this.log = new FrameLog();
    this.errors = [];
    this.states = [];
    this.pusher = new PusherJS(this.app.key, {
      cluster: 'local',
      wsHost: '127.0.0.1',
      wsPort: server.port,
      wssPort: server.port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      channelAuthorization: {
        customHandler: (params, callback) => this.authorizeChannel(params, callback),
      },
      userAuthentication: {
        customHandler: (params, callback) => this.authenticateUser(params, callback),
      },
    });
    this.pusher.connection.bind('message', (frame) => this.log.push(frame));
    this.pusher.connection.bind('error', (err) => this.errors.push(err));
    this.pusher.connection.bind('state_change', (s) => this.states.push(s.current));
    openClients.add(this);
  }

  authorizeChannel({ socketId, channelName }, callback) {
    try {
      let data;
      if (this.options.channelAuth) {
        data = this.options.channelAuth({ socketId, channelName, sdk: this.sdk, client: this });
      } else if (channelName.startsWith('presence-')) {
        let member = this.options.presence;
        if (typeof member === 'function') member = member(channelName);
        data = this.sdk.authorizeChannel(socketId, channelName, member);
      } else {
        data = this.sdk.authorizeChannel(socketId, channelName);
      }
      callback(null, data);
    } catch (e) {
      callback(e, null);
    }
  }

  authenticateUser({ socketId }, callback) {
    try {
      const data = this.options.userAuth
        ? this.options.userAuth({ socketId, sdk: this.sdk, client: this })
        : this.sdk.authenticateUser(socketId, this.options.user);
      callback(null, data);
    } catch (e) {
      callback(e, null);
    }
  }

  get socketId() { return this.pusher.connection.socket_id; }

  /** pusher-js's transport of the current connection (its TransportConnection), if any. */
  get transport() {
    const conn = this.pusher.connection.connection;
    return conn ? conn.transport : undefined;
  }

  /**
   * The WebSocket under pusher-js. In Node, pusher-js 8 uses the
   * faye-websocket client it bundles (not the `ws` package): an object with
   * send() and, underneath, the websocket-driver that frames messages.
   */
  get socket() {
    const t = this.transport;
    return t ? t.socket : undefined;
  }

  /**
   * Sends bytes as one WebSocket message on pusher-js's own socket, exactly
   * as given: in a text frame by default (the driver frames a Buffer with
   * the text opcode without checking it is UTF-8), or in a binary frame with
   * {binary: true} (faye-websocket's send of a Buffer).
   */
  sendFrame(bytes, { binary = false } = {}) {
    const socket = this.socket;
    if (!socket || !socket._driver || socket.readyState !== 1) {
      throw new Error(`pusher-js has no open WebSocket (state ${this.state})`);
    }
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
    const sent = binary ? socket.send(buf) : socket._driver.frame(buf, 'text');
    if (sent === false) throw new Error('the WebSocket driver refused to send the frame');
  }

  /**
   * Resolves with {code, reason, wasClean} when the current WebSocket of
   * this client closes (whoever closes it). Call before causing the close.
   */
  transportClosed(timeout = WAIT_MS) {
    const t = this.transport;
    if (!t) return Promise.reject(new Error(`pusher-js has no transport (state ${this.state})`));
    return withTimeout(new Promise((resolve) => {
      t.bind('closed', (ev) => resolve(ev || {}));
    }), timeout, 'the pusher-js WebSocket to close');
  }

  get state() { return this.pusher.connection.state; }

  /** Resolves once connected (connection_established received). */
  async connected(timeout = WAIT_MS) {
    if (this.state === 'connected') return this;
    await withTimeout(new Promise((resolve, reject) => {
      const onChange = ({ current }) => {
        if (current === 'connected') {
          this.pusher.connection.unbind('state_change', onChange);
          resolve();
        } else if (current === 'failed') {
          reject(new Error('pusher-js connection failed'));
        }
      };
      this.pusher.connection.bind('state_change', onChange);
    }), timeout, `pusher-js client (key ${this.app.key}) to connect; errors: ${JSON.stringify(this.errors)}`);
    return this;
  }

  /**
   * Subscribes and resolves with the channel on subscription_succeeded;
   * rejects with the server's error data on subscription_error.
   */
  subscribe(name, timeout = WAIT_MS) {
    const channel = this.pusher.subscribe(name);
    if (channel.subscribed) return Promise.resolve(channel);
    return withTimeout(new Promise((resolve, reject) => {
      channel.bind('pusher:subscription_succeeded', () => resolve(channel));
      channel.bind('pusher:subscription_error', (err) => {
        const e = new Error(`subscription to ${name} refused: ${JSON.stringify(err)}`);
        e.data = err;
        reject(e);
      });
    }), timeout, `subscription_succeeded on ${name}`);
  }

  /**
   * Subscribes expecting refusal: resolves with the raw
   * pusher:subscription_error frame the server sent for the channel.
   */
  async subscribeExpectingError(name, timeout = WAIT_MS) {
    const since = this.log.mark();
    this.pusher.subscribe(name);
    const frame = await Promise.race([
      this.log.wait(is.event('pusher:subscription_error', name), { since, timeout, label: `pusher:subscription_error on ${name}` }),
      this.log.wait(is.event('pusher_internal:subscription_succeeded', name), { since, timeout: timeout + 1000 })
        .then(() => { throw new Error(`subscription to ${name} unexpectedly succeeded`); }, () => new Promise(() => {})),
    ]);
    return frame;
  }

  /** Resolves with {data, metadata} of the next `event` on `channel`. */
  nextEvent(channelName, event, timeout = WAIT_MS) {
    const channel = this.pusher.channel(channelName) || this.pusher.subscribe(channelName);
    return withTimeout(new Promise((resolve) => {
      const handler = (data, metadata) => {
        channel.unbind(event, handler);
        resolve({ data, metadata });
      };
      channel.bind(event, handler);
    }), timeout, `event ${event} on ${channelName}`);
  }

  /** Collects every `event` on `channel` into the returned array. */
  collect(channelName, event) {
    const list = [];
    const channel = this.pusher.channel(channelName) || this.pusher.subscribe(channelName);
    channel.bind(event, (data, metadata) => list.push({ data, metadata }));
    return list;
  }

  /** Signs in (pusher.signin()) and resolves with the signin_success frame. */
  async signin(timeout = WAIT_MS) {
    await this.connected();
    const since = this.log.mark();
    this.pusher.signin();
    return this.log.wait(is.event('pusher:signin_success'), { since, timeout, label: 'pusher:signin_success' });
  }

  /** Resolves once pusher-js has subscribed to #server-to-user-<id>. */
  async userChannelReady(userId, timeout = WAIT_MS) {
    return this.log.wait(is.event('pusher_internal:subscription_succeeded', `#server-to-user-${userId}`),
      { timeout, label: `subscription to #server-to-user-${userId}` });
  }

  /** Resolves once the connection left `connected` (closed by the server). */
  async closedByServer(timeout = WAIT_MS) {
    return eventually(() => this.state !== 'connected' && this.state !== 'initialized',
      { timeout, label: 'pusher-js connection to be closed by the server' });
  }

  async close() {
    openClients.delete(this);
    try { this.pusher.disconnect(); } catch (_) { /* ignore */ }
    await eventually(() => this.state === 'disconnected', { timeout: 2000, label: 'disconnect' }).catch(() => {});
  }
}

async function connectClient(server, options) {
  const c = new Client(server, options);
  await c.connected();
  return c;
}

/** A raw WebSocket (`ws`) client that records parsed frames and the close. */
class RawClient {
  constructor(url, wsOptions = {}) {
    this.url = url;
    this.log = new FrameLog();
    this.textFrames = [];
    this.ws = new WebSocket(url, wsOptions);
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      });
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', resolve);
      this.ws.on('error', reject);
      this.ws.on('unexpected-response', (req, res) =>
        reject(new Error(`unexpected HTTP response ${res.statusCode} to WebSocket upgrade`)));
    });
    this.opened.catch(() => {});
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => {
      const text = data.toString();
      this.textFrames.push(text);
      let frame;
      try { frame = JSON.parse(text); } catch (_) { frame = { event: '<non-json>', raw: text }; }
      this.log.push(frame);
    });
    openClients.add(this);
  }

  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }

  /** Resolves with the parsed data of pusher:connection_established. */
  async established(timeout = WAIT_MS) {
    const frame = await this.log.wait(is.event('pusher:connection_established'),
      { timeout, label: 'pusher:connection_established' });
    this.established_ = dataOf(frame);
    this.socketId = this.established_.socket_id;
    return this.established_;
  }

  send(obj) { this.ws.send(JSON.stringify(obj)); }

  sendText(text) { this.ws.send(text); }

  wait(pred, opts) { return this.log.wait(pred, opts); }

  mark() { return this.log.mark(); }

  /** Resolves with {code, reason} once the server closed the socket. */
  waitClose(timeout = WAIT_MS) {
    return withTimeout(this.closed, timeout, `server to close ${this.url}`);
  }

  /**
   * Sends pusher:subscribe and resolves with the server's answer frame:
   * subscription_succeeded or subscription_error for that channel.
   */
  async subscribe(channel, extra = {}, timeout = WAIT_MS) {
    const since = this.mark();
    this.send({ event: 'pusher:subscribe', data: { channel, ...extra } });
    return this.wait((f) => f.channel === channel &&
      (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
    { since, timeout, label: `answer to subscribe ${channel}` });
  }

  /** Subscribes and throws unless it succeeded. */
  async subscribeOK(channel, extra = {}, timeout = WAIT_MS) {
    const answer = await this.subscribe(channel, extra, timeout);
    if (answer.event !== 'pusher_internal:subscription_succeeded') {
      throw new Error(`subscribe ${channel} failed: ${JSON.stringify(answer)}`);
    }
    return answer;
  }

  async close() {
    openClients.delete(this);
    if (this.ws.readyState === WebSocket.CLOSED) return;
    try { this.ws.close(1000); } catch (_) { /* ignore */ }
    await withTimeout(this.closed, 2000, 'raw close').catch(() => this.ws.terminate());
  }
}

/** Opens a raw client and waits for connection_established. */
async function rawConnect(server, key = server.app.key, query) {
  const c = new RawClient(server.wsURL(key, query));
  await c.established();
  return c;
}

// ---------------------------------------------------------------------------
// assertions

/** Asserts no frame matching pred arrives at log within ms (from `since`). */
async function expectNoFrame(client, pred, { since = 0, ms = 300, label = 'unexpected frame' } = {}) {
  await sleep(ms);
  const hit = client.log.find(pred, since);
  if (hit) throw new Error(`${label}: ${JSON.stringify(hit)}`);
}

/** Body of an SDK response as parsed JSON, plus the status. */
async function jsonOf(res) {
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch (_) {
    throw new Error(`response body is not JSON (status ${res.status}): ${text}`);
  }
  return { status: res.status, body };
}

/** Resolves with the RequestError an SDK call rejects with. */
async function requestError(promise) {
  try {
    const res = await promise;
    const text = await res.text();
    throw new Error(`expected an HTTP error, got ${res.status}: ${text}`);
  } catch (e) {
    if (e instanceof PusherSDK.RequestError) return e;
    throw e;
  }
}

const SUBSCRIPTION_ERROR_STATUSES = [400, 401, 403];

/**
 * Asserts frame is the contract's pusher:subscription_error for channel:
 * {"event":"pusher:subscription_error","channel":ch,"data":{type,error,status}}.
 * types: one type or a list of acceptable ones. status: the exact status
 * expected, or omitted for any of the contract's 400 / 401 / 403.
 * Returns the data.
 */
function assertSubscriptionError(frame, channel, types, status) {
  const assert = require('node:assert/strict');
  const allowed = Array.isArray(types) ? types : [types];
  const show = JSON.stringify(frame);
  assert.equal(frame.event, 'pusher:subscription_error', `not a subscription_error: ${show}`);
  assert.equal(frame.channel, channel);
  const d = dataOf(frame);
  assert.ok(d && typeof d === 'object', `subscription_error data is not an object: ${show}`);
  assert.ok(allowed.includes(d.type), `subscription_error type ${JSON.stringify(d.type)} not in ${JSON.stringify(allowed)}: ${show}`);
  assert.equal(typeof d.error, 'string', `subscription_error has no error message: ${show}`);
  if (status !== undefined) {
    assert.equal(d.status, status, `subscription_error status: ${show}`);
  } else {
    assert.ok(SUBSCRIPTION_ERROR_STATUSES.includes(d.status), `subscription_error status not 400/401/403: ${show}`);
  }
  return d;
}

module.exports = {
  PusherJS,
  PusherSDK,
  WebSocket,
  WAIT_MS,
  Client,
  RawClient,
  buildHerald,
  closeAll,
  connectClient,
  dataOf,
  defaultApp,
  errorCode,
  eventually,
  expectNoFrame,
  httpGet,
  is,
  jsonOf,
  rawConnect,
  requestError,
  sleep,
  startHerald,
  assertSubscriptionError,
  toYAML,
  uid,
  withTimeout,
};
