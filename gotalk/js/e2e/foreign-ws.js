// Gotalk over WebSocket with a client that is not ours and not a browser: Node's `ws`
// (from npm), which sends no Origin header, against conformance_peer's endpoint. It
// trades versions, makes a request (header and payload as separate messages, as gotalk.js
// sends them), and sends a notification answered by one from the server.
// Run from the repository root after building conformance_peer in release:
//   node gotalk/js/e2e/foreign-ws.js
'use strict';
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const WebSocket = require('ws');

const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache/gotalk-rs-target');
const addr = '127.0.0.1:17631';

function startPeer() {
  const child = spawn(path.join(target, 'release/examples/conformance_peer'), ['--ws', addr], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout.on('data', (d) => { if (String(d).includes('ws://')) resolve(child); });
    setTimeout(() => reject(new Error('conformance_peer did not start')), 10000);
  });
}

// The messages the server sends, in order, as text.
function inbox(ws) {
  const queue = [];
  const waiting = [];
  ws.on('message', (data) => {
    const text = data.toString('utf8');
    const next = waiting.shift();
    if (next) next(text); else queue.push(text);
  });
  return () => {
    if (queue.length) return Promise.resolve(queue.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message within 5 s')), 5000);
      waiting.push((text) => { clearTimeout(timer); resolve(text); });
    });
  };
}

const hex = (n, width) => n.toString(16).padStart(width, '0');

(async () => {
  const peer = await startPeer();
  try {
    const ws = new WebSocket(`ws://${addr}/gotalk/`);
    const next = inbox(ws);
    await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
    assert.equal(await next(), '01', 'the version, a message of its own');
    ws.send(Buffer.from('01'));

    const payload = JSON.stringify({ name: 'ws' });
    ws.send(Buffer.from(`r0001${hex(5, 3)}greet${hex(Buffer.byteLength(payload), 8)}`));
    ws.send(payload);
    const header = await next();
    assert.match(header, /^R0001[0-9a-f]{8}$/, header);
    const result = JSON.parse(await next());
    assert.equal(result.greeting, 'Hello ws');
    console.log('ok - node ws (no Origin): versions, a request: %j', result);

    const ping = '"from node"';
    ws.send(Buffer.from(`n${hex(4, 3)}ping${hex(ping.length, 8)}`));
    ws.send(ping);
    assert.equal(await next(), `n${hex(4, 3)}pong${hex(ping.length, 8)}`);
    assert.equal(await next(), ping);
    console.log('ok - node ws: a notification answered by one');

    await new Promise((resolve) => { ws.on('close', resolve); ws.close(1000); });
    console.log('ok - node ws: closed cleanly');
  } finally {
    peer.kill();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
