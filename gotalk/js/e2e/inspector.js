// The inspector page in headless Chromium, used as a person would: typed_browser serves
// it (`Endpoint::inspector`) and describes itself (`Config::describe`). The page lists
// the operations from the description, calls one with a valid and an invalid payload,
// reads a stream of results and sends a stream request, sends a notification that makes
// the server call the page back and notify it, and logs every message both ways.
// Run from the repository root after building the example in release:
//   node gotalk/js/e2e/inspector.js [SCREENSHOT_DIR]
'use strict';
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const { launch } = require('./chromium');

const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache/gotalk-rs-target');
const shots = process.argv[2];
const addr = '127.0.0.1:17631';

function start() {
  const child = spawn(path.join(target, 'release/examples/typed_browser'), [addr], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout.on('data', (d) => { if (String(d).includes('open http')) resolve(child); });
    setTimeout(() => reject(new Error('typed_browser did not start')), 10000);
  });
}

(async () => {
  const server = await start();
  // A laptop's screen.
  const { context, close } = await launch({ viewport: { width: 1280, height: 800 } });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Offline: nothing but this server is asked for.
    const elsewhere = [];
    page.on('request', (r) => { if (!r.url().includes(addr)) elsewhere.push(r.url()); });
    await page.goto(`http://${addr}/inspector`);
    await page.waitForSelector('#status.open');
    await page.waitForFunction(() => document.querySelectorAll('#operations button').length > 0);
    const listed = await page.$$eval('#operations button', (bs) => bs.map((b) => b.dataset.op));
    assert.deepEqual(listed, ['chat message', 'event', 'echo', 'greet', 'ping', 'shapes.area',
      'shapes.count', 'shapes.round_trip', 'shapes.upper']);
    const services = await page.$$eval('#operations .service', (ls) => ls.map((l) => l.textContent));
    assert.deepEqual(services, ['Chat', 'Greet', 'Shapes']);
    console.log('ok - the operations the server describes, by service');

    // greet: its docs, and its input prefilled from the schema.
    await page.click('#operations button[data-op="greet"]');
    assert.equal(await page.textContent('#signature'), 'greet(GreetIn) -> Result<GreetOut, Error>');
    assert.equal(await page.textContent('#docs'), 'Greets one person.');
    assert.deepEqual(JSON.parse(await page.inputValue('#payload')), { firstName: '', title: '' });
    const results = () => page.$$eval('#results > li', (ls) => ls.map((l) => l.textContent));

    // A valid payload: the result.
    await page.fill('#payload', '{"firstName": "Ana", "title": "Dr"}');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelector('#results > li')?.textContent.includes('done'));
    assert.match((await results())[0], /result: \{\s*"greeting": "Hello Dr Ana",\s*"n": 1\s*\}/);
    // An invalid one: the server's error, as the page shows it.
    await page.fill('#payload', '{"firstName": 5}');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelectorAll('#results > li').length === 2 &&
      document.querySelector('#results > li .error'));
    const refused = await page.textContent('#results > li .error');
    assert.match(refused, /^error: invalid input for "greet": invalid type: integer `5`, expected a string/);
    // Not JSON: said on the page, nothing sent.
    const logged = await page.$$eval('#log span', (s) => s.length);
    await page.fill('#payload', '{"firstName": ');
    await page.click('#send');
    assert.match(await page.textContent('#payload-error'), /^the payload is not JSON/);
    assert.equal(await page.$$eval('#log span', (s) => s.length), logged);
    console.log('ok - a call with a valid payload, an invalid one, and one that is not JSON');

    // A stream of results (sent with Ctrl+Enter): each part as it comes.
    await page.click('#operations button[data-op="shapes.count"]');
    await page.fill('#payload', '3');
    await page.press('#payload', 'Control+Enter');
    await page.waitForFunction(() => document.querySelector('#results > li')?.textContent.includes('end of the stream'));
    assert.match((await results())[0], /part 1: 1part 2: 2part 3: 3end of the stream \(3 parts\)$/);
    // A stream request: its parts one per line.
    await page.click('#operations button[data-op="shapes.upper"]');
    assert.equal(await page.inputValue('#payload'), '""\n""');
    await page.fill('#payload', '"a"\n"b"\n');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelector('#results > li')?.textContent.includes('end of the stream'));
    assert.match((await results())[0], /part 1: "A"part 2: "B"end of the stream \(2 parts\)$/);
    console.log('ok - a stream of results and a stream request');

    // A notification: the server calls the page's `greet` (which the inspector refuses),
    // then notifies the page twice.
    await page.click('#operations button[data-op="chat message"]');
    assert.equal(await page.textContent('#send'), 'Notify');
    await page.fill('#payload', '"web"');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelectorAll('#notifications li:not(#no-notifications)').length === 2);
    const notes = await page.$$eval('#notifications li:not(#no-notifications)', (ls) => ls.map((l) => l.textContent));
    assert.match(notes[1], /chat message"the page failed: the inspector page serves no operations/);
    assert.match(notes[0], /event\{\s*"kind": "left",\s*"user": "server",\s*"reason": "done"\s*\}/);
    console.log('ok - the server notifies the page and calls it back');

    // The log: every message both ways, in the words of `gotalk trace`.
    const log = await page.textContent('#log');
    for (const expected of [
      '→ extension hello: cancel deadline ws-stream',
      '← extension hello: cancel deadline ws-stream describe',
      '→ r 0000 gotalk:describe 0',
      '→ r 0001 greet 32 {"firstName":"Ana","title":"Dr"}',
      '← R 0001 33 {"greeting":"Hello Dr Ana","n":1}',
      '→ r 0002 greet 15 {"firstName":5}',
      '← E 0002 ',
      '← S 0003 1 1',
      '← S 0003 0',
      '→ s !000 shapes.upper 3 "a"',
      '→ p !000 3 "b"',
      '→ p !000 0',
      '→ n chat message 5 "web"',
      '← r 0000 greet 19 {"firstName":"web"}',
      '→ E 0000 ',
      '← extension deadline 0000 30000 ms',
      '← n event 47 {"kind":"left","user":"server","reason":"done"}',
    ]) {
      assert.ok(log.includes(expected), `the log has ${JSON.stringify(expected)}:\n${log}`);
    }
    console.log('ok - the log shows every message both ways');
    assert.deepEqual(errors, []);
    assert.deepEqual(elsewhere, []);
    if (shots) {
      await page.screenshot({ path: path.join(shots, 'inspector.png') });
      console.log(`screenshot: ${path.join(shots, 'inspector.png')}`);
    }
  } finally {
    await close();
    server.kill();
  }
})().catch((e) => {
  console.error('FAIL -', e);
  process.exit(1);
}).then(() => process.exit(process.exitCode || 0));
