//! The inspector page (`Endpoint::inspector`): one HTML file with its style and script,
//! which loads our gotalk.js from the endpoint's mount, connects to its socket, lists
//! the operations the server describes, calls them and logs every message both ways.

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};

/// The page as committed; `%GOTALK_ENDPOINT%` stands for the endpoint's mount.
const PAGE: &str = include_str!("../../../js/inspector.html");

/// The page for an endpoint mounted at `mount` (e.g. `/gotalk`, or empty at the root).
pub(super) fn page(mount: &str) -> String {
    PAGE.replace("%GOTALK_ENDPOINT%", &attribute(mount))
}

/// `text` safe inside a double-quoted HTML attribute.
fn attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The page as served: never cached (it is small, and follows the endpoint), and never
/// framed by another site (its buttons make calls on the user's connection).
pub(super) fn serve(body: &str) -> Response {
    let mut response = body.to_owned().into_response();
    let h = response.headers_mut();
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in headers {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_gotalk_js_from_the_mount() {
        let page = page("/api/gotalk");
        assert!(page.contains(r#"<meta name="gotalk-endpoint" content="/api/gotalk">"#));
        assert!(page.contains(r#"<script src="/api/gotalk/gotalk.js"></script>"#));
        assert!(!page.contains("%GOTALK_ENDPOINT%"));
        assert_eq!(
            attribute(r#"/a"><script>&'"#),
            "/a&quot;&gt;&lt;script&gt;&amp;&#39;"
        );
    }
}
