'use strict';
// Runs the pusher@5.3.4 SDK's remote mocha tests against an already running
// server: node scripts/sdk-remote.js http://<key>:<secret>@127.0.0.1:<port>/apps/<numeric id>
// (or set PUSHER_URL). Exit status is mocha's.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const url = process.argv[2] || process.env.PUSHER_URL;
if (!url) {
  console.error('usage: node scripts/sdk-remote.js http://KEY:SECRET@HOST:PORT/apps/ID');
  process.exit(2);
}
const root = path.resolve(__dirname, '..');
const mocha = require.resolve('mocha/bin/mocha', { paths: [root] });
const sdkDir = path.dirname(require.resolve('pusher/package.json', { paths: [root] }));
const files = ['get.js', 'trigger.js'].map((f) => path.join(sdkDir, 'tests', 'remote', 'pusher', f));
const res = spawnSync(process.execPath, [mocha, '--timeout', '5000', ...files], {
  cwd: sdkDir, env: { ...process.env, PUSHER_URL: url }, stdio: 'inherit',
});
process.exit(res.status === null ? 1 : res.status);
