//! The helper's one loop: `poll(2)` over the listening socket, a signalfd
//! (SIGHUP reload, SIGTERM/SIGINT stop), every client connection (`conn`)
//! and what the jobs wait on (`jobs`), with the nearest job deadline as
//! the timeout. What a request gets is `decide`'s.
//!
//! Abuse bounds: at most `--max-connections` connections (a new one evicts the one
//! idle longest), a connection that has not said `Hello` within
//! `conn::FRAME_TIMEOUT` or has been idle for `--idle-timeout-s` is closed, and
//! when `accept` runs out of descriptors the listener leaves the poll set
//! for [`ACCEPT_BACKOFF`] (logged once per back-off) instead of spinning.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal as NixSignal};
use nix::sys::signalfd::SignalFd;
use protocol::Response;
use serde_json::json;

use crate::cgroup::CgroupRoot;
use crate::conn::{Conn, Incoming, FRAME_TIMEOUT};
use crate::jobs::{Jobs, Wake};
use crate::lineage::Lineage;
use crate::policy::{self, Policy};
use crate::socket::{self, Listener, Peer};
use crate::uids::UidLocks;
use crate::{cli, log};

/// How long the listener rests after `accept` ran out of descriptors.
pub const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Blocks SIGHUP, SIGTERM and SIGINT and returns the descriptor they are
/// read from. Called before the socket exists: once a client (or
/// `systemctl reload`) can see the helper, a SIGHUP must reload it, never
/// kill it by the default action, and a SIGTERM must still remove the socket.
pub fn block_signals() -> io::Result<SignalFd> {
    let mask = SigSet::from_iter([NixSignal::SIGHUP, NixSignal::SIGTERM, NixSignal::SIGINT]);
    mask.thread_block().map_err(io::Error::from)?;
    SignalFd::new(&mask).map_err(io::Error::from)
}

/// Locks the job uids of `p`'s range against other helpers (at start, and
/// at a reload before the policy applies), opening the lock file the first
/// time a range needs it.
pub fn lock_range(locks: &mut Option<UidLocks>, p: &Policy) -> Result<(), String> {
    let Some(range) = p.job_range() else {
        return Ok(());
    };
    let l = match locks.take() {
        Some(l) => l,
        None => UidLocks::open(std::path::Path::new(crate::uids::LOCK_DIR))?,
    };
    locks.insert(l).take(&range)
}

pub struct Server {
    /// Our hold on the job uids against other helpers (per-job uids only).
    locks: Option<UidLocks>,
    listener: Listener,
    pub(crate) policy: Policy,
    pub(crate) cgroups: Option<CgroupRoot>,
    /// The command line: the policy's path, the connection cap, the idle
    /// timeout.
    args: cli::Args,
    gateway_uid: u32,
    pub(crate) conns: HashMap<u64, Conn>,
    next_conn: u64,
    pub(crate) jobs: Jobs,
    /// Listener out of the poll set until then (descriptors exhausted).
    accept_paused_until: Option<Instant>,
    /// The helper's own chain of parents, kept while it holds.
    pub(crate) lineage: Option<Lineage>,
    /// Our pid, asked once (`getpid` is a system call).
    pub(crate) pid: i32,
    /// Why the last reload failed, until one applies (`Info` says it).
    pub(crate) reload_error: Option<String>,
}

enum Key {
    Listener,
    Signals,
    Conn(u64),
    Job(Wake),
}

impl Server {
    pub fn new(
        listener: Listener,
        policy: Policy,
        args: cli::Args,
        gateway_uid: u32,
        cgroups: Option<CgroupRoot>,
        (shared, locks): (Vec<PathBuf>, Option<UidLocks>),
    ) -> Server {
        let mut jobs = Jobs::default();
        jobs.ready(policy.job_range(), shared);
        Server {
            locks,
            listener,
            policy,
            cgroups,
            args,
            gateway_uid,
            conns: HashMap::new(),
            next_conn: 0,
            jobs,
            accept_paused_until: None,
            lineage: None,
            pid: std::process::id() as i32,
            reload_error: None,
        }
    }

    /// Runs until SIGTERM or SIGINT arrives on `sigfd` (from
    /// [`block_signals`]).
    pub fn run(&mut self, sigfd: SignalFd) -> io::Result<()> {
        loop {
            self.accept_paused_until = self.accept_paused_until.filter(|t| Instant::now() < *t);
            // Wake for the nearest of: the listener's rest ending, a job's
            // deadline or drain retry, a connection's frame timeout.
            let rest = self
                .accept_paused_until
                .map(|t| t.saturating_duration_since(Instant::now()));
            let timeout = [rest, self.jobs.next_wakeup()]
                .into_iter()
                .flatten()
                .fold(FRAME_TIMEOUT, Duration::min);
            let mut keys = vec![Key::Signals];
            let mut pfds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
            if self.accept_paused_until.is_none() {
                keys.push(Key::Listener);
                pfds.push(PollFd::new(
                    self.listener.listener.as_fd(),
                    PollFlags::POLLIN,
                ));
            }
            for (id, c) in &self.conns {
                keys.push(Key::Conn(*id));
                pfds.push(PollFd::new(c.fd(), PollFlags::POLLIN));
            }
            for (wake, fd, flags) in self.jobs.pollables() {
                keys.push(Key::Job(wake));
                pfds.push(PollFd::new(fd, flags));
            }
            let ms = u16::try_from(timeout.as_millis().max(1)).unwrap_or(u16::MAX);
            match poll(&mut pfds, PollTimeout::from(ms)) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready: Vec<bool> = pfds
                .iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(pfds);
            for (key, ready) in keys.into_iter().zip(ready) {
                if !ready {
                    continue;
                }
                match key {
                    Key::Listener => self.accept(),
                    Key::Signals => {
                        if let Ok(Some(info)) = sigfd.read_signal() {
                            if info.ssi_signo == NixSignal::SIGHUP as u32 {
                                self.reload();
                            } else {
                                log::event("stopping", &[("signal", json!(info.ssi_signo))]);
                                self.jobs.kill_all(Duration::from_secs(2));
                                // Subscribers hear each end as it was.
                                self.publish_ended();
                                return Ok(());
                            }
                        }
                    }
                    Key::Conn(id) => self.readable(id),
                    Key::Job(Wake::Reap(id)) => self.jobs.reap(&id),
                    Key::Job(Wake::Drain(id)) => self.jobs.drain(&id),
                }
            }
            self.jobs.enforce_deadlines();
            self.jobs.drain_due();
            self.publish_ended();
            self.expire_connections();
        }
    }

    fn reload(&mut self) {
        // The accounts are read again: a user added since the start may
        // now be named, and a job range must avoid it.
        let loaded = policy::Context::host(Some(self.gateway_uid))
            .and_then(|ctx| Policy::load(&self.args.policy, &ctx).map_err(|e| e.to_string()))
            .and_then(|p| lock_range(&mut self.locks, &p).map(|()| p));
        match loaded {
            Ok(p) => {
                self.reload_error = None;
                log::event("policy_reloaded", &[("policy", json!(p.summary()))]);
                for w in &p.warnings {
                    log::event("policy_warning", &[("warning", json!(w))]);
                }
                self.jobs.ready(p.job_range(), crate::ns::discover());
                self.policy = p;
            }
            Err(e) => {
                let e = format!("{e}; keeping the old policy");
                log::event("policy_reload_failed", &[("error", json!(e))]);
                self.reload_error = Some(e);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let stream = match self.listener.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let out_of_fds = matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    );
                    // One line per back-off: the listener is out of the
                    // poll set until it ends, so this cannot repeat faster.
                    log::event(
                        "accept_failed",
                        &[
                            ("error", json!(e.to_string())),
                            ("paused_ms", json!(ACCEPT_BACKOFF.as_millis() as u64)),
                        ],
                    );
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    if out_of_fds {
                        // Free a descriptor for the next client.
                        self.evict_idlest("out of descriptors");
                    }
                    return;
                }
            };
            let peer = match socket::peer(&stream) {
                Ok(p) => p,
                Err(e) => {
                    log::event("peer_unknown", &[("error", json!(e.to_string()))]);
                    continue;
                }
            };
            let gateway = self.gateway_uid;
            if peer.uid != 0 && peer.uid != gateway {
                let why = format!("not the gateway (uid {gateway}) or root");
                log::event("connection_refused", &about(peer, &why));
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if self.conns.len() >= self.args.max_connections {
                self.evict_idlest("connection limit reached");
            }
            self.next_conn += 1;
            self.conns.insert(self.next_conn, Conn::new(stream, peer));
        }
    }

    /// Closes the connection that has been idle longest.
    fn evict_idlest(&mut self, why: &str) {
        let idlest = self
            .conns
            .iter()
            .min_by_key(|(_, c)| c.last_active)
            .map(|(id, _)| *id);
        if let Some(id) = idlest {
            self.close(id, why);
        }
    }

    fn close(&mut self, id: u64, why: &str) {
        if let Some(c) = self.conns.remove(&id) {
            log::event("connection_closed", &about(c.peer, why));
        }
    }

    /// Closes half-written frames, connections that never said `Hello` and
    /// idle ones.
    fn expire_connections(&mut self) {
        let idle = Duration::from_secs(self.args.idle_timeout_s);
        let stale: Vec<(u64, &'static str)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| Some((*id, c.expired(idle)?)))
            .collect();
        for (id, why) in stale {
            self.close(id, why);
        }
    }

    /// Serves what connection `id` sent: every complete frame, each
    /// answered before the next is read.
    fn readable(&mut self, id: u64) {
        let containment = self.containment();
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if let Err(why) = c.fill() {
            return self.close(id, &why);
        }
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let peer = c.peer;
            let resp = match c.next(containment) {
                Ok(Incoming::Nothing) => return,
                Ok(Incoming::Answer(r)) => r,
                Ok(Incoming::Request(env, fds)) => {
                    self.dispatch(id, env.request_id, env.request, peer, fds)
                }
                Err(why) => return self.close(id, &why),
            };
            if !self.send(id, &resp) {
                return;
            }
        }
    }

    /// Sends each job that ended since the last call to every subscribed
    /// connection. A subscriber that cannot take the frame at once is
    /// closed (it reconnects and asks for what it missed).
    fn publish_ended(&mut self) {
        let ended = self.jobs.take_ended();
        if ended.is_empty() {
            return;
        }
        let subscribers: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.subscribed)
            .map(|(id, _)| *id)
            .collect();
        for (job, status) in ended {
            let event = Response::JobEnded {
                job,
                status: Box::new(status),
            };
            for id in &subscribers {
                if let Some(c) = self.conns.get_mut(id) {
                    c.last_active = Instant::now();
                }
                self.send(*id, &event);
            }
        }
    }

    fn send(&mut self, id: u64, resp: &Response) -> bool {
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        match c.send(resp) {
            Ok(()) => true,
            Err(why) => {
                self.close(id, &why);
                false
            }
        }
    }
}

/// A connection line's fields: the peer and why.
fn about(peer: Peer, why: &str) -> [(&'static str, serde_json::Value); 3] {
    [
        ("peer_uid", json!(peer.uid)),
        ("peer_pid", json!(peer.pid)),
        ("reason", json!(why)),
    ]
}
