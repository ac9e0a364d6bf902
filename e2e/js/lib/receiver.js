'use strict';
// A webhook receiver for the end-to-end suite: a real HTTP server on a
// free loopback port that records every request (path, headers, raw body,
// arrival time) and answers as the test says: a status per request, a
// delay, or, while closed, no listener at all (connections refused).

const http = require('node:http');
const h = require('./harness');

class Receiver {
  constructor() {
    this.requests = [];
    this.behaviour = new Map(); // path -> fn(n) -> {status, delayMs}
    this.counts = new Map();
    this.sockets = new Set();
    this.server = null;
    this.port = 0;
  }

  /** Listens on port (0: a free one); resolves once listening. */
  async start(port = this.port) {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    this.server = server;
    this.port = server.address().port;
    return this;
  }

  /** Stops listening and cuts every open connection: later requests are refused. */
  async stop() {
    if (!this.server) return;
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }

  url(path) { return `http://127.0.0.1:${this.port}${path}`; }

  /** Answers requests to path with fn(n) -> {status = 200, delayMs = 0}; n counts from 1. */
  on(path, fn) { this.behaviour.set(path, fn); }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const n = (this.counts.get(req.url) || 0) + 1;
      this.counts.set(req.url, n);
      const rec = { path: req.url, method: req.method, headers: req.headers, rawBody: Buffer.concat(chunks).toString('utf8'), at: Date.now(), n };
      this.requests.push(rec);
      const fn = this.behaviour.get(req.url);
      const { status = 200, delayMs = 0 } = fn ? fn(n) : {};
      rec.status = status;
      const answer = () => { if (!res.destroyed) res.writeHead(status).end(); };
      if (delayMs > 0) setTimeout(answer, delayMs).unref(); else answer();
    });
  }

  /** The requests made to path so far. */
  to(path) { return this.requests.filter((r) => r.path === path); }

  /**
   * The events of the requests to path (those answered 2xx, unless
   * delivered is false), each with the arrival time of its request, in
   * arrival order.
   */
  events(path, { delivered = true } = {}) {
    const out = [];
    for (const r of this.to(path)) {
      if (delivered && !(r.status >= 200 && r.status < 300)) continue;
      for (const e of JSON.parse(r.rawBody).events) out.push({ ...e, at: r.at });
    }
    return out;
  }

  /** Resolves with the first event to path matching pred. */
  waitEvent(path, pred, { timeout = h.WAIT_MS, label = 'webhook event' } = {}) {
    return h.eventually(() => this.events(path).find(pred), { timeout, label: `${label} at ${path}` });
  }
}

module.exports = { Receiver };
