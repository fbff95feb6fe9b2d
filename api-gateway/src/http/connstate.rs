//! What is known about one connection: the client's address and verified
//! certificate subject, which the router uses, and the counters and times
//! the connection's timers read (`super::conn`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::x509::Subject;

/// What the router learns about the connection a request came on, and
/// what the connection's timers watch.
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Subject of the verified client certificate, if one was sent.
    pub client_subject: Option<Subject>,
    pub(super) h2: bool,
    pub(super) linger: AtomicBool,
    born: Instant,
    /// Milliseconds since `born` of the last write.
    pub(super) last_write_ms: AtomicU64,
    /// Milliseconds since `born` of the last request's start or end.
    pub(super) last_mark_ms: AtomicU64,
    pub(super) bytes_read: AtomicU64,
    /// `bytes_read` when the last response was finished.
    pub(super) idle_mark: AtomicU64,
    pub(super) in_flight: AtomicUsize,
    pub(super) writing: AtomicUsize,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, client_subject: Option<Subject>, h2: bool) -> Arc<ConnInfo> {
        Arc::new(ConnInfo {
            peer,
            client_subject,
            h2,
            linger: AtomicBool::new(false),
            born: Instant::now(),
            last_write_ms: AtomicU64::new(0),
            last_mark_ms: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            idle_mark: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            writing: AtomicUsize::new(0),
        })
    }

    /// A request body was left unread: close with a lingering close.
    /// (HTTP/2 streams end without closing the connection.)
    pub fn linger_before_close(&self) {
        if !self.h2 {
            self.linger.store(true, Ordering::Relaxed);
        }
    }

    /// The connection's age, on the monotonic clock: the timers compare
    /// these, so a step of the wall clock never ends or spares one.
    pub(super) fn age_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn mark(&self) {
        self.last_mark_ms.store(self.age_ms(), Ordering::Relaxed);
    }

    /// Bytes of a next request head have arrived (HTTP/1).
    pub(super) fn head_in_progress(&self) -> bool {
        self.bytes_read.load(Ordering::Relaxed) > self.idle_mark.load(Ordering::Relaxed)
    }
}
