//! Job output as it leaves the gateway, always through a fixed buffer so
//! that no answer is held whole in memory: raw bytes of a byte range
//! ([`raw`], for `Range` requests), the old route's JSON with the output
//! escaped on the fly ([`JsonString`]), and the live events of a job
//! ([`crate::jobs::follow`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::budget::{CHUNK, DEPTH, ESCAPED_READ};
use crate::error::ApiError;
use crate::reply::{ChannelBody, ResponseBody};

/// The byte range `[start, end)` a `Range` header asks of `len` bytes:
/// `None` for the whole file (no header, or one this server does not serve
/// partially, such as several ranges — RFC 9110 lets it answer 200).
pub fn range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| ApiError::InvalidParameter(format!("Range {spec:?} is not a-b")))?;
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| ApiError::InvalidParameter(format!("Range {spec:?} is not a-b")))
    };
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        // `-N`: the last N bytes.
        (true, false) => {
            let n = num(b)?;
            if n == 0 {
                return Err(ApiError::RangeNotSatisfiable { len });
            }
            (len.saturating_sub(n), len)
        }
        (false, true) => (num(a)?, len),
        (false, false) => {
            let (s, e) = (num(a)?, num(b)?);
            if e < s {
                return Err(ApiError::InvalidParameter(format!(
                    "Range {spec:?} ends before it starts"
                )));
            }
            (s, e.saturating_add(1).min(len))
        }
        (true, true) => {
            return Err(ApiError::InvalidParameter(format!(
                "Range {spec:?} is not a-b"
            )))
        }
    };
    if start >= len {
        return Err(ApiError::RangeNotSatisfiable { len });
    }
    Ok(Some((start, end)))
}

/// Streams bytes `[start, end)` of `path`. The producer is a task that
/// reads each piece on the blocking pool, not a blocking thread of its
/// own: a client that never reads would otherwise keep one of the pool's
/// threads waiting for as long as it holds the stream.
pub fn raw(path: PathBuf, start: u64, end: u64) -> ResponseBody {
    let (tx, body) = ChannelBody::channel(DEPTH);
    tokio::spawn(async move {
        let Some(f) = open(path).await else { return };
        let mut at = start;
        while at < end {
            let want = usize::try_from(end - at).unwrap_or(CHUNK).min(CHUNK);
            let piece = read_at(&f, at, want).await;
            if piece.is_empty() {
                return;
            }
            at += piece.len() as u64;
            if tx.send(Bytes::from(piece)).await.is_err() {
                return; // the client is gone
            }
        }
    });
    body
}

/// Opens `path` on the blocking pool.
async fn open(path: PathBuf) -> Option<Arc<File>> {
    let opened = tokio::task::spawn_blocking(move || File::open(path)).await;
    opened.ok()?.ok().map(Arc::new)
}

/// Up to `len` bytes of `f` from `at`, read on the blocking pool; empty
/// at the end or on an error.
async fn read_at(f: &Arc<File>, at: u64, len: usize) -> Vec<u8> {
    let f = f.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len];
        let n = f.read_at(&mut buf, at).unwrap_or(0);
        buf.truncate(n);
        buf
    });
    read.await.unwrap_or_default()
}

/// A JSON string written piece by piece from raw bytes: invalid UTF-8
/// becomes U+FFFD (as `String::from_utf8_lossy` would), a sequence cut
/// between two pieces is completed with the next one, and characters are
/// escaped as JSON needs. Remembers whether anything was invalid.
#[derive(Debug, Default)]
pub struct JsonString {
    carry: Vec<u8>,
    pub invalid_utf8: bool,
}

impl JsonString {
    /// Appends the escaped text of `bytes` to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut input = std::mem::take(&mut self.carry);
        input.extend_from_slice(bytes);
        let mut rest: &[u8] = &input;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    escape(s, out);
                    return;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    escape(std::str::from_utf8(good).unwrap_or(""), out);
                    match e.error_len() {
                        // Cut short at the end: maybe completed next time.
                        None => {
                            self.carry = bad.to_vec();
                            return;
                        }
                        Some(n) => {
                            self.invalid_utf8 = true;
                            escape("\u{fffd}", out);
                            rest = &bad[n..];
                        }
                    }
                }
            }
        }
    }

    /// Ends the string: an incomplete sequence left over is invalid.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.carry.is_empty() {
            self.carry.clear();
            self.invalid_utf8 = true;
            escape("\u{fffd}", out);
        }
    }
}

/// JSON string escaping of `s` (without the quotes).
fn escape(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// Streams the old output route's answer: `head` (the envelope's other
/// members, ending with a comma), then `"out"` and `"err"` escaped from
/// their files up to `lens`, then `tail(out_invalid_utf8,
/// err_invalid_utf8)` (the rest of the object).
pub fn json_envelope(
    head: Vec<u8>,
    files: [(PathBuf, u64); 2],
    tail: impl FnOnce(bool, bool) -> Vec<u8> + Send + 'static,
) -> ResponseBody {
    let (tx, body) = ChannelBody::channel(DEPTH);
    tokio::spawn(async move {
        if tx.send(Bytes::from(head)).await.is_err() {
            return;
        }
        let mut invalid = [false; 2];
        for (i, ((path, len), name)) in files.into_iter().zip(["out", "err"]).enumerate() {
            let mut s = JsonString::default();
            let mut out = format!("{}\"{name}\":\"", if i == 0 { "" } else { "," }).into_bytes();
            if let Some(f) = open(path).await {
                let mut at = 0;
                // Escaped, a read of ESCAPED_READ bytes stays within a
                // chunk.
                while at < len {
                    let want = usize::try_from(len - at)
                        .unwrap_or(ESCAPED_READ)
                        .min(ESCAPED_READ);
                    let piece = read_at(&f, at, want).await;
                    if piece.is_empty() {
                        break;
                    }
                    at += piece.len() as u64;
                    s.feed(&piece, &mut out);
                    if tx
                        .send(Bytes::from(std::mem::take(&mut out)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            s.finish(&mut out);
            out.push(b'"');
            if tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
            invalid[i] = s.invalid_utf8;
        }
        let _ = tx.send(Bytes::from(tail(invalid[0], invalid[1]))).await;
    });
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped_in_pieces(bytes: &[u8], piece: usize) -> (String, bool) {
        let mut s = JsonString::default();
        let mut out = Vec::new();
        for p in bytes.chunks(piece.max(1)) {
            s.feed(p, &mut out);
        }
        s.finish(&mut out);
        (String::from_utf8(out).expect("UTF-8"), s.invalid_utf8)
    }

    #[test]
    fn escaping_in_pieces_matches_serde_on_the_lossy_text() {
        let samples: [&[u8]; 5] = [
            b"plain\nlines\ttab \"q\" \\ \x01\x1f\x7f",
            "ñandú €😀".as_bytes(),
            b"bad \xff\xfe mid \xe2\x82 cut",
            b"\xf0\x9f\x98",
            &[0x01; 100],
        ];
        for bytes in samples {
            let lossy = String::from_utf8_lossy(bytes);
            let want = serde_json::to_string(&lossy).expect("json");
            let want = &want[1..want.len() - 1];
            for piece in 1..=7 {
                let (got, invalid) = escaped_in_pieces(bytes, piece);
                assert_eq!(got, want, "{bytes:?} in pieces of {piece}");
                assert_eq!(invalid, std::str::from_utf8(bytes).is_err());
            }
        }
    }

    #[test]
    fn ranges_are_parsed_and_bounded() {
        assert_eq!(range(None, 10).ok(), Some(None));
        assert_eq!(range(Some("bytes=0-3"), 10).ok(), Some(Some((0, 4))));
        assert_eq!(range(Some("bytes=5-"), 10).ok(), Some(Some((5, 10))));
        assert_eq!(range(Some("bytes=-4"), 10).ok(), Some(Some((6, 10))));
        assert_eq!(range(Some("bytes=8-99"), 10).ok(), Some(Some((8, 10))));
        assert_eq!(range(Some("bytes=0-1,4-5"), 10).ok(), Some(None));
        for past in ["bytes=10-", "bytes=12-20", "bytes=-0"] {
            let e = range(Some(past), 10).expect_err(past);
            assert_eq!(e.code(), "range_not_satisfiable", "{past}");
        }
        assert_eq!(
            range(Some("bytes=0-"), 0).expect_err("empty").code(),
            "range_not_satisfiable"
        );
        for bad in ["bytes=a-b", "bytes=5-2", "bytes=-"] {
            assert_eq!(
                range(Some(bad), 10).expect_err(bad).code(),
                "invalid_parameter"
            );
        }
    }
}
