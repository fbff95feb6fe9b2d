//! The helper's one loop: `poll(2)` over the listening socket, a signalfd
//! (SIGHUP reload, SIGTERM/SIGINT stop), every client connection and every
//! running job's pidfd, with the nearest job deadline as the timeout.
//!
//! Each connection is a small state machine: the first frame must be
//! `Hello` with our version; after that one response per request. Any
//! frame error, unexpected message or stray descriptor closes that
//! connection (and is logged) — the others keep being served.

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
use protocol::{Containment, JobId, Request, Response, PROTOCOL_VERSION};

use crate::cgroup::CgroupRoot;
use crate::ids::Nice;
use crate::jobs::{self, Jobs, Running};
use crate::policy::Policy;
use crate::socket::{self, Listener, Peer};
use crate::spawn::{spawn, SpawnPlan};
use crate::target::{self, Refusal};

/// A half-written frame older than this closes its connection.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Server {
    pub listener: Listener,
    pub policy: Policy,
    pub policy_path: PathBuf,
    pub gateway_uid: u32,
    pub cgroups: Option<CgroupRoot>,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    jobs: Jobs,
}

struct Conn {
    stream: UnixStream,
    peer: Peer,
    greeted: bool,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    partial_since: Option<Instant>,
}

enum Key {
    Listener,
    Signals,
    Conn(u64),
    Job(JobId),
}

impl Server {
    pub fn new(
        listener: Listener,
        policy: Policy,
        policy_path: PathBuf,
        gateway_uid: u32,
        cgroups: Option<CgroupRoot>,
    ) -> Server {
        Server {
            listener,
            policy,
            policy_path,
            gateway_uid,
            cgroups,
            conns: HashMap::new(),
            next_conn: 0,
            jobs: Jobs::default(),
        }
    }

    fn containment(&self) -> Containment {
        if self.cgroups.is_some() {
            Containment::Cgroup
        } else {
            Containment::Pgid
        }
    }

    /// Runs until SIGTERM or SIGINT.
    pub fn run(&mut self) -> io::Result<()> {
        let mut mask = SigSet::empty();
        for s in [NixSignal::SIGHUP, NixSignal::SIGTERM, NixSignal::SIGINT] {
            mask.add(s);
        }
        mask.thread_block().map_err(io::Error::from)?;
        let sigfd = SignalFd::new(&mask).map_err(io::Error::from)?;
        loop {
            let timeout = self
                .jobs
                .next_deadline()
                .map(|d| d.min(FRAME_TIMEOUT))
                .unwrap_or(FRAME_TIMEOUT);
            let mut keys = vec![Key::Listener, Key::Signals];
            let mut pfds = vec![
                PollFd::new(self.listener.listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            ];
            for (id, c) in &self.conns {
                keys.push(Key::Conn(*id));
                pfds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
            }
            for (id, j) in &self.jobs.running {
                keys.push(Key::Job(*id));
                pfds.push(PollFd::new(j.pidfd.as_fd(), PollFlags::POLLIN));
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
                                eprintln!("signal {}: stopping", info.ssi_signo);
                                self.jobs.kill_all();
                                return Ok(());
                            }
                        }
                    }
                    Key::Conn(id) => self.readable(id),
                    Key::Job(id) => {
                        self.jobs.reap(&id);
                    }
                }
            }
            self.jobs.enforce_deadlines();
            self.expire_partial_frames();
        }
    }

    fn reload(&mut self) {
        match Policy::load(&self.policy_path) {
            Ok(p) => {
                eprintln!("policy reloaded: {}", p.summary());
                self.policy = p;
            }
            Err(e) => eprintln!("policy reload failed, keeping the old policy: {e}"),
        }
    }

    fn accept(&mut self) {
        loop {
            let stream = match self.listener.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    return;
                }
            };
            let peer = match socket::peer(&stream) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("peer credentials unavailable, closing: {e}");
                    continue;
                }
            };
            if peer.uid != 0 && peer.uid != self.gateway_uid {
                eprintln!(
                    "refused connection from uid {} pid {}: not the gateway (uid {}) or root",
                    peer.uid, peer.pid, self.gateway_uid
                );
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            self.next_conn += 1;
            self.conns.insert(
                self.next_conn,
                Conn {
                    stream,
                    peer,
                    greeted: false,
                    buf: Vec::new(),
                    fds: Vec::new(),
                    partial_since: None,
                },
            );
        }
    }

    fn close(&mut self, id: u64, why: &str) {
        if let Some(c) = self.conns.remove(&id) {
            eprintln!(
                "closing connection of uid {} pid {}: {why}",
                c.peer.uid, c.peer.pid
            );
        }
    }

    fn expire_partial_frames(&mut self) {
        let stale: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.partial_since.is_some_and(|t| t.elapsed() > FRAME_TIMEOUT))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.close(id, "half-written frame timed out");
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
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let (req, used) = match decode_frame::<Request>(&c.buf) {
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
            let want = req.fds_expected();
            if c.fds.len() < want || (want == 0 && !c.fds.is_empty()) {
                return self.close(id, "descriptors do not match the request");
            }
            let fds: Vec<OwnedFd> = c.fds.drain(..want).collect();
            let peer = c.peer;
            let greeted = c.greeted;
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
                (_, true) => self.dispatch(&req, peer, fds),
            };
            if !self.send(id, &resp) {
                return;
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

    fn dispatch(&mut self, req: &Request, peer: Peer, fds: Vec<OwnedFd>) -> Response {
        let resp = self.decide(req, peer, fds);
        let what = match req {
            Request::Signal { target, signal } => {
                format!(
                    "signal {signal} pid {} start_time {}",
                    target.pid, target.start_time
                )
            }
            Request::Renice { target, nice } => {
                format!(
                    "renice {nice} pid {} start_time {}",
                    target.pid, target.start_time
                )
            }
            Request::Spawn {
                job,
                timeout_ms,
                command,
            } => {
                format!("spawn job {job} timeout_ms {timeout_ms} command {command:?}")
            }
            Request::JobStatus { job } => format!("job_status {job}"),
            Request::Cancel { job } => format!("cancel {job}"),
            Request::Hello { version } => format!("hello {version}"),
        };
        let outcome = match &resp {
            Response::Job(s) => format!("job pid {} {}", s.pid, s.state.name()),
            other => format!("{other:?}"),
        };
        eprintln!(
            "peer uid {} pid {}: {what} -> {outcome}",
            peer.uid, peer.pid
        );
        resp
    }

    fn decide(&mut self, req: &Request, peer: Peer, fds: Vec<OwnedFd>) -> Response {
        match req {
            Request::Signal { target, signal } => {
                let r = match target::resolve(target.pid, target.start_time, Some(peer.pid)) {
                    Ok(r) => r,
                    Err(e) => return refusal(e),
                };
                if let Err(rule) = self
                    .policy
                    .check_signal(r.info.real_uid, &r.info.comm, *signal)
                {
                    return Response::Denied { rule: rule.into() };
                }
                match target::signal(&r, signal.number()) {
                    Ok(()) => Response::Ok,
                    Err(e) => refusal(e),
                }
            }
            Request::Renice { target, nice } => {
                let nice = match Nice::new(*nice) {
                    Ok(n) => n,
                    Err(what) => return Response::Invalid { what },
                };
                let r = match target::resolve(target.pid, target.start_time, Some(peer.pid)) {
                    Ok(r) => r,
                    Err(e) => return refusal(e),
                };
                if let Err(rule) = self
                    .policy
                    .check_renice(r.info.real_uid, &r.info.comm, nice)
                {
                    return Response::Denied { rule: rule.into() };
                }
                match target::renice(&r, nice.get()) {
                    Ok(()) => Response::Ok,
                    Err(e) => refusal(e),
                }
            }
            Request::Spawn {
                job,
                command,
                timeout_ms,
            } => self.spawn(*job, command, *timeout_ms, fds),
            Request::JobStatus { job } => match self.jobs.status(job) {
                Some(s) => Response::Job(s),
                None => Response::Invalid {
                    what: format!("no job {job}"),
                },
            },
            Request::Cancel { job } => {
                if let Some(r) = self.jobs.running.get(job) {
                    Jobs::kill(r);
                }
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
        }
    }

    fn spawn(&mut self, job: JobId, command: &str, timeout_ms: u64, fds: Vec<OwnedFd>) -> Response {
        let Some(run) = self.policy.run.clone() else {
            return Response::Denied { rule: "run".into() };
        };
        if timeout_ms == 0 || timeout_ms > run.max_timeout_ms {
            return Response::Invalid {
                what: format!("timeout must be 1..={} ms", run.max_timeout_ms),
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
        let cgroup = match &self.cgroups {
            Some(root) => match root.create(&job.to_hex()) {
                Ok(cg) => Some(cg),
                Err(e) => {
                    return Response::Failed {
                        errno: e.raw_os_error().unwrap_or(libc::EIO),
                    }
                }
            },
            None => None,
        };
        let plan = SpawnPlan {
            command,
            run: &run,
            stdout: &stdout,
            stderr: &stderr,
            cgroup_procs: cgroup.as_ref().map(|c| c.procs_file()),
        };
        let pid = match spawn(&plan) {
            Ok(pid) => pid,
            Err(e) => {
                if let Some(cg) = &cgroup {
                    let _ = cg.destroy();
                }
                return Response::Failed {
                    errno: e.raw_os_error().unwrap_or(libc::EIO),
                };
            }
        };
        let pidfd = match crate::sys::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGKILL,
                );
                return Response::Failed {
                    errno: e.raw_os_error().unwrap_or(libc::EIO),
                };
            }
        };
        let start_time = target::ProcInfo::read(pid)
            .map(|i| i.start_time.0)
            .unwrap_or(0);
        let status = jobs::started(pid, start_time, self.containment(), run.max_output_bytes);
        self.jobs.running.insert(
            job,
            Running {
                pidfd,
                deadline: Instant::now() + Duration::from_millis(timeout_ms),
                cgroup,
                status: status.clone(),
                timed_out: false,
            },
        );
        Response::Job(status)
    }
}

fn refusal(r: Refusal) -> Response {
    match r {
        Refusal::Denied(rule) => Response::Denied { rule: rule.into() },
        Refusal::NoSuchProcess => Response::NoSuchProcess,
        Refusal::Mismatch => Response::Mismatch,
        Refusal::Failed(errno) => Response::Failed { errno },
    }
}
