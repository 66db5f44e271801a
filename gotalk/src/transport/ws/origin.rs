//! Which pages may open a socket: the `Origin` header, read as the web defines an origin.

use axum::http::StatusCode;
use url::Url;

use super::Refusal;

/// Which pages may open a socket, by their `Origin` header.
///
/// A browser sends the user's cookies with a WebSocket handshake whatever page opens it,
/// and the WebSocket protocol has no CORS: a page on another site could open a socket to
/// this server as the signed-in user (cross-site WebSocket hijacking). A browser always
/// names the page's origin in the `Origin` header of a WebSocket handshake, so the check
/// is on that header; by default only pages of the server's own origin may open one, and
/// more origins are an explicit choice.
///
/// An origin is compared as RFC 6454 defines it, not as text: its scheme, host and port,
/// with the scheme's default port filled in (`http://h` is `http://h:80`), hosts compared
/// without regard to case (and IPv6 literals as addresses), and a path after it tolerated
/// (`http://127.0.0.1:7713/`, as Go's `x/net/websocket` clients send it). The server's own
/// origin is the `Host` header's host and port (the port defaulting by the `Origin`'s
/// scheme). `null` (a sandboxed page, a file, a redirect across sites) and anything that
/// does not parse as an origin are refused.
///
/// A request with no `Origin` at all is admitted by default: browsers always send one, so
/// its absence means a program that is not a browser (Go's, Python's `websockets`, curl),
/// which could as easily send any `Origin` it liked; refusing it protects no one. For the
/// strict reading, [`RequirePresent`](Self::RequirePresent) refuses it.
///
/// Behind a reverse proxy, forward the `Host` header with its port (nginx:
/// `proxy_set_header Host $http_host;`), or list the public origin.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Pages of this server's own origin, and programs that send no `Origin`. The
    /// default.
    #[default]
    SameOrigin,
    /// This server's own origin and these (e.g. `https://app.example`), compared as
    /// origins; and programs that send no `Origin`.
    AllowList(Vec<String>),
    /// Any page of any site, but not a missing or `null` origin (the reference's
    /// behaviour): only for sockets that carry no ambient authority, such as cookies.
    RequirePresent,
    /// Anything, even no `Origin` at all (for non-browser clients on trusted networks).
    Any,
}

impl OriginPolicy {
    /// Admits or refuses a handshake by its `Origin` and `Host` headers.
    pub(super) fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), Refusal> {
        let allowed = match (self, origin) {
            (Self::Any, _) => true,
            (Self::RequirePresent, None) => false,
            (Self::SameOrigin | Self::AllowList(_), None) => true,
            (Self::RequirePresent, Some(origin)) => Origin::parse(origin).is_some(),
            (Self::SameOrigin, Some(origin)) => is_same_origin(origin, host),
            (Self::AllowList(list), Some(origin)) => {
                is_same_origin(origin, host)
                    || Origin::parse(origin)
                        .is_some_and(|o| list.iter().any(|l| Origin::parse(l) == Some(o.clone())))
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!("origin {:?} not allowed", origin.unwrap_or("(none)")),
            ))
        }
    }
}

/// An origin (RFC 6454 4): a scheme, a host and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: url::Host<String>,
    port: u16,
}

impl Origin {
    /// The origin of a URL of a scheme with a known default port (`http`, `https`, `ws`,
    /// `wss`); `None` for `null`, opaque origins and text that is no URL.
    fn parse(text: &str) -> Option<Origin> {
        let url = Url::parse(text.trim()).ok()?;
        Some(Origin {
            scheme: url.scheme().to_string(),
            host: url.host()?.to_owned(),
            port: url.port_or_known_default()?,
        })
    }
}

/// Whether `origin` names the host and port of the `Host` header.
fn is_same_origin(origin: &str, host: Option<&str>) -> bool {
    let (Some(origin), Some(host)) = (Origin::parse(origin), host) else {
        return false;
    };
    // The Host header has no scheme: it is read with the origin's, for its default port.
    if host.contains(['/', '@', '?', '#']) {
        return false;
    }
    Origin::parse(&format!("{}://{host}/", origin.scheme))
        .is_some_and(|own| own.host == origin.host && own.port == origin.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admits(policy: &OriginPolicy, origin: Option<&str>, host: &str) -> bool {
        policy.check(origin, Some(host)).is_ok()
    }

    #[test]
    fn the_same_origin_is_compared_as_an_origin() {
        let policy = OriginPolicy::SameOrigin;
        let host = "127.0.0.1:7713";
        for same in [
            "http://127.0.0.1:7713",
            "http://127.0.0.1:7713/",
            "http://127.0.0.1:7713/some/page?q=1",
            "HTTP://127.0.0.1:7713",
        ] {
            assert!(admits(&policy, Some(same), host), "{same}");
        }
        for other in [
            "http://127.0.0.1:7714",
            "http://127.0.0.2:7713",
            "https://evil.example",
            "null",
            "not an origin",
            "file:///home/page.html",
            "",
        ] {
            assert!(!admits(&policy, Some(other), host), "{other}");
        }
        // Default ports, by the origin's scheme.
        assert!(admits(
            &policy,
            Some("http://example.com"),
            "example.com:80"
        ));
        assert!(admits(
            &policy,
            Some("http://example.com:80"),
            "example.com"
        ));
        assert!(admits(
            &policy,
            Some("https://example.com"),
            "example.com:443"
        ));
        assert!(!admits(
            &policy,
            Some("https://example.com"),
            "example.com:80"
        ));
        assert!(!admits(
            &policy,
            Some("http://example.com"),
            "example.com:8080"
        ));
        // Hosts without regard to case; IPv6 literals as addresses.
        assert!(admits(&policy, Some("http://Example.COM"), "example.com"));
        assert!(admits(&policy, Some("http://[::1]:7713"), "[0:0::1]:7713"));
        assert!(!admits(&policy, Some("http://[::1]:7713"), "[::2]:7713"));
        // A Host header that is not a host.
        assert!(!admits(&policy, Some("http://a.example"), "a.example/x"));
        assert!(!admits(&policy, Some("http://a.example"), "user@a.example"));
    }

    #[test]
    fn an_absent_origin_is_admitted_unless_required() {
        assert!(admits(&OriginPolicy::SameOrigin, None, "h:1"));
        assert!(admits(&OriginPolicy::AllowList(vec![]), None, "h:1"));
        assert!(!admits(&OriginPolicy::RequirePresent, None, "h:1"));
        assert!(admits(&OriginPolicy::Any, None, "h:1"));
        assert!(!admits(&OriginPolicy::RequirePresent, Some("null"), "h:1"));
        assert!(admits(
            &OriginPolicy::RequirePresent,
            Some("https://any.example"),
            "h:1"
        ));
        assert!(admits(&OriginPolicy::Any, Some("null"), "h:1"));
    }

    #[test]
    fn a_listed_origin_is_compared_as_an_origin() {
        let policy = OriginPolicy::AllowList(vec!["https://App.example/".into()]);
        assert!(admits(&policy, Some("https://app.example"), "h:1"));
        assert!(admits(&policy, Some("https://app.example:443/x"), "h:1"));
        assert!(!admits(&policy, Some("http://app.example"), "h:1"));
        assert!(!admits(&policy, Some("https://app.example.evil"), "h:1"));
        assert!(
            admits(&policy, Some("http://h:1"), "h:1"),
            "and the server's own"
        );
    }
}
