//! Response compression, one generic layer for every route: a JSON answer
//! that is large ([`MIN_BYTES`] or more, or of unknown length, i.e.
//! streamed) is gzip-compressed when the request's `Accept-Encoding`
//! accepts gzip (q-values honoured: `gzip;q=0` refuses it, `*` accepts
//! it). The body is compressed as it is produced, frame by frame, so a
//! streamed body stays streamed and memory stays bounded. Small answers,
//! errors, `HEAD` and anything not JSON are sent as they are. Every
//! response that could be compressed says `Vary: Accept-Encoding`.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::write::GzEncoder;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response};

/// Smaller answers are not worth compressing.
pub const MIN_BYTES: u64 = 8 * 1024;

/// The boxed body every response leaves the server as.
pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A content coding the gateway can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
}

/// The coding to use for a request with these headers, if any.
pub fn negotiate(method: &Method, headers: &HeaderMap) -> Option<Coding> {
    if method == Method::HEAD {
        return None;
    }
    let mut gzip = None;
    let mut star = None;
    for v in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(v) = v.to_str() else { continue };
        for item in v.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match name.as_str() {
                "gzip" | "x-gzip" => gzip = Some(q),
                "*" => star = Some(q),
                _ => {}
            }
        }
    }
    match gzip.or(star) {
        Some(q) if q > 0.0 => Some(Coding::Gzip),
        _ => None,
    }
}

/// Compresses `resp` with `coding` if it is a large JSON answer; always
/// boxes the body.
pub fn apply<B>(coding: Option<Coding>, resp: Response<B>) -> Response<BoxBody>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = resp.into_parts();
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let compressible = json && parts.status.is_success();
    if compressible {
        parts
            .headers
            .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    let large = body.size_hint().exact().map_or(true, |n| n >= MIN_BYTES);
    let body = match coding {
        Some(Coding::Gzip)
            if compressible && large && !parts.headers.contains_key(header::CONTENT_ENCODING) =>
        {
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts.headers.remove(header::CONTENT_LENGTH);
            Gzip::new(body).boxed()
        }
        _ => body.map_err(Into::into).boxed(),
    };
    Response::from_parts(parts, body)
}

/// A body gzip-compressed frame by frame.
pub struct Gzip<B> {
    inner: B,
    encoder: Option<GzEncoder<Vec<u8>>>,
}

impl<B> Gzip<B> {
    pub fn new(inner: B) -> Gzip<B> {
        Gzip {
            inner,
            encoder: Some(GzEncoder::new(Vec::new(), flate2::Compression::fast())),
        }
    }
}

impl<B> Body for Gzip<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            let Some(enc) = self.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            // Whatever the encoder has produced goes out first.
            if !enc.get_ref().is_empty() {
                let out = std::mem::take(enc.get_mut());
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let Some(enc) = self.encoder.as_mut() else {
                            return Poll::Ready(None);
                        };
                        if let Err(e) = enc.write_all(&data) {
                            return Poll::Ready(Some(Err(e.into())));
                        }
                        // A streamed body is flushed at each frame, so what
                        // the producer sent reaches the client.
                        if self.inner.size_hint().exact().is_none() {
                            if let Some(Err(e)) = self.encoder.as_mut().map(|e| e.flush()) {
                                return Poll::Ready(Some(Err(e.into())));
                            }
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(None) => {
                    let Some(enc) = self.encoder.take() else {
                        return Poll::Ready(None);
                    };
                    return match enc.finish() {
                        Ok(tail) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(tail))))),
                        Err(e) => Poll::Ready(Some(Err(e.into()))),
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::io::Read;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(accept).unwrap(),
        );
        h
    }

    #[test]
    fn accept_encoding_is_read_with_its_q_values() {
        let get = Method::GET;
        assert_eq!(negotiate(&get, &headers("gzip")), Some(Coding::Gzip));
        assert_eq!(
            negotiate(&get, &headers("br, gzip;q=0.5")),
            Some(Coding::Gzip)
        );
        assert_eq!(negotiate(&get, &headers("gzip;q=0")), None);
        assert_eq!(negotiate(&get, &headers("*")), Some(Coding::Gzip));
        assert_eq!(negotiate(&get, &headers("*;q=0, identity")), None);
        assert_eq!(negotiate(&get, &headers("gzip;q=0, *")), None);
        assert_eq!(negotiate(&get, &headers("identity")), None);
        assert_eq!(negotiate(&get, &HeaderMap::new()), None);
        assert_eq!(negotiate(&Method::HEAD, &headers("gzip")), None);
    }

    fn json(body: Vec<u8>) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }

    #[tokio::test]
    async fn a_large_json_answer_is_gzipped_and_a_small_one_is_not() {
        let big: Vec<u8> = std::iter::repeat(&b"{\"pid\":1},"[..])
            .take(5000)
            .flatten()
            .copied()
            .collect();
        let r = apply(Some(Coding::Gzip), json(big.clone()));
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(r.headers()[header::VARY], "accept-encoding");
        let wire = r.into_body().collect().await.unwrap().to_bytes();
        assert!(wire.len() < big.len() / 10, "{}", wire.len());
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&wire[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, big);

        let r = apply(Some(Coding::Gzip), json(b"{\"result\":\"ok\"}".to_vec()));
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        let r = apply(None, json(big));
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
