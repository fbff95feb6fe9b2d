//! The web console: one page (`GET /`) and its files (`GET
//! /console/{file}`: ES modules, the style sheet, the icon), all embedded
//! in the binary at build time from `api-gateway/console/`, so the console
//! works on a host that reaches nothing but itself.
//!
//! What it guarantees:
//! - nothing is read from disk or generated per request: each file is a
//!   `&'static [u8]` with its content type and a strong `ETag` computed at
//!   compile time from its bytes (`If-None-Match` → 304);
//! - every answer carries [`CSP`] (scripts, styles, images and requests
//!   from this origin only, no inline script or style, Trusted Types
//!   required so that no string can reach an HTML sink, no framing), plus
//!   the headers every response gets (`http::reply`);
//! - the files need no key: the page asks for one and keeps it in the
//!   tab's `sessionStorage`; every API call it makes goes through the
//!   router's authentication like any other client's.

use hyper::header::{self, HeaderName, HeaderValue};
use hyper::StatusCode;

use super::ctx::Ctx;
use crate::error::ApiError;
use crate::http::extract::{FromInput, Input};
use crate::reply::Reply;

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'; \
    require-trusted-types-for 'script'; trusted-types 'none'";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The name under `/console/` (the page itself: `index.html`).
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// `"<16 hex>"`, a hash of `body`.
    etag: [u8; 18],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {{
        const BODY: &[u8] = include_bytes!(concat!("../../console/", $name));
        Asset {
            name: $name,
            content_type: $type,
            body: BODY,
            etag: etag(BODY),
        }
    }};
}

/// The page served at `/`.
pub const PAGE: Asset = asset!("index.html", "text/html; charset=utf-8");

/// The files served under `/console/`.
pub const FILES: &[Asset] = &[
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("format.js", "text/javascript; charset=utf-8"),
    asset!("sse.js", "text/javascript; charset=utf-8"),
    asset!("poll.js", "text/javascript; charset=utf-8"),
    asset!("table-model.js", "text/javascript; charset=utf-8"),
    asset!("processes.js", "text/javascript; charset=utf-8"),
    asset!("act.js", "text/javascript; charset=utf-8"),
    asset!("group.js", "text/javascript; charset=utf-8"),
    asset!("jobs.js", "text/javascript; charset=utf-8"),
    asset!("ansi.js", "text/javascript; charset=utf-8"),
    asset!("link.js", "text/javascript; charset=utf-8"),
    asset!("series.js", "text/javascript; charset=utf-8"),
    asset!("chart.js", "text/javascript; charset=utf-8"),
    asset!("host.js", "text/javascript; charset=utf-8"),
    asset!("verdict.js", "text/javascript; charset=utf-8"),
    asset!("offer.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

/// A strong validator: FNV-1a (64 bits) of the bytes, quoted hex. It
/// only has to change when a file changes; it guards nothing.
const fn etag(body: &[u8]) -> [u8; 18] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < body.len() {
        h ^= body[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    let hex = b"0123456789abcdef";
    let mut out = [b'"'; 18];
    let mut j = 0;
    while j < 16 {
        out[1 + j] = hex[((h >> (60 - 4 * j)) & 0xf) as usize];
        j += 1;
    }
    out
}

impl Asset {
    fn etag(&self) -> HeaderValue {
        // Quoted lowercase hex: always a valid header value.
        HeaderValue::from_bytes(&self.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
    }

    /// Whether an `If-None-Match` value names this file's current bytes.
    fn matches(&self, if_none_match: &str) -> bool {
        if_none_match.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/").as_bytes() == self.etag
        })
    }

    /// 200 with the bytes, or 304 when the client has them.
    fn reply(&self, if_none_match: Option<&str>) -> Reply {
        let (status, body, content_type) = match if_none_match {
            Some(v) if self.matches(v) => (StatusCode::NOT_MODIFIED, &[][..], ""),
            _ => (StatusCode::OK, self.body, self.content_type),
        };
        Reply {
            status,
            headers: Vec::new(),
            body: bytes::Bytes::from_static(body),
            stream: None,
            content_type,
        }
        .header(header::ETAG, self.etag())
        // Always revalidate: a new binary serves new files at once.
        .header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))
        .header(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        )
        .header(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        )
    }
}

/// `GET /`: only the validator.
#[derive(Debug)]
pub struct PageRequest {
    if_none_match: Option<String>,
}

impl FromInput for PageRequest {
    fn from_input(input: &Input) -> Result<PageRequest, ApiError> {
        Ok(PageRequest {
            if_none_match: input.header(header::IF_NONE_MATCH).map(str::to_owned),
        })
    }
}

/// `GET /console/{file}`.
#[derive(Debug)]
pub struct FileRequest {
    name: String,
    if_none_match: Option<String>,
}

impl FromInput for FileRequest {
    fn from_input(input: &Input) -> Result<FileRequest, ApiError> {
        Ok(FileRequest {
            name: input.path("file")?.to_owned(),
            if_none_match: input.header(header::IF_NONE_MATCH).map(str::to_owned),
        })
    }
}

/// The page.
pub async fn page(_: &Ctx, req: PageRequest) -> Result<Reply, ApiError> {
    Ok(PAGE.reply(req.if_none_match.as_deref()))
}

/// One of [`FILES`]; any other name is the JSON 404.
pub async fn file(_: &Ctx, req: FileRequest) -> Result<Reply, ApiError> {
    FILES
        .iter()
        .find(|a| a.name == req.name)
        .map(|a| a.reply(req.if_none_match.as_deref()))
        .ok_or_else(|| ApiError::RouteNotFound(format!("no console file {:?}", req.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(a: &Asset) -> &'static str {
        std::str::from_utf8(a.body).expect("console files are UTF-8")
    }

    #[test]
    fn etags_differ_per_file_and_match_only_their_own_bytes() {
        let mut seen: Vec<[u8; 18]> = Vec::new();
        for a in FILES.iter().chain([&PAGE]) {
            assert!(!seen.contains(&a.etag), "{} shares an ETag", a.name);
            seen.push(a.etag);
            let tag = String::from_utf8(a.etag.to_vec()).expect("ascii");
            assert!(a.matches(&tag) && a.matches(&format!("W/{tag}, \"x\"")));
            assert!(a.matches("*") && !a.matches("\"0000000000000000\""));
            assert_eq!(a.reply(Some(&tag)).status, StatusCode::NOT_MODIFIED);
            assert_eq!(a.reply(None).status, StatusCode::OK);
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_names_only_embedded_files() {
        let page = text(&PAGE);
        for bad in ["<style", " style=", "javascript:"] {
            assert!(!page.contains(bad), "index.html contains {bad:?}");
        }
        for part in page.split(" on").skip(1) {
            let attr: String = part.chars().take_while(char::is_ascii_lowercase).collect();
            assert!(
                !part[attr.len()..].starts_with('='),
                "index.html has an inline handler on{attr}="
            );
        }
        for part in page.split("<script").skip(1) {
            let tag = part.split('>').next().unwrap_or("");
            assert!(tag.contains("src="), "inline <script{tag}>");
        }
        for part in page.split("\"/console/").skip(1) {
            let name = part.split('"').next().unwrap_or("");
            assert!(
                FILES.iter().any(|a| a.name == name),
                "index.html names /console/{name}, which is not embedded"
            );
        }
        for a in FILES.iter().filter(|a| a.name.ends_with(".js")) {
            for part in text(a).split("from './").skip(1) {
                let name = part.split('\'').next().unwrap_or("");
                assert!(
                    FILES.iter().any(|f| f.name == name),
                    "{} imports ./{name}, which is not embedded",
                    a.name
                );
            }
        }
    }

    /// A file left out of [`FILES`] would be a 404 for the page that
    /// imports it, which only the browser test would notice.
    #[test]
    fn every_file_of_the_console_directory_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("the console directory")
            .map(|e| e.expect("a directory entry").file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut embedded: Vec<String> = FILES
            .iter()
            .chain([&PAGE])
            .map(|a| a.name.to_owned())
            .collect();
        embedded.sort();
        assert_eq!(names, embedded);
    }

    #[test]
    fn no_script_writes_html_or_evaluates_strings() {
        for a in FILES.iter().filter(|a| a.name.ends_with(".js")) {
            let t = text(a);
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setAttribute('style'",
                "localStorage",
                "document.cookie",
            ] {
                assert!(!t.contains(sink), "{} uses {sink}", a.name);
            }
        }
    }
}
