// The browser examples in headless Chromium: websocket_minimal shows its echo result;
// in websocket_chat two pages (Ana and Bo) talk, create a room, and see it all live;
// typed_browser's page (TypeScript, typed from Rust traits) makes every kind of call.
// Run from the repository root after building both examples in release:
//   node gotalk/js/e2e/examples.js [SCREENSHOT_DIR]
'use strict';
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const { launch } = require('./chromium');

const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache/gotalk-rs-target');
const shots = process.argv[2];

function start(example, addr) {
  const child = spawn(path.join(target, 'release/examples', example), [addr], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout.on('data', (d) => { if (String(d).includes('open http')) resolve(child); });
    setTimeout(() => reject(new Error(example + ' did not start')), 10000);
  });
}

(async () => {
  const minimal = await start('websocket_minimal', '127.0.0.1:17621');
  const chat = await start('websocket_chat', '127.0.0.1:17622');
  const typed = await start('typed_browser', '127.0.0.1:17623');
  const { context, close } = await launch({ viewport: { width: 900, height: 420 } });
  try {
    const page = context.pages()[0] || (await context.newPage());
    await page.goto('http://127.0.0.1:17621/');
    await page.waitForFunction(() => document.getElementById('out').textContent.startsWith('echo result'));
    assert.equal(await page.textContent('#out'), 'echo result: Hello world');
    console.log('ok - websocket_minimal: echo result: Hello world');
    if (shots) await page.screenshot({ path: path.join(shots, 'websocket_minimal.png') });

    const ana = page;
    const bo = await context.newPage();
    for (const [p, name] of [[ana, 'Ana'], [bo, 'Bo']]) {
      await p.goto('http://127.0.0.1:17622/');
      await p.waitForSelector('#status.online');
      await p.fill('#name', name);
    }
    await ana.fill('#text', 'Hi Bo! 👋');
    await ana.press('#text', 'Enter');
    await bo.waitForFunction(() => document.getElementById('messages').textContent.includes('Hi Bo!'));
    await bo.fill('#text', 'Hello Ana, let us talk in #gotalk');
    await bo.press('#text', 'Enter');
    await ana.waitForFunction(() => document.getElementById('messages').textContent.includes('Hello Ana'));
    await bo.fill('#new-room', 'gotalk');
    await bo.press('#new-room', 'Enter');
    await ana.waitForFunction(() => document.getElementById('rooms').textContent.includes('#gotalk'));
    await ana.click('text=#gotalk');
    await bo.fill('#text', 'Welcome to #gotalk');
    await bo.press('#text', 'Enter');
    await ana.waitForFunction(() => document.getElementById('messages').textContent.includes('Welcome to #gotalk'));
    const lobbyOnAna = await ana.evaluate(() => document.getElementById('messages').textContent);
    assert.ok(!lobbyOnAna.includes('Hi Bo'), 'only the current room is shown');
    await ana.click('text=#lobby');
    await ana.waitForFunction(() => document.getElementById('messages').textContent.includes('Hello Ana'));
    const lobby = await ana.$$eval('.msg', (ms) => ms.map((m) => m.textContent));
    assert.deepEqual(lobby, ['Ana: Hi Bo! 👋', 'Bo: Hello Ana, let us talk in #gotalk']);
    console.log('ok - websocket_chat: two pages talk, create a room and switch rooms');

    const typedPage = await context.newPage();
    await typedPage.goto('http://127.0.0.1:17623/');
    await typedPage.waitForFunction(() => window.result || window.failure);
    assert.equal(await typedPage.evaluate(() => window.failure), undefined);
    assert.deepEqual(await typedPage.evaluate(() => window.result), [
      'Hello Dr Ada (1)',
      'error: a name, please',
      'echo ✓',
      'ping: null',
      'round trip: equal',
      'radius 1.5',
      'area: 9',
      'area: no area',
      'area: negative side -2',
      'count: 1,2,3',
      'upper: A,B',
      'the page answered: Hello web, from the page',
      'server left: done',
    ]);
    console.log('ok - typed_browser: requests, an error, typed errors, streams both ways, notifications both ways, the server calling the page');
    if (shots) await typedPage.screenshot({ path: path.join(shots, 'typed_browser.png') });
    if (shots) {
      await ana.screenshot({ path: path.join(shots, 'chat-ana.png') });
      await bo.screenshot({ path: path.join(shots, 'chat-bo.png') });
    }
  } finally {
    await close();
    minimal.kill();
    chat.kill();
    typed.kill();
  }
})().catch((e) => {
  console.error('FAIL -', e);
  process.exit(1);
}).then(() => process.exit(process.exitCode || 0));
