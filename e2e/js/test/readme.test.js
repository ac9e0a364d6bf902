'use strict';
// Every JavaScript snippet of the README runs as pasted against a Herald
// with no configuration (the development app), the port aside: the
// snippets say 6001, the test's Herald listens on a free one.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness');

const README = path.resolve(__dirname, '..', '..', '..', 'README.md');
const snippets = [...fs.readFileSync(README, 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

// What each snippet prints, in order.
const expected = [
  [/^bob joined presence-room$/m, /^alice got client-hello: \{ from: 'bob' \}$/m, /^members of presence-room: alice, bob$/m],
  [/^published: 200$/m],
];

describe('README snippets', () => {
  let server;
  before(async () => { server = await h.startHerald({ env: {} }); });
  after(async () => { if (server) await server.stop(); });

  it('are the ones this test knows', () => {
    assert.equal(snippets.length, expected.length, 'a README snippet was added or removed: say here what it prints');
  });

  snippets.forEach((code, i) => {
    it(`snippet ${i + 1} runs`, { timeout: 20000 }, async () => {
      // In e2e/js, so that require() finds pusher-js and pusher.
      const file = path.join(__dirname, '..', `.readme-snippet-${process.pid}-${i}.js`);
      fs.writeFileSync(file, code.replaceAll('6001', String(server.port)));
      try {
        const { stdout } = await new Promise((resolve, reject) => {
          execFile(process.execPath, [file], { timeout: 15000 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`snippet ${i + 1} failed: ${err.message}\n${stdout}\n${stderr}`));
            else resolve({ stdout });
          });
        });
        let at = 0;
        for (const re of expected[i] || []) {
          const m = re.exec(stdout.slice(at));
          assert.ok(m, `snippet ${i + 1}: no ${re} after offset ${at} in:\n${stdout}`);
          at += m.index + m[0].length;
        }
      } finally {
        fs.rmSync(file, { force: true });
      }
    });
  });
});
