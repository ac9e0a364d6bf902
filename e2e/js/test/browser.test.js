'use strict';
// Authorization in a real browser: Debian's chromium driven by
// playwright-core, a page served by the example Go backend
// (examples/authserver, built on the appauth package) with stock pusher-js,
// the pusher-js-auth batch plugin and Laravel Echo, against a running
// Herald. Other origins are plain pages served by this test on other ports.
// Screenshots of every page go to the directory printed at the start
// (HERALD_E2E_ARTIFACTS, default e2e/js/artifacts/browser, emptied first;
// git-ignored).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const h = require('../lib/harness');

const CHROMIUM = process.env.HERALD_E2E_CHROMIUM || '/usr/bin/chromium';
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const NODE_MODULES = path.resolve(__dirname, '..', 'node_modules');
const T = { timeout: 30000 };
const haveBrowser = fs.existsSync(CHROMIUM);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = require('node:net').createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

// A page of another origin: pusher-js from the backend, the same helpers.
function otherOriginPage(backend) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>other origin</title>
<script src="${backend}/static/pusher-js/dist/web/pusher.js"></script></head>
<body><h1>${'another origin'}</h1><ul id="log"></ul><script>
function show(text, ok) { const li = document.createElement('li'); li.textContent = text;
  li.style.color = ok ? '#080' : '#b00'; document.getElementById('log').appendChild(li); }
function connect(extra) { return new Pusher(window.heraldKey, Object.assign({cluster: 'local', wsHost: '127.0.0.1',
  wsPort: window.heraldPort, forceTLS: false, enabledTransports: ['ws']}, extra || {})); }
function subscribe(pusher, name) { return new Promise((resolve) => { const ch = pusher.subscribe(name);
  ch.bind('pusher:subscription_succeeded', (data) => { show(name + ': subscribed', true); resolve({ok: true, data}); });
  ch.bind('pusher:subscription_error', (error) => { show(name + ': refused (' + (error.status || error.type) + ')', false); resolve({ok: false, error}); }); }); }
</script></body></html>`;
}

function serveStatic(port, html) {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(srv)));
}

describe('authorization in a browser', { skip: haveBrowser ? false : `no browser at ${CHROMIUM} (.ci/run installs Debian's chromium)` }, () => {
  const app = { HERALD_APP_ID: '1', HERALD_APP_KEY: 'browser-key', HERALD_APP_SECRET: 'browser-secret' };
  let herald, backendProc, binDir, browser, context, page, artifacts, backend, allowed, disallowed;
  const servers = [];
  let shot = 0;

  const screenshot = async (p, name) => {
    shot += 1;
    await p.screenshot({ path: path.join(artifacts, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  };

  before(async () => {
    artifacts = path.resolve(process.env.HERALD_E2E_ARTIFACTS || path.join(__dirname, '..', 'artifacts', 'browser'));
    fs.rmSync(artifacts, { recursive: true, force: true });
    fs.mkdirSync(artifacts, { recursive: true });
    console.log(`# browser screenshots: ${artifacts}`);

    herald = await h.startHerald({ env: app });
    binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-authserver-'));
    const bin = path.join(binDir, 'authserver');
    execFileSync('go', ['build', '-o', bin, './examples/authserver'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 300000 });

    const [a, b, c] = [await freePort(), await freePort(), await freePort()];
    backend = `http://127.0.0.1:${a}`;
    allowed = `http://127.0.0.1:${b}`;
    disallowed = `http://127.0.0.1:${c}`;
    backendProc = spawn(bin, ['--addr', `127.0.0.1:${a}`, '--app-key', app.HERALD_APP_KEY, '--app-secret', app.HERALD_APP_SECRET,
      '--herald', `127.0.0.1:${herald.port}`, '--static', NODE_MODULES, '--allowed-origins', allowed], { stdio: ['ignore', 'pipe', 'pipe'] });
    let backendLog = '';
    backendProc.stdout.on('data', (d) => { backendLog += d; });
    backendProc.stderr.on('data', (d) => { backendLog += d; });
    await h.eventually(async () => (await h.httpGet(`${backend}/login`)).status === 400, { timeout: 10000, label: `the example backend to listen (${backendLog})` });
    servers.push(await serveStatic(b, otherOriginPage(backend)), await serveStatic(c, otherOriginPage(backend)));

    const { chromium } = require('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    context = await browser.newContext();
    page = await context.newPage();
    await page.goto(`${backend}/login?user=alice`);
    assert.equal(await page.textContent('#user'), 'alice');
  });

  after(async () => {
    if (browser) await browser.close();
    for (const s of servers) s.close();
    if (backendProc) backendProc.kill('SIGTERM');
    if (herald) await herald.stop();
    if (binDir) fs.rmSync(binDir, { recursive: true, force: true });
  });

  // Pages of other origins, with the Herald coordinates the backend's page
  // gets from its template.
  const openOther = async (origin) => {
    const p = await context.newPage();
    await p.goto(`${origin}/`);
    await p.evaluate(([key, port]) => { window.heraldKey = key; window.heraldPort = port; }, [app.HERALD_APP_KEY, herald.port]);
    return p;
  };

  it('private and presence channels and sign-in via POST, with the CSRF header', T, async () => {
    const got = await page.evaluate(async () => {
      const headers = { 'X-CSRF-Token': csrf };
      const p = connect({ channelAuthorization: { endpoint: '/pusher/auth', headers },
        userAuthentication: { endpoint: '/pusher/user-auth', headers } });
      const signedIn = new Promise((resolve) => p.bind('pusher:signin_success', (d) => resolve(JSON.parse(d.user_data))));
      p.signin();
      const own = await subscribe(p, 'private-user-alice');
      const other = await subscribe(p, 'private-user-bob');
      const room = await subscribe(p, 'presence-room');
      return { own: own.ok, other: other.ok, otherStatus: other.error && other.error.status,
        members: room.ok && Object.keys(room.data.members), me: room.data && room.data.me, user: await signedIn };
    });
    assert.equal(got.own, true);
    assert.equal(got.other, false, 'another user\'s channel was authorized');
    assert.equal(got.otherStatus, 403);
    assert.deepEqual(got.members, ['alice']);
    assert.deepEqual(got.me, { id: 'alice', info: { name: 'Alice' } });
    assert.equal(got.user.id, 'alice');
    await screenshot(page, 'post-private-presence');
  });

  it('a POST without the CSRF header is refused', T, async () => {
    const got = await page.evaluate(async () => {
      const p = connect({ channelAuthorization: { endpoint: '/pusher/auth' } });
      const r = await subscribe(p, 'private-user-alice');
      return { ok: r.ok, status: r.error && r.error.status };
    });
    assert.deepEqual(got, { ok: false, status: 403 });
    await screenshot(page, 'csrf-missing');
  });

  it('the pusher-js-auth plugin subscribes three channels in one request', T, async () => {
    const posts = [];
    const onRequest = (r) => { if (r.method() === 'POST' && r.url() === `${backend}/pusher/auth`) posts.push(r.postData()); };
    page.on('request', onRequest);
    try {
      const got = await page.evaluate(async () => {
        const p = connect({ authorizer: PusherBatchAuthorizer, authEndpoint: '/pusher/auth', auth: { headers: { 'X-CSRF-Token': csrf } } });
        const rs = await Promise.all(['private-batch-a', 'private-batch-b', 'presence-batch-c'].map((n) => subscribe(p, n)));
        return rs.map((r) => r.ok);
      });
      assert.deepEqual(got, [true, true, true]);
      assert.equal(posts.length, 1, `requests: ${JSON.stringify(posts)}`);
      for (let i = 0; i < 3; i++) assert.ok(posts[0].includes(`channel_name[${i}]=`), posts[0]);
    } finally {
      page.off('request', onRequest);
    }
    await screenshot(page, 'batch');
  });

  it('Laravel Echo: /broadcasting/auth with X-CSRF-TOKEN from the csrf-token meta tag', T, async () => {
    const seen = [];
    const onRequest = (r) => { if (r.url() === `${backend}/broadcasting/auth`) seen.push(r.headers()['x-csrf-token']); };
    page.on('request', onRequest);
    try {
      const got = await page.evaluate(async () => {
        const echo = new Echo.default({ broadcaster: 'pusher', key: herald.key, cluster: 'local', wsHost: herald.wsHost,
          wsPort: herald.wsPort, forceTLS: false, enabledTransports: ['ws'] });
        const priv = await new Promise((resolve) => echo.private('user-alice').subscribed(() => resolve(true)).error(() => resolve(false)));
        const here = await new Promise((resolve) => echo.join('echo-room').here(resolve).error(() => resolve(null)));
        show('echo: private ' + priv + ', here ' + JSON.stringify(here), priv);
        return { priv, here };
      });
      assert.equal(got.priv, true);
      assert.deepEqual(got.here, [{ name: 'Alice' }]);
      const csrf = await page.evaluate(() => csrf);
      assert.ok(seen.length >= 2, `requests to /broadcasting/auth: ${seen.length}`);
      for (const v of seen) assert.equal(v, csrf);
    } finally {
      page.off('request', onRequest);
    }
    await screenshot(page, 'echo');
  });

  it('JSONP from an allowed origin', T, async () => {
    const p = await openOther(allowed);
    const got = await p.evaluate(async (endpoint) => {
      const pusher = connect({ channelAuthorization: { transport: 'jsonp', endpoint } });
      const own = await subscribe(pusher, 'private-user-alice');
      const room = await subscribe(pusher, 'presence-jsonp');
      return { own: own.ok, members: room.ok && Object.keys(room.data.members) };
    }, `${backend}/pusher/auth`);
    assert.deepEqual(got, { own: true, members: ['alice'] });
    await screenshot(p, 'jsonp-allowed');
    await p.close();
  });

  it('JSONP from a disallowed origin is refused', T, async () => {
    const p = await openOther(disallowed);
    // The browser hides the refusal from the page and from playwright's
    // response events (Chromium's opaque-response blocking drops a
    // cross-origin text/plain 403), so read the wire through the DevTools
    // protocol: the headers Chromium really sent and the status it got.
    const cdp = await context.newCDPSession(p);
    await cdp.send('Network.enable');
    const wire = new Map();
    // The events of one request may come in any order.
    const note = (id, v) => wire.set(id, { ...wire.get(id), ...v });
    cdp.on('Network.requestWillBeSent', (e) => note(e.requestId, { url: e.request.url }));
    cdp.on('Network.requestWillBeSentExtraInfo', (e) => note(e.requestId, { headers: e.headers }));
    cdp.on('Network.responseReceivedExtraInfo', (e) => note(e.requestId, { status: e.statusCode }));
    const got = await p.evaluate(async (endpoint) => {
      const pusher = connect({ channelAuthorization: { transport: 'jsonp', endpoint } });
      // pusher-js's JSONP has no error path: a refusal leaves the
      // subscription pending.
      const r = await Promise.race([subscribe(pusher, 'private-user-alice'), new Promise((resolve) => setTimeout(() => resolve('pending'), 1500))]);
      show('private-user-alice: ' + (r === 'pending' ? 'no answer (refused)' : 'subscribed'), r === 'pending');
      return r === 'pending' ? r : r.ok;
    }, `${backend}/pusher/auth`);
    assert.equal(got, 'pending');
    const auth = [...wire.values()].filter((w) => w.url && w.url.startsWith(`${backend}/pusher/auth`));
    assert.equal(auth.length, 1, JSON.stringify([...wire.values()]));
    // A same-site script load (another port of the same host), with the
    // victim's session cookie: exactly what the origin check is for.
    assert.equal(auth[0].headers['Sec-Fetch-Site'], 'same-site');
    assert.equal(auth[0].headers.Referer, `${disallowed}/`);
    assert.match(auth[0].headers.Cookie || '', /session=/);
    assert.equal(auth[0].status, 403);
    await screenshot(p, 'jsonp-disallowed');
    await p.close();
  });

  it('CORS POST with a bearer token from an allowed origin, not from another', T, async () => {
    const token = await page.evaluate(async () => (await fetch('/token')).text());
    const results = {};
    for (const [name, origin] of [['allowed', allowed], ['disallowed', disallowed]]) {
      const p = await openOther(origin);
      results[name] = await p.evaluate(async ([endpoint, tok]) => {
        const pusher = connect({ channelAuthorization: { endpoint, headers: { Authorization: 'Bearer ' + tok } } });
        return (await subscribe(pusher, 'private-user-alice')).ok;
      }, [`${backend}/api/pusher/auth`, token]);
      await screenshot(p, `cors-${name}`);
      await p.close();
    }
    assert.deepEqual(results, { allowed: true, disallowed: false });
  });
});
