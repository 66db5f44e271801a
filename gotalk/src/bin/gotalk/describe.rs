//! `gotalk describe`, and the check of `gotalk call`'s payloads against the operation's
//! input schema, both from the description a peer gives when it describes itself
//! (`gotalk::describe`).

use std::{
    collections::BTreeMap,
    io::Write,
    time::{Duration, Instant},
};

use gotalk::{
    describe::{DescribeError, Description, Operation},
    Sock,
};

use crate::{
    addr::{connect, TlsArgs},
    gave_up, safe, Failure,
};

/// How long to wait for the peer's announcement, given how long connecting took: ours
/// answer ours within one round trip, which connecting (a TCP handshake, and TLS's or
/// WebSocket's) has already taken; a peer that does not speak the extension never will.
pub fn announcement_wait(connecting: Duration) -> Duration {
    Duration::from_millis(200) + connecting * 4
}

/// Connects, and how long it took.
pub async fn connect_timed(addr: &str, tls: &TlsArgs) -> Result<(Sock, Duration), Failure> {
    let started = Instant::now();
    let sock = connect(addr, tls).await?;
    Ok((sock, started.elapsed()))
}

/// How `gotalk describe` prints a description.
pub enum Form {
    /// Each operation's signature and docs, by service.
    Signatures,
    /// The description's JSON, with the schemas.
    Json,
    /// The names, one per line.
    Names,
}

/// Prints the peer's description in `form`.
pub async fn describe(
    addr: &str,
    form: Form,
    timeout: Duration,
    tls: &TlsArgs,
) -> Result<(), Failure> {
    let asked = async {
        let (sock, connecting) = connect_timed(addr, tls).await?;
        let description = sock.describe_peer(announcement_wait(connecting)).await;
        sock.shutdown().await;
        description.map_err(|e| match e {
            DescribeError::NotDescribed => Failure(6, format!("{addr}: {e}")),
            DescribeError::Call(e) => Failure::from(e),
            e => Failure(4, e.to_string()),
        })
    };
    let description = tokio::time::timeout(timeout, asked)
        .await
        .map_err(|_| gave_up(timeout))??;
    let text = match form {
        Form::Json => serde_json::to_string_pretty(&description).unwrap_or_default() + "\n",
        Form::Names => description
            .operations
            .iter()
            .map(|op| safe::line(&op.name).into_owned() + "\n")
            .collect(),
        Form::Signatures => render(&description),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(())
}

/// The description for people: services in name order, each operation's signature,
/// its default timeout, and its docs indented under it; handlers registered by hand last.
fn render(description: &Description) -> String {
    let mut by_service: BTreeMap<Option<&str>, Vec<&Operation>> = BTreeMap::new();
    for op in &description.operations {
        by_service
            .entry(op.service.as_deref())
            .or_default()
            .push(op);
    }
    let mut out = String::new();
    if description.operations.is_empty() {
        out.push_str("(no operations)\n");
    }
    // `None` sorts first in a BTreeMap: the handlers registered by hand go last.
    let by_hand = by_service.remove(&None);
    let groups = by_service
        .into_iter()
        .map(|(service, ops)| (service.unwrap_or_default().to_owned(), ops))
        .chain(by_hand.map(|ops| ("registered by hand".to_owned(), ops)));
    for (title, ops) in groups {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&safe::line(&title));
        out.push('\n');
        for op in ops {
            out.push_str(&format!("  {}", safe::line(&op.to_string())));
            if let Some(ms) = op.timeout_ms {
                out.push_str(&format!("  (timeout {})", millis(ms)));
            }
            out.push('\n');
            for line in op.docs.lines() {
                out.push_str(format!("      {}", safe::text(line)).trim_end());
                out.push('\n');
            }
        }
    }
    out
}

/// `250 ms`, `5 s`, `2 min`.
fn millis(ms: u64) -> String {
    match ms {
        ms if ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    }
}

/// An operation's input schema, compiled once: what each payload of a call is checked
/// against.
pub struct InputCheck {
    op: String,
    type_name: String,
    validator: jsonschema::Validator,
}

/// The check of `op`'s input, if the peer describes itself and its description has a
/// schema for it. A peer that does not describe itself is called as it is; a description
/// that cannot be had, or a schema that does not compile, is said on stderr, and the call
/// goes on.
pub async fn input_check(sock: &Sock, connecting: Duration, op: &str) -> Option<InputCheck> {
    let description = match sock.describe_peer(announcement_wait(connecting)).await {
        Ok(description) => description,
        Err(DescribeError::NotDescribed) => return None,
        Err(e) => {
            eprintln!(
                "gotalk: not checking the payload: {}",
                safe::text(&e.to_string())
            );
            return None;
        }
    };
    let input = description.get(op)?.input.as_ref()?;
    InputCheck::new(op, &input.name, input.schema.as_ref()?)
}

impl InputCheck {
    fn new(op: &str, type_name: &str, schema: &serde_json::Value) -> Option<Self> {
        match jsonschema::validator_for(schema) {
            Ok(validator) => Some(Self {
                op: op.to_owned(),
                type_name: type_name.to_owned(),
                validator,
            }),
            Err(e) => {
                let why = safe::text(&e.to_string()).into_owned();
                eprintln!("gotalk: not checking the payload: the peer's schema for {op} does not compile: {why}");
                None
            }
        }
    }

    /// Checks `payload` (empty: JSON `null`, as a typed handler reads it): every place it
    /// does not fit, by its JSON pointer.
    pub fn check(&self, what: &str, payload: &str) -> Result<(), Failure> {
        let value: serde_json::Value = if payload.trim().is_empty() {
            serde_json::Value::Null
        } else {
            // Checked as JSON before (`check_json`).
            serde_json::from_str(payload)
                .map_err(|e| Failure(2, format!("{what} is not JSON ({e})")))?
        };
        let wrong: Vec<String> = self
            .validator
            .iter_errors(&value)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() {
                    "the top".to_owned()
                } else {
                    at
                };
                format!("  at {at}: {e}")
            })
            .collect();
        if wrong.is_empty() {
            return Ok(());
        }
        Err(Failure(
            2,
            format!(
                "{what} does not fit {}'s input ({}), so it was not sent:\n{}\n\
                 (to send it anyway, add --raw)",
                self.op,
                self.type_name,
                wrong.join("\n")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gotalk::describe::{Kind, Type};

    fn op(name: &str, service: Option<&str>, docs: &str, timeout_ms: Option<u64>) -> Operation {
        let mut op = Operation::new(name, Kind::Request);
        op.service = service.map(str::to_owned);
        op.docs = docs.to_owned();
        op.timeout_ms = timeout_ms;
        if service.is_some() {
            op.input = Some(Type {
                name: "String".into(),
                schema: None,
            });
            op.output = Some(Type {
                name: "u32".into(),
                schema: None,
            });
        }
        op
    }

    #[test]
    fn a_description_reads_by_service() {
        let description = Description {
            operations: vec![
                op("bytes", None, "", None),
                op("len", Some("Text"), "Counts.\n\nIn bytes.", Some(5000)),
                op("a", Some("Alpha"), "", Some(250)),
            ],
        };
        assert_eq!(
            render(&description),
            "Alpha\n  a(String) -> u32  (timeout 250 ms)\n\n\
             Text\n  len(String) -> u32  (timeout 5 s)\n      Counts.\n\n      In bytes.\n\n\
             registered by hand\n  bytes (request, by hand)\n"
        );
    }

    #[test]
    fn a_payload_that_does_not_fit_says_where() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"firstName": {"type": "string"}, "n": {"type": "integer", "minimum": 0}},
            "required": ["firstName"]
        });
        let input = InputCheck::new("greet", "GreetIn", &schema).unwrap();
        assert!(input.check("PAYLOAD", r#"{"firstName":"Ana"}"#).is_ok());
        let Err(Failure(code, text)) = input.check("PAYLOAD", r#"{"firstName":5,"n":-1}"#) else {
            panic!("accepted");
        };
        assert_eq!(code, 2);
        assert!(
            text.starts_with("PAYLOAD does not fit greet's input (GreetIn), so it was not sent:\n"),
            "{text}"
        );
        assert!(
            text.contains("  at /firstName: 5 is not of type \"string\""),
            "{text}"
        );
        assert!(
            text.contains("  at /n: -1 is less than the minimum of 0"),
            "{text}"
        );
        let Err(Failure(_, text)) = input.check("PAYLOAD", "") else {
            panic!("accepted");
        };
        assert!(
            text.contains("at the top: null is not of type \"object\""),
            "{text}"
        );
    }
}
