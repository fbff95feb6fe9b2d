//! The socket, the peer check, and one thread per request.
//!
//! Only the gateway's uid is served (`SO_PEERCRED`, taken at connect);
//! anyone else is logged and dropped before a byte is read. Each
//! connection is answered by a thread of its own, request after request
//! (the gateway keeps a few open so that a single process's read pays no
//! connection), at most [`MAX_CONNS`] at once (more are closed at once,
//! and the gateway falls back to what it can read itself). A client that
//! does not send its first request within [`REQUEST_TIMEOUT`], its next
//! within [`IDLE_TIMEOUT`], or stops reading for [`SEND_TIMEOUT`], is
//! dropped. Each request is judged by the policy in force when it
//! arrives. SIGHUP reloads the policy (a bad file
//! keeps the old one and says why); SIGTERM and SIGINT stop the reader.

use std::io::{BufWriter, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use serde_json::json;

use crate::log;
use crate::policy::ReadPolicy;
use crate::proc::ProcWalker;
use crate::wire::{self, Frame, VERSION};

/// Requests answered at once.
pub const MAX_CONNS: usize = 64;
/// How long a client has to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write may wait for the client to read.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may wait idle for its next request (the gateway
/// keeps a few open, and drops them sooner).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The policy in force, replaced whole on reload.
type Shared = Arc<RwLock<Arc<ReadPolicy>>>;

/// What the server is given.
pub struct Server {
    pub listener: UnixListener,
    pub policy_path: PathBuf,
    pub policy: ReadPolicy,
    /// The only uid served.
    pub gateway_uid: u32,
    /// A socket the reader bound itself, removed when it stops.
    pub bound: Option<PathBuf>,
}

/// Blocks the signals the reader handles in its own thread; call before
/// any other thread exists so that every thread inherits the mask.
pub fn block_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        set.add(s);
    }
    set.thread_block()?;
    Ok(set)
}

impl Server {
    /// Serves until SIGTERM or SIGINT.
    pub fn run(self, signals: SigSet) -> std::io::Result<()> {
        let policy = Arc::new(RwLock::new(Arc::new(self.policy)));
        {
            let (policy, path, bound) =
                (policy.clone(), self.policy_path.clone(), self.bound.clone());
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || loop {
                    match signals.wait() {
                        Ok(Signal::SIGHUP) => match ReadPolicy::load(&path) {
                            Ok(p) => {
                                if let Ok(mut g) = policy.write() {
                                    *g = Arc::new(p);
                                }
                                log::event("policy_reloaded", &[]);
                            }
                            Err(e) => log::event("reload_failed", &[("error", json!(e.0))]),
                        },
                        Ok(s) => {
                            if let Some(b) = &bound {
                                let _ = std::fs::remove_file(b);
                            }
                            log::event("stopped", &[("signal", json!(s.as_str()))]);
                            std::process::exit(0);
                        }
                        Err(_) => {}
                    }
                })?;
        }
        let busy = Arc::new(AtomicUsize::new(0));
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else {
                // Out of descriptors or memory: the client is dropped and
                // the next one tried after a pause.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            let uid = match getsockopt(&stream, PeerCredentials) {
                Ok(c) => c.uid(),
                Err(_) => continue,
            };
            if uid != self.gateway_uid {
                log::event("peer_refused", &[("uid", json!(uid))]);
                continue;
            }
            if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNS {
                busy.fetch_sub(1, Ordering::SeqCst);
                log::event("busy", &[("max_connections", json!(MAX_CONNS))]);
                continue;
            }
            let policy = policy.clone();
            let spawned = std::thread::Builder::new().name("request".into()).spawn({
                let busy = busy.clone();
                move || {
                    if let Err(e) = answer(stream, &policy) {
                        log::event("request_failed", &[("error", json!(e.to_string()))]);
                    }
                    busy.fetch_sub(1, Ordering::SeqCst);
                }
            });
            if spawned.is_err() {
                busy.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// Answers the connection's requests, one after another, each with the
/// policy in force when it arrives; ends when the client closes it or is
/// silent past the timeout.
fn answer(stream: UnixStream, policy: &Shared) -> Result<(), wire::WireError> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(SEND_TIMEOUT))?;
    let mut buf = Vec::new();
    let mut out = BufWriter::with_capacity(64 * 1024, &stream);
    loop {
        let req = match wire::read_request(&mut &stream, &mut buf) {
            Ok(r) => r,
            // A client that is done, or idle too long, between requests.
            Err(wire::WireError::Closed) => return Ok(()),
            Err(wire::WireError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        if req.version != VERSION {
            return Err(wire::WireError::Decode(format!(
                "version {} asked, {VERSION} spoken",
                req.version
            )));
        }
        let Ok(policy) = policy.read().map(|p| p.clone()) else {
            return Err(wire::WireError::Decode(
                "the policy lock is poisoned".into(),
            ));
        };
        if req.policy {
            let (owners, fields) = (policy.owners.clone(), policy.fields);
            wire::write_frame(&mut out, &Frame::Policy(wire::Rules { owners, fields }))?;
            out.flush()?;
            continue;
        }
        let mut pids = if req.pids.is_empty() {
            all_pids()?
        } else {
            req.pids
        };
        pids.sort_unstable();
        pids.dedup();
        let mut walker = ProcWalker::new(&policy, req.fields);
        for pid in pids {
            if let Some(e) = walker.entry(pid) {
                wire::write_frame(&mut out, &Frame::Entry(Box::new(e)))?;
            }
        }
        wire::write_frame(&mut out, &Frame::End)?;
        out.flush()?;
        stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    }
}

/// Every pid in /proc.
fn all_pids() -> std::io::Result<Vec<u32>> {
    Ok(std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect())
}
