'use strict';
// Runs the official pusher@5.3.4 SDK's own remote tests
// (node_modules/pusher/tests/remote/pusher/{get,trigger}.js, mocha +
// expect.js, unmodified) against a Herald, via PUSHER_URL.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const h = require('../lib/harness');

const ROOT = path.resolve(__dirname, '..');
const MOCHA = require.resolve('mocha/bin/mocha', { paths: [ROOT] });
const SDK_DIR = path.dirname(require.resolve('pusher/package.json', { paths: [ROOT] }));

function runMocha(pusherURL) {
  const files = ['get.js', 'trigger.js'].map((f) => path.join(SDK_DIR, 'tests', 'remote', 'pusher', f));
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [MOCHA, '--timeout', '5000', '--reporter', 'spec', ...files], {
      cwd: SDK_DIR,
      env: { ...process.env, PUSHER_URL: pusherURL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60000);
    proc.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out }); });
  });
}

describe('official pusher SDK remote tests', () => {
  let server;
  const app = h.defaultApp();

  before(async () => { server = await h.startHerald({ apps: [app] }); });
  after(async () => { if (server) await server.stop(); });

  it('tests/remote/pusher/get.js and trigger.js pass against Herald', { timeout: 90000 }, async () => {
    const url = `http://${app.key}:${app.secret}@127.0.0.1:${server.port}/apps/${app.id}`;
    const { code, signal, out } = await runMocha(url);
    assert.equal(signal, null, `mocha was killed:\n${out}`);
    assert.equal(code, 0, `mocha failed:\n${out}`);
    assert.match(out, /5 passing/, out);
  });
});

module.exports = { runMocha };
