// websocket_chat across two nodes sharing Redis, behind nginx, in headless Chromium: two
// pages on different nodes talk and see the same rooms; then one node stops, its page
// reconnects through nginx to the other node, and the conversation goes on.
// Needs redis-server, nginx, /usr/bin/chromium, `npm ci` in gotalk/js, and
//   cargo build --release --example websocket_chat --features redis
// Run from the repository root: node gotalk/js/e2e/scale.js [SCREENSHOT_DIR]
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const { launch } = require('./chromium');

const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache/gotalk-rs-target');
const shots = process.argv[2];
const REDIS = 17650, NODE_A = 17651, NODE_B = 17652, DOOR_A = 17653, DOOR_B = 17654;

const children = [];
// What the chat nodes log (connections at debug), shown if the test fails.
const logs = {};
function run(cmd, args, name) {
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', name ? 'pipe' : 'inherit'],
    env: { ...process.env, RUST_LOG: 'gotalk=debug' },
  });
  if (name) {
    logs[name] = '';
    child.stderr.on('data', (d) => { logs[name] += d; });
  }
  children.push(child);
  return child;
}

function listening(port) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10000;
    const attempt = () => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(); });
      s.on('error', () => {
        if (Date.now() > deadline) reject(new Error('nothing listens on ' + port));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function node(port, name) {
  return run(path.join(target, 'release/examples/websocket_chat'),
    ['127.0.0.1:' + port, '--redis', 'redis://127.0.0.1:' + REDIS + '/'], name);
}

async function openPage(context, door, name) {
  const page = await context.newPage();
  await page.goto('http://127.0.0.1:' + door + '/');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'online', null, poll);
  await page.fill('#name', name);
  await page.dispatchEvent('#name', 'change');
  return page;
}

const text = (page, id) => page.evaluate((id) => document.getElementById(id).textContent, id);
// Polled on a timer: a page in the background gets few animation frames.
const poll = { polling: 100, timeout: 20000 };
const waitFor = (page, id, s) =>
  page.waitForFunction(([id, s]) => document.getElementById(id).textContent.includes(s), [id, s], poll);

async function say(page, words) {
  await page.fill('#text', words);
  await page.press('#text', 'Enter');
}

(async () => {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'gotalk-scale-'));
  for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(prefix, dir));
  const conf = fs.readFileSync(path.join(__dirname, 'nginx-scale.conf'), 'utf8')
    .replaceAll('PREFIX', prefix)
    .replaceAll('DOOR_A', '127.0.0.1:' + DOOR_A).replaceAll('DOOR_B', '127.0.0.1:' + DOOR_B)
    .replace(/\bA\b(?= max_fails| backup)/g, '127.0.0.1:' + NODE_A)
    .replace(/\bB\b(?= max_fails| backup)/g, '127.0.0.1:' + NODE_B);
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), conf);

  run('redis-server', ['--bind', '127.0.0.1', '--port', String(REDIS), '--save', '', '--appendonly', 'no']);
  await listening(REDIS);
  const a = node(NODE_A, 'node A');
  node(NODE_B, 'node B');
  run('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-g', 'daemon off;']);
  for (const port of [NODE_A, NODE_B, DOOR_A, DOOR_B]) await listening(port);

  const { context, close } = await launch({ viewport: { width: 900, height: 420 } });
  try {
    const ana = await openPage(context, DOOR_A, 'Ana'); // on node A
    const bo = await openPage(context, DOOR_B, 'Bo'); // on node B

    await say(ana, 'Hi Bo, from node A');
    await waitFor(bo, 'messages', 'Hi Bo, from node A');
    await say(bo, 'Hello Ana, from node B');
    await waitFor(ana, 'messages', 'Hello Ana, from node B');
    console.log('ok - pages on two nodes talk through Redis');

    // A room made on node B: node A's page hears of it, and joins it there.
    await bo.fill('#new-room', 'scale');
    await bo.press('#new-room', 'Enter');
    await waitFor(ana, 'rooms', '#scale');
    await ana.click('text=#scale');
    await waitFor(ana, 'title', '#scale');
    await waitFor(bo, 'title', '#scale');
    assert.equal(await text(ana, 'rooms'), await text(bo, 'rooms'));
    assert.equal(await text(ana, 'rooms'), '#lobby#random#rust#scale');
    await say(bo, 'Welcome to #scale');
    await waitFor(ana, 'messages', 'Welcome to #scale');
    console.log('ok - both nodes see the same rooms: ' + (await text(ana, 'rooms')));

    // Node A stops: Ana's page goes offline and reconnects through nginx to node B;
    // Bo's page, on node B, never notices.
    // Each page notes any moment it is not online (a reconnect can be quicker than a
    // poll from here).
    const watchStatus = (page) => page.evaluate(() => {
      window.wentOffline = false;
      new MutationObserver(() => {
        if (document.getElementById('status').textContent !== 'online') window.wentOffline = true;
      }).observe(document.getElementById('status'), { childList: true, characterData: true, subtree: true });
    });
    await watchStatus(ana);
    await watchStatus(bo);
    a.kill('SIGTERM');
    await ana.waitForFunction(() => window.wentOffline === true, null, poll);
    await ana.waitForFunction(() => document.getElementById('status').textContent === 'online', null, poll);
    // Back in its room, with its history, now from node B.
    await waitFor(ana, 'messages', 'Welcome to #scale');
    await say(ana, 'Still here, through node B');
    await waitFor(bo, 'messages', 'Still here, through node B');
    await waitFor(ana, 'messages', 'Still here, through node B');
    assert.equal(await bo.evaluate(() => window.wentOffline), false, "Bo's page stayed connected");
    console.log('ok - node A stopped: its page reconnected through nginx to node B and the conversation goes on');
    if (shots) {
      await ana.screenshot({ path: path.join(shots, 'scale-ana.png') });
      await bo.screenshot({ path: path.join(shots, 'scale-bo.png') });
    }
  } finally {
    await close();
    for (const child of children) child.kill('SIGTERM');
    fs.rmSync(prefix, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error('FAIL -', e);
  for (const [name, log] of Object.entries(logs)) {
    console.error(`--- ${name} (last lines)\n` + log.split('\n').slice(-40).join('\n'));
  }
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
});
