//! `gotalk`: talk to any Gotalk peer, serve a few operations, and trace conversations.
//!
//! ```text
//! gotalk call 127.0.0.1:1234 greet '{"name":"Rasmus"}'
//! gotalk call ws://127.0.0.1:1235/gotalk/ stream-echo --stream-request < lines.json
//! gotalk notify unix:/tmp/peer.sock hello '"hi"'
//! rlwrap gotalk shell 127.0.0.1:1234     # login "ana" ⏎ notes ⏎ …
//! gotalk listen 127.0.0.1:1234
//! gotalk trace 127.0.0.1:9000 tls://example.com:1234
//! gotalk describe ws://127.0.0.1:1237/gotalk/
//! gotalk completions bash > /etc/bash_completion.d/gotalk
//! ```

//!
//! This file only parses arguments; each subcommand is a file of its own, and addresses
//! are parsed in `addr.rs`.

mod addr;
mod call;
mod describe;
mod listen;
mod log;
mod safe;
mod shell;
mod trace;

use std::{process::ExitCode, time::Duration};

use clap::{CommandFactory, Parser, Subcommand};
use gotalk::Error;

use addr::TlsArgs;

const EXIT_CODES: &str = concat!(
    "Exit codes: 0 success; 1 the peer answered with an error or retry result; \
     2 bad arguments; 3 the peer could not be reached; 4 the connection failed or closed \
     (e.g. a protocol error); 5 timed out; 6 the peer does not describe itself (describe); 130 interrupted (Ctrl-C).\n\n",
    // The forms `addr::Addr::parse` reads.
    "ADDR: host:port or tcp://host:port, unix:/path, tls://host:port, \
     ws://host:port/path, wss://host:port/path."
);

#[derive(Parser)]
#[command(name = "gotalk", version, about = "Talk to, serve and trace Gotalk peers", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sends a request and prints its results as they come (one result, or each part of
    /// a stream of results), as pretty JSON or, with --raw, as they came. When the peer
    /// describes itself, the payload (and each stream part) is first checked against the
    /// operation's input schema, and one that does not fit is not sent; a peer that does
    /// not is waited for 200 ms plus four times what connecting took (--raw skips the
    /// check and the wait).
    #[command(after_help = EXIT_CODES)]
    Call {
        /// The peer.
        addr: String,
        /// The operation.
        op: String,
        /// The payload: JSON (checked, unless --raw); none for an empty payload.
        payload: Option<String>,
        /// Send payloads as they are, without checking that they are JSON, and print
        /// results as they came, not as pretty JSON.
        #[arg(long)]
        raw: bool,
        /// Send a stream request: PAYLOAD (if given), then every line of stdin as a part
        /// (each JSON, unless --raw), then the end of the stream.
        #[arg(long)]
        stream_request: bool,
        /// Make this call first, on the same connection (e.g. `--before login
        /// '"token"'` for an operation behind a sign-in); repeatable, in order. Its result
        /// is not printed; an error stops there.
        #[arg(long, num_args = 2, value_names = ["OP", "PAYLOAD"])]
        before: Vec<String>,
        /// Give up after this many seconds (as on Ctrl-C: a peer that speaks our
        /// extension stops working on the request).
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Makes many calls on one connection: reads stdin a line at a time, `OP [PAYLOAD]`
    /// for a request (its results printed as `call` prints them) or `!NAME [PAYLOAD]` for a
    /// notification; blank lines and `# comments` are skipped. A call that fails is
    /// reported on stderr and the next line is read (exit code 1 at the end); a closed
    /// connection ends it. For line editing and history, run it under `rlwrap`.
    #[command(after_help = EXIT_CODES)]
    Shell {
        /// The peer.
        addr: String,
        /// Send payloads as they are, without checking that they are JSON, and print
        /// results as they came, not as pretty JSON.
        #[arg(long)]
        raw: bool,
        /// Give up on a call (or on connecting) after this many seconds.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Prints what a peer that describes itself serves (a gotalk-rs server with
    /// `Config::describe(true)`): each operation's signature, default timeout and docs,
    /// by service.
    #[command(after_help = EXIT_CODES)]
    Describe {
        /// The peer.
        addr: String,
        /// Print the description as JSON, with the JSON Schemas of the types.
        #[arg(long, conflicts_with = "names")]
        json: bool,
        /// Print only the names, one per line (for `rlwrap -f` and scripts).
        #[arg(long)]
        names: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Prints the shell completions of this tool: e.g. `gotalk completions bash >
    /// ~/.local/share/bash-completion/completions/gotalk`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Sends a notification.
    #[command(after_help = EXIT_CODES)]
    Notify {
        /// The peer.
        addr: String,
        /// The notification name.
        name: String,
        /// The payload: JSON (checked, unless --raw); none for an empty payload.
        payload: Option<String>,
        /// Send the payload as it is, without checking that it is JSON.
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Serves echo, upper, sleep, fail, stream-echo (a stream request) and count (a stream
    /// of results) on ADDR (tcp or unix), printing every message received in the
    /// readable wire form.
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
            stream_request,
            before,
            timeout,
            tls,
        } => {
            let timeout = match seconds(timeout) {
                Ok(timeout) => timeout,
                Err(e) => return exit(Err(e)),
            };
            let options = call::Options {
                raw,
                stream_request,
                timeout,
                before: before
                    .chunks_exact(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect(),
            };
            call::call(&addr, &op, payload, &options, &tls).await
        }
        Command::Shell {
            addr,
            raw,
            timeout,
            tls,
        } => match seconds(timeout) {
            Ok(timeout) => shell::shell(&addr, raw, timeout, &tls).await,
            Err(e) => Err(e),
        },
        Command::Notify {
            addr,
            name,
            payload,
            raw,
            tls,
        } => call::notify(&addr, &name, payload, raw, &tls).await,
        Command::Describe {
            addr,
            json,
            names,
            timeout,
            tls,
        } => match seconds(timeout) {
            Ok(timeout) => {
                let form = match (json, names) {
                    (true, _) => describe::Form::Json,
                    (_, true) => describe::Form::Names,
                    _ => describe::Form::Signatures,
                };
                describe::describe(&addr, form, timeout, &tls).await
            }
            Err(e) => Err(e),
        },
        Command::Completions { shell } => completions(shell),
        Command::Listen { addr } => listen::listen(&addr).await,
        Command::Trace {
            listen_addr,
            upstream_addr,
            tls,
        } => trace::trace(&listen_addr, &upstream_addr, tls).await,
    };
    exit(result)
}

/// A call or a connection that took longer than `timeout`.
fn gave_up(timeout: Duration) -> Failure {
    Failure(5, format!("no answer within {} s", timeout.as_secs_f64()))
}

/// Prints the completions of `shell`. Made in memory first: clap's generator panics when
/// it cannot write, and a reader that stops early (`| head`) is not a failure.
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gotalk", &mut script);
    let mut out = std::io::stdout().lock();
    match std::io::Write::write_all(&mut out, &script)
        .and_then(|()| std::io::Write::flush(&mut out))
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure(4, format!("writing the completions: {e}")))
        }
        _ => Ok(()),
    }
}

/// `--timeout`'s seconds, which must be a positive number.
fn seconds(value: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure(
                2,
                format!("--timeout {value}: give a positive number of seconds"),
            )
        })
}

/// The exit code of `result`, its error printed.
fn exit(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            // The message may carry a peer's words (an error text, a schema).
            eprintln!("gotalk: {}", safe::text(&message));
            ExitCode::from(code)
        }
    }
}
