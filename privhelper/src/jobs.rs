//! Running, draining and finished jobs. The helper, not the gateway, owns a
//! job's deadline: a timed-out job is killed whether or not anyone is
//! connected. When a job's shell is reaped the rest of the job is killed and
//! the job *drains*: its cgroup is removed and its uid freed only once the
//! kernel reports the cgroup empty (`cgroup.events`), watched by the poll
//! loop — nothing here sleeps. Finished jobs are kept in a bounded table so
//! the gateway can still ask for their status after a reconnect.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal as NixSignal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use protocol::{Containment, JobId, JobLimits, JobState, JobStatus, Response};

use crate::cgroup::{self, CgroupLimits, CgroupRoot, JobCgroup, CPU_PERIOD_US};
use crate::home;
use crate::log::{self, now_ms};
use crate::policy::{JobOf, RunAs, RunPolicy};
use crate::spawn::{spawn, SpawnPlan};
use crate::uids::{self, UidPool};
use serde_json::json;

/// How many finished jobs are remembered.
pub const FINISHED_KEPT: usize = 1024;

/// How often a draining job is killed again and, without a cgroup, swept.
pub const DRAIN_RETRY: Duration = Duration::from_millis(200);

/// How long a uid's cleaner may take before the uid is quarantined.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A job whose shell has not been reaped yet.
pub struct Running {
    pub pidfd: OwnedFd,
    pub deadline: Instant,
    pub cgroup: Option<JobCgroup>,
    pub status: JobStatus,
    pub timed_out: bool,
    /// Killed on the gateway's `Cancel`.
    pub cancelled: bool,
    /// The pool uid to free once the job is empty (`None`: shared user).
    pub pool_uid: Option<u32>,
    /// The API key that started the job and owns its processes.
    pub key: String,
}

/// A uid's cleaner (`home::clean_as`): its pid, a pidfd the loop polls,
/// and when it is given up on.
pub struct Cleaner {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub deadline: Instant,
}

/// A finished job whose processes may still be dying.
pub struct Draining {
    pub cgroup: Option<JobCgroup>,
    /// `cgroup.events`, polled for `POLLPRI`.
    pub events: Option<File>,
    pub pool_uid: Option<u32>,
    pub pid: i32,
    /// The uid's cleaner, once the job is empty; the uid is free when it
    /// has exited with status 0, and quarantined when it failed or hung.
    pub cleaner: Option<Cleaner>,
    next_retry: Instant,
}

impl Cleaner {
    /// Starts the cleaner of `uid` (`home::clean_as`).
    fn start(uid: u32, shared: &[PathBuf]) -> std::io::Result<Cleaner> {
        let (pid, pidfd) = home::clean_as(uid, shared)?;
        Ok(Cleaner {
            pid,
            pidfd,
            deadline: Instant::now() + CLEANUP_TIMEOUT,
        })
    }

    /// `None` while the cleaner runs within its deadline; then, reaped,
    /// `Ok` for an exit with status 0 and the reason otherwise (a cleaner
    /// past its deadline is killed). Nothing a key does can shorten a
    /// cleanup into success: only that exit hands the uid out again.
    fn outcome(&self) -> Option<Result<(), String>> {
        let hung = Instant::now() >= self.deadline;
        if crate::proc::alive(&self.pidfd) && !hung {
            return None;
        }
        let pid = nix::unistd::Pid::from_raw(self.pid);
        if hung {
            let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
            let _ = waitpid(pid, None);
            return Some(Err(format!(
                "the cleaner took longer than {CLEANUP_TIMEOUT:?}"
            )));
        }
        Some(match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            other => Err(format!("the cleaner ended with {other:?}")),
        })
    }
}

/// All jobs.
#[derive(Default)]
pub struct Jobs {
    running: HashMap<JobId, Running>,
    draining: HashMap<JobId, Draining>,
    uids: UidPool,
    /// The host's world-writable directories (`ns::discover`): covered
    /// in each job's namespace, swept by a uid's cleaner.
    shared: Vec<PathBuf>,
    finished: HashMap<JobId, JobStatus>,
    order: VecDeque<JobId>,
    /// Ended since the last [`Jobs::take_ended`], for event subscribers.
    ended: Vec<(JobId, JobStatus)>,
}

/// What a job waits on wakes the loop for: a running job's shell ended
/// (`Jobs::reap`), or a draining job's cgroup emptied or its cleaner ended
/// (`Jobs::drain`).
pub enum Wake {
    Reap(JobId),
    Drain(JobId),
}

impl Jobs {
    /// Takes `range` (per-job uids; `None`: a shared run user) and the
    /// host's world-writable directories, and readies every uid of the
    /// range that none of our jobs holds: one a process still runs as (a
    /// dead helper's job) is taken back through a drain that kills its
    /// processes, then cleaned; every other one is cleaned now
    /// (`clean_range`). Uids still held by jobs stay taken until released.
    pub fn ready(&mut self, range: Option<std::ops::RangeInclusive<u32>>, shared: Vec<PathBuf>) {
        self.shared = shared;
        self.uids.set_range(range.clone());
        let Some(range) = range else {
            return;
        };
        for (uid, why) in uids::in_use_on_host(&range) {
            if !self.uids.taken(uid) {
                log::event(
                    "uid_reclaimed",
                    &[("job_uid", json!(uid)), ("reason", json!(why))],
                );
                self.reclaim(uid);
            }
        }
        self.clean_range(&range);
    }

    /// The descriptors the loop polls for the jobs, with what each wakes.
    pub fn pollables(&self) -> impl Iterator<Item = (Wake, BorrowedFd<'_>, PollFlags)> {
        let running = self
            .running
            .iter()
            .map(|(id, r)| (Wake::Reap(*id), r.pidfd.as_fd(), PollFlags::POLLIN));
        let draining = self.draining.iter().filter_map(|(id, d)| {
            let (fd, flags) = match (&d.cleaner, &d.events) {
                (Some(c), _) => (c.pidfd.as_fd(), PollFlags::POLLIN),
                (None, Some(ev)) => (ev.as_fd(), PollFlags::POLLPRI),
                (None, None) => return None,
            };
            Some((Wake::Drain(*id), fd, flags))
        });
        running.chain(draining)
    }

    pub fn running_count(&self) -> usize {
        self.running.len()
    }

    pub fn quarantined(&self) -> usize {
        self.uids.quarantined()
    }

    /// `Job(status)` of a job this helper knows, `Invalid` otherwise.
    pub fn status_response(&self, id: &JobId) -> Response {
        match self.status(id) {
            Some(s) => Response::Job(s),
            None => Response::Invalid {
                what: format!("no job {id}"),
            },
        }
    }

    pub fn status(&self, id: &JobId) -> Option<JobStatus> {
        self.running
            .get(id)
            .map(|r| r.status.clone())
            .or_else(|| self.finished.get(id).cloned())
    }

    /// Time until the loop must look at jobs again: the nearest deadline,
    /// or a drain retry.
    pub fn next_wakeup(&self) -> Option<Duration> {
        let now = Instant::now();
        let deadlines = self
            .running
            .values()
            .filter(|r| !r.timed_out)
            .map(|r| r.deadline);
        let drains = self.draining.values().map(|d| match &d.cleaner {
            Some(c) => c.deadline,
            None => d.next_retry,
        });
        deadlines
            .chain(drains)
            .map(|t| t.saturating_duration_since(now))
            .min()
    }

    /// Starts a job (`Spawn`): checks the request against `run`, takes a
    /// uid, makes the cgroup, forks the child (`spawn::spawn`) and keeps
    /// the job. Every refusal and failure leaves nothing behind: the uid
    /// goes back (or, once a child ran as it, through a cleanup).
    pub fn start(
        &mut self,
        s: Start<'_>,
        run: &RunPolicy,
        cgroups: Option<&CgroupRoot>,
    ) -> Response {
        let Start {
            job,
            command,
            timeout_ms,
            key,
            fds,
        } = s;
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
        if self.status(&job).is_some() {
            return Response::Invalid {
                what: format!("job {job} exists"),
            };
        }
        if self.running.len() >= run.max_jobs {
            return Response::Busy;
        }
        let Ok([stdout, stderr]) = <[OwnedFd; 2]>::try_from(fds) else {
            return Response::Invalid {
                what: "spawn needs stdout and stderr descriptors".into(),
            };
        };
        let (uid, gid, pool_uid) = match &run.run_as {
            RunAs::Shared { uid, gid, .. } => (uid.get(), *gid, None),
            RunAs::PerJob(_) => match self.allocate_unused() {
                Some(u) => (u, u, Some(u)),
                // Every uid is held by a running or draining job.
                None => return Response::Busy,
            },
        };
        let limits = limits(run, cgroups);
        let release = |jobs: &mut Jobs| {
            if let Some(u) = pool_uid {
                jobs.uids.release(u);
            }
        };
        let cgroup = match cgroups {
            Some(root) => {
                let cl = CgroupLimits {
                    memory_max: run.memory_max,
                    pids_max: run.pids_max,
                    cpu_quota_us: cpu_quota_us(run),
                };
                match root.create(&job.to_hex(), &cl) {
                    Ok(cg) => Some(cg),
                    Err(e) => {
                        release(self);
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
            run,
            uid,
            gid,
            rlimit_as: limits.rlimit_as,
            home: home_env,
            tmpdir: tmp_env,
            create_home: home.is_some(),
            private: pool_uid.map(|_| self.shared.as_slice()),
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
                    Some(u) => self.reclaim(u),
                    None => release(self),
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
                    nix::unistd::Pid::from_raw(pid.get()),
                    nix::sys::signal::SIGKILL,
                );
                return Response::Failed {
                    errno: e.raw_os_error().unwrap_or(libc::EIO),
                };
            }
        };
        let start_time = crate::proc::ProcInfo::read(pid.get())
            .map(|i| i.start_time.0)
            .unwrap_or(0);
        let status = started(pid.get(), start_time, containment(cgroups), uid, limits);
        self.running.insert(
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

    /// A pool uid no process of the host runs as: one someone else started
    /// a process as since the uid was cleaned is passed over (it stays in
    /// the pool for later), never handed to a job beside that process.
    fn allocate_unused(&mut self) -> Option<u32> {
        let mut passed = Vec::new();
        let found = loop {
            match self.uids.allocate() {
                Some(u) if uids::runs_as(u) => passed.push(u),
                other => break other,
            }
        };
        for u in passed {
            self.uids.release(u);
        }
        found
    }

    /// Whose job `pid` (running as `uid`) belongs to, seen from `caller`:
    /// with per-job uids the uid says it (only a *running* job's uid
    /// counts); with a shared run user, the job cgroup `/proc/PID/cgroup`
    /// names. A process of no running job is `JobOf::None`.
    pub fn job_of(&self, pid: i32, uid: u32, caller: &str) -> JobOf {
        let by_uid = self.running.values().find(|r| r.pool_uid == Some(uid));
        let owner = by_uid.or_else(|| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
            self.running.values().find(|r| {
                r.pool_uid.is_none()
                    && r.cgroup
                        .as_ref()
                        .and_then(JobCgroup::name)
                        .is_some_and(|name| text.lines().any(|l| l.ends_with(&format!("/{name}"))))
            })
        });
        match owner {
            None => JobOf::None,
            Some(r) if r.key == caller => JobOf::Caller,
            Some(_) => JobOf::Other,
        }
    }

    /// Kills the whole job: its cgroup, or its process group.
    pub fn kill(r: &Running) {
        kill_job(r.cgroup.as_ref(), r.status.pid);
    }

    /// The gateway's `Cancel`: kills a running job and marks it so its end
    /// is recorded as `Cancelled`. A job that already ended is left as it
    /// is (cancel is idempotent).
    pub fn cancel(&mut self, id: &JobId) {
        if let Some(r) = self.running.get_mut(id) {
            if !r.timed_out {
                r.cancelled = true;
            }
            Jobs::kill(r);
        }
    }

    /// Kills every job whose deadline has passed.
    pub fn enforce_deadlines(&mut self) {
        let now = Instant::now();
        for (id, r) in self.running.iter_mut() {
            if !r.timed_out && r.deadline <= now {
                r.timed_out = true;
                log::event(
                    "job_timeout",
                    &[
                        ("job", json!(id.to_hex())),
                        ("job_pid", json!(r.status.pid)),
                    ],
                );
                Jobs::kill(r);
            }
        }
    }

    /// Reaps the job if its shell has exited, and starts its drain.
    pub fn reap(&mut self, id: &JobId) {
        let Some(r) = self.running.get(id) else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(r.status.pid);
        let (code, sig) = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => (Some(c), None),
            Ok(WaitStatus::Signaled(_, s, _)) => (None, Some(s as i32)),
            Ok(_) => return,
            Err(_) => (None, None),
        };
        let Some(mut r) = self.running.remove(id) else {
            return;
        };
        // A job ends with its shell: whatever it left behind is killed, and
        // the job drains until nothing of it is left.
        Jobs::kill(&r);
        r.status.exit_code = code;
        r.status.signal = sig;
        r.status.timed_out = r.timed_out;
        r.status.ended_ms = Some(now_ms());
        if let Some(cg) = &r.cgroup {
            let (cpu, peak) = cg.usage();
            r.status.cpu_usec = cpu;
            r.status.memory_peak = peak;
        }
        r.status.state = if r.cancelled {
            JobState::Cancelled
        } else if r.timed_out {
            JobState::TimedOut
        } else if sig.is_some() {
            JobState::Killed
        } else {
            JobState::Exited
        };
        log::event(
            "job_ended",
            &[
                ("job", json!(id.to_hex())),
                ("job_pid", json!(r.status.pid)),
                ("job_uid", json!(r.status.uid)),
                ("job_state", json!(r.status.state.name())),
                ("exit_code", json!(code)),
                ("signal", json!(sig)),
            ],
        );
        let events = r.cgroup.as_ref().and_then(|c| match c.open_events() {
            Ok(f) => Some(f),
            Err(e) => {
                job_error(id, format!("cannot watch cgroup.events: {e}"));
                None
            }
        });
        self.draining.insert(
            *id,
            Draining {
                cgroup: r.cgroup,
                events,
                pool_uid: r.pool_uid,
                pid: r.status.pid,
                cleaner: None,
                next_retry: Instant::now(),
            },
        );
        self.ended.push((*id, r.status.clone()));
        self.finished.insert(*id, r.status);
        self.order.push_back(*id);
        while self.order.len() > FINISHED_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.finished.remove(&old);
            }
        }
        self.drain(id);
    }

    /// The jobs that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<(JobId, JobStatus)> {
        std::mem::take(&mut self.ended)
    }

    /// Tries to finish draining `id`: if nothing of the job is left, removes
    /// its cgroup and frees its uid; otherwise kills it again (at most every
    /// [`DRAIN_RETRY`]).
    pub fn drain(&mut self, id: &JobId) {
        let Some(d) = self.draining.get_mut(id) else {
            return;
        };
        if let Some(c) = &d.cleaner {
            let Some(outcome) = c.outcome() else {
                return;
            };
            if let Some(uid) = d.pool_uid {
                match outcome {
                    Ok(()) => self.uids.release(uid),
                    Err(why) => self.uids.quarantine(uid, &why),
                }
            }
            self.draining.remove(id);
            return;
        }
        let empty = match (&d.cgroup, &d.events) {
            (Some(_), Some(ev)) => !cgroup::populated(ev).unwrap_or(true),
            // No events file: removal itself tells (EBUSY while populated).
            (Some(cg), None) => cg.remove().is_ok(),
            (None, _) => match d.pool_uid {
                Some(uid) => {
                    if let Err(e) = uids::sweep(uid) {
                        job_error(id, format!("sweeping uid {uid} failed: {e}"));
                    }
                    !uids::has_processes(uid)
                }
                // A shared user cannot be swept without killing other jobs.
                None => true,
            },
        };
        if !empty {
            if Instant::now() >= d.next_retry {
                kill_job(d.cgroup.as_ref(), d.pid);
                d.next_retry = Instant::now() + DRAIN_RETRY;
            }
            return;
        }
        if let Some(cg) = &d.cgroup {
            if let Err(e) = cg.remove() {
                job_error(id, format!("removing its empty cgroup failed: {e}"));
                d.next_retry = Instant::now() + DRAIN_RETRY;
                return;
            }
            d.cgroup = None;
            d.events = None;
        }
        if let Some(uid) = d.pool_uid {
            // Nothing runs as the uid any more: what it left behind goes
            // before the uid is handed out again.
            match Cleaner::start(uid, &self.shared) {
                Ok(c) => d.cleaner = Some(c),
                Err(e) => {
                    job_error(id, format!("starting the uid {uid} cleaner: {e}"));
                    d.next_retry = Instant::now() + DRAIN_RETRY;
                }
            }
            return;
        }
        self.draining.remove(id);
    }

    /// Takes `uid` back through a drain and a cleanup before it is handed
    /// out: a start whose child failed before `execve` (it may have made
    /// its keyring), or a uid found in use at start (a dead helper's job
    /// still running as it, or its files in the host's shared
    /// directories). Without a cgroup the drain sweeps the uid's processes.
    pub fn reclaim(&mut self, uid: u32) {
        self.uids.take(uid);
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&uid.to_be_bytes());
        raw[4..12].copy_from_slice(&now_ms().to_be_bytes());
        let id = JobId(raw);
        self.draining.insert(
            id,
            Draining {
                cgroup: None,
                events: None,
                pool_uid: Some(uid),
                pid: 0,
                cleaner: None,
                next_retry: Instant::now(),
            },
        );
        self.drain(&id);
    }

    /// Cleans every uid of `range` that no job of ours holds and this
    /// helper has not seen cleaned, before its first use: a uid's keyrings
    /// and files in the shared directories outlive helpers, so a uid is
    /// handed out only after a cleanup that this helper saw succeed. Waits
    /// for the cleaners (bounded by [`CLEANUP_TIMEOUT`]) — at start, before
    /// the socket serves, and on reload only for uids new to the range. A
    /// uid whose cleanup fails is quarantined.
    fn clean_range(&mut self, range: &std::ops::RangeInclusive<u32>) {
        let mut cleaners = Vec::new();
        let free: Vec<u32> = range
            .clone()
            .filter(|u| !self.uids.taken(*u) && !self.uids.clean(*u))
            .collect();
        for uid in free {
            self.uids.take(uid);
            match Cleaner::start(uid, &self.shared) {
                Ok(c) => cleaners.push((uid, c)),
                Err(e) => self.uids.quarantine(uid, &format!("no cleaner: {e}")),
            }
        }
        while !cleaners.is_empty() {
            let mut fds: Vec<PollFd<'_>> = cleaners
                .iter()
                .map(|(_, c)| PollFd::new(c.pidfd.as_fd(), PollFlags::POLLIN))
                .collect();
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            drop(fds);
            cleaners.retain(|(uid, c)| match c.outcome() {
                None => true,
                Some(Ok(())) => {
                    self.uids.release(*uid);
                    false
                }
                Some(Err(why)) => {
                    self.uids.quarantine(*uid, &why);
                    false
                }
            });
        }
    }

    /// Retries every draining job whose retry time has come (jobs without
    /// an events file have nothing else to wake the loop).
    pub fn drain_due(&mut self) {
        let now = Instant::now();
        let due: Vec<JobId> = self
            .draining
            .iter()
            .filter(|(_, d)| match &d.cleaner {
                Some(c) => c.deadline <= now,
                None => d.next_retry <= now,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.drain(&id);
        }
    }

    /// At shutdown: kill everything, wait (bounded, by polling the shells'
    /// pidfds) for the shells to exit, and drain what can be drained.
    pub fn kill_all(&mut self, within: Duration) {
        for r in self.running.values() {
            Jobs::kill(r);
        }
        let until = Instant::now() + within;
        loop {
            let running: Vec<JobId> = self.running.keys().copied().collect();
            for id in running {
                self.reap(&id);
            }
            let draining: Vec<JobId> = self.draining.keys().copied().collect();
            for id in draining {
                self.drain(&id);
            }
            let left = until.saturating_duration_since(Instant::now());
            if (self.running.is_empty() && self.draining.is_empty()) || left.is_zero() {
                break;
            }
            let mut fds: Vec<PollFd<'_>> = self
                .pollables()
                .map(|(_, fd, flags)| PollFd::new(fd, flags))
                .collect();
            let wait = PollTimeout::try_from(left.min(DRAIN_RETRY));
            let _ = poll(&mut fds, wait.unwrap_or(PollTimeout::ZERO));
        }
    }
}

/// Logs a failure of `job`'s kill, sweep, cgroup removal or cleaner start
/// (each retried).
fn job_error(job: &JobId, error: String) {
    log::event(
        "job_error",
        &[("job", json!(job.to_hex())), ("error", json!(error))],
    );
}

fn kill_job(cgroup: Option<&JobCgroup>, pid: i32) {
    // pid 0 or 1 would name the helper's own process group or init.
    if cgroup.is_none() && pid <= 1 {
        return;
    }
    match cgroup {
        Some(cg) => {
            if let Err(e) = cg.kill() {
                if e.kind() != std::io::ErrorKind::NotFound {
                    log::event(
                        "job_error",
                        &[
                            ("job_pid", json!(pid)),
                            ("error", json!(format!("cgroup.kill failed: {e}"))),
                        ],
                    );
                }
            }
        }
        None => {
            let _ = killpg(nix::unistd::Pid::from_raw(pid), NixSignal::SIGKILL);
        }
    }
}

/// A `Spawn` request, as `Jobs::start` takes it.
pub struct Start<'a> {
    pub job: JobId,
    pub command: &'a str,
    pub timeout_ms: u64,
    pub key: &'a str,
    /// stdout and stderr, exactly.
    pub fds: Vec<OwnedFd>,
}

/// The limits a job started now gets under `run`, given the controllers
/// in force.
pub fn limits(run: &RunPolicy, cgroups: Option<&CgroupRoot>) -> JobLimits {
    let c = cgroups.map(CgroupRoot::controllers).unwrap_or_default();
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

/// How jobs are contained with `cgroups` (or without).
pub fn containment(cgroups: Option<&CgroupRoot>) -> Containment {
    cgroups.map_or(Containment::Pgid, |_| Containment::Cgroup)
}

/// `cpu.max` quota for the policy's `cpu_max` percent.
fn cpu_quota_us(run: &RunPolicy) -> u64 {
    run.cpu_max_percent
        .saturating_mul(CPU_PERIOD_US)
        .checked_div(100)
        .unwrap_or(CPU_PERIOD_US)
        .max(1000)
}

/// A fresh status for a job that just started.
pub fn started(
    pid: i32,
    start_time: u64,
    containment: Containment,
    uid: u32,
    limits: JobLimits,
) -> JobStatus {
    JobStatus {
        state: JobState::Running,
        pid,
        start_time,
        exit_code: None,
        signal: None,
        timed_out: false,
        started_ms: now_ms(),
        ended_ms: None,
        containment,
        output_limit: limits.rlimit_fsize,
        uid,
        limits,
        cpu_usec: None,
        memory_peak: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real child process standing in for a uid's cleaner; reaped by
    /// `Cleaner::outcome` through its pid, as the helper reaps its own.
    #[allow(clippy::zombie_processes)]
    fn cleaner(argv: &[&str], deadline: Instant) -> Cleaner {
        let child = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        Cleaner {
            pid,
            pidfd: crate::sys::pidfd_open(crate::ids::Pid::new(pid).expect("a pid"), 0)
                .expect("pidfd"),
            deadline,
        }
    }

    fn settle(c: &Cleaner) -> Result<(), String> {
        let t0 = Instant::now();
        loop {
            if let Some(o) = c.outcome() {
                return o;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "never settled");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn only_a_cleaner_that_exits_0_succeeds() {
        let later = Instant::now() + Duration::from_secs(30);
        assert_eq!(settle(&cleaner(&["true"], later)), Ok(()));
        let failed = settle(&cleaner(&["false"], later)).expect_err("exit 1");
        assert!(failed.contains("Exited"), "{failed}");
        // Killed by someone else: a failure too, never a success.
        let c = cleaner(&["sleep", "60"], later);
        crate::sys::pidfd_send_signal(c.pidfd.as_fd(), libc::SIGKILL).expect("kill");
        let killed = settle(&c).expect_err("killed");
        assert!(killed.contains("Signaled"), "{killed}");
    }

    #[test]
    fn a_uid_seen_cleaned_is_not_cleaned_again_on_reload() {
        let mut jobs = Jobs::default();
        jobs.uids.set_range(Some(200..=201));
        jobs.uids.take(200);
        jobs.uids.release(200);
        assert!(jobs.uids.clean(200) && !jobs.uids.clean(201));
        assert_eq!(jobs.uids.allocate(), Some(200));
        assert!(!jobs.uids.clean(200), "a uid in use is not clean");
    }

    #[test]
    fn a_hung_cleaner_is_killed_and_its_uid_quarantined_without_blocking_the_pool() {
        let mut jobs = Jobs::default();
        jobs.uids.set_range(Some(100..=101));
        assert_eq!(jobs.uids.allocate(), Some(100));
        let hung = cleaner(&["sleep", "60"], Instant::now());
        let pid = hung.pid;
        let id = JobId([1; 16]);
        jobs.draining.insert(
            id,
            Draining {
                cgroup: None,
                events: None,
                pool_uid: Some(100),
                pid: 0,
                cleaner: Some(hung),
                next_retry: Instant::now(),
            },
        );
        jobs.drain(&id);
        assert!(
            !jobs.draining.contains_key(&id),
            "a hung cleaner must not hold the drain"
        );
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "the hung cleaner was left running"
        );
        assert_eq!(jobs.uids.quarantined(), 1);
        // The pool goes on with the other uid, never the quarantined one.
        for _ in 0..3 {
            assert_eq!(jobs.uids.allocate(), Some(101));
            jobs.uids.release(101);
        }
    }
}
