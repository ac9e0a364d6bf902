'use strict';
// Cluster harness for Herald's end-to-end suite: starts a private
// redis-server on a free loopback port (never 6379; no persistence, in a
// temporary directory) and several Herald nodes sharing it, each on its own
// free port with the same apps. Nodes can be killed (SIGKILL, a crash),
// stopped (SIGTERM, a graceful shutdown) and Redis restarted empty on the
// same port. Every wait is bounded, as in harness.js, whose clients work
// against any node.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const h = require('./harness');

const VERBOSE = !!process.env.HERALD_E2E_VERBOSE;

/** Whether redis-server is on the PATH; the cluster tests skip without it. */
function haveRedis() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch (_) {
    return false;
  }
}

/** A free loopback port other than Redis's well-known 6379. */
async function freePortNot6379() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (port !== 6379) return port;
  }
}

/** Resolves true when a Redis at port answers PING with PONG within ms. */
function redisPing(port, ms = 500) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(ms, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

/** One redis-server process, restartable on the same port. */
class RedisServer {
  constructor(port, dir) {
    this.port = port;
    this.dir = dir;
    this.proc = null;
    this.output = [];
  }

  get url() { return `redis://127.0.0.1:${this.port}/0`; }

  /** Starts redis-server (empty) and resolves once it answers PING. */
  async start() {
    if (this.proc) return;
    const proc = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', this.dir,
      '--protected-mode', 'no',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.on('exit', () => { if (this.proc === proc) this.proc = null; resolve(); }));
    const keep = (chunk) => {
      const text = chunk.toString();
      if (VERBOSE) process.stderr.write(`[redis:${this.port}] ${text}`);
      this.output.push(text);
      if (this.output.length > 200) this.output.shift();
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    const deadline = Date.now() + 10000;
    while (!(await redisPing(this.port))) {
      if (!this.proc) throw new Error(`redis-server exited during start-up:\n${this.output.join('')}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within 10 s:\n${this.output.join('')}`);
      await h.sleep(50);
    }
  }

  /** Ends redis-server with signal (SIGKILL: at once, nothing saved). */
  async stop(signal = 'SIGKILL') {
    if (!this.proc) return;
    const { exited } = this;
    this.proc.kill(signal);
    await h.withTimeout(exited, 5000, 'redis-server to exit');
  }

  /** Stops Redis and starts it again, empty, on the same port. */
  async restartEmpty() {
    await this.stop();
    await this.start();
  }
}

/** Starts a private, empty redis-server on a free port. */
async function startRedis() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-redis-'));
  const redis = new RedisServer(await freePortNot6379(), dir);
  await redis.start();
  return redis;
}

/**
 * A Redis and the Herald nodes that share it. options:
 *   nodes            how many nodes to start (default 2)
 *   apps             the apps every node serves (default [harness defaultApp()])
 *   nodeTTL          HERALD_REDIS_NODE_TTL (default '3s')
 *   refreshInterval  HERALD_REDIS_REFRESH_INTERVAL (default '1s')
 *   extra            more top-level settings for every node's config file
 */
class Cluster {
  constructor(redis, options) {
    this.redis = redis;
    this.options = options;
    this.apps = options.apps || [h.defaultApp()];
    this.app = this.apps[0];
    this.nodes = [];
    this.prefix = `herald-e2e-${process.pid}-${Date.now()}`;
  }

  /** Starts one more node and resolves once it is ready (Redis reachable). */
  async addNode(name = `node-${String.fromCharCode(97 + this.nodes.length)}`) {
    const node = await h.startHerald({
      ...(this.options.extra || {}),
      apps: this.apps,
      extraEnv: {
        HERALD_REDIS_URL: this.redis.url,
        HERALD_REDIS_PREFIX: this.prefix,
        HERALD_NODE_ID: name,
        HERALD_REDIS_NODE_TTL: this.options.nodeTTL || '3s',
        HERALD_REDIS_REFRESH_INTERVAL: this.options.refreshInterval || '1s',
      },
    });
    node.name = name;
    this.nodes.push(node);
    await waitReady(node);
    return node;
  }

  /** kill -9 of a node: no goodbye to Redis, its clients cut. */
  async kill(node) {
    node.proc.kill('SIGKILL');
    await h.withTimeout(node.exited, 5000, `${node.name} to exit after SIGKILL`);
  }

  /** SIGTERM of a node; resolves with its exit status once it is gone. */
  async terminate(node, timeout = 10000) {
    node.proc.kill('SIGTERM');
    return h.withTimeout(node.exited, timeout, `${node.name} to exit after SIGTERM`);
  }

  /** Stops every node still running, then Redis. */
  async stop() {
    await Promise.all(this.nodes.map((n) => n.stop(10000).catch(() => {})));
    await this.redis.stop().catch(() => {});
    fs.rmSync(this.redis.dir, { recursive: true, force: true });
  }
}

/** Resolves once node's /readyz answers 200. */
async function waitReady(node, timeout = 15000) {
  await h.eventually(async () => (await h.httpGet(`${node.httpBase}/readyz`, 1000)).status === 200,
    { timeout, interval: 100, label: `${node.name} /readyz to answer 200; output:\n${node.logs()}` });
}

/** Starts Redis and options.nodes (default 2) nodes sharing it. */
async function startCluster(options = {}) {
  const redis = await startRedis();
  const cluster = new Cluster(redis, options);
  try {
    for (let i = 0; i < (options.nodes || 2); i += 1) await cluster.addNode();
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

module.exports = {
  Cluster,
  RedisServer,
  haveRedis,
  redisPing,
  startCluster,
  startRedis,
  waitReady,
};
