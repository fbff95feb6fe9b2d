//! A blocking client connection to the helper: handshake, then one
//! request and one response at a time, and the job event stream.
//!
//! Used by the gateway (from a blocking thread) and by the helper's own
//! tests, which drive the helper with this client. It enforces the same
//! ordering the helper does: `Hello` first, then any number of requests,
//! each answered before the next is sent. It lives here, not in
//! `protocol`, because the helper never runs it.

use std::fmt;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use protocol::frame::{encode_frame, FrameError};
use protocol::{Containment, Envelope, JobId, JobStatus, Request, Response, PROTOCOL_VERSION};

use super::read::{read_frame, StreamError};

/// Why talking to the helper failed.
#[derive(Debug)]
pub enum ClientError {
    /// Could not connect to the socket.
    Connect(io::Error),
    /// The stream failed or carried a bad frame.
    Frame(StreamError),
    /// The helper speaks another protocol version.
    Version { ours: u32, theirs: u32 },
    /// The helper answered the handshake with something else.
    Handshake(Box<Response>),
    /// The request needs a different number of descriptors.
    FdCount { expected: usize, given: usize },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "cannot connect to the helper: {e}"),
            ClientError::Frame(e) => write!(f, "helper connection: {e}"),
            ClientError::Version { ours, theirs } => write!(
                f,
                "helper speaks protocol version {theirs}, this gateway {ours}"
            ),
            ClientError::Handshake(r) => write!(f, "helper answered hello with {r:?}"),
            ClientError::FdCount { expected, given } => write!(
                f,
                "request needs {expected} descriptors, {given} were given"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<StreamError> for ClientError {
    fn from(e: StreamError) -> Self {
        ClientError::Frame(e)
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        ClientError::Frame(StreamError::Frame(e))
    }
}

/// An open, handshaken connection.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    containment: Containment,
}

impl Connection {
    /// Connects to `path`, sends `Hello` and checks the answer. `timeout`
    /// bounds every later read and write on the connection.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Connection, ClientError> {
        let stream = UnixStream::connect(path).map_err(ClientError::Connect)?;
        Connection::handshake(stream, timeout)
    }

    /// Runs the handshake on an already connected stream.
    pub fn handshake(stream: UnixStream, timeout: Duration) -> Result<Connection, ClientError> {
        stream
            .set_read_timeout(Some(timeout))
            .map_err(ClientError::Connect)?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(ClientError::Connect)?;
        let mut conn = Connection {
            stream,
            containment: Containment::Pgid,
        };
        match conn.request(
            &Request::Hello {
                version: PROTOCOL_VERSION,
            },
            &[],
        )? {
            Response::Hello {
                version,
                containment,
            } if version == PROTOCOL_VERSION => {
                conn.containment = containment;
                Ok(conn)
            }
            Response::Hello { version, .. } => Err(ClientError::Version {
                ours: PROTOCOL_VERSION,
                theirs: version,
            }),
            other => Err(ClientError::Handshake(Box::new(other))),
        }
    }

    /// How the helper said it contains jobs.
    pub fn containment(&self) -> Containment {
        self.containment
    }

    /// Sends `req` (with `fds` for `Spawn`) and waits for its answer.
    pub fn request(
        &mut self,
        req: &Request,
        fds: &[BorrowedFd<'_>],
    ) -> Result<Response, ClientError> {
        self.request_tagged(0, req, fds)
    }

    /// As [`Connection::request`], with the id the caller logged the
    /// request under; the helper's decision line carries the same id.
    pub fn request_tagged(
        &mut self,
        request_id: u64,
        req: &Request,
        fds: &[BorrowedFd<'_>],
    ) -> Result<Response, ClientError> {
        if fds.len() != req.fds_expected() {
            return Err(ClientError::FdCount {
                expected: req.fds_expected(),
                given: fds.len(),
            });
        }
        let bytes = encode_frame(&Envelope {
            request_id,
            request: req.clone(),
        })?;
        send_with_fds(&self.stream, &bytes, fds).map_err(StreamError::Io)?;
        Ok(read_frame(&mut &self.stream)?)
    }

    /// Turns this connection into the helper's job event stream (see
    /// [`Request::Subscribe`]); reads on it then wait without a timeout.
    pub fn subscribe(mut self) -> Result<Events, ClientError> {
        match self.request(&Request::Subscribe, &[])? {
            Response::Subscribed => {
                self.stream
                    .set_read_timeout(None)
                    .map_err(ClientError::Connect)?;
                Ok(Events {
                    stream: self.stream,
                })
            }
            other => Err(ClientError::Handshake(Box::new(other))),
        }
    }

    /// The underlying stream, for tests that need to misbehave.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}

/// The helper's job events: one `(job, final status)` per ended job.
#[derive(Debug)]
pub struct Events {
    stream: UnixStream,
}

impl Events {
    /// Waits for the next job to end.
    pub fn recv(&mut self) -> Result<(JobId, JobStatus), ClientError> {
        match read_frame(&mut &self.stream)? {
            Response::JobEnded { job, status } => Ok((job, *status)),
            other => Err(ClientError::Handshake(Box::new(other))),
        }
    }

    /// The underlying stream (to shut it down from another thread).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}

/// Writes all of `bytes` to `sock`, attaching `fds` to the first byte
/// (`SCM_RIGHTS`); the helper receives them with
/// `protocol::fdpass::recv_with_fds`.
pub fn send_with_fds(sock: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.is_empty() {
        let mut s = sock;
        return s.write_all(bytes);
    }
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "descriptors need at least one byte to ride on",
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let sent = loop {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    };
    let mut s = sock;
    s.write_all(&bytes[sent..])
}
