//! Following a job live as Server-Sent Events.
//!
//! Events, in the order output is read:
//! - `stdout` / `stderr`: a chunk as it was written; `data` is a JSON
//!   object, `{"text": "..."}` for UTF-8 or `{"base64": "..."}` for bytes
//!   that are not (a UTF-8 sequence cut by a read waits for its end);
//! - `exit`: the final job object, after every byte was sent; then the
//!   stream ends.
//!
//! Every event's `id` is `<stdout offset>.<stderr offset>`: the bytes of
//! each stream sent so far. A client that reconnects with that id in
//! `Last-Event-ID` (browsers do it by themselves) resumes exactly there:
//! no byte lost or repeated. The producer wakes on the job's [`Change`]s
//! (writes seen by inotify, the end seen by the helper's event stream) and
//! sends a comment every [`PING`] to keep proxies from closing an idle
//! stream.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use protocol::JobId;
use serde_json::json;

use super::hub::Change;
use super::store::{JobStore, Stream};
use crate::budget::{DEPTH, ESCAPED_READ};
use crate::error::ApiError;
use crate::reply::{ChannelBody, ResponseBody};

/// Keep-alive comment interval of an idle stream.
pub const PING: Duration = Duration::from_secs(15);

/// Where a follower is: bytes of stdout and stderr already sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offsets {
    pub stdout: u64,
    pub stderr: u64,
}

impl Offsets {
    /// Parses an event id, `<stdout>.<stderr>`.
    pub fn parse(id: &str) -> Result<Offsets, ApiError> {
        let bad = || {
            ApiError::InvalidParameter(format!(
                "event id {id:?} is not <stdout bytes>.<stderr bytes>"
            ))
        };
        let (o, e) = id.trim().split_once('.').ok_or_else(bad)?;
        Ok(Offsets {
            stdout: o.parse().map_err(|_| bad())?,
            stderr: e.parse().map_err(|_| bad())?,
        })
    }

    pub fn id(self) -> String {
        format!("{}.{}", self.stdout, self.stderr)
    }
}

/// What the producer needs to know about the job.
pub struct Follow {
    pub store: JobStore,
    pub job: JobId,
    pub from: Offsets,
    pub change: Change,
    /// The job's final object once it ended (`None` while it runs).
    pub ended: Box<dyn Fn() -> Option<serde_json::Value> + Send>,
    /// Asks the helper about the job (blocking), in case its end went
    /// unheard; run only when the stream has been idle for [`PING`].
    pub recheck: Arc<dyn Fn() + Send + Sync>,
}

/// The event stream body.
pub fn events(f: Follow) -> ResponseBody {
    let (tx, body) = ChannelBody::channel(DEPTH);
    tokio::spawn(async move {
        let Follow {
            store,
            job,
            from,
            mut change,
            ended,
            recheck,
        } = f;
        let mut at = from;
        let mut carry: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        loop {
            // Ended is checked before reading: whatever was written before
            // the end is then read below, and the exit comes after it.
            let end = ended();
            let s = store.clone();
            let read = tokio::task::spawn_blocking(move || read_new(&s, &job, at)).await;
            let Ok(chunks) = read else { return };
            let mut sent_any = false;
            for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                let mut bytes = std::mem::take(&mut carry[i]);
                let fresh = chunks[i].len() as u64;
                bytes.extend_from_slice(&chunks[i]);
                let done = end.is_some() && fresh < ESCAPED_READ as u64;
                let (send, keep) = split_utf8(&bytes, done);
                carry[i] = keep.to_vec();
                if send.is_empty() {
                    // Only the cut sequence is pending; it was read.
                    advance(&mut at, stream, fresh);
                    continue;
                }
                advance(&mut at, stream, fresh);
                let data = match std::str::from_utf8(send) {
                    Ok(t) => json!({ "text": t }),
                    Err(_) => json!({
                        "base64": base64::engine::general_purpose::STANDARD.encode(send)
                    }),
                };
                let pending = carry[i].len() as u64;
                let mut id = at;
                match stream {
                    Stream::Stdout => id.stdout -= pending,
                    Stream::Stderr => id.stderr -= pending,
                }
                let event = format!(
                    "event: {}\nid: {}\ndata: {data}\n\n",
                    stream.name(),
                    id.id()
                );
                if tx.send(Bytes::from(event)).await.is_err() {
                    return;
                }
                sent_any = true;
            }
            if sent_any {
                continue;
            }
            if let Some(fin) = &end {
                if chunks.iter().all(Vec::is_empty) {
                    let event = format!("event: exit\nid: {}\ndata: {fin}\n\n", at.id());
                    let _ = tx.send(Bytes::from(event)).await;
                    return;
                }
                continue;
            }
            tokio::select! {
                _ = change.changed() => {}
                _ = tokio::time::sleep(PING) => {
                    if tx.send(Bytes::from_static(b": ping\n\n")).await.is_err() {
                        return;
                    }
                    let r = recheck.clone();
                    let _ = tokio::task::spawn_blocking(move || r()).await;
                }
            }
        }
    });
    body
}

fn advance(at: &mut Offsets, s: Stream, n: u64) {
    match s {
        Stream::Stdout => at.stdout += n,
        Stream::Stderr => at.stderr += n,
    }
}

/// Up to [`ESCAPED_READ`] bytes of each stream from the offsets on: an
/// event of them, escaped, stays within a chunk ([`crate::budget`]),
/// which is what a client that does not read may make the gateway hold.
fn read_new(store: &JobStore, job: &JobId, at: Offsets) -> [Vec<u8>; 2] {
    let read = |s: Stream, from: u64| -> Vec<u8> {
        let path: PathBuf = store.output_path(job, s);
        let Ok(mut f) = File::open(path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(from)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let _ = f.take(ESCAPED_READ as u64).read_to_end(&mut buf);
        buf
    };
    [
        read(Stream::Stdout, at.stdout),
        read(Stream::Stderr, at.stderr),
    ]
}

/// Splits `bytes` into what to send now and a UTF-8 sequence cut at the
/// end to keep for the next read (nothing is kept when `done`).
fn split_utf8(bytes: &[u8], done: bool) -> (&[u8], &[u8]) {
    if done {
        return (bytes, &[]);
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => (bytes, &[]),
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => bytes.split_at(e.valid_up_to()),
        // Invalid inside, or nothing valid before the cut: send as is.
        Err(e) if e.error_len().is_none() && bytes.len() - e.valid_up_to() < 4 => (&[], bytes),
        Err(_) => (bytes, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_and_bad_ones_are_refused() {
        let o = Offsets {
            stdout: 12,
            stderr: 3,
        };
        assert_eq!(Offsets::parse(&o.id()).expect("parses"), o);
        for bad in ["", "12", "a.b", "1.2.3", "-1.0"] {
            assert!(Offsets::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cut_utf8_sequence_waits_for_its_end() {
        let euro = "€".as_bytes();
        let mut b = b"ab".to_vec();
        b.extend_from_slice(&euro[..2]);
        assert_eq!(split_utf8(&b, false), (&b"ab"[..], &euro[..2]));
        assert_eq!(split_utf8(&b, true), (&b[..], &b""[..]));
        assert_eq!(split_utf8(&euro[..1], false), (&b""[..], &euro[..1]));
        assert_eq!(split_utf8(b"\xffx", false), (&b"\xffx"[..], &b""[..]));
    }
}
