//! Client to the privileged helper. One blocking [`Connection`]
//! (`connection.rs`) behind a mutex, used from `spawn_blocking`; on any transport error the
//! connection is dropped and the next call reconnects, with a backoff so a
//! dead helper is not hammered. Maps [`protocol::Response`] refusals to
//! [`ApiError`] in one place.
//!
//! Every frame carries the id of the request it is made for
//! ([`crate::reqid::current`]), so the helper's decision line and the
//! gateway's audit line share it.
//!
//! `/healthz` asks [`Helper::health_cached`]: at most one helper round
//! trip per [`PROBE_EVERY`], whatever the number of callers (concurrent
//! callers wait for the one probe in flight), so an unauthenticated flood
//! neither queues on the helper's mutex nor reaches the helper.
//!
//! Signal and renice, which carry no descriptors and are what a client
//! waits on, go over a second connection driven by tokio itself
//! ([`Helper::call_async`]): no hop to a blocking thread and back. It
//! speaks the same frames (`protocol::encode_frame`, `decode_frame`), with
//! the same handshake, timeout and one retry on a fresh connection.

use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::{Containment, Envelope, Request, Response};
use std::io::{Read, Write};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UnixStream;

use crate::error::ApiError;
use crate::ids::Target;

pub mod connection;
pub mod read;

pub use connection::{send_with_fds, ClientError, Connection, Events};

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest a cached health probe is reused.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

struct State {
    conn: Option<Connection>,
    next_try: Option<Instant>,
    backoff: Duration,
    last_error: Option<String>,
}

/// Shared handle to the helper.
#[derive(Clone)]
pub struct Helper {
    path: PathBuf,
    state: Arc<Mutex<State>>,
    probe: Arc<tokio::sync::Mutex<Option<Probe>>>,
    /// The connection [`Helper::call_async`] uses.
    lane: Arc<tokio::sync::Mutex<Option<Lane>>>,
    /// Where round trips and decisions are counted, if anywhere.
    metrics: Option<Arc<dyn Observer>>,
}

/// What is told of every round trip: the request, how long it took, the
/// answer if one came. The gateway's metrics implement it; the client
/// knows only this trait, so it does not depend on the metrics module.
pub trait Observer: Send + Sync {
    fn helper_call(&self, req: &Request, took: Duration, answer: Option<&Response>);
}

/// The last health probe and when it was made.
type Probe = (Instant, Arc<Health>);

/// What `/healthz` reports.
#[derive(Debug, Clone)]
pub struct Health {
    pub reachable: bool,
    pub containment: Option<Containment>,
    /// Isolation and job limits the helper has in force.
    pub info: Option<protocol::HelperInfo>,
    pub error: Option<String>,
}

impl Helper {
    pub fn new(path: PathBuf) -> Helper {
        Helper {
            path,
            state: Arc::new(Mutex::new(State {
                conn: None,
                next_try: None,
                backoff: Duration::from_millis(100),
                last_error: None,
            })),
            probe: Arc::new(tokio::sync::Mutex::new(None)),
            lane: Arc::default(),
            metrics: None,
        }
    }

    /// The same client, counting its round trips and the helper's
    /// decisions in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Observer>) -> Helper {
        self.metrics = Some(metrics);
        self
    }

    /// The last probe if it is younger than [`PROBE_EVERY`], else a new
    /// one (one at a time).
    pub async fn health_cached(&self) -> Arc<Health> {
        let mut last = self.probe.lock().await;
        if let Some((at, h)) = last.as_ref() {
            if at.elapsed() < PROBE_EVERY {
                return h.clone();
            }
        }
        let me = self.clone();
        let h = Arc::new(
            tokio::task::spawn_blocking(move || me.health())
                .await
                .unwrap_or_else(|e| Health {
                    reachable: false,
                    containment: None,
                    info: None,
                    error: Some(format!("health probe failed: {e}")),
                }),
        );
        *last = Some((Instant::now(), h.clone()));
        h
    }

    fn connected<'a>(&self, st: &'a mut State) -> Result<&'a mut Connection, ApiError> {
        if st.conn.as_ref().is_some_and(is_stale) {
            st.conn = None;
        }
        if st.conn.is_none() {
            if let Some(t) = st.next_try {
                if Instant::now() < t {
                    return Err(ApiError::Unavailable(
                        st.last_error
                            .clone()
                            .unwrap_or_else(|| "backing off".into()),
                    ));
                }
            }
            match Connection::connect(&self.path, IO_TIMEOUT) {
                Ok(c) => {
                    st.conn = Some(c);
                    st.backoff = Duration::from_millis(100);
                    st.next_try = None;
                    st.last_error = None;
                }
                Err(e) => {
                    let msg = e.to_string();
                    st.next_try = Some(Instant::now() + st.backoff);
                    st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
                    st.last_error = Some(msg.clone());
                    return Err(match e {
                        ClientError::Version { .. } | ClientError::Handshake(_) => {
                            ApiError::BadGateway(msg)
                        }
                        _ => ApiError::Unavailable(msg),
                    });
                }
            }
        }
        st.conn
            .as_mut()
            .ok_or_else(|| ApiError::Internal("helper connection vanished".into()))
    }

    /// Sends one request (blocking), tagged with the current request's
    /// id. A transport failure is retried once on a fresh connection (the
    /// helper may have restarted) unless fds were passed: a spawn is never
    /// sent twice.
    pub fn call(&self, req: &Request, fds: &[BorrowedFd<'_>]) -> Result<Response, ApiError> {
        let request_id = crate::reqid::current();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            let conn = self.connected(&mut st)?;
            let t = std::time::Instant::now();
            let answer = conn.request_tagged(request_id, req, fds);
            if let Some(m) = &self.metrics {
                m.helper_call(req, t.elapsed(), answer.as_ref().ok());
            }
            match answer {
                Ok(r) => return Ok(r),
                Err(e) => {
                    st.conn = None;
                    st.last_error = Some(e.to_string());
                    if attempt == 1 || !fds.is_empty() {
                        return Err(ApiError::BadGateway(e.to_string()));
                    }
                }
            }
        }
        Err(ApiError::Unavailable("helper unreachable".into()))
    }

    /// Sends one request without descriptors from async code, over the
    /// tokio-driven connection. A transport failure is retried once on a
    /// fresh connection (signal and renice are idempotent for the target:
    /// the start time pins it).
    pub async fn call_async(&self, req: &Request) -> Result<Response, ApiError> {
        if req.fds_expected() != 0 {
            return Err(ApiError::Internal(format!(
                "{} needs descriptors: not for the async connection",
                req.kind()
            )));
        }
        let frame = protocol::encode_frame(&Envelope {
            request_id: crate::reqid::current(),
            request: req.clone(),
        })
        .map_err(|e| ApiError::BadGateway(e.to_string()))?;
        let mut lane = self.lane.lock().await;
        for attempt in 0..2 {
            if lane.is_none() {
                *lane = Some(
                    tokio::time::timeout(IO_TIMEOUT, Lane::connect(&self.path))
                        .await
                        .unwrap_or_else(|_| {
                            Err(ApiError::Unavailable("helper handshake timed out".into()))
                        })?,
                );
            }
            let Some(l) = lane.as_mut() else {
                continue;
            };
            let t = Instant::now();
            let answer = tokio::time::timeout(IO_TIMEOUT, l.exchange(&frame))
                .await
                .unwrap_or_else(|_| Err("helper did not answer in time".into()));
            if let Some(m) = &self.metrics {
                m.helper_call(req, t.elapsed(), answer.as_ref().ok());
            }
            match answer {
                Ok(r) => return Ok(r),
                Err(e) => {
                    *lane = None;
                    if attempt == 1 {
                        return Err(ApiError::BadGateway(e));
                    }
                }
            }
        }
        Err(ApiError::Unavailable("helper unreachable".into()))
    }

    /// Probe for `/healthz` (connects if needed, ignoring backoff).
    pub fn health(&self) -> Health {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.next_try = None;
        match self.connected(&mut st) {
            Ok(c) => {
                let containment = c.containment();
                // A cheap round trip that the helper does not log proves the
                // connection is alive and says how jobs are held.
                let t = Instant::now();
                let answer = c.request_tagged(crate::reqid::current(), &Request::Info, &[]);
                if let Some(m) = &self.metrics {
                    m.helper_call(&Request::Info, t.elapsed(), answer.as_ref().ok());
                }
                match answer {
                    Ok(Response::Info(info)) => Health {
                        reachable: true,
                        containment: Some(containment),
                        info: Some(*info),
                        error: None,
                    },
                    Ok(other) => Health {
                        reachable: true,
                        containment: Some(containment),
                        info: None,
                        error: Some(format!("unexpected answer to info: {other:?}")),
                    },
                    Err(e) => {
                        st.conn = None;
                        Health {
                            reachable: false,
                            containment: None,
                            info: None,
                            error: Some(e.to_string()),
                        }
                    }
                }
            }
            Err(e) => Health {
                reachable: false,
                containment: None,
                info: None,
                error: Some(e.to_string()),
            },
        }
    }
}

/// The tokio-driven connection: the stream and what was read past the
/// last frame.
///
/// The socket is registered with tokio for readability only. A socket
/// registered for writability too is woken each time the helper *reads*
/// a request (the kernel announces the freed send space to every waiter),
/// which costs a thread wake-up per round trip for nothing: a request is
/// one small frame and at most one is in flight, so a write never has to
/// wait for space, and one that would is a helper that stopped reading.
struct Lane {
    fd: AsyncFd<std::os::unix::net::UnixStream>,
    buf: Vec<u8>,
}

impl Lane {
    /// Connects and says hello; the helper must speak our version.
    async fn connect(path: &std::path::Path) -> Result<Lane, ApiError> {
        let stream = UnixStream::connect(path)
            .await
            .and_then(|s| s.into_std())
            .and_then(readable_only)
            .map_err(|e| ApiError::Unavailable(format!("cannot connect to the helper: {e}")))?;
        let mut lane = Lane {
            fd: stream,
            buf: Vec::with_capacity(1024),
        };
        let hello = protocol::encode_frame(&Envelope {
            request_id: 0,
            request: Request::Hello {
                version: protocol::PROTOCOL_VERSION,
            },
        })
        .map_err(|e| ApiError::BadGateway(e.to_string()))?;
        match lane.exchange(&hello).await.map_err(ApiError::Unavailable)? {
            Response::Hello { version, .. } if version == protocol::PROTOCOL_VERSION => Ok(lane),
            other => Err(ApiError::BadGateway(format!(
                "helper answered hello with {other:?}"
            ))),
        }
    }

    /// Writes one frame and reads the one answer.
    async fn exchange(&mut self, frame: &[u8]) -> Result<Response, String> {
        let mut sent = 0;
        while sent < frame.len() {
            match self.fd.get_ref().write(&frame[sent..]) {
                Ok(0) => return Err("helper connection: closed while writing".into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err("helper connection: the helper is not reading".into())
                }
                Err(e) => return Err(format!("helper connection: {e}")),
            }
        }
        loop {
            if let Some((r, used)) =
                protocol::decode_frame::<Response>(&self.buf).map_err(|e| e.to_string())?
            {
                self.buf.drain(..used);
                return Ok(r);
            }
            let mut chunk = [0u8; 4096];
            let n = loop {
                let mut ready = self
                    .fd
                    .readable()
                    .await
                    .map_err(|e| format!("helper connection: {e}"))?;
                match ready.try_io(|s| s.get_ref().read(&mut chunk)) {
                    Ok(r) => break r.map_err(|e| format!("helper connection: {e}"))?,
                    Err(_would_block) => continue,
                }
            };
            if n == 0 {
                return Err("helper closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `stream` registered with tokio for readability alone.
///
/// `AsyncFd::with_interest` is deprecated because it is unsound for an
/// inner value that does not own its descriptor (tokio-rs/tokio#8587; its
/// replacement asks the caller to promise, in code this crate forbids,
/// that the descriptor stays the same and open). A
/// `std::os::unix::net::UnixStream` owns its descriptor, keeps it open
/// and returns the same one from `as_raw_fd` until it is dropped, so that
/// promise holds here without the crate giving up its lint.
#[allow(deprecated)]
fn readable_only(
    stream: std::os::unix::net::UnixStream,
) -> std::io::Result<AsyncFd<std::os::unix::net::UnixStream>> {
    AsyncFd::with_interest(stream, Interest::READABLE)
}

/// An idle connection has nothing to read; if it is readable, the helper
/// closed it (restart) or sent something unasked: either way, start over.
/// Checked before each request so a spawn (never retried, it carries
/// descriptors) is not lost on a connection the helper already dropped.
fn is_stale(c: &Connection) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(c.stream().as_fd(), PollFlags::POLLIN)];
    !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
}

/// The helper's rule for a process of another key's job.
pub const OTHER_KEYS_JOB: &str = "builtin:other-key-job";

/// A target with nothing planned for the helper to compare but its start
/// time: what a DELETE, a PATCH, a `dry_run` and a plan's `Check` send.
pub fn unplanned(target: protocol::Target) -> protocol::Pinned {
    protocol::Pinned {
        target,
        exe: protocol::ExePin::Unplanned,
        pidfd_ino: None,
    }
}

/// A one-target `Act`: what a DELETE or PATCH asks.
pub fn act_one(
    target: protocol::Target,
    action: protocol::Action,
    caller: protocol::Caller,
) -> Request {
    Request::Act {
        targets: vec![unplanned(target)],
        action,
        caller,
        tree: false,
    }
}

/// The answer of a one-target `Check` or `Act`: its one outcome's. Any
/// other answer (a whole batch refused as `Invalid`, say) is as it came.
pub fn only_outcome(resp: Response) -> Response {
    match resp {
        Response::Batch(mut v) if v.len() == 1 => v.remove(0).answer,
        other => other,
    }
}

/// Maps a refusal from the helper to the HTTP error, naming the target
/// when there is one. `Ok`, `Job`, `Reniced`, `Info` and `Hello` are not
/// refusals and return `None`.
pub fn refusal(r: &Response, target: Option<Target>) -> Option<ApiError> {
    let pid = target.map(|t| t.pid);
    Some(match r {
        Response::Denied { rule, .. } if rule == OTHER_KEYS_JOB && pid.is_some() => {
            ApiError::OtherKeysJob(pid?)
        }
        Response::Denied { rule, detail } => ApiError::PolicyDenied {
            rule: rule.clone(),
            detail: detail.clone(),
        },
        Response::NoSuchProcess => match pid {
            Some(p) => ApiError::NoSuchProcess(p),
            None => ApiError::BadGateway("helper answered \"no such process\" out of place".into()),
        },
        Response::NotAProcess => match pid {
            Some(p) => ApiError::NotAProcess(p),
            None => ApiError::BadGateway("helper answered \"not a process\" out of place".into()),
        },
        Response::Mismatch => match target {
            Some(t) => ApiError::IdentityChanged {
                pid: t.pid,
                start_time: t.start_time,
            },
            None => ApiError::BadGateway("helper answered \"mismatch\" out of place".into()),
        },
        Response::Busy => ApiError::Busy,
        Response::Invalid { what } => ApiError::InvalidRequest(what.clone()),
        // The target exited between the helper's checks and its act.
        Response::Failed { errno } if *errno == nix::libc::ESRCH && pid.is_some() => {
            ApiError::NoSuchProcess(pid?)
        }
        // Only a start fails so: its child had not exec'd within 5 s.
        Response::Failed { errno } if *errno == nix::libc::ETIMEDOUT => ApiError::BadGateway(
            "the command did not start within 5 s (a process of the shared run user may have \
             stopped it) and was killed; nothing of it runs"
                .into(),
        ),
        Response::Failed { errno } => ApiError::BadGateway(format!(
            "a system call failed in the helper: {}",
            std::io::Error::from_raw_os_error(*errno)
        )),
        // Only ever inside a batch's outcomes.
        Response::ExeChanged => {
            ApiError::BadGateway("helper answered \"exe changed\" out of place".into())
        }
        // Event-stream frames never answer a request.
        Response::Subscribed | Response::JobEnded { .. } => {
            ApiError::BadGateway("helper sent a job event as an answer".into())
        }
        Response::Ok
        | Response::Job(_)
        | Response::Hello { .. }
        | Response::Reniced { .. }
        | Response::Batch(_)
        | Response::Info(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::frame::encode_frame;
    use read::read_frame;
    use std::os::unix::net::UnixStream;

    fn handshaken(keep_peer: bool) -> (Connection, Option<UnixStream>) {
        let (a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let _: protocol::Envelope = read_frame(&mut b).unwrap();
            let hello = Response::Hello {
                version: protocol::PROTOCOL_VERSION,
                containment: Containment::Pgid,
            };
            b.write_all(&encode_frame(&hello).unwrap()).unwrap();
            b
        });
        let c = Connection::handshake(a, Duration::from_secs(2)).unwrap();
        let b = t.join().unwrap();
        (c, keep_peer.then_some(b))
    }

    #[test]
    fn a_connection_the_peer_closed_is_stale_and_a_live_one_is_not() {
        let (live, _peer) = handshaken(true);
        assert!(!is_stale(&live));
        let (dead, _) = handshaken(false);
        assert!(is_stale(&dead));
    }

    #[test]
    fn helper_refusals_map_to_honest_statuses_naming_the_target() {
        use crate::ids::{Pid, StartTime};
        let target = Target {
            pid: Pid::new(42).expect("pid"),
            start_time: StartTime::from_ticks(7),
        };
        let s = |r: Response| refusal(&r, Some(target)).map(|e| e.status().as_u16());
        let denied = Response::Denied {
            rule: "renice.min_nice".into(),
            detail: "renice.min_nice is 0".into(),
        };
        assert_eq!(s(denied.clone()), Some(403));
        let e = refusal(&denied, None).expect("refusal");
        assert_eq!(e.code(), "policy_denied");
        assert!(e.to_string().contains("renice.min_nice is 0"), "{e}");
        let e = refusal(&Response::NotAProcess, Some(target)).expect("refusal");
        assert_eq!((e.status().as_u16(), e.code()), (404, "not_a_process"));
        assert!(e.to_string().contains("42"), "{e}");
        for gone in [
            Response::NoSuchProcess,
            Response::Failed {
                errno: nix::libc::ESRCH,
            },
        ] {
            let e = refusal(&gone, Some(target)).expect("refusal");
            assert_eq!((e.status().as_u16(), e.code()), (404, "no_such_process"));
            assert!(e.to_string().contains("pid 42"), "{e}");
        }
        let e = refusal(&Response::Mismatch, Some(target)).expect("refusal");
        assert_eq!(e.status().as_u16(), 409);
        assert!(
            e.to_string().contains("42") && e.to_string().contains("start_time 7"),
            "{e}"
        );
        assert_eq!(s(Response::Reniced { threads: 4 }), None);
        assert_eq!(s(Response::Busy), Some(429));
        assert_eq!(s(Response::Invalid { what: "x".into() }), Some(400));
        assert_eq!(s(Response::Failed { errno: 1 }), Some(502));
        let late = Response::Failed {
            errno: nix::libc::ETIMEDOUT,
        };
        let e = refusal(&late, None).expect("refusal");
        assert_eq!(e.status().as_u16(), 502);
        assert!(e.to_string().contains("did not start within 5 s"), "{e}");
        assert_eq!(s(Response::Ok), None);
    }
}
