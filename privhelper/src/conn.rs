//! One client connection: the frames on a non-blocking Unix stream, the
//! descriptors that ride with them, and the conversation's state machine —
//! `Hello` with our version first, then one response per request, or
//! `Subscribe` and nothing more in. It yields decoded requests and knows
//! nothing of what they ask (that is `decide`).
//!
//! Any frame error, unexpected message or stray descriptor is a reason to
//! close the connection (the `Err` of each call), which the server logs.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use protocol::fdpass::{recv_with_fds, MAX_FDS_PER_MSG};
use protocol::frame::{decode_frame, encode_frame};
use protocol::{Containment, Envelope, Request, Response, PROTOCOL_VERSION};

use crate::lineage::Lineage;
use crate::socket::Peer;

/// A half-written frame older than this closes its connection, and so does
/// a connection that has not said `Hello` by then.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Conn {
    stream: UnixStream,
    pub peer: Peer,
    greeted: bool,
    /// Sent `Subscribe`: only job events go out, nothing more comes in.
    pub subscribed: bool,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    partial_since: Option<Instant>,
    opened: Instant,
    pub last_active: Instant,
    /// The peer's chain of parents, walked at its first signal or renice
    /// and kept while it holds (see `lineage`).
    pub lineage: Option<Lineage>,
}

/// What the next complete frame of a connection comes to.
pub enum Incoming {
    /// Nothing complete yet.
    Nothing,
    /// Answered by the connection itself (`Hello`, `Subscribe`).
    Answer(Response),
    /// A request for the server, with exactly the descriptors it names.
    Request(Envelope, Vec<OwnedFd>),
}

impl Conn {
    pub fn new(stream: UnixStream, peer: Peer) -> Conn {
        let now = Instant::now();
        Conn {
            stream,
            peer,
            greeted: false,
            subscribed: false,
            buf: Vec::new(),
            fds: Vec::new(),
            partial_since: None,
            opened: now,
            last_active: now,
            lineage: None,
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Reads what the socket holds now (one `recvmsg`).
    pub fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        let n = match recv_with_fds(&self.stream, &mut chunk, &mut self.fds) {
            Ok(0) => return Err("peer closed".into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(format!("read error: {e}")),
        };
        self.buf.extend_from_slice(&chunk[..n]);
        self.last_active = Instant::now();
        Ok(())
    }

    /// The next complete frame, checked against the conversation so far.
    /// `containment` goes into the answer to `Hello`.
    pub fn next(&mut self, containment: Containment) -> Result<Incoming, String> {
        let (env, used) = match decode_frame::<Envelope>(&self.buf) {
            Ok(Some(x)) => x,
            Ok(None) => {
                self.partial_since =
                    (!self.buf.is_empty()).then(|| self.partial_since.unwrap_or_else(Instant::now));
                if self.fds.len() > MAX_FDS_PER_MSG {
                    return Err("too many descriptors".into());
                }
                return Ok(Incoming::Nothing);
            }
            Err(e) => return Err(format!("bad frame: {e}")),
        };
        self.buf.drain(..used);
        self.partial_since = None;
        // Exactly the descriptors the request names, no more: the gateway
        // sends each frame in one message with its own.
        if self.fds.len() != env.request.fds_expected() {
            return Err("descriptors do not match the request".into());
        }
        if self.subscribed {
            return Err("request on an event stream".into());
        }
        match env.request {
            Request::Hello { version } if !self.greeted => {
                let hello = Response::Hello {
                    version: PROTOCOL_VERSION,
                    containment,
                };
                if version != PROTOCOL_VERSION {
                    // Our version, so the client can say what it met.
                    let _ = self.send(&hello);
                    return Err(format!(
                        "protocol version {version} is not {PROTOCOL_VERSION}"
                    ));
                }
                self.greeted = true;
                Ok(Incoming::Answer(hello))
            }
            Request::Hello { .. } => Err("second hello".into()),
            _ if !self.greeted => Err("request before hello".into()),
            Request::Subscribe => {
                self.subscribed = true;
                // An event stream is not idle while jobs run.
                self.last_active = Instant::now();
                Ok(Incoming::Answer(Response::Subscribed))
            }
            _ => Ok(Incoming::Request(env, std::mem::take(&mut self.fds))),
        }
    }

    /// Writes one frame. Replies are small; a client that does not read
    /// them is closed rather than waited for.
    pub fn send(&mut self, resp: &Response) -> Result<(), String> {
        let bytes = encode_frame(resp).map_err(|e| format!("cannot encode reply: {e}"))?;
        self.stream
            .write_all(&bytes)
            .map_err(|e| format!("write failed: {e}"))
    }

    /// Why the connection should be closed now, if it should: a
    /// half-written frame or a missing `Hello` past [`FRAME_TIMEOUT`], or
    /// (unless it is an event stream) idle past `idle`.
    pub fn expired(&self, idle: Duration) -> Option<&'static str> {
        if self
            .partial_since
            .is_some_and(|t| t.elapsed() > FRAME_TIMEOUT)
        {
            Some("half-written frame timed out")
        } else if !self.greeted && self.opened.elapsed() > FRAME_TIMEOUT {
            Some("no hello in time")
        } else if !self.subscribed && self.last_active.elapsed() > idle {
            Some("idle timeout")
        } else {
            None
        }
    }
}
