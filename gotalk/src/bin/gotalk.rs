//! `gotalk`: talk to any Gotalk peer, serve a few operations, and trace conversations.
//!
//! ```text
//! gotalk call 127.0.0.1:1234 greet '{"name":"Rasmus"}'
//! gotalk call ws://127.0.0.1:1235/gotalk/ stream-echo --stream < lines.txt
//! gotalk notify unix:/tmp/peer.sock hello '"hi"'
//! gotalk listen 127.0.0.1:1234
//! gotalk trace 127.0.0.1:9000 tls://example.com:1234
//! ```

use std::{
    io::Write,
    path::PathBuf,
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::{Bytes, BytesMut};
use clap::{Parser, Subcommand};
use gotalk::{
    tls,
    wire::{parse, parse_version, ParseError},
    ws, Config, Error, Handlers, Request, Sock, StreamRequest,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const EXIT_CODES: &str = "Exit codes: 0 success; 1 the peer answered with an error or retry \
result; 2 bad arguments; 3 the peer could not be reached; 4 the connection failed or closed \
(e.g. a protocol error); 5 timed out.

ADDR: host:port or tcp://host:port, unix:/path, tls://host:port, ws://host:port/path, \
wss://host:port/path.";

#[derive(Parser)]
#[command(name = "gotalk", version, about = "Talk to, serve and trace Gotalk peers", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sends a request and prints its result (pretty JSON, or raw with --raw).
    #[command(after_help = EXIT_CODES)]
    Call {
        /// The peer.
        addr: String,
        /// The operation.
        op: String,
        /// The payload (JSON, sent as is); none for an empty payload.
        payload: Option<String>,
        /// Print the result as it came, not as pretty JSON.
        #[arg(long)]
        raw: bool,
        /// Send stdin's lines as a stream request (after PAYLOAD, if given) and print
        /// stream results as they come.
        #[arg(long)]
        stream: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Sends a notification.
    #[command(after_help = EXIT_CODES)]
    Notify {
        /// The peer.
        addr: String,
        /// The notification name.
        name: String,
        /// The payload (JSON, sent as is); none for an empty payload.
        payload: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Serves echo, upper, sleep and fail on ADDR (tcp or unix), printing every message
    /// received in the readable wire form.
    #[command(after_help = EXIT_CODES)]
    Listen {
        /// Where to listen: host:port or unix:/path.
        addr: String,
    },
    /// A transparent proxy: accepts connections on LISTEN_ADDR (host:port), forwards each
    /// to UPSTREAM_ADDR, and prints every message both ways with time, direction, type,
    /// ID, name, size and a preview of the payload.
    #[command(after_help = EXIT_CODES)]
    Trace {
        /// Where to listen (host:port).
        listen_addr: String,
        /// The peer to forward to (any ADDR form).
        upstream_addr: String,
        #[command(flatten)]
        tls: TlsArgs,
    },
}

#[derive(clap::Args, Clone)]
struct TlsArgs {
    /// For tls:// and wss://: trust the certificates in this PEM file instead of the
    /// platform's roots.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
}

/// A failure and the exit code it maps to.
struct Failure(u8, String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Remote(_) | Error::Retry { .. } => 1,
            Error::Timeout { .. } => 5,
            _ => 4,
        };
        Failure(code, e.to_string())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Call {
            addr,
            op,
            payload,
            raw,
            stream,
            timeout,
            tls,
        } => {
            let work = call(&addr, &op, payload, raw, stream, &tls);
            match tokio::time::timeout(Duration::from_secs_f64(timeout), work).await {
                Ok(result) => result,
                Err(_) => Err(Failure(5, format!("no answer within {timeout} s"))),
            }
        }
        Command::Notify {
            addr,
            name,
            payload,
            tls,
        } => notify(&addr, &name, payload, &tls).await,
        Command::Listen { addr } => listen(&addr).await,
        Command::Trace {
            listen_addr,
            upstream_addr,
            tls,
        } => trace(&listen_addr, &upstream_addr, tls).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("gotalk: {message}");
            ExitCode::from(code)
        }
    }
}

// ---- addresses ---------------------------------------------------------------------------

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Connects to any ADDR form, as a byte stream.
async fn open(addr: &str, tls: &TlsArgs) -> Result<Box<dyn Io>, Failure> {
    let unreachable = |e: Error| Failure(3, format!("cannot reach {addr}: {e}"));
    if addr.starts_with("ws://") || addr.starts_with("wss://") {
        let config = match &tls.ca {
            Some(_) => Some(client_tls(tls)?),
            None => None,
        };
        let stream = ws::connect_stream(addr, config)
            .await
            .map_err(unreachable)?;
        return Ok(Box::new(stream));
    }
    if let Some(host_port) = addr.strip_prefix("tls://") {
        let config = client_tls(tls)?;
        let stream = tls::connect_stream(host_port, config)
            .await
            .map_err(unreachable)?;
        return Ok(Box::new(stream));
    }
    if let Some(path) = addr.strip_prefix("unix:") {
        #[cfg(unix)]
        {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| unreachable(e.into()))?;
            return Ok(Box::new(stream));
        }
        #[cfg(not(unix))]
        return Err(Failure(
            2,
            format!("unix sockets are not available here: {path}"),
        ));
    }
    let host_port = addr.strip_prefix("tcp://").unwrap_or(addr);
    let stream = tokio::net::TcpStream::connect(host_port)
        .await
        .map_err(|e| unreachable(e.into()))?;
    let _ = stream.set_nodelay(true);
    Ok(Box::new(stream))
}

fn client_tls(args: &TlsArgs) -> Result<Arc<tls::rustls::ClientConfig>, Failure> {
    let bad = |e: String| Failure(2, e);
    match &args.ca {
        None => tls::platform_client_config().map_err(|e| bad(e.to_string())),
        Some(path) => {
            use tls::rustls::pki_types::{pem::PemObject, CertificateDer};
            let mut roots = tls::rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?
            {
                let cert = cert.map_err(|e| bad(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            }
            tls::client_config(roots).map_err(|e| bad(e.to_string()))
        }
    }
}

async fn connect(addr: &str, tls: &TlsArgs) -> Result<Sock, Failure> {
    let stream = open(addr, tls).await?;
    Ok(Sock::adopt(stream, addr, Config::dialling()))
}

// ---- call and notify ---------------------------------------------------------------------

fn print_result(bytes: &[u8], raw: bool) {
    let pretty = (!raw)
        .then(|| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .flatten()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    let mut out = std::io::stdout().lock();
    let _ = match pretty {
        Some(text) => writeln!(out, "{text}"),
        None => out.write_all(bytes).and_then(|()| writeln!(out)),
    };
    let _ = out.flush();
}

async fn call(
    addr: &str,
    op: &str,
    payload: Option<String>,
    raw: bool,
    stream: bool,
    tls: &TlsArgs,
) -> Result<(), Failure> {
    let sock = connect(addr, tls).await?;
    let payload = Bytes::from(payload.unwrap_or_default());
    if !stream {
        let result = sock.request_raw(op, payload).await?;
        print_result(&result, raw);
        sock.shutdown().await;
        return Ok(());
    }
    let (mut writer, mut results) = sock.stream_request(op, payload).await?;
    // Each line goes out as soon as it is read, so stdin can be a live source.
    let sender = async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| Failure(4, format!("reading stdin: {e}")))?
        {
            writer.send(line).await?;
        }
        writer.finish().await?;
        Ok::<_, Failure>(())
    };
    let receiver = async {
        while let Some(chunk) = futures_util::StreamExt::next(&mut results).await {
            print_result(&chunk?, raw);
        }
        Ok::<_, Failure>(())
    };
    let (sent, received) = tokio::join!(sender, receiver);
    sent?;
    received?;
    sock.shutdown().await;
    Ok(())
}

async fn notify(
    addr: &str,
    name: &str,
    payload: Option<String>,
    tls: &TlsArgs,
) -> Result<(), Failure> {
    let sock = connect(addr, tls).await?;
    sock.notify_raw(name, payload.unwrap_or_default()).await?;
    sock.shutdown().await;
    Ok(())
}

// ---- the readable log ----------------------------------------------------------------------

/// The time of day (UTC) with milliseconds, for log lines.
fn now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, ms) = (since.as_secs() % 86_400, since.subsec_millis());
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses one direction of a connection as it passes and prints every message.
struct Log {
    label: String,
    buf: BytesMut,
    version_seen: bool,
    broken: bool,
}

impl Log {
    fn new(label: String) -> Self {
        Self {
            label,
            buf: BytesMut::new(),
            version_seen: false,
            broken: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        self.buf.extend_from_slice(bytes);
        if !self.version_seen {
            match parse_version(&self.buf) {
                Ok(()) => {
                    println!("{} {} version 01", now(), self.label);
                    let _ = self.buf.split_to(2);
                    self.version_seen = true;
                }
                Err(gotalk::wire::VersionError::Incomplete) => return,
                Err(e) => return self.give_up(&e.to_string()),
            }
        }
        loop {
            match parse(&mut self.buf, u32::MAX) {
                Ok(msg) => println!("{} {} {msg}", now(), self.label),
                Err(ParseError::Incomplete { .. }) => return,
                Err(ParseError::Invalid(e)) => return self.give_up(&e.to_string()),
            }
        }
    }

    fn give_up(&mut self, why: &str) {
        println!("{} {} not Gotalk from here on: {why}", now(), self.label);
        self.broken = true;
        self.buf = BytesMut::new();
    }
}

/// Copies one direction of a connection, logging every message that passes.
async fn relay(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut log: Log,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        log.feed(&buf[..n]);
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

// ---- listen and trace ----------------------------------------------------------------------

fn listen_handlers() -> Handlers {
    let mut h = Handlers::new();
    h.handle_raw(
        "echo",
        |req: Request| async move { Ok::<_, Error>(req.payload) },
    )
    .handle("upper", |text: String| async move {
        Ok::<_, Error>(text.to_uppercase())
    })
    .handle("sleep", |ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
        Ok::<_, Error>(ms)
    })
    .handle("fail", |text: String| async move {
        Err::<(), _>(Error::message(text))
    })
    .handle_stream("stream-echo", |req: StreamRequest| async move {
        gotalk::Reply::stream(req.chunks)
    });
    h
}

async fn listen(addr: &str) -> Result<(), Failure> {
    let config = Config::accepting().handlers(listen_handlers());
    let cannot = |e: std::io::Error| Failure(3, format!("cannot listen on {addr}: {e}"));
    // Every connection goes through a relay that logs what the peer sends.
    let serve = |stream: Box<dyn Io>, peer: String| {
        let config = config.clone();
        async move {
            let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
            println!("{} #{conn} connected: {peer}", now());
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let sock = Sock::adopt(ours, peer, config);
            let (net_r, net_w) = tokio::io::split(stream);
            let (pipe_r, pipe_w) = tokio::io::split(theirs);
            let incoming = relay(net_r, pipe_w, Log::new(format!("#{conn} ←")));
            let outgoing = relay(pipe_r, net_w, Log::new(format!("#{conn} →")));
            let _ = tokio::join!(incoming, outgoing);
            sock.close();
            println!("{} #{conn} closed: {}", now(), sock.closed().await);
        }
    };
    if let Some(path) = addr.strip_prefix("unix:") {
        #[cfg(unix)]
        {
            let _ = std::fs::remove_file(path);
            let listener = tokio::net::UnixListener::bind(path).map_err(cannot)?;
            println!("listening on unix:{path}");
            loop {
                let (stream, _) = listener.accept().await.map_err(cannot)?;
                tokio::spawn(serve(Box::new(stream), format!("unix:{path}")));
            }
        }
        #[cfg(not(unix))]
        return Err(Failure(
            2,
            format!("unix sockets are not available here: {path}"),
        ));
    }
    let host_port = addr.strip_prefix("tcp://").unwrap_or(addr);
    let listener = tokio::net::TcpListener::bind(host_port)
        .await
        .map_err(cannot)?;
    println!("listening on {}", listener.local_addr().map_err(cannot)?);
    loop {
        let (stream, peer) = listener.accept().await.map_err(cannot)?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(Box::new(stream), peer.to_string()));
    }
}

async fn trace(listen_addr: &str, upstream: &str, tls: TlsArgs) -> Result<(), Failure> {
    let cannot = |e: std::io::Error| Failure(3, format!("cannot listen on {listen_addr}: {e}"));
    let host_port = listen_addr.strip_prefix("tcp://").unwrap_or(listen_addr);
    let listener = tokio::net::TcpListener::bind(host_port)
        .await
        .map_err(cannot)?;
    println!(
        "tracing {} → {upstream}",
        listener.local_addr().map_err(cannot)?
    );
    loop {
        let (client, peer) = listener.accept().await.map_err(cannot)?;
        let _ = client.set_nodelay(true);
        let (upstream, tls) = (upstream.to_string(), tls.clone());
        tokio::spawn(async move {
            let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
            let server = match open(&upstream, &tls).await {
                Ok(server) => server,
                Err(Failure(_, e)) => {
                    println!("{} #{conn} {peer}: {e}", now());
                    return;
                }
            };
            println!("{} #{conn} {peer} ⇄ {upstream}", now());
            let (client_r, client_w) = client.into_split();
            let (server_r, server_w) = tokio::io::split(server);
            let up = relay(client_r, server_w, Log::new(format!("#{conn} →")));
            let down = relay(server_r, client_w, Log::new(format!("#{conn} ←")));
            let _ = tokio::join!(up, down);
            println!("{} #{conn} closed", now());
        });
    }
}
