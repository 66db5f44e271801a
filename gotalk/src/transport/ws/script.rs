//! Serving gotalk.js and its TypeScript declarations (`gotalk.d.ts`, which the modules
//! `typescript` writes import): `ETag`, `304 Not Modified` for a matching `If-None-Match`
//! (lists and weak tags as HTTP says), gzip when accepted, `Vary: Accept-Encoding`, a
//! short max-age.

use std::{io::Write, sync::OnceLock};

use axum::{
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use bytes::Bytes;

/// Our gotalk.js, as served.
pub const GOTALK_JS: &str = include_str!("../../../js/gotalk.js");

/// gotalk.js's TypeScript declarations, as served beside it: a page written in
/// TypeScript imports its types from `./gotalk` (as the modules `typescript` writes do).
pub const GOTALK_DTS: &str = include_str!("../../../js/gotalk.d.ts");

/// How long browsers may use their copy without asking again.
const CACHE_CONTROL: &str = "public, max-age=300";

/// A file served with a tag and a gzipped copy, each made once.
pub(crate) struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: OnceLock<String>,
    gzipped: OnceLock<Bytes>,
}

/// gotalk.js.
pub(crate) static SCRIPT: Asset = Asset::new(GOTALK_JS, "application/javascript; charset=utf-8");
/// gotalk.d.ts.
pub(crate) static DECLARATIONS: Asset = Asset::new(GOTALK_DTS, "text/plain; charset=utf-8");

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Self {
        Self {
            body,
            content_type,
            etag: OnceLock::new(),
            gzipped: OnceLock::new(),
        }
    }

    fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            // FNV-1a: stable across builds and processes, which `std`'s hasher is not.
            let hash = self.body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            format!("\"{hash:016x}\"")
        })
    }

    fn gzipped(&self) -> &Bytes {
        self.gzipped.get_or_init(|| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Writing to a Vec cannot fail.
            let _ = enc.write_all(self.body.as_bytes());
            Bytes::from(enc.finish().unwrap_or_default())
        })
    }
}

/// Whether `If-None-Match` matches `ours` (weak comparison, `*`, comma-separated lists).
fn not_modified(headers: &HeaderMap, ours: &str) -> bool {
    super::http::list(headers, header::IF_NONE_MATCH)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

/// Whether `Accept-Encoding` accepts gzip (present with a q-value above zero).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    super::http::list(headers, header::ACCEPT_ENCODING).any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let q = parts
            .find_map(|p| p.strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        (name.eq_ignore_ascii_case("gzip") || name == "*") && q > 0.0
    })
}

/// `GET <mount>/gotalk.js` (or `gotalk.d.ts`: `asset`).
pub(crate) fn serve(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let mut response = if not_modified(headers, asset.etag()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) {
        let mut r = asset.gzipped().clone().into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if let Ok(tag) = HeaderValue::from_str(asset.etag()) {
        h.insert(header::ETAG, tag);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn if_none_match_lists_weak_tags_and_star() {
        let ours = SCRIPT.etag().to_string();
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"other\", W/{ours}")).unwrap(),
        );
        assert!(not_modified(&h, &ours));
        assert!(not_modified(&headers(header::IF_NONE_MATCH, "*"), &ours));
        assert!(!not_modified(
            &headers(header::IF_NONE_MATCH, "\"other\""),
            &ours
        ));
        assert!(!not_modified(&HeaderMap::new(), &ours));
        assert_ne!(DECLARATIONS.etag(), ours, "each file has its own tag");
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(accepts_gzip(&headers(header::ACCEPT_ENCODING, "br, gzip")));
        assert!(accepts_gzip(&headers(
            header::ACCEPT_ENCODING,
            "GZIP;q=0.5"
        )));
        assert!(accepts_gzip(&headers(header::ACCEPT_ENCODING, "*")));
        assert!(!accepts_gzip(&headers(header::ACCEPT_ENCODING, "gzip;q=0")));
        assert!(!accepts_gzip(&headers(header::ACCEPT_ENCODING, "identity")));
        for asset in [&SCRIPT, &DECLARATIONS] {
            let mut dec = flate2::read::GzDecoder::new(&asset.gzipped()[..]);
            let mut out = String::new();
            std::io::Read::read_to_string(&mut dec, &mut out).unwrap();
            assert_eq!(out, asset.body);
        }
    }
}
