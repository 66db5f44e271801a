//! Observability built in (feature `metrics`): the metrics of requests, calls and
//! connections as a Prometheus exporter renders them, and the span of a request.
#![cfg(feature = "metrics")]

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use gotalk::{observe, Config, Error, Handlers, Sock};
use metrics_exporter_prometheus::PrometheusBuilder;

fn handlers() -> Handlers {
    Handlers::new()
        .handle("get", |key: String| async move {
            match key.as_str() {
                "k" => Ok("value".to_owned()),
                _ => Err(Error::message("not found")),
            }
        })
        .handle("busy", |()| async {
            Err::<(), _>(Error::retry(std::time::Duration::from_millis(1), "busy"))
        })
        .handle_raw("", |_req: gotalk::Request| async {
            Ok::<_, Error>(bytes::Bytes::new())
        })
        .wrap(observe::requests())
}

/// The rendered lines of metric `name` that are not 0 (an operation's counters are
/// all there, at 0, from its first request), sorted.
fn lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let mut found: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| !l.ends_with(" 0"))
        .collect();
    found.sort_unstable();
    found
}

// One test: a process has one global recorder.
#[tokio::test(flavor = "current_thread")]
async fn requests_calls_and_connections_are_counted_and_traced() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    let spans = Spans::default();
    let _tracing = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(spans.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .finish(),
    );

    let (sock, _server): (Sock, Sock) = gotalk::pipe(
        Config::dialling().observe(),
        Config::accepting().handlers(handlers()).observe(),
    );
    for key in ["k", "k", "missing"] {
        let _ = sock.request::<_, String>("get", &key).await;
    }
    let _ = sock.request::<_, ()>("busy", &()).await;
    // The peer chooses this name: it is counted under the fallback's, `*`.
    sock.request_raw("made-up-name", "").await.unwrap();

    let text = prometheus.render();
    assert_eq!(
        lines(&text, "gotalk_requests_total"),
        [
            r#"gotalk_requests_total{op="*",outcome="ok"} 1"#,
            r#"gotalk_requests_total{op="busy",outcome="retry"} 1"#,
            r#"gotalk_requests_total{op="get",outcome="error"} 1"#,
            r#"gotalk_requests_total{op="get",outcome="ok"} 2"#,
        ],
        "{text}"
    );
    let mut served = text.lines().filter(|l| l.starts_with("gotalk_request"));
    assert!(served.all(|l| !l.contains("made-up-name")), "{text}");
    assert_eq!(
        lines(&text, "gotalk_calls_total"),
        [
            r#"gotalk_calls_total{op="busy",outcome="retry"} 1"#,
            r#"gotalk_calls_total{op="get",outcome="error"} 1"#,
            r#"gotalk_calls_total{op="get",outcome="ok"} 2"#,
            r#"gotalk_calls_total{op="made-up-name",outcome="ok"} 1"#,
        ],
        "{text}"
    );
    for line in [
        // `"k"` three bytes in, `"value"` seven out, twice; `"missing"` in, `not found` out.
        r#"gotalk_request_bytes_in_total{op="get"} 15"#,
        r#"gotalk_request_bytes_out_total{op="get"} 23"#,
        r#"gotalk_requests_in_flight{op="get"} 0"#,
        r#"gotalk_request_duration_seconds_count{op="get"} 3"#,
        r#"gotalk_call_duration_seconds_count{op="get"} 3"#,
        "gotalk_connections_open 2",
        "gotalk_connections_total 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing in:\n{text}"
        );
    }
    let read = counter(&text, "gotalk_bytes_read_total");
    let written = counter(&text, "gotalk_bytes_written_total");
    assert!(
        read > 100 && read == written,
        "{read} read, {written} written"
    );

    sock.close();
    _server.close();
    for _ in 0..100 {
        if prometheus.render().contains("gotalk_connections_open 0") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(prometheus.render().contains("gotalk_connections_open 0"));

    let spans = spans.text();
    let closes: Vec<&str> = spans
        .lines()
        .filter(|l| l.contains("gotalk.request") && l.contains("close"))
        .collect();
    assert_eq!(closes.len(), 5, "{spans}");
    assert!(
        closes.iter().any(|l| l.contains("op=get")
            && l.contains("id=\"0002\"")
            && l.contains("outcome=\"error\"")
            && l.contains("duration_us=")),
        "{spans}"
    );
}

fn counter(text: &str, name: &str) -> u64 {
    let line = lines(text, name).first().copied().unwrap_or_default();
    line.rsplit(' ').next().unwrap_or("0").parse().unwrap_or(0)
}

/// What the fmt subscriber writes, kept.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<u8>>>);

impl Spans {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Spans {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Spans {
    type Writer = Spans;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
