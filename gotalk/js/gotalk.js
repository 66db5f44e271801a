// gotalk.js: Gotalk over WebSocket for the browser (and Node, for tests).
// Written for gotalk-rs from PROTOCOL.md; same public API as the reference library.
// No dependencies, no build step.
(function (global) {
  'use strict';

  var VERSION = '01';
  var enc = new TextEncoder();
  var dec = new TextDecoder();

  // ---- events -------------------------------------------------------------------------

  function EventEmitter() {}
  EventEmitter.prototype.on = function (name, fn) {
    var all = this._events || (this._events = {});
    (all[name] || (all[name] = [])).push(fn);
    return this;
  };
  EventEmitter.prototype.once = function (name, fn) {
    var self = this;
    function once() { self.off(name, once); fn.apply(this, arguments); }
    return this.on(name, once);
  };
  EventEmitter.prototype.off = function (name, fn) {
    var list = this._events && this._events[name];
    if (list) this._events[name] = list.filter(function (f) { return f !== fn; });
    return this;
  };
  EventEmitter.prototype.emit = function (name) {
    var list = this._events && this._events[name];
    if (!list || !list.length) return false;
    var args = Array.prototype.slice.call(arguments, 1);
    list.slice().forEach(function (fn) { fn.apply(this, args); }, this);
    return true;
  };

  // ---- bytes ---------------------------------------------------------------------------

  function utf8(s) { return enc.encode(s); }
  function text(b) { return dec.decode(b); }

  function toBytes(v) {
    if (v instanceof Uint8Array) return v;
    if (v instanceof ArrayBuffer) return new Uint8Array(v);
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    if (typeof v === 'string') return utf8(v);
    throw new TypeError('expected bytes (Uint8Array, ArrayBuffer) or a string');
  }

  function concat(a, b) {
    if (!a.length) return b;
    var out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  function hex(n, width) {
    var s = n.toString(16);
    if (s.length > width) throw new RangeError(n + ' does not fit ' + width + ' hex digits');
    while (s.length < width) s = '0' + s;
    return s;
  }

  // ---- the wire ------------------------------------------------------------------------

  // Message types are the protocol's own letters ('r', 'R', 'n', ...), used as is.
  var ProtocolError = { Abnormal: 0, Unsupported: 1, InvalidMsg: 2, Timeout: 3 };

  // The Error a protocol error closes a connection with (sent by us or by the peer).
  function protocolError(code, message) {
    var e = new Error(message);
    e.code = code;
    e.isGotalkProtocolError = true;
    return e;
  }

  // A header as a string: t is the type, the other fields as the type needs them.
  function encodeHeader(t, id, name, size, wait) {
    var nameBytes = name == null ? null : utf8(name);
    if (nameBytes && nameBytes.length > 0xfff) throw new RangeError('name longer than 4095 bytes');
    switch (t) {
      case 'r': case 's':
        return t + id + hex(nameBytes.length, 3) + name + hex(size, 8);
      case 'n':
        return t + hex(nameBytes.length, 3) + name + hex(size, 8);
      case 'p': case 'R': case 'S': case 'E':
        return t + id + hex(size, 8);
      case 'e':
        return t + id + hex(wait, 8) + hex(size, 8);
      case 'h':
        return t + hex(size, 4) + hex(wait, 8); // size is the load, wait the time
      case 'f':
        return t + hex(size, 8); // size is the code
    }
    throw new Error('unknown message type ' + t);
  }

  function isHexDigit(c) {
    return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
  }

  // Reads messages from a byte stream fed in any pieces. next() returns a message, null
  // when more bytes are needed, or throws a ProtocolError-coded Error on invalid input.
  function Parser() { this.buf = new Uint8Array(0); this.versionSeen = false; }
  Parser.prototype.push = function (bytes) { this.buf = concat(this.buf, bytes); };
  Parser.prototype.next = function () {
    var b = this.buf, pos = 0;
    function bad(what) {
      throw protocolError(ProtocolError.InvalidMsg, 'invalid message: ' + what);
    }
    function need(n) { return b.length >= pos + n; }
    function hexField(width, what) {
      var end = Math.min(pos + width, b.length);
      for (var i = pos; i < end; i++) if (!isHexDigit(b[i])) bad(what + ' is not hex');
      if (!need(width)) return null;
      var v = parseInt(text(b.subarray(pos, pos + width)), 16);
      pos += width;
      return v;
    }
    if (!this.versionSeen) {
      if (b.length < 2) return null;
      if (b[0] !== 48 || b[1] !== 49) {
        throw protocolError(ProtocolError.Unsupported,
          'unsupported protocol version ' + JSON.stringify(text(b.subarray(0, 2))));
      }
      this.versionSeen = true;
      this.buf = b = b.subarray(2);
    }
    if (!b.length) return null;
    var t = String.fromCharCode(b[0]);
    pos = 1;
    var m = { t: t, id: null, name: null, wait: 0, load: 0, time: 0, code: 0, size: 0 };
    function id() {
      if (!need(4)) return false;
      m.id = text(b.subarray(pos, pos + 4));
      pos += 4;
      return true;
    }
    function name() {
      var len = hexField(3, 'name length');
      if (len === null || !need(len)) return false;
      m.name = text(b.subarray(pos, pos + len));
      pos += len;
      return true;
    }
    function size() {
      var n = hexField(8, 'payload size');
      if (n === null) return false;
      m.size = n;
      return true;
    }
    var complete;
    switch (t) {
      case 'r': case 's': complete = id() && name() && size(); break;
      case 'p': case 'R': case 'S': case 'E': complete = id() && size(); break;
      case 'e': complete = id() && (m.wait = hexField(8, 'retry wait')) !== null && size(); break;
      case 'n': complete = name() && size(); break;
      case 'h':
        complete = (m.load = hexField(4, 'load')) !== null && (m.time = hexField(8, 'time')) !== null;
        break;
      case 'f': complete = (m.code = hexField(8, 'code')) !== null; break;
      default: bad('unknown type byte ' + JSON.stringify(t));
    }
    if (!complete || !need(m.size)) return null;
    m.payload = b.slice(pos, pos + m.size);
    this.buf = b.subarray(pos + m.size);
    return m;
  };

  // Request IDs: four base-36 characters from 0000, restarting on every connection;
  // stream requests' IDs are '!' and three (PROTOCOL.md 6).
  function IdGen(width, prefix, limit) { this.n = 0; this.width = width; this.prefix = prefix; this.limit = limit; }
  IdGen.prototype.next = function () {
    var s = (this.n++ % this.limit).toString(36);
    while (s.length < this.width) s = '0' + s;
    return this.prefix + s;
  };
  IdGen.prototype.reset = function () { this.n = 0; };

  // ---- handlers ------------------------------------------------------------------------

  function Handlers() {
    if (!(this instanceof Handlers)) return new Handlers();
    this.reqHandlers = {};
    this.reqFallbackHandler = null;
    this.noteHandlers = {};
    this.noteFallbackHandler = null;
  }
  // fn(params, result): params decoded from JSON; call result(value) or result.error(err),
  // or return a value or a Promise.
  Handlers.prototype.handleRequest = function (op, fn) { return this._add('req', op, fn, true); };
  Handlers.prototype.handleBufferRequest = function (op, fn) { return this._add('req', op, fn, false); };
  Handlers.prototype.handleNotification = function (name, fn) { return this._add('note', name, fn, true); };
  Handlers.prototype.handleBufferNotification = function (name, fn) { return this._add('note', name, fn, false); };
  Handlers.prototype._add = function (kind, name, fn, json) {
    if (typeof fn !== 'function') throw new TypeError('handler must be a function');
    var h = { fn: fn, json: json };
    if (!name) this[kind + 'FallbackHandler'] = h;
    else this[kind + 'Handlers'][name] = h;
    return this;
  };
  Handlers.prototype.findRequestHandler = function (op) {
    return this.reqHandlers[op] || this.reqFallbackHandler;
  };
  Handlers.prototype.findNotificationHandler = function (name) {
    return this.noteHandlers[name] || this.noteFallbackHandler;
  };

  // ---- the socket ----------------------------------------------------------------------

  function Sock(handlers) {
    if (!(this instanceof Sock)) return new Sock(handlers);
    EventEmitter.call(this);
    this.handlers = handlers || gotalk.defaultHandlers;
    this.ws = null;
    this.isOpen = false;
    this.sendBufferLimit = gotalk.sendBufferLimit;
    this.heartbeatInterval = 20000;
    this.textFraming = false;
    this._pending = {};        // id -> waiter
    this._streams = {};        // id of an incoming stream request -> its chunk handler
    this._queue = [];          // requests made while closed, sent on open
    this._ids = new IdGen(4, '', 36 * 36 * 36 * 36);
    this._streamIds = new IdGen(3, '!', 36 * 36 * 36);
    this._parser = null;
    this._keepAlive = null;
    this._ending = false;
    // Our protocol extension (EXTENSIONS.md): cancellation and deadlines. On unless set
    // to false before opening.
    this.extensions = true;
    this._ext = null;          // what the peer announced, per connection
    this._serving = {};        // id of a request we serve -> its AbortController
    this._deadlines = {};      // id of the peer's next request -> milliseconds it has
  }
  Sock.prototype = Object.create(EventEmitter.prototype);
  Sock.prototype.constructor = Sock;

  Sock.prototype.adoptWebSocket = function (ws) {
    var s = this;
    s.ws = ws;
    s._parser = new Parser();
    s._ids.reset();
    s._streamIds.reset();
    ws.binaryType = 'arraybuffer';
    s._ext = { cancel: false, deadline: false, announced: false, peer: null };
    ws.onopen = function () {
      s._sendRaw(VERSION);
      // The dialling side announces the extension right after its version.
      if (s.extensions) s._sendExt('hello', utf8(EXT_SPEAKS));
      s._ext.announced = s.extensions;
      s.isOpen = true;
      s._startHeartbeats();
      s.emit('open', s);
      var queued = s._queue;
      s._queue = [];
      queued.forEach(function (send) { send(); });
    };
    ws.onmessage = function (ev) { s._onData(ev.data); };
    ws.onerror = function () {};
    ws.onclose = function (ev) {
      var err = s._closeError || (ev && ev.code !== 1000 && ev.code !== 1005
        ? new Error('connection closed (' + ev.code + (ev.reason ? ': ' + ev.reason : '') + ')')
        : null);
      s._closeError = null;
      s._closed(err);
    };
    return s;
  };

  // Opens a connection to addr (default: gotalk.defaultResponderAddress); cb(err, sock).
  Sock.prototype.open = function (addr, cb) {
    if (typeof addr === 'function') { cb = addr; addr = null; }
    var s = this;
    var WS = gotalk.WebSocket || global.WebSocket;
    s._ending = false;
    s.adoptWebSocket(new WS(addr || gotalk.defaultResponderAddress));
    if (cb) {
      var onOpen = function () { s.off('close', onClose); cb(null, s); };
      var onClose = function (err) { s.off('open', onOpen); cb(err || new Error('connection closed'), s); };
      s.once('open', onOpen).once('close', onClose);
    }
    return s;
  };

  // Keeps a connection open: reconnects with exponential back-off and jitter (and at once
  // when the browser comes back online). A connection that closes within 5 s of opening
  // counts as a failed attempt: a server that accepts and closes at once (restarting,
  // overloaded) is not met with a reconnection storm, and pages come back spread out.
  Sock.prototype.openKeepAlive = function (addr) {
    var s = this;
    if (s._keepAlive) return s;
    var ka = s._keepAlive = { addr: addr, delay: 0, timer: null };
    function connect() {
      ka.timer = null;
      if (!s._keepAlive) return;
      if (global.navigator && global.navigator.onLine === false) return; // wait for 'online'
      s.open(ka.addr);
    }
    ka.onOpen = function () { ka.openedAt = Date.now(); };
    ka.onClose = function (err) {
      if (!s._keepAlive || s._ending) return;
      if (err && err.isGotalkProtocolError && err.code === ProtocolError.Unsupported) return;
      if (ka.openedAt && Date.now() - ka.openedAt >= 5000) ka.delay = 0; // it worked
      ka.openedAt = 0;
      ka.delay = Math.min(ka.delay ? ka.delay * 2 : 500, 30000);
      var wait = ka.delay / 2 + Math.random() * ka.delay / 2;
      ka.timer = setTimeout(connect, wait);
    };
    ka.onOnline = function () {
      if (!s.isOpen && !ka.timer && s._keepAlive) { ka.delay = 0; connect(); }
    };
    s.on('open', ka.onOpen).on('close', ka.onClose);
    if (global.addEventListener) global.addEventListener('online', ka.onOnline);
    connect();
    return s;
  };

  Sock.prototype._stopKeepAlive = function () {
    var ka = this._keepAlive;
    if (!ka) return;
    this._keepAlive = null;
    if (ka.timer) clearTimeout(ka.timer);
    this.off('open', ka.onOpen).off('close', ka.onClose);
    if (global.removeEventListener) global.removeEventListener('online', ka.onOnline);
  };

  // Closes now; pending requests fail.
  Sock.prototype.close = function (err) {
    this._stopKeepAlive();
    if (this.ws) {
      this._closeError = err || null;
      try { this.ws.close(1000); } catch (e) { /* already closed */ }
    }
    return this;
  };

  // Closes once every pending request has its result.
  Sock.prototype.end = function () {
    var s = this;
    s._ending = true;
    s._stopKeepAlive();
    if (!Object.keys(s._pending).length) return s.close();
    s._endWhenIdle = true;
    return s;
  };

  Sock.prototype._closed = function (err) {
    var s = this;
    var wasOpen = s.isOpen;
    s.isOpen = false;
    s.ws = null;
    if (s._heartbeatTimer) { clearInterval(s._heartbeatTimer); s._heartbeatTimer = null; }
    var pending = s._pending;
    s._pending = {};
    var reason = err || new Error('socket is closed');
    Object.keys(pending).forEach(function (id) { pending[id].fail(reason); });
    Object.keys(s._streams).forEach(function (id) { s._streams[id].end(reason); });
    s._streams = {};
    // Handlers still running: nobody waits for their results any more.
    var serving = s._serving;
    s._serving = {};
    s._deadlines = {};
    Object.keys(serving).forEach(function (id) { serving[id].abort(reason); });
    if (wasOpen || err) s.emit('close', err || null);
    else s.emit('close', new Error('could not connect'));
  };

  Sock.prototype._sendRaw = function (data) {
    if (this.textFraming && typeof data !== 'string') data = text(data);
    this.ws.send(typeof data === 'string' && !this.textFraming ? utf8(data) : data);
  };

  // One message: the header as one WebSocket message, a non-empty payload as the next.
  Sock.prototype._send = function (header, payload) {
    if (this._events && this._events.wire) this._emitWire('out', header, payload);
    this._sendRaw(header);
    if (payload && payload.length) this._sendRaw(payload);
  };

  // 'wire' events (direction 'in' or 'out', and the message as the parser reads it:
  // {t, id, name, size, wait, load, time, code, payload}) for every message either way,
  // for tools that show the traffic (the inspector page). Read back from the bytes, so
  // what is shown is what was sent.
  Sock.prototype._emitWire = function (direction, header, payload) {
    var p = new Parser();
    p.versionSeen = true;
    p.push(concat(toBytes(header), payload && payload.length ? toBytes(payload) : new Uint8Array(0)));
    var m = p.next();
    if (m) this.emit('wire', direction, m);
  };

  // ---- the protocol extension (EXTENSIONS.md) ------------------------------------------

  var EXT_PREFIX = 'gotalk:';
  // `ws-stream`: our parser reads the socket's messages as one byte stream, however they
  // cut Gotalk's messages, so a server of ours may put many in one WebSocket message.
  var EXT_SPEAKS = 'cancel deadline ws-stream';

  Sock.prototype._sendExt = function (what, payload) {
    this._send(encodeHeader('n', null, EXT_PREFIX + what, payload.length), payload);
  };

  // Tells the peer we gave up on our request `id`, if it listens.
  Sock.prototype._sendCancel = function (id) {
    if (this.isOpen && this._ext && this._ext.cancel) this._sendExt('cancel', utf8(id));
  };

  // Reads an extension message from the peer.
  Sock.prototype._onExt = function (what, payload) {
    var s = this;
    if (!s.extensions) return;
    var body = text(payload);
    if (what === 'hello') {
      var words = body.split(' ');
      words.forEach(function (word) {
        if (word === 'cancel' || word === 'deadline') s._ext[word] = true;
      });
      s._ext.peer = words;
      if (!s._ext.announced) { s._ext.announced = true; s._sendExt('hello', utf8(EXT_SPEAKS)); }
      s.emit('hello', words);
    } else if (what === 'cancel') {
      var running = s._serving[body];
      if (running) { delete s._serving[body]; running.abort(new Error('cancelled by the caller')); }
      var st = s._streams[body];
      if (st) st.discard = true;
    } else if (what === 'deadline') {
      var m = /^(.{4}) (\d+)$/.exec(body);
      if (m && Object.keys(s._deadlines).length < 1024) s._deadlines[m[1]] = Number(m[2]);
    }
  };

  function abortError(signal) {
    if (signal && signal.reason !== undefined) return signal.reason;
    var e = new Error('aborted');
    e.name = 'AbortError';
    return e;
  }

  // Options of a call: {signal, timeout} (or a callback, as before).
  function callOptions(arg) { return arg && typeof arg === 'object' ? arg : {}; }
  function callback(arg) { return typeof arg === 'function' ? arg : null; }

  // Wires a call's `signal` and `timeout` (ms) to giving up: the waiter fails, and the
  // peer is told. Returns a function that sends the request (with its deadline first).
  Sock.prototype._abortable = function (id, opts, waiter, fail) {
    var s = this;
    var timer = null;
    var onAbort = null;
    function giveUp(err) {
      if (s._pending[id] !== waiter) return;
      cleanup();
      delete s._pending[id];
      s._maybeEnd();
      s._sendCancel(id);
      fail(err);
    }
    function cleanup() {
      if (timer) clearTimeout(timer);
      if (onAbort) opts.signal.removeEventListener('abort', onAbort);
    }
    if (opts.timeout > 0) {
      timer = setTimeout(function () {
        var e = new Error('no result within ' + opts.timeout + ' ms');
        e.name = 'TimeoutError';
        giveUp(e);
      }, opts.timeout);
    }
    if (opts.signal) {
      onAbort = function () { giveUp(abortError(opts.signal)); };
      opts.signal.addEventListener('abort', onAbort);
    }
    waiter.cleanup = cleanup;
    waiter.giveUp = giveUp;
    return function sendDeadline() {
      if (opts.timeout > 0 && s._ext && s._ext.deadline) {
        s._sendExt('deadline', utf8(id + ' ' + Math.ceil(opts.timeout)));
      }
    };
  };

  Sock.prototype._startHeartbeats = function () {
    var s = this;
    if (s.heartbeatInterval > 0) {
      s._heartbeatTimer = setInterval(function () { s.sendHeartbeat(0); }, s.heartbeatInterval);
    }
  };

  // Sends a heartbeat with a load (0..1, as a fraction of 65535).
  Sock.prototype.sendHeartbeat = function (load) {
    if (!this.isOpen) return;
    var l = Math.max(0, Math.min(65535, Math.round((load || 0) * 65535)));
    this._send(encodeHeader('h', null, null, l, Math.floor(Date.now() / 1000)));
  };

  // Runs send() now if open, or once open (up to sendBufferLimit waiting), or fails.
  Sock.prototype._whenOpen = function (send, fail) {
    if (this.isOpen) return send();
    if (this._queue.length < this.sendBufferLimit && (this._keepAlive || this.ws)) {
      this._queue.push(send);
    } else {
      fail(new Error('socket is closed'));
    }
  };

  function promised(cb, start) {
    var p = new Promise(start);
    if (cb) p.then(function (v) { cb(null, v); }, function (e) { cb(e); });
    return p;
  }

  // A request with a raw payload; resolves to the result's bytes (a Uint8Array). The
  // third argument is a callback, or options: {signal: AbortSignal, timeout: ms}. Giving
  // up (the signal, the timeout) rejects, and a peer that speaks our extension stops
  // working on the request; a timeout also goes with the request as its deadline.
  Sock.prototype.bufferRequest = function (op, buf, optsOrCb) {
    var s = this;
    var opts = callOptions(optsOrCb);
    var payload = toBytes(buf == null ? new Uint8Array(0) : buf);
    return promised(callback(optsOrCb), function (resolve, reject) {
      if (opts.signal && opts.signal.aborted) return reject(abortError(opts.signal));
      s._whenOpen(function () {
        if (opts.signal && opts.signal.aborted) return reject(abortError(opts.signal));
        var id = s._ids.next();
        var waiter = { resolve: resolve, fail: reject, parts: null };
        if (opts.signal || opts.timeout > 0) {
          var sendDeadline = s._abortable(id, opts, waiter, reject);
          waiter.resolve = function (v) { waiter.cleanup(); resolve(v); };
          waiter.fail = function (e) { waiter.cleanup(); reject(e); };
          sendDeadline();
        }
        s._pending[id] = waiter;
        s._send(encodeHeader('r', id, op, payload.length), payload);
      }, reject);
    });
  };

  // A request with `value` as JSON; resolves to the decoded JSON result. The third
  // argument is a callback or options, as for bufferRequest.
  Sock.prototype.request = function (op, value, optsOrCb) {
    var cb = callback(optsOrCb);
    var p = this.bufferRequest(op, utf8(JSON.stringify(value === undefined ? null : value)),
      callOptions(optsOrCb))
      .then(function (bytes) { return bytes.length ? JSON.parse(text(bytes)) : null; });
    if (cb) p.then(function (v) { cb(null, v); }, function (e) { cb(e); });
    return p;
  };

  // A single request with `value` as JSON whose results are read as they come: 'data'
  // events (bytes: one per part of a stream result, or the single result), then 'end'
  // (or 'error').
  // `opts` ({signal, timeout}) and `stream.abort()` give up on it: 'error' with the
  // reason, and a peer that speaks our extension stops producing.
  Sock.prototype.streamResults = function (op, value, opts) {
    var s = this;
    var stream = new EventEmitter();
    var payload = utf8(JSON.stringify(value === undefined ? null : value));
    s._abortableStream(stream, opts, function (register) {
      var id = s._ids.next();
      register(id);
      s._send(encodeHeader('r', id, op, payload.length), payload);
    });
    return stream;
  };

  // Opens a stream whose results come as events, abortable through `opts.signal`,
  // `opts.timeout` and `stream.abort(reason)`; `open(register)` sends the request after
  // registering its ID.
  Sock.prototype._abortableStream = function (stream, opts, open) {
    var s = this;
    opts = callOptions(opts);
    var ctl = { waiter: null, aborted: null };
    stream.abort = function (reason) {
      if (ctl.aborted) return stream;
      ctl.aborted = reason || abortError(null);
      if (ctl.waiter) ctl.waiter.giveUp(ctl.aborted);
      return stream;
    };
    var fail = function (e) { stream.emit('error', e); };
    s._whenOpen(function () {
      if (!ctl.aborted && opts.signal && opts.signal.aborted) ctl.aborted = abortError(opts.signal);
      if (ctl.aborted) return fail(ctl.aborted);
      open(function (id) {
        var waiter = ctl.waiter = {
          stream: stream,
          resolve: function (bytes) {
            waiter.cleanup();
            if (bytes.length) stream.emit('data', bytes);
            stream.emit('end');
          },
          fail: function (e) { waiter.cleanup(); fail(e); }
        };
        var sendDeadline = s._abortable(id, opts, waiter, fail);
        s._pending[id] = waiter;
        sendDeadline();
      });
    }, fail);
  };

  // A stream request: returns a stream with write(data) and end(); its results come as
  // 'data' events (bytes), then 'end' (or 'error').
  // `opts` ({signal, timeout}) and `stream.abort()` cancel it, as for streamResults.
  Sock.prototype.streamRequest = function (op, opts) {
    var s = this;
    var stream = new EventEmitter();
    var id = null;
    var started = false;
    var queued = [];
    function start(first) {
      s._abortableStream(stream, opts, function (register) {
        id = s._streamIds.next();
        register(id);
        s._send(encodeHeader('s', id, op, first.length), first);
        queued.forEach(function (f) { f(); });
        queued = null;
      });
    }
    function part(bytes) {
      var send = function () { s._send(encodeHeader('p', id, null, bytes.length), bytes); };
      if (queued) queued.push(send); else send();
    }
    stream.write = function (data) {
      var bytes = typeof data === 'string' || data instanceof Uint8Array || data instanceof ArrayBuffer
        ? toBytes(data) : utf8(JSON.stringify(data));
      if (!started) { started = true; start(bytes); return stream; }
      if (bytes.length) part(bytes);
      return stream;
    };
    stream.end = function () {
      if (!started) { started = true; start(new Uint8Array(0)); }
      part(new Uint8Array(0));
      return stream;
    };
    return stream;
  };

  Sock.prototype.bufferNotify = function (name, buf) {
    var s = this;
    var payload = toBytes(buf == null ? new Uint8Array(0) : buf);
    s._whenOpen(function () {
      s._send(encodeHeader('n', null, name, payload.length), payload);
    }, function (e) { if (gotalk.developmentMode) console.warn('gotalk: notification dropped:', e); });
  };

  Sock.prototype.notify = function (name, value) {
    this.bufferNotify(name, utf8(JSON.stringify(value === undefined ? null : value)));
  };

  // The peer's description of what it serves (a gotalk-rs server with
  // `Config::describe(true)`; EXTENSIONS.md), resolved as the parsed JSON: {operations:
  // [{name, kind, streams_results, service, docs, timeout_ms, input, output, error}]}.
  // Asked only of a peer that announced `describe`; a peer that speaks no extension (the
  // reference ones) never announces, so after `opts.wait` ms (default 2000) without an
  // announcement this rejects, as it does when the peer announced without `describe`.
  Sock.prototype.describe = function (opts) {
    var s = this;
    var wait = callOptions(opts).wait > 0 ? opts.wait : 2000;
    function notDescribed() {
      var e = new Error('the peer does not describe itself (it did not announce `describe`: ' +
        'describing is off there, or it is not a gotalk-rs peer)');
      e.isGotalkNotDescribed = true;
      return e;
    }
    function ask(words) {
      if (words.indexOf('describe') < 0) return Promise.reject(notDescribed());
      return s.bufferRequest(EXT_PREFIX + 'describe', new Uint8Array(0))
        .then(function (bytes) { return JSON.parse(text(bytes)); });
    }
    if (!s.extensions) return Promise.reject(notDescribed());
    if (s._ext && s._ext.peer) return ask(s._ext.peer);
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () { done(); reject(notDescribed()); }, wait);
      function onHello(words) { done(); ask(words).then(resolve, reject); }
      function onClose(err) { done(); reject(err || new Error('connection closed')); }
      function done() { clearTimeout(timer); s.off('hello', onHello); s.off('close', onClose); }
      s.on('hello', onHello);
      s.on('close', onClose);
    });
  };

  // ---- incoming ------------------------------------------------------------------------

  Sock.prototype._onData = function (data) {
    var s = this;
    s._parser.push(typeof data === 'string' ? utf8(data) : toBytes(data));
    for (;;) {
      var m;
      try {
        m = s._parser.next();
      } catch (e) {
        return s._protocolError(e);
      }
      if (!m) return;
      s._onMessage(m);
      if (!s.ws) return;
    }
  };

  Sock.prototype._protocolError = function (e) {
    if (gotalk.developmentMode) console.error('gotalk: protocol error:', e.message);
    if (this.isOpen) this._send(encodeHeader('f', null, null, e.code));
    this.close(e);
  };

  // A typed error (JSON) keeps its text as the message and its value as `data`.
  function remoteError(payload) {
    var message = text(payload);
    var e = new Error(message);
    e.isGotalkRemoteError = true;
    try { e.data = JSON.parse(message); } catch (_) { /* plain text */ }
    return e;
  }

  Sock.prototype._onMessage = function (m) {
    var s = this;
    var w;
    if (s._events && s._events.wire) s.emit('wire', 'in', m);
    switch (m.t) {
      case 'R':
        if ((w = s._take(m.id))) w.resolve(m.payload);
        break;
      case 'S':
        w = s._pending[m.id];
        if (!w) break;
        if (!m.payload.length) {
          delete s._pending[m.id];
          if (w.stream) w.stream.emit('end');
          else w.resolve(w.parts || new Uint8Array(0));
          s._maybeEnd();
        } else if (w.stream) {
          w.stream.emit('data', m.payload);
        } else {
          w.parts = concat(w.parts || new Uint8Array(0), m.payload);
        }
        break;
      case 'E':
        if ((w = s._take(m.id))) w.fail(remoteError(m.payload));
        break;
      case 'e':
        if ((w = s._take(m.id))) {
          var e = remoteError(m.payload);
          e.isGotalkRetry = true;
          e.retryAfter = m.wait;
          w.fail(e);
        }
        break;
      case 'r':
        s._serve(m.id, m.name, m.payload, null);
        break;
      case 's':
        var chunks = new EventEmitter();
        s._streams[m.id] = {
          chunks: chunks,
          end: function (err) { if (err) chunks.emit('error', err); else chunks.emit('end'); }
        };
        s._serve(m.id, m.name, m.payload, chunks);
        break;
      case 'p':
        var st = s._streams[m.id];
        if (!st) {
          return s._protocolError(protocolError(ProtocolError.InvalidMsg,
            'stream part for unknown request ' + m.id));
        }
        if (st.discard) { if (!m.payload.length) delete s._streams[m.id]; break; }
        if (m.payload.length) st.chunks.emit('data', m.payload);
        else { delete s._streams[m.id]; st.end(); }
        break;
      case 'n':
        if (m.name.lastIndexOf(EXT_PREFIX, 0) === 0 && s.extensions) {
          s._onExt(m.name.slice(EXT_PREFIX.length), m.payload);
          break;
        }
        var h = s.handlers.findNotificationHandler(m.name);
        if (h) {
          try {
            h.fn(h.json ? (m.payload.length ? JSON.parse(text(m.payload)) : null) : m.payload, m.name);
          } catch (err) {
            console.error('gotalk: notification handler for ' + JSON.stringify(m.name) + ' failed:', err);
          }
        }
        break;
      case 'h':
        s.emit('heartbeat', { time: new Date(m.time * 1000), load: m.load / 65535 });
        break;
      case 'f':
        s.close(protocolError(m.code, 'protocol error ' + m.code + ' from the peer'));
        break;
    }
  };

  Sock.prototype._take = function (id) {
    var w = this._pending[id];
    if (w) { delete this._pending[id]; this._maybeEnd(); }
    return w;
  };

  Sock.prototype._maybeEnd = function () {
    var s = this;
    if (s._endWhenIdle && !Object.keys(s._pending).length) {
      s._endWhenIdle = false;
      setTimeout(function () { s.close(); }, 0);
    }
  };

  // Answers the peer's request `id` for `op` with our handler's result.
  // The handler's `result.signal` fires when the peer cancels the request or its
  // deadline passes; nothing is answered after that.
  Sock.prototype._serve = function (id, op, payload, chunks) {
    var s = this;
    var h = s.handlers.findRequestHandler(op);
    var done = false;
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var deadline = s._deadlines[id];
    var timer = null;
    delete s._deadlines[id];
    if (ctl) {
      s._serving[id] = ctl;
      ctl.signal.addEventListener('abort', function () { finish(); });
      // Beyond what setTimeout can wait (about 24.8 days) is no deadline.
      if (deadline !== undefined && deadline <= 0x7fffffff) {
        timer = setTimeout(function () {
          var e = new Error('deadline passed');
          e.name = 'TimeoutError';
          ctl.abort(e);
        }, deadline);
      }
    }
    function finish() {
      done = true;
      if (timer) clearTimeout(timer);
      if (s._serving[id] === ctl) delete s._serving[id];
    }
    function reply(t, bytes) {
      if (done || !s.isOpen) return;
      finish();
      s._send(encodeHeader(t, id, null, bytes.length), bytes);
    }
    function ok(v) {
      reply('R', h && h.json ? utf8(JSON.stringify(v === undefined ? null : v)) : toBytes(v == null ? '' : v));
    }
    function fail(e) {
      var typed = e && typeof e === 'object' && e.data !== undefined;
      reply('E', utf8(typed ? JSON.stringify(e.data) : String(e && e.message || e)));
    }
    if (!h) return fail('unknown operation ' + JSON.stringify(op));
    var result = function (v) { ok(v); };
    result.error = fail;
    result.signal = ctl ? ctl.signal : null;
    try {
      var input = h.json ? (payload.length ? JSON.parse(text(payload)) : null) : payload;
      var out = chunks ? h.fn(input, result, op, chunks) : h.fn(input, result, op);
      if (out !== undefined) Promise.resolve(out).then(ok, fail);
    } catch (e) {
      fail(e);
    }
  };

  // ---- the module ----------------------------------------------------------------------

  function defaultAddress() {
    var script = global.document && global.document.currentScript;
    var src = script && script.src;
    if (!src) {
      var loc = global.location;
      return loc ? (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/gotalk/' : null;
    }
    return src.replace(/^http/, 'ws').replace(/gotalk\.js(\?.*)?$/, '');
  }

  var gotalk = {
    version: VERSION,
    protocolError: ProtocolError,
    developmentMode: false,
    sendBufferLimit: 20,
    defaultResponderAddress: defaultAddress(),
    Handlers: Handlers,
    Sock: Sock,
    EventEmitter: EventEmitter,
    // A new socket with the default handlers, kept open (reconnecting as needed).
    connection: function (addr) { return new Sock(gotalk.defaultHandlers).openKeepAlive(addr); },
    // A new socket with the default handlers, opened once; cb(err, sock).
    open: function (addr, cb) { return new Sock(gotalk.defaultHandlers).open(addr, cb); },
    // For tests: the wire codec.
    _internal: { encodeHeader: encodeHeader, Parser: Parser, IdGen: IdGen, utf8: utf8 }
  };
  gotalk.defaultHandlers = new Handlers();
  gotalk.handle = function (op, fn) { gotalk.defaultHandlers.handleRequest(op, fn); };
  gotalk.handleBufferRequest = function (op, fn) { gotalk.defaultHandlers.handleBufferRequest(op, fn); };
  gotalk.handleNotification = function (n, fn) { gotalk.defaultHandlers.handleNotification(n, fn); };
  gotalk.handleBufferNotification = function (n, fn) { gotalk.defaultHandlers.handleBufferNotification(n, fn); };

  if (typeof module === 'object' && module.exports) module.exports = gotalk;
  else global.gotalk = gotalk;
})(typeof globalThis !== 'undefined' ? globalThis : this);
