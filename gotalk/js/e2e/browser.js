// End-to-end tests of gotalk.js in headless Chromium (Debian's, driven by playwright-core)
// against the Rust server (`conformance_peer --ws`). Run from the repository root after
// building the peer:  node gotalk/js/e2e/browser.js
// Env: GOTALK_PEER (the conformance_peer binary), CHROMIUM (default /usr/bin/chromium),
// GOTALK_E2E_URL (test through a proxy at this URL instead of the peer directly),
// GOTALK_E2E_SCREENSHOT (a PNG path).
'use strict';
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const { launch } = require('./chromium');

const root = path.resolve(__dirname, '../../..');
const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache/gotalk-rs-target');
const peerBin = process.env.GOTALK_PEER || path.join(target, 'release/examples/conformance_peer');
const port = Number(process.env.GOTALK_E2E_PORT || 17611);
const base = process.env.GOTALK_E2E_URL || `http://127.0.0.1:${port}`;

let peer = null;
async function startPeer() {
  peer = spawn(peerBin, ['--ws', `127.0.0.1:${port}`, '--files', path.join(__dirname, 'page')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    peer.on('error', reject);
    peer.stdout.on('data', (d) => { if (String(d).includes('ws://')) resolve(); });
    setTimeout(() => reject(new Error('the peer did not start')), 10000);
  });
}
async function stopPeer() {
  if (!peer) return;
  const p = peer;
  peer = null;
  p.kill('SIGKILL');
  await new Promise((resolve) => p.on('exit', resolve));
}

const results = [];
async function check(name, fn) {
  try {
    await fn();
    results.push(['ok', name]);
    console.log('ok -', name);
  } catch (e) {
    results.push(['FAIL', name, e]);
    console.log('FAIL -', name, '\n', e);
  }
}

(async () => {
  await startPeer();
  const { context, close } = await launch();
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error') console.log('page:', m.text()); });
  try {
    await page.goto(`${base}/index.html`);
    await page.waitForFunction(() => window.opens === 1, null, { timeout: 10000 });

    await check('the script derives its socket address from its own URL', async () => {
      const addr = await page.evaluate(() => gotalk.defaultResponderAddress);
      assert.equal(addr, base.replace(/^http/, 'ws') + '/gotalk/');
    });
    await check('a JSON request and its result', async () => {
      const out = await page.evaluate(() => sock.request('greet', { name: 'Browser \ud83c\udf0d' }));
      assert.deepEqual(out, { greeting: 'Hello Browser \ud83c\udf0d' });
    });
    await check('a buffer request and its result', async () => {
      const out = await page.evaluate(async () =>
        Array.from(await sock.bufferRequest('bytes', new Uint8Array([0, 1, 2, 255]))));
      assert.deepEqual(out, [0, 1, 2, 255]);
    });
    await check('an error result rejects with the server\'s text', async () => {
      const out = await page.evaluate(() => sock.request('fail', null).then(() => 'resolved', (e) => e.message));
      assert.equal(out, 'boom');
    });
    await check('a stream request and its stream result', async () => {
      const out = await page.evaluate(() => new Promise((resolve, reject) => {
        const got = [];
        const st = sock.streamRequest('stream-echo');
        st.on('data', (b) => got.push(new TextDecoder().decode(b)));
        st.on('end', () => resolve(got));
        st.on('error', reject);
        st.write('one');
        st.write('two');
        st.end();
      }));
      assert.deepEqual(out, ['one', 'two']);
    });
    await check('the server calls an operation the page handles', async () => {
      const out = await page.evaluate(async () =>
        new TextDecoder().decode(await sock.bufferRequest('call-back', 'from the page')));
      assert.equal(out, 'from the page');
    });
    await check('notifications both ways', async () => {
      await page.evaluate(() => sock.request('notify-me', 'hi'));
      await page.evaluate(() => sock.notify('ping', { n: 1 }));
      await page.waitForFunction(() => received.length >= 2, null, { timeout: 5000 });
      const got = await page.evaluate(() => received);
      assert.deepEqual(got, [['hello', 'hi'], ['pong', { n: 1 }]]);
    });
    await check('a call given up in the page is cancelled at the server (EXTENSIONS.md)', async () => {
      const out = await page.evaluate(async () => {
        const before = await sock.request('abandoned', null);
        const ac = new AbortController();
        const call = sock.request('sleep', { ms: 8000 }, { signal: ac.signal });
        await new Promise((r) => setTimeout(r, 100));
        ac.abort(new Error('the user left'));
        const why = await call.then(() => 'resolved', (e) => e.message);
        for (let i = 0; i < 50; i++) {
          const now = await sock.request('abandoned', null);
          if (now > before) return [why, now - before];
          await new Promise((r) => setTimeout(r, 50));
        }
        return [why, 0];
      });
      assert.deepEqual(out, ['the user left', 1]);
    });
    await check('a timeout in the page is the handler\'s deadline at the server', async () => {
      const left = await page.evaluate(() => sock.request('deadline', null, { timeout: 3000 }));
      assert.ok(left > 2000 && left <= 3000, `deadline ${left} ms`);
      const none = await page.evaluate(() => sock.request('deadline', null));
      assert.equal(none, null);
    });
    await check('reconnects after the server restarts, and sends what was queued meanwhile', async () => {
      await stopPeer();
      await page.waitForFunction(() => !sock.isOpen, null, { timeout: 5000 });
      // Made while the server is down: queued, sent once the socket is open again.
      await page.evaluate(() => { window.queued = sock.request('greet', { name: 'later' }); });
      await startPeer();
      await page.waitForFunction(() => window.opens === 2, null, { timeout: 15000 });
      const out = await page.evaluate(() => window.queued);
      assert.deepEqual(out, { greeting: 'Hello later' });
    });
    if (process.env.GOTALK_E2E_SCREENSHOT) {
      await page.screenshot({ path: process.env.GOTALK_E2E_SCREENSHOT });
    }
  } finally {
    await close();
    await stopPeer();
  }
  const failed = results.filter((r) => r[0] !== 'ok');
  console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
  process.exit(failed.length ? 1 : 0);
})().catch(async (e) => {
  console.error(e);
  await stopPeer();
  process.exit(1);
});
