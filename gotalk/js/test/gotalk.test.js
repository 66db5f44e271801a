// Unit tests of gotalk.js with node's test runner: `node --test gotalk/js/test/`.
// A fake WebSocket records what the library sends and feeds it what a server would.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const gotalk = require('../gotalk.js');
const { encodeHeader, Parser, IdGen, utf8 } = gotalk._internal;

class FakeWebSocket {
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeWebSocket.last = this;
    setTimeout(() => this.onopen && this.onopen(), 0);
  }
  send(data) {
    this.sent.push(typeof data === 'string' ? 'text:' + data : Buffer.from(data).toString());
  }
  close(code) {
    if (this.closed) return;
    this.closed = true;
    setTimeout(() => this.onclose && this.onclose({ code: code || 1000 }), 0);
  }
  receive(s) { this.onmessage({ data: new TextEncoder().encode(s).buffer }); }
  receiveText(s) { this.onmessage({ data: s }); }
}
gotalk.WebSocket = FakeWebSocket;

const tick = () => new Promise((r) => setTimeout(r, 5));

// What the page announces right after its version (EXTENSIONS.md).
const HELLO = ['n00cgotalk:hello00000019', 'cancel deadline ws-stream'];

async function openSock(handlers) {
  const s = new gotalk.Sock(handlers || new gotalk.Handlers());
  s.heartbeatInterval = 0;
  await new Promise((resolve, reject) => s.open('ws://test/gotalk/', (err) => (err ? reject(err) : resolve())));
  const ws = FakeWebSocket.last;
  ws.receive('01');
  assert.deepEqual(ws.sent.slice(1, 3), HELLO, 'the extension is announced after the version');
  ws.sent.splice(1, 2);
  return { s, ws };
}

test('headers encode as the reference bytes, and parse back from any pieces', () => {
  const cases = [
    [encodeHeader('r', '0001', 'echo', 5), 'r0001004echo00000005'],
    [encodeHeader('s', '!001', 'up', 0), 's!001002up00000000'],
    [encodeHeader('p', '!001', null, 3), 'p!00100000003'],
    [encodeHeader('R', '0001', null, 255), 'R0001000000ff'],
    [encodeHeader('S', '0001', null, 0), 'S000100000000'],
    [encodeHeader('E', '0001', null, 4), 'E000100000004'],
    [encodeHeader('e', '0001', null, 4, 500), 'e0001000001f400000004'],
    [encodeHeader('n', null, 'note', 2), 'n004note00000002'],
    [encodeHeader('h', null, null, 2, 0x5a), 'h00020000005a'],
    [encodeHeader('f', null, null, 3), 'f00000003'],
  ];
  for (const [got, want] of cases) assert.equal(got, want);
  const stream = '01r0001004echo00000005helloR000100000002OKn004note00000000h00020000005aE0001000000011';
  const p = new Parser();
  const out = [];
  for (const ch of utf8(stream)) {
    p.push(Uint8Array.of(ch));
    let m;
    while ((m = p.next())) out.push(m);
  }
  assert.deepEqual(out.map((m) => m.t), ['r', 'R', 'n', 'h', 'E']);
  assert.equal(out[0].name, 'echo');
  assert.equal(Buffer.from(out[0].payload).toString(), 'hello');
  assert.equal(out[3].load, 2);
  assert.equal(out[3].time, 0x5a);
  assert.equal(Buffer.from(out[4].payload).toString(), '1');
});

test('invalid input is a protocol error as soon as it arrives', () => {
  const p = new Parser();
  p.push(utf8('01R00010000zz'));
  assert.throws(() => p.next(), (e) => e.isGotalkProtocolError && e.code === 2);
  const q = new Parser();
  q.push(utf8('02'));
  assert.throws(() => q.next(), (e) => e.code === 1);
  const r = new Parser();
  r.push(utf8('01x'));
  assert.throws(() => r.next(), (e) => e.code === 2);
});

test('request IDs are four base-36 characters; stream IDs ! and three', () => {
  const ids = new IdGen(4, '', 36 ** 4);
  assert.equal(ids.next(), '0000');
  assert.equal(ids.next(), '0001');
  for (let i = 2; i < 36; i++) ids.next();
  assert.equal(ids.next(), '0010');
  const streams = new IdGen(3, '!', 36 ** 3);
  assert.equal(streams.next(), '!000');
});

test('the version, each header and each payload are separate messages', async () => {
  const { s, ws } = await openSock();
  assert.deepEqual(ws.sent, ['01']);
  const result = s.request('greet', 'Bo');
  assert.deepEqual(ws.sent.slice(1), ['r0000005greet00000004', '"Bo"']);
  ws.receive('R00000000000a"Hello Bo"');
  assert.equal(await result, 'Hello Bo');
  s.bufferRequest('ping', new Uint8Array(0)).catch(() => {});
  assert.deepEqual(ws.sent.slice(3), ['r0001004ping00000000'], 'no message for an empty payload');
  s.close();
});

test('sizes count UTF-8 bytes exactly, emoji included', async () => {
  const { s, ws } = await openSock();
  s.request('echo', 'h\u00e9 \ud83c\udf0d').catch(() => {});
  const json = '"h\u00e9 \ud83c\udf0d"';
  assert.equal(Buffer.byteLength(json), 10);
  assert.equal(ws.sent[1], 'r0000004echo0000000a');
  assert.equal(ws.sent[2], json);
  s.close();
});

test('results are matched to requests in any order; errors and retries reject', async () => {
  const { s, ws } = await openSock();
  const a = s.request('a', 1);
  const b = s.request('b', 2);
  const c = s.request('c', 3);
  const d = s.request('d', 4);
  ws.receive('R000100000001' + '2');
  ws.receive('R00000000000111'.slice(0, 13) + '1');
  ws.receive('E000200000004nope');
  ws.receive('e0003000001f400000011request rate limit'.slice(0, 21 + 17));
  assert.equal(await b, 2);
  assert.equal(await a, 1);
  await assert.rejects(c, (e) => e.isGotalkRemoteError && e.message === 'nope');
  await assert.rejects(d, (e) => e.isGotalkRetry && e.retryAfter === 500);
  s.close();
});

test('a callback gets the result too', async () => {
  const { s, ws } = await openSock();
  const got = new Promise((resolve) => s.request('x', null, (err, v) => resolve([err, v])));
  ws.receive('R000000000004true');
  assert.deepEqual(await got, [null, true]);
  s.close();
});

test('the server calls handlers in the page: JSON, buffer, promise, error, unknown', async () => {
  const h = new gotalk.Handlers();
  h.handleRequest('greet', (p, result) => result({ greeting: 'Hello ' + p.name }));
  h.handleBufferRequest('raw', (buf, result) => result(buf));
  h.handleRequest('later', async (n) => n * 2);
  h.handleRequest('fail', () => { throw new Error('broken'); });
  const { s, ws } = await openSock(h);
  ws.receive('r0001005greet0000000e{"name":"Ana"}');
  ws.receive('r0002003raw00000003abc');
  ws.receive('r0003005later0000000221');
  ws.receive('r0004004fail00000000');
  ws.receive('r0005004nope00000000');
  await tick();
  const sent = ws.sent.slice(1);
  const pairs = [];
  for (let i = 0; i < sent.length; i++) {
    const size = parseInt(sent[i].slice(5, 13), 16);
    pairs.push(sent[i] + (size ? ' ' + sent[++i] : ''));
  }
  assert.deepEqual(pairs.sort(), [
    'E000400000006 broken',
    'E000500000018 unknown operation "nope"',
    'R000100000018 {"greeting":"Hello Ana"}',
    'R000200000003 abc',
    'R000300000002 42',
  ]);
  s.close();
});

test('typed errors: a JSON error result carries its value as data, and a handler sends one', async () => {
  const h = new gotalk.Handlers();
  h.handleRequest('get', (key, result) => result.error({ data: { NotFound: { key: key } } }));
  h.handleRequest('thrown', () => { const e = new Error('full'); e.data = 'Full'; throw e; });
  const { s, ws } = await openSock(h);
  const hex8 = (n) => n.toString(16).padStart(8, '0');
  const error = (id, text) => 'E' + id + hex8(Buffer.byteLength(text)) + text;
  const typed = s.request('a', null);
  const plain = s.request('b', null);
  ws.receive(error('0000', '{"NotFound":{"key":"k"}}'));
  ws.receive(error('0001', 'key not found'));
  await assert.rejects(typed, (e) => e.isGotalkRemoteError &&
    e.message === '{"NotFound":{"key":"k"}}' && e.data.NotFound.key === 'k');
  await assert.rejects(plain, (e) => e.isGotalkRemoteError && e.message === 'key not found' && e.data === undefined);
  const before = ws.sent.length;
  ws.receive('r0001003get00000003"m"');
  ws.receive('r0002006thrown00000000');
  await tick();
  assert.deepEqual(ws.sent.slice(before), [
    'E000100000018', '{"NotFound":{"key":"m"}}',
    'E000200000006', '"Full"',
  ]);
  s.close();
});

test('notifications both ways; unknown ones are ignored', async () => {
  const seen = [];
  const h = new gotalk.Handlers();
  h.handleNotification('chat', (msg, name) => seen.push([name, msg]));
  const { s, ws } = await openSock(h);
  ws.receive('n004chat00000007"hello"n005other00000002{}');
  assert.deepEqual(seen, [['chat', 'hello']]);
  s.notify('typing', { on: true });
  assert.deepEqual(ws.sent.slice(1), ['n006typing0000000b', '{"on":true}']);
  s.close();
});

test('a stream request writes parts and reads stream results', async () => {
  const { s, ws } = await openSock();
  const st = s.streamRequest('upper');
  const data = [];
  const ended = new Promise((resolve) => st.on('end', resolve));
  st.on('data', (b) => data.push(Buffer.from(b).toString()));
  st.write('ab');
  st.write('cd');
  st.end();
  assert.deepEqual(ws.sent.slice(1), [
    's!000005upper00000002', 'ab', 'p!00000000002', 'cd', 'p!00000000000',
  ]);
  ws.receive('S!00000000002AB');
  ws.receive('S!00000000002CD');
  ws.receive('S!00000000000');
  await ended;
  assert.deepEqual(data, ['AB', 'CD']);
  s.close();
});

test('the server may answer a single request with a stream result', async () => {
  const { s, ws } = await openSock();
  const r = s.bufferRequest('count', new Uint8Array(0));
  ws.receive('S000000000001' + '1' + 'S000000000001' + '2' + 'S000000000000');
  assert.equal(Buffer.from(await r).toString(), '12');
  s.close();
});

test('streamResults reads a stream result part by part, and a single result as one', async () => {
  const { s, ws } = await openSock();
  const parts = [];
  const st = s.streamResults('count', 2);
  const ended = new Promise((resolve, reject) => { st.on('end', resolve); st.on('error', reject); });
  st.on('data', (b) => parts.push(Buffer.from(b).toString()));
  await tick();
  assert.deepEqual(ws.sent.slice(1), ['r0000005count00000001', '2']);
  ws.receive('S000000000001' + '1');
  await tick();
  assert.deepEqual(parts, ['1'], 'a part is delivered before the stream ends');
  ws.receive('S000000000001' + '2' + 'S000000000000');
  await ended;
  assert.deepEqual(parts, ['1', '2']);
  const one = s.streamResults('greet', { name: 'x' });
  const got = [];
  one.on('data', (b) => got.push(Buffer.from(b).toString()));
  const oneEnded = new Promise((resolve) => one.on('end', resolve));
  await tick();
  ws.receive('R000100000002' + '{}');
  await oneEnded;
  assert.deepEqual(got, ['{}']);
  const failing = s.streamResults('fail', null);
  const failed = new Promise((resolve) => failing.on('error', resolve));
  await tick();
  ws.receive('E000200000004' + 'boom');
  assert.equal((await failed).message, 'boom');
  s.close();
});

test('requests made while connecting are sent once open, up to sendBufferLimit', async () => {
  const s = new gotalk.Sock(new gotalk.Handlers());
  s.heartbeatInterval = 0;
  s.sendBufferLimit = 2;
  s.open('ws://test/gotalk/');
  const ws = FakeWebSocket.last;
  const a = s.request('a', 1);
  const b = s.request('b', 2);
  const c = s.request('c', 3);
  await assert.rejects(c, /socket is closed/);
  await tick();
  assert.deepEqual(ws.sent, ['01', ...HELLO, 'r0000001a00000001', '1', 'r0001001b00000001', '2']);
  ws.receive('01R000000000001xR000100000001y'.replace('x', '1').replace('y', '2'));
  assert.deepEqual([await a, await b], [1, 2]);
  s.close();
});

test('garbage from the server is answered with protocol error 2 and a close', async () => {
  const { s, ws } = await openSock();
  const pending = s.request('x', 1);
  const closed = new Promise((resolve) => s.on('close', resolve));
  ws.receive('Q0000');
  assert.equal(ws.sent[ws.sent.length - 1], 'f00000002');
  const err = await closed;
  assert.equal(err.code, 2);
  await assert.rejects(pending);
});

test('text frames from the server are read like binary ones', async () => {
  const { s, ws } = await openSock();
  const r = s.request('x', 1);
  ws.receiveText('R000000000002');
  ws.receiveText('{}');
  assert.deepEqual(await r, {});
  s.close();
});

test('keep-alive reconnects after a close, with IDs from 0000 again', async () => {
  const s = new gotalk.Sock(new gotalk.Handlers());
  s.heartbeatInterval = 0;
  const opened = [];
  s.on('open', () => opened.push(FakeWebSocket.last));
  s.openKeepAlive('ws://test/gotalk/');
  await tick();
  const first = opened[0];
  first.receive('01');
  const lost = s.request('a', 1);
  first.onclose({ code: 1006 }); // the server went away
  await assert.rejects(lost, /connection closed \(1006\)/);
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(opened.length, 2, 'reconnected');
  const second = opened[1];
  s.request('b', 2).catch(() => {});
  assert.deepEqual(second.sent, ['01', ...HELLO, 'r0000001b00000001', '2']);
  s.close();
});

test('keep-alive backs off against a server that accepts and closes at once', async () => {
  const s = new gotalk.Sock(new gotalk.Handlers());
  s.heartbeatInterval = 0;
  // The waits the library asks for are recorded, and waited 1 ms instead.
  const realSetTimeout = global.setTimeout;
  const waits = [];
  global.setTimeout = (fn, ms) => {
    if (ms >= 100) waits.push(ms);
    return realSetTimeout(fn, ms >= 100 ? 1 : ms);
  };
  try {
    let opened = 0;
    s.on('open', () => {
      opened += 1;
      const ws = FakeWebSocket.last;
      ws.receive('01');
      if (opened === 8) s.close(); // enough: no more attempts
      else ws.onclose({ code: 1006 });
    });
    s.openKeepAlive('ws://test/gotalk/');
    while (opened < 8) await new Promise((r) => realSetTimeout(r, 5));
  } finally {
    global.setTimeout = realSetTimeout;
  }
  // Each wait is 50–100 % of a delay that doubles from 500 ms up to 30 s.
  waits.slice(0, 7).forEach((ms, i) => {
    const full = Math.min(500 * 2 ** i, 30000);
    assert.ok(ms >= full / 2 && ms <= full, `wait ${i}: ${ms} ms of ${full}`);
  });
});

test('end() closes once pending results are in', async () => {
  const { s, ws } = await openSock();
  const r = s.request('slow', 1);
  s.end();
  await tick();
  assert.ok(!ws.closed, 'waits for the pending result');
  ws.receive('R000000000001' + '5');
  assert.equal(await r, 5);
  await tick();
  assert.ok(ws.closed);
});

test('heartbeats carry the load and the time', async () => {
  const { s, ws } = await openSock();
  const beats = [];
  s.on('heartbeat', (hb) => beats.push(hb));
  ws.receive('h8000' + (1700000000).toString(16).padStart(8, '0'));
  assert.equal(beats.length, 1);
  assert.equal(beats[0].time.getTime(), 1700000000 * 1000);
  s.sendHeartbeat(1);
  assert.match(ws.sent[ws.sent.length - 1], /^hffff[0-9a-f]{8}$/);
  s.close();
});

// ---- the protocol extension: cancellation and deadlines (EXTENSIONS.md) ----------------

test('a server that never announces receives nothing new: no deadline, no cancel', async () => {
  const { s, ws } = await openSock();
  const ac = new AbortController();
  const r = s.request('slow', 1, { signal: ac.signal, timeout: 50 });
  ac.abort();
  await assert.rejects(r, { name: 'AbortError' });
  await assert.rejects(s.request('slow', 2, { timeout: 10 }), { name: 'TimeoutError' });
  assert.deepEqual(ws.sent, ['01', 'r0000004slow00000001', '1', 'r0001004slow00000001', '2']);
  s.close();
});

test('once the server announced: a timeout goes as the deadline, giving up cancels', async () => {
  const { s, ws } = await openSock();
  ws.receive('n00cgotalk:hello0000000fcancel deadline');
  const r = s.request('slow', 1, { timeout: 30 });
  assert.deepEqual(ws.sent.slice(1), [
    'n00fgotalk:deadline00000007', '0000 30', 'r0000004slow00000001', '1',
  ]);
  await assert.rejects(r, /no result within 30 ms/);
  assert.deepEqual(ws.sent.slice(5), ['n00dgotalk:cancel00000004', '0000']);
  // A result that crossed the cancel on the wire is dropped.
  ws.receive('R000000000001' + '7');
  // An AbortSignal: rejected with its reason, the server told.
  const ac = new AbortController();
  const r2 = s.request('slow', 2, { signal: ac.signal });
  ac.abort(new Error('user left'));
  await assert.rejects(r2, /user left/);
  assert.deepEqual(ws.sent.slice(7), ['r0001004slow00000001', '2', 'n00dgotalk:cancel00000004', '0001']);
  // A call that got its result is not cancelled.
  const r3 = s.request('fast', 3, { timeout: 1000, signal: new AbortController().signal });
  ws.receive('R000200000001' + '3');
  assert.equal(await r3, 3);
  assert.equal(ws.sent.filter((m) => m.startsWith('n00dgotalk:cancel')).length, 2);
  s.close();
});

test('streamResults and streamRequest can be aborted', async () => {
  const { s, ws } = await openSock();
  ws.receive('n00cgotalk:hello00000006cancel');
  const ticks = s.streamResults('ticks', null);
  const got = [];
  const errored = new Promise((resolve) => ticks.on('error', resolve));
  ticks.on('data', (b) => got.push(Buffer.from(b).toString()));
  ws.receive('S000000000001a');
  ticks.abort();
  assert.equal((await errored).name, 'AbortError');
  ws.receive('S000000000001b'); // still on its way: dropped
  assert.deepEqual(got, ['a']);
  const up = s.streamRequest('up', { signal: AbortSignal.abort(new Error('no')) });
  const upErr = new Promise((resolve) => up.on('error', resolve));
  up.write('x');
  assert.match((await upErr).message, /no/);
  assert.deepEqual(ws.sent.slice(1), [
    'r0000005ticks00000004', 'null', 'n00dgotalk:cancel00000004', '0000',
  ]);
  s.close();
});

test('a handler in the page learns of a cancel or a deadline through result.signal', async () => {
  const h = new gotalk.Handlers();
  const signals = [];
  h.handleRequest('wait', (input, result) => {
    signals.push(result.signal);
    return new Promise((resolve) => setTimeout(() => resolve('late'), 200));
  });
  const { s, ws } = await openSock(h);
  ws.receive('n00cgotalk:hello0000000fcancel deadline');
  ws.receive('r0000004wait00000001' + '1');
  ws.receive('n00dgotalk:cancel000000040000');
  assert.equal(signals[0].aborted, true);
  ws.receive('n00fgotalk:deadline00000007' + '0001 20');
  ws.receive('r0001004wait00000001' + '2');
  assert.equal(signals[1].aborted, false);
  // A deadline too far for setTimeout is none (it would otherwise fire at once).
  ws.receive('n00fgotalk:deadline00000019' + '0002 18446744073709551615');
  ws.receive('r0002004wait00000001' + '3');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(signals[1].aborted, true);
  assert.equal(signals[1].reason.name, 'TimeoutError');
  assert.equal(signals[2].aborted, false);
  await new Promise((r) => setTimeout(r, 250));
  // Nothing was answered for the two given up: only the third's result went out.
  assert.deepEqual(ws.sent, ['01', 'R000200000006', '"late"']);
  s.close();
});

// ---- describing (EXTENSIONS.md): asked only of a peer that announced `describe` --------

test('describe() asks a server that announced it, and reads its answer', async () => {
  const { s, ws } = await openSock();
  const described = s.describe();
  await tick();
  assert.deepEqual(ws.sent.slice(1), [], 'nothing is asked before the announcement');
  ws.receive('n00cgotalk:hello00000018cancel deadline describe');
  await tick();
  assert.deepEqual(ws.sent.slice(1), ['r000000fgotalk:describe00000000']);
  const json = '{"operations":[{"name":"echo","kind":"request"}]}';
  ws.receive('R0000' + json.length.toString(16).padStart(8, '0') + json);
  assert.deepEqual(await described, { operations: [{ name: 'echo', kind: 'request' }] });
  // Once announced, asked at once.
  const again = s.describe();
  await tick();
  assert.deepEqual(ws.sent.slice(2), ['r000100fgotalk:describe00000000']);
  ws.receive('R000100000002{}');
  assert.deepEqual(await again, {});
});

test('describe() sends nothing to a server that does not describe itself', async () => {
  const { s, ws } = await openSock();
  ws.receive('n00cgotalk:hello0000000fcancel deadline');
  await assert.rejects(s.describe(), (e) => e.isGotalkNotDescribed && /does not describe itself/.test(e.message));
  // A server that never announces (the Go reference): rejected after the wait.
  const { s: plain, ws: plainWs } = await openSock();
  const started = Date.now();
  await assert.rejects(plain.describe({ wait: 50 }), (e) => e.isGotalkNotDescribed);
  assert.ok(Date.now() - started >= 45);
  assert.deepEqual(ws.sent.slice(1), []);
  assert.deepEqual(plainWs.sent.slice(1), []);
});

test("'wire' events show every message both ways, as the bytes read back", async () => {
  const { s, ws } = await openSock();
  const seen = [];
  s.on('wire', (direction, m) => seen.push([direction, m.t, m.id, m.name, Buffer.from(m.payload).toString()]));
  const result = s.request('echo', 'hi');
  ws.receive('R000000000004"hi"');
  assert.equal(await result, 'hi');
  s.notify('chat', 'yo');
  ws.receive('n00cgotalk:hello0000000fcancel deadline');
  assert.deepEqual(seen, [
    ['out', 'r', '0000', 'echo', '"hi"'],
    ['in', 'R', '0000', null, '"hi"'],
    ['out', 'n', null, 'chat', '"yo"'],
    ['in', 'n', null, 'gotalk:hello', 'cancel deadline'],
  ]);
  assert.equal(ws.sent.length, 5, 'the messages went out once each');
});
