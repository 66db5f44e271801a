// Type declarations for gotalk.js (served at `<mount>/gotalk.js` by gotalk-rs).

declare namespace gotalk {
  type Bytes = Uint8Array;
  type BytesLike = Uint8Array | ArrayBuffer | ArrayBufferView | string;
  type Callback<T> = (err: Error | null, value?: T) => void;

  /** Answers a request: call it with the result, or `result.error(e)`. */
  interface Result<T = any> {
    (value: T): void;
    /** Answers an error result: its `data` as JSON when it has one (a typed error for a
     * Rust caller), else its message. */
    error(err: Error | string | { data: unknown }): void;
    /** Fires when the caller gives up on the request (it cancelled, or the deadline its
     * timeout set passed: `reason.name` is `TimeoutError`) or the socket closes; nothing
     * is answered after that. Needs a caller that speaks the extension (EXTENSIONS.md). */
    readonly signal: AbortSignal | null;
  }

  /** Options of one call. Giving up rejects (or emits `error`), and a peer that speaks
   * our extension (EXTENSIONS.md) stops working on the request. */
  interface CallOptions {
    /** Gives up when it is aborted, with its reason. */
    signal?: AbortSignal;
    /** Gives up after this many milliseconds (a `TimeoutError`); the peer gets it as the
     * request's deadline. */
    timeout?: number;
  }

  /** An error result (`E`) or retry result (`e`) from the peer. */
  interface RemoteError extends Error {
    isGotalkRemoteError: true;
    /** The error's JSON, parsed, when its text is JSON: a Rust service's typed error
     * (e.g. `{NotFound: {key: "k"}}`). */
    data?: unknown;
    /** Set for a retry result: the peer asks to retry after `retryAfter` ms. */
    isGotalkRetry?: true;
    retryAfter?: number;
  }

  /** A protocol error, sent or received; the socket closes. */
  interface ProtocolErrorEvent extends Error {
    isGotalkProtocolError: true;
    code: number;
  }

  interface Heartbeat {
    time: Date;
    /** 0..1 */
    load: number;
  }

  class EventEmitter {
    on(name: string, fn: (...args: any[]) => void): this;
    once(name: string, fn: (...args: any[]) => void): this;
    off(name: string, fn: (...args: any[]) => void): this;
    emit(name: string, ...args: any[]): boolean;
  }

  /** The results of a stream request: `data` events (bytes), then `end` or `error`. */
  interface StreamRequest extends EventEmitter {
    /** The first call opens the request; later ones send parts. Non-bytes go as JSON. */
    write(data: BytesLike | any): this;
    /** Ends the request stream (the handler reads to its end and answers). */
    end(): this;
    /** Gives up on the request: `error` with `reason`, and the peer stops. */
    abort(reason?: any): this;
    on(name: 'data', fn: (chunk: Bytes) => void): this;
    on(name: 'end', fn: () => void): this;
    on(name: 'error', fn: (err: Error) => void): this;
  }

  /** The results of a single request, as they come. */
  interface StreamResults extends EventEmitter {
    /** Gives up on the results: `error` with `reason`, and the peer stops producing. */
    abort(reason?: any): this;
    on(name: 'data', fn: (chunk: Bytes) => void): this;
    on(name: 'end', fn: () => void): this;
    on(name: 'error', fn: (err: Error) => void): this;
  }

  type RequestHandler = (params: any, result: Result, op: string, chunks?: EventEmitter) => any;
  type BufferRequestHandler = (payload: Bytes, result: Result<BytesLike>, op: string, chunks?: EventEmitter) => any;
  type NotificationHandler = (params: any, name: string) => void;
  type BufferNotificationHandler = (payload: Bytes, name: string) => void;

  /** Operations and notifications a socket answers; an empty name is the fallback. */
  class Handlers {
    constructor();
    handleRequest(op: string, fn: RequestHandler): this;
    handleBufferRequest(op: string, fn: BufferRequestHandler): this;
    handleNotification(name: string, fn: NotificationHandler): this;
    handleBufferNotification(name: string, fn: BufferNotificationHandler): this;
  }

  /** A message as the wire codec reads it: the type letter and the fields it has. */
  interface WireMessage {
    t: string;
    id: string | null;
    name: string | null;
    size: number;
    /** A RetryResult's wait (ms). */
    wait: number;
    /** A heartbeat's load and time. */
    load: number;
    time: number;
    /** A ProtocolError's code. */
    code: number;
    payload: Uint8Array;
  }

  /** A type an operation carries, and its JSON Schema if the server has it. */
  interface DescribedType {
    name: string;
    schema?: any;
  }

  /** One operation or notification a peer serves (see `gotalk::describe`). */
  interface DescribedOperation {
    name: string;
    kind: 'request' | 'stream-request' | 'notification';
    streams_results?: boolean;
    service?: string;
    docs?: string;
    timeout_ms?: number;
    input?: DescribedType;
    output?: DescribedType;
    error?: DescribedType;
  }

  interface Description {
    operations: DescribedOperation[];
  }

  class Sock extends EventEmitter {
    constructor(handlers?: Handlers);
    handlers: Handlers;
    readonly isOpen: boolean;
    /** Requests made while disconnected wait for the connection, up to this many. */
    sendBufferLimit: number;
    /** Milliseconds between heartbeats sent (0: none). Default 20000. */
    heartbeatInterval: number;
    /** Send text WebSocket messages instead of binary ones. */
    textFraming: boolean;

    open(addr?: string, cb?: Callback<Sock>): this;
    open(cb: Callback<Sock>): this;
    /** Keeps a connection open, reconnecting with exponential back-off. */
    openKeepAlive(addr?: string): this;
    adoptWebSocket(ws: WebSocket): this;

    /** Speak our extension (EXTENSIONS.md): cancellation and deadlines. Default true;
     * set before opening. */
    extensions: boolean;

    request<T = any>(op: string, value?: any, cb?: Callback<T>): Promise<T>;
    request<T = any>(op: string, value: any, options: CallOptions): Promise<T>;
    bufferRequest(op: string, payload?: BytesLike, cb?: Callback<Bytes>): Promise<Bytes>;
    bufferRequest(op: string, payload: BytesLike | undefined, options: CallOptions): Promise<Bytes>;
    streamRequest(op: string, options?: CallOptions): StreamRequest;
    /** A single request whose results are read as they come: a `data` event per part of a
     * stream result (or one for a single result), then `end` or `error`. */
    streamResults(op: string, value?: any, options?: CallOptions): StreamResults;
    notify(name: string, value?: any): void;
    bufferNotify(name: string, payload?: BytesLike): void;
    sendHeartbeat(load?: number): void;
    /** The peer's description of what it serves, if it announced `describe` (a gotalk-rs
     * server with `Config::describe(true)`); rejects, after `wait` ms (default 2000)
     * without an announcement, for a peer that does not describe itself. */
    describe(options?: { wait?: number }): Promise<Description>;
    /** Closes once every pending request has its result. */
    end(): this;
    /** Closes now: pending requests fail. */
    close(err?: Error): this;

    on(name: 'open', fn: (sock: Sock) => void): this;
    on(name: 'close', fn: (err: Error | ProtocolErrorEvent | null) => void): this;
    on(name: 'heartbeat', fn: (hb: Heartbeat) => void): this;
    /** The words the peer announced with our extension (EXTENSIONS.md). */
    on(name: 'hello', fn: (words: string[]) => void): this;
    /** Every message either way, as read back from its bytes (for tools that show the
     * traffic). */
    on(name: 'wire', fn: (direction: 'in' | 'out', message: WireMessage) => void): this;
    on(name: string, fn: (...args: any[]) => void): this;
  }

  const version: string;
  const protocolError: { Abnormal: 0; Unsupported: 1; InvalidMsg: 2; Timeout: 3 };
  /** Log protocol trouble to the console. */
  let developmentMode: boolean;
  /** The default for new sockets' sendBufferLimit (20). */
  let sendBufferLimit: number;
  /** ws(s)://host/mount/ derived from this script's own URL. */
  let defaultResponderAddress: string | null;
  /** The WebSocket constructor used (defaults to the global one). */
  let WebSocket: any;
  const defaultHandlers: Handlers;

  function handle(op: string, fn: RequestHandler): void;
  function handleBufferRequest(op: string, fn: BufferRequestHandler): void;
  function handleNotification(name: string, fn: NotificationHandler): void;
  function handleBufferNotification(name: string, fn: BufferNotificationHandler): void;
  /** A socket with the default handlers, kept open. */
  function connection(addr?: string): Sock;
  /** A socket with the default handlers, opened once. */
  function open(addr?: string, cb?: Callback<Sock>): Sock;
}

export = gotalk;
export as namespace gotalk;
