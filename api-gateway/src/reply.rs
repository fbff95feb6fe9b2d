//! The one writer of the JSON envelope, success and error alike:
//! `{"result":"ok", ...members}` or
//! `{"result":"error","message":..,"code":.., ...members}`, always with
//! `result` first. Handlers hand it typed members (or, for process
//! listings, JSON the reader already wrote) and never format an envelope
//! themselves.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

/// The body type of every response: whole bytes or a stream.
pub type ResponseBody = BoxBody<Bytes, std::io::Error>;

/// A body produced while it is sent (raw output, live events, a large
/// answer built chunk by chunk), so no answer is ever held whole.
pub struct Stream(pub ResponseBody);

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

/// Headers on every answer unless the handler set its own: no MIME
/// sniffing, no referrer, no framing, no cross-origin embedding, and a CSP
/// under which nothing runs — an API answer (which may hold a process's
/// command line) is data, never a document. The console's files set a CSP
/// of their own (`api::console`).
pub const DEFAULT_HEADERS: [(HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// A finished answer: status, extra headers and the body — JSON bytes, or
/// a [`Stream`] of another content type.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The JSON body (empty when `stream` is set).
    pub body: Bytes,
    pub stream: Option<Stream>,
    pub content_type: &'static str,
}

impl Reply {
    /// A streamed answer of `content_type`.
    pub fn streamed(status: StatusCode, content_type: &'static str, body: ResponseBody) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            stream: Some(Stream(body)),
            content_type,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// The hyper response, with [`DEFAULT_HEADERS`] where the handler did
    /// not set its own; an empty `content_type` (a 304) sends none.
    pub fn into_response(self) -> Response<ResponseBody> {
        let body = match self.stream {
            Some(Stream(s)) => s,
            None => Full::new(self.body).map_err(|never| match never {}).boxed(),
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        if !self.content_type.is_empty() {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
        }
        for (k, v) in self.headers {
            h.insert(k, v);
        }
        for (k, v) in DEFAULT_HEADERS {
            h.entry(k).or_insert(HeaderValue::from_static(v));
        }
        resp
    }
}

/// A body fed through a bounded channel by a producer task: the producer
/// waits while the client is slow (backpressure, bounded memory) and stops
/// when the client is gone (its sends fail).
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    /// The body and the sender its producer writes chunks to; `depth`
    /// chunks at most wait in between.
    pub fn channel(depth: usize) -> (mpsc::Sender<Bytes>, ResponseBody) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        (tx, ChannelBody { rx }.boxed())
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// An answer struct that does not serialize to a JSON object (a bug;
/// becomes a 500 through `ApiError`).
#[derive(Debug)]
pub struct EncodeError(pub String);

/// Builds one envelope member by member.
pub struct Envelope {
    out: Vec<u8>,
}

impl Envelope {
    /// `{"result":"ok"`.
    pub fn ok() -> Envelope {
        Envelope {
            out: br#"{"result":"ok""#.to_vec(),
        }
    }

    /// `{"result":"error","message":..,"code":..`.
    pub fn error(code: &str, message: &str) -> Envelope {
        Envelope::with_result("error")
            .member("message", message)
            .member("code", code)
    }

    fn with_result(result: &str) -> Envelope {
        let mut e = Envelope { out: Vec::new() };
        e.out.extend_from_slice(br#"{"result":"#);
        write_json(&mut e.out, result);
        e
    }

    /// Adds `"name": value`.
    pub fn member<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Envelope {
        self.key(name);
        write_json(&mut self.out, value);
        self
    }

    /// Adds every member of `body`, which must serialize to a JSON object
    /// (a typed answer struct).
    pub fn members<T: Serialize>(mut self, body: &T) -> Result<Envelope, EncodeError> {
        match serde_json::to_value(body) {
            Ok(serde_json::Value::Object(m)) => {
                for (k, v) in m {
                    self.key(&k);
                    write_json(&mut self.out, &v);
                }
                Ok(self)
            }
            Ok(_) => Err(EncodeError("answer is not a JSON object".into())),
            Err(e) => Err(EncodeError(format!("encoding the answer: {e}"))),
        }
    }

    /// Adds `"name": <json>` where `json` is already valid JSON (a listing
    /// written by the /proc reader).
    pub fn raw_member(mut self, name: &str, json: &[u8]) -> Envelope {
        self.key(name);
        self.out.extend_from_slice(json);
        self
    }

    /// The envelope so far, still open and ending with a comma, for a
    /// streamed answer that appends more members itself.
    pub fn open(mut self) -> Vec<u8> {
        self.out.push(b',');
        self.out
    }

    /// Adds `"name": <json>` where `write` appends valid JSON (a listing
    /// written by the /proc reader straight into the answer, uncopied).
    /// On error nothing is kept of the member.
    pub fn raw_member_with<E>(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mark = self.out.len();
        self.key(name);
        write(&mut self.out).inspect_err(|_| self.out.truncate(mark))
    }

    /// Closes the object.
    pub fn finish(mut self, status: StatusCode) -> Reply {
        self.out.push(b'}');
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::from(self.out),
            stream: None,
            content_type: "application/json",
        }
    }

    fn key(&mut self, name: &str) {
        self.out.push(b',');
        write_json(&mut self.out, name);
        self.out.push(b':');
    }
}

/// Serializes into `out`. Only strings, numbers, maps and derived structs
/// reach here, for which serde_json cannot fail; `null` is written if it
/// ever did rather than a broken document.
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let mark = out.len();
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.truncate(mark);
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Answer {
        pid: i32,
        signal: &'static str,
    }

    #[test]
    fn result_comes_first_and_members_follow_in_order() {
        let r = Envelope::ok()
            .member("a", &1)
            .raw_member("list", b"[1,2]")
            .finish(StatusCode::OK);
        assert_eq!(&r.body[..], br#"{"result":"ok","a":1,"list":[1,2]}"#);
        let r = Envelope::ok()
            .members(&Answer {
                pid: 4,
                signal: "TERM",
            })
            .expect("object")
            .finish(StatusCode::OK);
        assert_eq!(&r.body[..], br#"{"result":"ok","pid":4,"signal":"TERM"}"#);
        let r = Envelope::error("busy", "say \"why\"").finish(StatusCode::TOO_MANY_REQUESTS);
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(v["message"], "say \"why\"");
        assert!(r.body.starts_with(br#"{"result":"error""#));
    }
}
