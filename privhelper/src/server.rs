//! The helper's one loop: `poll(2)` over the listening socket, a signalfd
//! (SIGHUP reload, SIGTERM/SIGINT stop), every client connection and every
//! running job's pidfd, with the nearest job deadline as the timeout.
//!
//! Each connection is a small state machine: the first frame must be
//! `Hello` with our version; after that one response per request. Any
//! frame error, unexpected message or stray descriptor closes that
//! connection (and is logged) — the others keep being served.
//!
//! Abuse bounds: at most `max_conns` connections (a new one evicts the one
//! idle longest), a connection that has not said `Hello` within
//! [`FRAME_TIMEOUT`] or has been idle for `idle_timeout` is closed, and when
//! `accept` runs out of descriptors the listener leaves the poll set for
//! [`ACCEPT_BACKOFF`] (logged once per back-off) instead of spinning.

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal as NixSignal};
use nix::sys::signalfd::SignalFd;
use protocol::fdpass::recv_with_fds;
use protocol::frame::{decode_frame, encode_frame};
use protocol::{
    Caller, Containment, Envelope, HelperInfo, Isolation, JobId, JobLimits, Request, Response,
    PROTOCOL_VERSION,
};

use crate::cgroup::{CgroupLimits, CgroupRoot, CPU_PERIOD_US};
use crate::home;
use crate::ids::Nice;
use crate::jobs::{self, Jobs, Running};
use crate::lineage::Lineage;
use crate::log;
use crate::policy::{self, Policy, RunAs, RunPolicy};
use crate::socket::{self, Listener, Peer};
use crate::spawn::{spawn, SpawnPlan};
use crate::target::{self, Refusal};
use crate::uids::UidLocks;
use serde_json::json;

/// A half-written frame older than this closes its connection, and so does
/// a connection that has not said `Hello` by then.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the listener rests after `accept` ran out of descriptors.
pub const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The server's settings that are not policy.
#[derive(Debug, Clone)]
pub struct Limits {
    pub gateway_uid: u32,
    pub max_conns: usize,
    pub idle_timeout: Duration,
}

/// Blocks SIGHUP, SIGTERM and SIGINT and returns the descriptor they are
/// read from. Called before the socket exists: once a client (or
/// `systemctl reload`) can see the helper, a SIGHUP must reload it, never
/// kill it by the default action, and a SIGTERM must still remove the socket.
pub fn block_signals() -> io::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in [NixSignal::SIGHUP, NixSignal::SIGTERM, NixSignal::SIGINT] {
        mask.add(s);
    }
    mask.thread_block().map_err(io::Error::from)?;
    SignalFd::new(&mask).map_err(io::Error::from)
}

pub struct Server {
    /// Our hold on the job uids against other helpers (per-job uids only).
    locks: Option<UidLocks>,
    pub listener: Listener,
    pub policy: Policy,
    pub policy_path: PathBuf,
    pub policy_ctx: policy::Context,
    pub cgroups: Option<CgroupRoot>,
    limits: Limits,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    jobs: Jobs,
    /// Listener out of the poll set until then (descriptors exhausted).
    accept_paused_until: Option<Instant>,
    /// The helper's own chain of parents, kept while it holds.
    lineage: Option<Lineage>,
    /// Our pid, asked once (`getpid` is a system call).
    pid: i32,
}

struct Conn {
    stream: UnixStream,
    peer: Peer,
    greeted: bool,
    /// Sent `Subscribe`: only job events go out, nothing more comes in.
    subscribed: bool,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    partial_since: Option<Instant>,
    opened: Instant,
    last_active: Instant,
    /// The peer's chain of parents, walked at its first signal or renice
    /// and kept while it holds (see `lineage`).
    lineage: Option<Lineage>,
}

enum Key {
    Listener,
    Signals,
    Conn(u64),
    Job(JobId),
    Drain(JobId),
    Cleaner(JobId),
}

impl Server {
    pub fn new(
        listener: Listener,
        policy: Policy,
        policy_path: PathBuf,
        policy_ctx: policy::Context,
        limits: Limits,
        cgroups: Option<CgroupRoot>,
        (shared, locks): (Vec<PathBuf>, Option<UidLocks>),
    ) -> Server {
        let mut jobs = Jobs::default();
        jobs.shared = shared;
        jobs.uids.set_range(job_range(&policy));
        reclaim_in_use(&mut jobs, &policy);
        Server {
            locks,
            listener,
            policy,
            policy_path,
            policy_ctx,
            cgroups,
            limits,
            conns: HashMap::new(),
            next_conn: 0,
            jobs,
            accept_paused_until: None,
            lineage: None,
            pid: std::process::id() as i32,
        }
    }

    /// The limits a job started now gets, given the controllers in force.
    fn job_limits(&self, run: &RunPolicy) -> JobLimits {
        let c = self
            .cgroups
            .as_ref()
            .map(|c| c.controllers())
            .unwrap_or_default();
        JobLimits {
            cgroup_memory_max: c.memory.then_some(run.memory_max),
            cgroup_pids_max: c.pids.then_some(run.pids_max),
            cgroup_cpu_max_us: c.cpu.then_some(cpu_quota_us(run)),
            rlimit_as: (!c.memory).then_some(run.memory_max),
            rlimit_nproc: run.nproc,
            rlimit_cpu_s: run.cpu_s,
            rlimit_fsize: run.max_output_bytes,
            rlimit_nofile: run.nofile,
        }
    }

    fn info(&self) -> HelperInfo {
        let run = self.policy.run.as_ref();
        HelperInfo {
            containment: self.containment(),
            isolation: match run.map(|r| &r.run_as) {
                Some(RunAs::Shared { .. }) => Isolation::SharedUser,
                _ => Isolation::PerJobUid,
            },
            limits: run.map(|r| self.job_limits(r)).unwrap_or_default(),
            running_jobs: u32::try_from(self.jobs.running.len()).unwrap_or(u32::MAX),
            max_jobs: run
                .map(|r| u32::try_from(r.max_jobs).unwrap_or(u32::MAX))
                .unwrap_or(0),
            quarantined_uids: u32::try_from(self.jobs.uids.quarantined()).unwrap_or(u32::MAX),
        }
    }

    fn containment(&self) -> Containment {
        if self.cgroups.is_some() {
            Containment::Cgroup
        } else {
            Containment::Pgid
        }
    }

    /// Runs until SIGTERM or SIGINT arrives on `sigfd` (from
    /// [`block_signals`]).
    pub fn run(&mut self, sigfd: SignalFd) -> io::Result<()> {
        loop {
            if self
                .accept_paused_until
                .is_some_and(|t| Instant::now() >= t)
            {
                self.accept_paused_until = None;
            }
            let mut timeout = self
                .jobs
                .next_wakeup()
                .map(|d| d.min(FRAME_TIMEOUT))
                .unwrap_or(FRAME_TIMEOUT);
            if let Some(t) = self.accept_paused_until {
                timeout = timeout.min(t.saturating_duration_since(Instant::now()));
            }
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
                pfds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
            }
            for (id, j) in &self.jobs.running {
                keys.push(Key::Job(*id));
                pfds.push(PollFd::new(j.pidfd.as_fd(), PollFlags::POLLIN));
            }
            for (id, d) in &self.jobs.draining {
                if let Some(c) = &d.cleaner {
                    keys.push(Key::Cleaner(*id));
                    pfds.push(PollFd::new(c.pidfd.as_fd(), PollFlags::POLLIN));
                } else if let Some(ev) = &d.events {
                    keys.push(Key::Drain(*id));
                    pfds.push(PollFd::new(ev.as_fd(), PollFlags::POLLPRI));
                }
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
                                return Ok(());
                            }
                        }
                    }
                    Key::Conn(id) => self.readable(id),
                    Key::Job(id) => {
                        self.jobs.reap(&id);
                    }
                    Key::Drain(id) | Key::Cleaner(id) => {
                        self.jobs.drain(&id);
                    }
                }
            }
            self.jobs.enforce_deadlines();
            self.jobs.drain_due();
            self.publish_ended();
            self.expire_connections();
        }
    }

    fn reload(&mut self) {
        match Policy::load(&self.policy_path, &self.policy_ctx) {
            Ok(p) => {
                if let Err(e) = self.lock_range(&p) {
                    return log::event(
                        "policy_reload_failed",
                        &[("error", json!(format!("{e}; keeping the old policy")))],
                    );
                }
                log::event("policy_reloaded", &[("policy", json!(p.summary()))]);
                for w in &p.warnings {
                    log::event("policy_warning", &[("warning", json!(w))]);
                }
                self.jobs.uids.set_range(job_range(&p));
                self.jobs.shared = crate::ns::discover();
                reclaim_in_use(&mut self.jobs, &p);
                self.policy = p;
            }
            Err(e) => log::event(
                "policy_reload_failed",
                &[("error", json!(format!("{e}; keeping the old policy")))],
            ),
        }
    }

    /// Locks the job uids of `p`'s range against other helpers, first.
    fn lock_range(&mut self, p: &Policy) -> Result<(), String> {
        let Some(range) = job_range(p) else {
            return Ok(());
        };
        let locks = match self.locks.take() {
            Some(l) => l,
            None => UidLocks::open(std::path::Path::new(crate::uids::LOCK_DIR))?,
        };
        let locks = self.locks.insert(locks);
        locks.take(&range)
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
            if peer.uid != 0 && peer.uid != self.limits.gateway_uid {
                log::event(
                    "connection_refused",
                    &[
                        ("peer_uid", json!(peer.uid)),
                        ("peer_pid", json!(peer.pid)),
                        (
                            "reason",
                            json!(format!(
                                "not the gateway (uid {}) or root",
                                self.limits.gateway_uid
                            )),
                        ),
                    ],
                );
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if self.conns.len() >= self.limits.max_conns {
                self.evict_idlest("connection limit reached");
            }
            self.next_conn += 1;
            let now = Instant::now();
            self.conns.insert(
                self.next_conn,
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
                },
            );
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
            log::event(
                "connection_closed",
                &[
                    ("peer_uid", json!(c.peer.uid)),
                    ("peer_pid", json!(c.peer.pid)),
                    ("reason", json!(why)),
                ],
            );
        }
    }

    /// Closes half-written frames, connections that never said `Hello` and
    /// idle ones.
    fn expire_connections(&mut self) {
        let idle = self.limits.idle_timeout;
        let stale: Vec<(u64, &'static str)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| {
                let why = if c.partial_since.is_some_and(|t| t.elapsed() > FRAME_TIMEOUT) {
                    "half-written frame timed out"
                } else if !c.greeted && c.opened.elapsed() > FRAME_TIMEOUT {
                    "no hello in time"
                } else if !c.subscribed && c.last_active.elapsed() > idle {
                    "idle timeout"
                } else {
                    return None;
                };
                Some((*id, why))
            })
            .collect();
        for (id, why) in stale {
            self.close(id, why);
        }
    }

    fn readable(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut chunk = [0u8; 8192];
        let n = match recv_with_fds(&c.stream, &mut chunk, &mut c.fds) {
            Ok(0) => return self.close(id, "peer closed"),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => return self.close(id, &format!("read error: {e}")),
        };
        c.buf.extend_from_slice(&chunk[..n]);
        c.last_active = Instant::now();
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let (env, used) = match decode_frame::<Envelope>(&c.buf) {
                Ok(Some(x)) => x,
                Ok(None) => {
                    c.partial_since =
                        (!c.buf.is_empty()).then(|| c.partial_since.unwrap_or_else(Instant::now));
                    if c.fds.len() > protocol::fdpass::MAX_FDS_PER_MSG {
                        return self.close(id, "too many descriptors");
                    }
                    return;
                }
                Err(e) => return self.close(id, &format!("bad frame: {e}")),
            };
            c.buf.drain(..used);
            c.partial_since = None;
            let Envelope {
                request_id,
                request: req,
            } = env;
            let want = req.fds_expected();
            // Exactly the descriptors the request names, no more: the
            // gateway sends each frame in one message with its own.
            if c.fds.len() != want {
                return self.close(id, "descriptors do not match the request");
            }
            let fds: Vec<OwnedFd> = c.fds.drain(..want).collect();
            let peer = c.peer;
            let greeted = c.greeted;
            if c.subscribed {
                return self.close(id, "request on an event stream");
            }
            let resp = match (&req, greeted) {
                (Request::Hello { version }, false) => {
                    let ok = *version == PROTOCOL_VERSION;
                    let r = Response::Hello {
                        version: PROTOCOL_VERSION,
                        containment: self.containment(),
                    };
                    if !ok {
                        self.send(id, &r);
                        return self.close(
                            id,
                            &format!("protocol version {version} is not {PROTOCOL_VERSION}"),
                        );
                    }
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.greeted = true;
                    }
                    r
                }
                (Request::Hello { .. }, true) => return self.close(id, "second hello"),
                (_, false) => return self.close(id, "request before hello"),
                (Request::Subscribe, true) => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.subscribed = true;
                        // An event stream is not idle while jobs run.
                        c.last_active = Instant::now();
                    }
                    Response::Subscribed
                }
                (_, true) => self.dispatch(id, request_id, &req, peer, fds),
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
            let event = Response::JobEnded { job, status };
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
        let bytes = match encode_frame(resp) {
            Ok(b) => b,
            Err(e) => {
                self.close(id, &format!("cannot encode reply: {e}"));
                return false;
            }
        };
        // Replies are small; a client that does not read them is dropped.
        if let Err(e) = c.stream.write_all(&bytes) {
            self.close(id, &format!("write failed: {e}"));
            return false;
        }
        true
    }

    /// Decides `req` and writes its decision line — for the acts (signal,
    /// renice, spawn, cancel); status and info queries are answered
    /// without a line, so polling and health checks do not flood the log.
    fn dispatch(
        &mut self,
        conn: u64,
        request_id: u64,
        req: &Request,
        peer: Peer,
        fds: Vec<OwnedFd>,
    ) -> Response {
        if let Request::Info = req {
            return Response::Info(self.info());
        }
        let resp = self.decide(conn, req, peer, fds);
        if !matches!(req, Request::JobStatus { .. }) {
            log::decision(request_id, peer, req, &resp);
        }
        resp
    }

    /// Resolves a signal or renice target against the built-in
    /// protections, with the helper's and the peer's chains of parents
    /// kept between requests (walked again only if a member has exited).
    fn resolve(
        &mut self,
        conn: u64,
        peer: Peer,
        target: &protocol::Target,
    ) -> Result<target::Resolved, Refusal> {
        let mut theirs = self.conns.get_mut(&conn).and_then(|c| c.lineage.take());
        let mut guard = target::Guard {
            me: self.pid,
            peer: peer.pid,
            ours: &mut self.lineage,
            theirs: &mut theirs,
        };
        let r = target::resolve(target.pid, target.start_time, &mut guard);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.lineage = theirs;
        }
        r
    }

    fn decide(&mut self, conn: u64, req: &Request, peer: Peer, fds: Vec<OwnedFd>) -> Response {
        match req {
            Request::Signal {
                target,
                signal,
                caller,
            } => {
                let r = match self.resolve(conn, peer, target) {
                    Ok(r) => r,
                    Err(e) => return refusal(e),
                };
                if let Err(rule) = self.policy.check_signal(&self.subject(&r, caller), *signal) {
                    return self.denied(rule);
                }
                match target::signal(&r, signal.number()) {
                    Ok(()) => Response::Ok,
                    Err(e) => refusal(e),
                }
            }
            Request::Renice {
                target,
                nice,
                caller,
            } => {
                let nice = match Nice::new(*nice) {
                    Ok(n) => n,
                    Err(what) => return Response::Invalid { what },
                };
                let r = match self.resolve(conn, peer, target) {
                    Ok(r) => r,
                    Err(e) => return refusal(e),
                };
                if let Err(rule) = self.policy.check_renice(&self.subject(&r, caller), nice) {
                    return self.denied(rule);
                }
                match target::renice(&r, nice.get()) {
                    Ok(threads) => Response::Reniced { threads },
                    Err(e) => refusal(e),
                }
            }
            Request::Spawn {
                job,
                command,
                timeout_ms,
                key,
            } => self.spawn(*job, command, *timeout_ms, key, fds),
            Request::JobStatus { job } => match self.jobs.status(job) {
                Some(s) => Response::Job(s),
                None => Response::Invalid {
                    what: format!("no job {job}"),
                },
            },
            Request::Cancel { job } => {
                self.jobs.cancel(job);
                match self.jobs.status(job) {
                    Some(s) => Response::Job(s),
                    None => Response::Invalid {
                        what: format!("no job {job}"),
                    },
                }
            }
            Request::Hello { .. } => Response::Invalid {
                what: "hello twice".into(),
            },
            Request::Info => Response::Info(self.info()),
            // Handled in `readable`: it changes the connection's state.
            Request::Subscribe => Response::Invalid {
                what: "subscribe is answered by the connection".into(),
            },
        }
    }

    /// What the policy judges of a resolved target, for `caller`.
    fn subject<'a>(&self, r: &'a target::Resolved, caller: &Caller) -> policy::Subject<'a> {
        policy::Subject {
            owner: r.info.real_uid,
            comm: &r.info.comm,
            job: self
                .jobs
                .job_of(r.pid.get(), r.info.real_uid.get(), &caller.key),
            all_jobs: caller.all_jobs,
        }
    }

    fn denied(&self, rule: policy::Rule) -> Response {
        Response::Denied {
            rule: rule.into(),
            detail: self.policy.describe(rule),
        }
    }

    fn spawn(
        &mut self,
        job: JobId,
        command: &str,
        timeout_ms: u64,
        key: &str,
        fds: Vec<OwnedFd>,
    ) -> Response {
        let Some(run) = self.policy.run.clone() else {
            return Response::Denied {
                rule: "run".into(),
                detail: "the policy has no [run] section".into(),
            };
        };
        if timeout_ms == 0 || timeout_ms > run.max_timeout_ms {
            return Response::Invalid {
                // In the API's units: the gateway passes this text on.
                what: format!(
                    "timeout_s must be between 1 and {} s (the policy's max_timeout_s)",
                    run.max_timeout_ms / 1000
                ),
            };
        }
        if command.is_empty() || command.contains('\0') {
            return Response::Invalid {
                what: "command is empty or contains NUL".into(),
            };
        }
        if self.jobs.known(&job) {
            return Response::Invalid {
                what: format!("job {job} exists"),
            };
        }
        if self.jobs.running.len() >= run.max_jobs {
            return Response::Busy;
        }
        let [stdout, stderr] = match <[OwnedFd; 2]>::try_from(fds) {
            Ok(f) => f,
            Err(_) => {
                return Response::Invalid {
                    what: "spawn needs stdout and stderr descriptors".into(),
                }
            }
        };
        let (uid, gid, pool_uid) = match &run.run_as {
            RunAs::Shared { uid, gid, .. } => (uid.get(), *gid, None),
            RunAs::PerJob(_) => match self.jobs.uids.allocate() {
                Some(u) => (u, u, Some(u)),
                // Every uid is held by a running or draining job.
                None => return Response::Busy,
            },
        };
        let limits = self.job_limits(&run);
        let release = |jobs: &mut Jobs| {
            if let Some(u) = pool_uid {
                jobs.uids.release(u);
            }
        };
        let cgroup = match &self.cgroups {
            Some(root) => {
                let cl = CgroupLimits {
                    memory_max: run.memory_max,
                    pids_max: run.pids_max,
                    cpu_quota_us: cpu_quota_us(&run),
                };
                match root.create(&job.to_hex(), &cl) {
                    Ok(cg) => Some(cg),
                    Err(e) => {
                        release(&mut self.jobs);
                        return Response::Failed {
                            errno: e.raw_os_error().unwrap_or(libc::EIO),
                        };
                    }
                }
            }
            None => None,
        };
        // A per-job uid gets a private home, which the child creates itself
        // once it runs as that uid (the helper needs no CAP_CHOWN for it).
        let home = pool_uid.map(|_| home::path(&job.to_hex()));
        let (home_env, tmp_env) = match &home {
            Some(h) => (h.display().to_string(), h.display().to_string()),
            None => (run.home.clone(), "/tmp".to_string()),
        };
        let plan = SpawnPlan {
            command,
            run: &run,
            uid,
            gid,
            rlimit_as: limits.rlimit_as,
            home: home_env,
            tmpdir: tmp_env,
            create_home: home.is_some(),
            private: pool_uid.map(|_| self.jobs.shared.as_slice()),
            stdout: &stdout,
            stderr: &stderr,
            cgroup_procs: cgroup.as_ref().map(|c| c.procs_files()).unwrap_or_default(),
        };
        let pid = match spawn(&plan) {
            Ok(pid) => pid,
            Err(e) => {
                // The child failed before execve and was reaped: nothing
                // runs as the uid, the cgroup is empty.
                if let Some(cg) = &cgroup {
                    let _ = cg.remove();
                }
                // The child failed before execve: nothing of it runs, and
                // a home it made is removed when the uid is next cleaned;
                // keep the uid out of use until then.
                match pool_uid {
                    Some(u) => self.jobs.reclaim(u),
                    None => release(&mut self.jobs),
                }
                return Response::Failed {
                    errno: e.raw_os_error().unwrap_or(libc::EIO),
                };
            }
        };
        let pidfd = match crate::sys::pidfd_open(pid, 0) {
            Ok(fd) => fd,
            Err(e) => {
                // Cannot happen for our own unreaped child; if it does, the
                // job is killed and its uid stays taken (never reused while
                // something of it might run).
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGKILL,
                );
                return Response::Failed {
                    errno: e.raw_os_error().unwrap_or(libc::EIO),
                };
            }
        };
        let start_time = crate::proc::ProcInfo::read(pid)
            .map(|i| i.start_time.0)
            .unwrap_or(0);
        let status = jobs::started(pid, start_time, self.containment(), uid, limits);
        self.jobs.running.insert(
            job,
            Running {
                pidfd,
                deadline: Instant::now() + Duration::from_millis(timeout_ms),
                cgroup,
                status: status.clone(),
                timed_out: false,
                cancelled: false,
                pool_uid,
                key: key.to_string(),
            },
        );
        Response::Job(status)
    }
}

/// Readies every uid of `p`'s range that none of our jobs holds: one the
/// host still uses (a dead helper's job runs as it) is taken back through
/// a drain that kills its processes, then cleaned; every other one is
/// cleaned now (`Jobs::clean_range`).
fn reclaim_in_use(jobs: &mut Jobs, p: &Policy) {
    let Some(range) = job_range(p) else {
        return;
    };
    for (uid, why) in crate::uids::in_use_on_host(&range) {
        if !jobs.uids.taken(uid) {
            log::event(
                "uid_reclaimed",
                &[("job_uid", json!(uid)), ("reason", json!(why))],
            );
            jobs.reclaim(uid);
        }
    }
    jobs.clean_range(&range);
}

/// The per-job uid range of a policy, if it has one.
pub fn job_range(p: &Policy) -> Option<std::ops::RangeInclusive<u32>> {
    match p.run.as_ref().map(|r| &r.run_as) {
        Some(RunAs::PerJob(r)) => Some(r.clone()),
        _ => None,
    }
}

/// `cpu.max` quota for the policy's `cpu_max` percent.
fn cpu_quota_us(run: &RunPolicy) -> u64 {
    run.cpu_max_percent
        .saturating_mul(CPU_PERIOD_US)
        .checked_div(100)
        .unwrap_or(CPU_PERIOD_US)
        .max(1000)
}

fn refusal(r: Refusal) -> Response {
    match r {
        Refusal::Denied(rule) => Response::Denied {
            rule: rule.into(),
            detail: builtin_detail(rule).into(),
        },
        Refusal::NoSuchProcess => Response::NoSuchProcess,
        Refusal::NotAProcess => Response::NotAProcess,
        Refusal::Mismatch => Response::Mismatch,
        Refusal::Failed(errno) => Response::Failed { errno },
    }
}

/// What each built-in protection means, for the refusal's `detail`.
fn builtin_detail(rule: &str) -> &'static str {
    match rule {
        "builtin:negative-pid" => "a negative pid names a process group; never signalled",
        "builtin:pid<=1" => "pid 0 and init (pid 1) are never acted on",
        "builtin:kernel-thread" => "kernel threads are never acted on",
        "builtin:self" => "the helper never acts on itself",
        "builtin:gateway" => "the helper never acts on the gateway process",
        "builtin:ancestor" => "the helper never acts on an ancestor of itself or the gateway",
        _ => "built-in protection",
    }
}
