//! Running, draining and finished jobs. The helper, not the gateway, owns a
//! job's deadline: a timed-out job is killed whether or not anyone is
//! connected. When a job's shell is reaped the rest of the job is killed and
//! the job *drains*: its cgroup is removed and its uid freed only once the
//! kernel reports the cgroup empty (`cgroup.events`), watched by the poll
//! loop — nothing here sleeps. Finished jobs are kept in a bounded table so
//! the gateway can still ask for their status after a reconnect.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::ops::RangeInclusive;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal as NixSignal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use protocol::{Containment, JobId, JobLimits, JobState, JobStatus, Response};
use serde_json::json;

use crate::cgroup::{self, CgroupRoot, JobCgroup, CPU_PERIOD_US};
use crate::home::{self, Cleaner, CLEANUP_TIMEOUT};
use crate::ids::JobUid;
use crate::log::{self, now_ms};
use crate::policy::{JobOf, RunAs, RunPolicy};
use crate::spawn::{spawn, SpawnPlan};
use crate::uids::{self, UidPool};

/// How many finished jobs are remembered.
pub const FINISHED_KEPT: usize = 1024;

/// How often a draining job is killed again and, without a cgroup, swept.
pub const DRAIN_RETRY: Duration = Duration::from_millis(200);

/// A job whose shell has not been reaped yet.
struct Running {
    pidfd: OwnedFd,
    deadline: Instant,
    cgroup: Option<JobCgroup>,
    status: JobStatus,
    timed_out: bool,
    /// Killed on the gateway's `Cancel`.
    cancelled: bool,
    /// The pool uid to free once the job is empty (`None`: shared user).
    pool_uid: Option<u32>,
    /// The API key that started the job and owns its processes.
    key: String,
}

/// A finished job whose processes may still be dying, or a uid being
/// taken back (`Jobs::reclaim`).
struct Draining {
    cgroup: Option<JobCgroup>,
    /// `cgroup.events`, polled for `POLLPRI`.
    events: Option<File>,
    pool_uid: Option<u32>,
    pid: i32,
    /// The uid's cleaner, once the job is empty; the uid is free when it
    /// has exited with status 0, and quarantined when it failed or hung.
    cleaner: Option<Cleaner>,
    next_retry: Instant,
}

impl Draining {
    /// The drain of job `id`'s `cgroup` (watched through its
    /// `cgroup.events`), its shell `pid`'s process group and `pool_uid`,
    /// due at once.
    fn new(id: &JobId, cgroup: Option<JobCgroup>, pool_uid: Option<u32>, pid: i32) -> Draining {
        let events = cgroup.as_ref().map(JobCgroup::open_events).and_then(|r| {
            r.map_err(|e| job_error(id, format!("cannot watch cgroup.events: {e}")))
                .ok()
        });
        Draining {
            cgroup,
            events,
            pool_uid,
            pid,
            cleaner: None,
            next_retry: Instant::now(),
        }
    }

    /// When the loop must look at it again: its cleaner's deadline, or its
    /// next retry.
    fn due(&self) -> Instant {
        let cleaner = self.cleaner.as_ref();
        cleaner.map_or(self.next_retry, |c| c.deadline)
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
    /// The last [`FINISHED_KEPT`] jobs that ended, oldest first.
    finished: VecDeque<(JobId, JobStatus)>,
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
    /// processes, then cleaned; every other one that this helper has not
    /// seen cleaned is cleaned now, before its first use. A uid's keyrings
    /// and files in the shared directories outlive helpers, so a uid is
    /// handed out only after a cleanup that this helper saw succeed; one
    /// whose cleanup fails is quarantined. Waits for these cleaners
    /// (bounded by [`CLEANUP_TIMEOUT`]) — at start, before the socket
    /// serves, and on reload only for uids new to the range. Uids still
    /// held by jobs stay taken until released.
    pub fn ready(&mut self, range: Option<RangeInclusive<u32>>, shared: Vec<PathBuf>) {
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
                self.reclaim(uid, None);
            }
        }
        let mut cleaning = Vec::new();
        for uid in range {
            if self.uids.taken(uid) || self.uids.clean(uid) {
                continue;
            }
            match Cleaner::start(uid, &self.shared) {
                Ok(c) => cleaning.push(self.reclaim(uid, Some(c))),
                Err(e) => self.uids.quarantine(uid, &format!("no cleaner: {e}")),
            }
        }
        self.settle(&cleaning, Instant::now() + CLEANUP_TIMEOUT);
    }

    /// The descriptors the loop polls for the jobs, with what each wakes.
    pub fn pollables(&self) -> impl Iterator<Item = (Wake, BorrowedFd<'_>, PollFlags)> {
        let running = self.running.iter();
        let running = running.map(|(id, r)| (Wake::Reap(*id), r.pidfd.as_fd(), PollFlags::POLLIN));
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
        self.status(id).map_or_else(
            || invalid(format!("no job {id}")),
            |s| Response::Job(Box::new(s)),
        )
    }

    pub fn status(&self, id: &JobId) -> Option<JobStatus> {
        self.running
            .get(id)
            .map(|r| r.status.clone())
            .or_else(|| Some(self.finished.iter().find(|(f, _)| f == id)?.1.clone()))
    }

    /// Time until the loop must look at jobs again: the nearest deadline,
    /// or a drain retry.
    pub fn next_wakeup(&self) -> Option<Duration> {
        let now = Instant::now();
        let deadlines = self.running.values().filter(|r| !r.timed_out);
        let due = deadlines
            .map(|r| r.deadline)
            .chain(self.draining.values().map(Draining::due));
        due.map(|t| t.saturating_duration_since(now)).min()
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
        let job = s.job;
        if s.timeout_ms == 0 || s.timeout_ms > run.max_timeout_ms {
            // In the API's units: the gateway passes this text on.
            let max = run.max_timeout_ms / 1000;
            return invalid(format!(
                "timeout_s must be between 1 and {max} s (the policy's max_timeout_s)"
            ));
        }
        if s.command.is_empty() || s.command.contains('\0') {
            return invalid("command is empty or contains NUL".into());
        }
        // A draining id may be one of a uid's reclaims, not the gateway's.
        if self.status(&job).is_some() || self.draining.contains_key(&job) {
            return invalid(format!("job {job} exists"));
        }
        if self.running.len() >= run.max_jobs {
            return Response::Busy;
        }
        let Ok(stdio) = <[OwnedFd; 2]>::try_from(s.fds) else {
            return invalid("spawn needs stdout and stderr descriptors".into());
        };
        let (id, pool_uid) = match &run.run_as {
            RunAs::Shared { uid, gid, .. } => (JobUid::new(uid.get(), *gid), None),
            // A uid someone else started a process as since it was
            // cleaned is passed over (it stays in the pool for later),
            // never handed to a job beside that process.
            RunAs::PerJob(_) => match self.uids.allocate(|u| !uids::runs_as(u)) {
                Some(u) => (JobUid::new(u, u), Some(u)),
                // Every uid is held by a running or draining job.
                None => return Response::Busy,
            },
        };
        let limits = limits(run, cgroups);
        // The cgroup is made only for an identity the job may take.
        let create = |id| {
            let cgroup = cgroups.map(|c| c.create(&job.to_hex(), &limits));
            Ok((id, cgroup.transpose()?))
        };
        let (id, cgroup) = match id.and_then(create) {
            Ok(made) => made,
            Err(e) => {
                if let Some(u) = pool_uid {
                    self.uids.release(u);
                }
                return failed(&e);
            }
        };
        let plan = SpawnPlan {
            command: s.command,
            run,
            id,
            rlimit_as: limits.rlimit_as,
            // A per-job uid gets a private home, which the child creates
            // itself once it runs as that uid (no CAP_CHOWN needed).
            own: pool_uid.map(|_| (home::path(&job.to_hex()), self.shared.as_slice())),
            stdio: &stdio,
            cgroup_procs: cgroup.as_ref().map(|c| c.procs_files()).unwrap_or_default(),
        };
        let pid = match spawn(&plan) {
            Ok(pid) => pid,
            Err(e) => {
                // The child failed before execve and was reaped: nothing
                // runs as the uid, the cgroup is empty. A home or keyring
                // it made goes when the uid is next cleaned; the uid stays
                // out of use until then.
                if let Some(cg) = &cgroup {
                    let _ = cg.remove();
                }
                if let Some(u) = pool_uid {
                    self.reclaim(u, None);
                }
                return failed(&e);
            }
        };
        let pidfd = match crate::sys::pidfd_open(pid, 0) {
            Ok(fd) => fd,
            Err(e) => {
                // Cannot happen for our own unreaped child; if it does, the
                // job is killed and its uid stays taken (never reused while
                // something of it might run).
                let _ = killpg(Pid::from_raw(pid.get()), NixSignal::SIGKILL);
                return failed(&e);
            }
        };
        let start_time = crate::proc::ProcInfo::read(pid.get()).map_or(0, |i| i.start_time.0);
        let status = JobStatus {
            state: JobState::Running,
            pid: pid.get(),
            start_time,
            exit_code: None,
            signal: None,
            timed_out: false,
            started_ms: now_ms(),
            ended_ms: None,
            containment: containment(cgroups),
            output_limit: limits.rlimit_fsize,
            uid: id.uid(),
            limits,
            cpu_usec: None,
            memory_peak: None,
        };
        let running = Running {
            pidfd,
            deadline: Instant::now() + Duration::from_millis(s.timeout_ms),
            cgroup,
            status: status.clone(),
            timed_out: false,
            cancelled: false,
            pool_uid,
            key: s.key.to_string(),
        };
        self.running.insert(job, running);
        Response::Job(Box::new(status))
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

    /// The gateway's `Cancel`: kills a running job and marks it so its end
    /// is recorded as `Cancelled`. A job that already ended is left as it
    /// is (cancel is idempotent).
    pub fn cancel(&mut self, id: &JobId) {
        if let Some(r) = self.running.get_mut(id) {
            r.cancelled |= !r.timed_out;
            kill_job(r.cgroup.as_ref(), r.status.pid);
        }
    }

    /// Kills every job whose deadline has passed.
    pub fn enforce_deadlines(&mut self) {
        let now = Instant::now();
        let due = self.running.iter_mut();
        for (id, r) in due.filter(|(_, r)| !r.timed_out && r.deadline <= now) {
            r.timed_out = true;
            log::event(
                "job_timeout",
                &[
                    ("job", json!(id.to_hex())),
                    ("job_pid", json!(r.status.pid)),
                ],
            );
            kill_job(r.cgroup.as_ref(), r.status.pid);
        }
    }

    /// Reaps the job if its shell has exited, and starts its drain.
    pub fn reap(&mut self, id: &JobId) {
        let Some(r) = self.running.get(id) else {
            return;
        };
        let (code, sig) = match waitpid(Pid::from_raw(r.status.pid), Some(WaitPidFlag::WNOHANG)) {
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
        kill_job(r.cgroup.as_ref(), r.status.pid);
        let s = &mut r.status;
        (s.exit_code, s.signal, s.timed_out) = (code, sig, r.timed_out);
        s.ended_ms = Some(now_ms());
        (s.cpu_usec, s.memory_peak) = r.cgroup.as_ref().map_or((None, None), JobCgroup::usage);
        s.state = match (r.cancelled, r.timed_out, sig) {
            (true, _, _) => JobState::Cancelled,
            (false, true, _) => JobState::TimedOut,
            (false, false, Some(_)) => JobState::Killed,
            (false, false, None) => JobState::Exited,
        };
        log::event(
            "job_ended",
            &[
                ("job", json!(id.to_hex())),
                ("job_pid", json!(s.pid)),
                ("job_uid", json!(s.uid)),
                ("job_state", json!(s.state.name())),
                ("exit_code", json!(code)),
                ("signal", json!(sig)),
            ],
        );
        let drain = Draining::new(id, r.cgroup, r.pool_uid, r.status.pid);
        self.draining.insert(*id, drain);
        self.ended.push((*id, r.status.clone()));
        self.finished.push_back((*id, r.status));
        if self.finished.len() > FINISHED_KEPT {
            self.finished.pop_front();
        }
        self.drain(id);
    }

    /// The jobs that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<(JobId, JobStatus)> {
        std::mem::take(&mut self.ended)
    }

    /// Tries to finish draining `id`: if nothing of the job is left, removes
    /// its cgroup and starts its uid's cleaner, whose exit frees or
    /// quarantines the uid; otherwise kills it again (at most every
    /// [`DRAIN_RETRY`]).
    pub fn drain(&mut self, id: &JobId) {
        let Some(d) = self.draining.get_mut(id) else {
            return;
        };
        if let Some(c) = &d.cleaner {
            match (c.outcome(), d.pool_uid) {
                (None, _) => return,
                (Some(Ok(())), Some(uid)) => self.uids.release(uid),
                (Some(Err(why)), Some(uid)) => self.uids.quarantine(uid, &why),
                (Some(_), None) => {}
            }
            self.draining.remove(id);
            return;
        }
        let empty = match (&d.cgroup, &d.events, d.pool_uid) {
            (Some(_), Some(ev), _) => !cgroup::populated(ev).unwrap_or(true),
            // No events file: removal itself tells (EBUSY while populated).
            (Some(cg), None, _) => cg.remove().is_ok(),
            (None, _, Some(uid)) => {
                if let Err(e) = JobUid::new(uid, uid).and_then(uids::sweep) {
                    job_error(id, format!("sweeping uid {uid} failed: {e}"));
                }
                !uids::has_processes(uid)
            }
            // A shared user cannot be swept without killing other jobs.
            (None, _, None) => true,
        };
        let now = Instant::now();
        if !empty {
            if now >= d.next_retry {
                kill_job(d.cgroup.as_ref(), d.pid);
                d.next_retry = now + DRAIN_RETRY;
            }
            return;
        }
        if let Some(cg) = &d.cgroup {
            if let Err(e) = cg.remove() {
                job_error(id, format!("removing its empty cgroup failed: {e}"));
                d.next_retry = now + DRAIN_RETRY;
                return;
            }
            (d.cgroup, d.events) = (None, None);
        }
        let Some(uid) = d.pool_uid else {
            self.draining.remove(id);
            return;
        };
        // Nothing runs as the uid any more: what it left behind goes
        // before the uid is handed out again.
        match Cleaner::start(uid, &self.shared) {
            Ok(c) => d.cleaner = Some(c),
            Err(e) => {
                job_error(id, format!("starting the uid {uid} cleaner: {e}"));
                d.next_retry = now + DRAIN_RETRY;
            }
        }
    }

    /// Takes `uid` back through a drain of its own, under an id made of
    /// the uid and the time, and returns that id: a start whose child
    /// failed before `execve` (it may have made its keyring), or a uid
    /// found in use at start (a dead helper's job still running as it, or
    /// its files in the host's shared directories). Without a cgroup the
    /// drain sweeps the uid's processes, then cleans the uid; given a
    /// `cleaner` already started, it only waits for that.
    fn reclaim(&mut self, uid: u32, cleaner: Option<Cleaner>) -> JobId {
        self.uids.take(uid);
        // The uid in bytes 0..4, the time in 4..12, big-endian.
        let id = JobId((u128::from(uid) << 96 | u128::from(now_ms()) << 32).to_be_bytes());
        let mut drain = Draining::new(&id, None, Some(uid), 0);
        drain.cleaner = cleaner;
        self.draining.insert(id, drain);
        self.drain(&id);
        id
    }

    /// Retries every draining job whose retry time has come (jobs without
    /// an events file have nothing else to wake the loop).
    pub fn drain_due(&mut self) {
        let now = Instant::now();
        let due = self.draining.iter().filter(|(_, d)| d.due() <= now);
        let due: Vec<JobId> = due.map(|(id, _)| *id).collect();
        for id in due {
            self.drain(&id);
        }
    }

    /// At shutdown: kill everything, wait (bounded, by polling the shells'
    /// pidfds) for the shells to exit, and drain what can be drained.
    pub fn kill_all(&mut self, within: Duration) {
        for r in self.running.values() {
            kill_job(r.cgroup.as_ref(), r.status.pid);
        }
        let all = self.running.keys().chain(self.draining.keys());
        let all: Vec<JobId> = all.copied().collect();
        self.settle(&all, Instant::now() + within);
    }

    /// Reaps or drains each of `ids` until none is left or `until` has
    /// passed (then once more), waiting in `poll` on what they wait on —
    /// never on the other jobs, whose wake-ups are the loop's.
    fn settle(&mut self, ids: &[JobId], until: Instant) {
        loop {
            let last = Instant::now() >= until;
            for id in ids {
                self.reap(id);
                self.drain(id);
            }
            let left = |id| self.running.contains_key(id) || self.draining.contains_key(id);
            if last || !ids.iter().any(left) {
                return;
            }
            let mut fds: Vec<PollFd<'_>> = self
                .pollables()
                .filter(|(w, ..)| matches!(w, Wake::Reap(id) | Wake::Drain(id) if ids.contains(id)))
                .map(|(_, fd, flags)| PollFd::new(fd, flags))
                .collect();
            let wait = until.saturating_duration_since(Instant::now());
            let wait = PollTimeout::try_from(wait.min(DRAIN_RETRY));
            let _ = poll(&mut fds, wait.unwrap_or(PollTimeout::ZERO));
        }
    }
}

/// `Failed` with `e`'s errno (`EIO` if it has none).
fn failed(e: &io::Error) -> Response {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    Response::Failed { errno }
}

fn invalid(what: String) -> Response {
    Response::Invalid { what }
}

/// Logs a failure of `job`'s kill, sweep, cgroup removal or cleaner start
/// (each retried).
fn job_error(job: &JobId, error: String) {
    let job = json!(job.to_hex());
    log::event("job_error", &[("job", job), ("error", json!(error))]);
}

/// Kills the whole job: its cgroup, or its process group.
fn kill_job(cgroup: Option<&JobCgroup>, pid: i32) {
    match cgroup.map(JobCgroup::kill) {
        Some(Err(e)) if e.kind() != io::ErrorKind::NotFound => {
            let error = json!(format!("cgroup.kill failed: {e}"));
            log::event("job_error", &[("job_pid", json!(pid)), ("error", error)]);
        }
        Some(_) => {}
        // pid 0 or 1 would name the helper's own process group or init.
        None if pid <= 1 => {}
        None => {
            let _ = killpg(Pid::from_raw(pid), NixSignal::SIGKILL);
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
    // `cpu.max` quota for the policy's percent of one CPU, at least 1 ms.
    let cpu_quota_us = (run.cpu_max_percent.saturating_mul(CPU_PERIOD_US) / 100).max(1000);
    JobLimits {
        cgroup_memory_max: c.memory.then_some(run.memory_max),
        cgroup_pids_max: c.pids.then_some(run.pids_max),
        cgroup_cpu_max_us: c.cpu.then_some(cpu_quota_us),
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
    fn a_spawn_under_a_draining_id_is_refused_and_the_drain_kept() {
        // A uid's reclaim drains under an id of the helper's making; a
        // gateway that sent it would replace the drain and hold the uid.
        let policy = "[run]\nuids = \"60600-60699\"\n";
        let policy = crate::policy::Policy::parse(policy, &Default::default()).expect("parses");
        let run = policy.run.expect("a [run] section");
        let mut jobs = Jobs::default();
        jobs.uids.set_range(Some(60600..=60699));
        let later = Instant::now() + Duration::from_secs(30);
        let id = jobs.reclaim(60600, Some(cleaner(&["sleep", "60"], later)));
        assert!(jobs.draining.contains_key(&id), "the reclaim drains");
        let start = Start {
            job: id,
            command: "true",
            timeout_ms: 1000,
            key: "k",
            fds: Vec::new(),
        };
        match jobs.start(start, &run, None) {
            Response::Invalid { what } => assert!(what.contains("exists"), "{what}"),
            other => panic!("a draining id was accepted: {other:?}"),
        }
        assert!(jobs.draining.contains_key(&id) && jobs.uids.taken(60600));
        assert_eq!(jobs.running_count(), 0);
        let c = jobs
            .draining
            .remove(&id)
            .and_then(|d| d.cleaner)
            .expect("kept");
        crate::sys::pidfd_send_signal(c.pidfd.as_fd(), libc::SIGKILL).expect("kill");
        assert!(settle(&c).is_err(), "killed");
    }

    #[test]
    fn a_uid_seen_cleaned_is_not_cleaned_again_on_reload() {
        let mut jobs = Jobs::default();
        jobs.uids.set_range(Some(200..=201));
        jobs.uids.take(200);
        jobs.uids.release(200);
        assert!(jobs.uids.clean(200) && !jobs.uids.clean(201));
        assert_eq!(jobs.uids.allocate(|_| true), Some(200));
        assert!(!jobs.uids.clean(200), "a uid in use is not clean");
    }

    #[test]
    fn a_hung_cleaner_is_killed_and_its_uid_quarantined_without_blocking_the_pool() {
        let mut jobs = Jobs::default();
        jobs.uids.set_range(Some(100..=101));
        assert_eq!(jobs.uids.allocate(|_| true), Some(100));
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
            assert_eq!(jobs.uids.allocate(|_| true), Some(101));
            jobs.uids.release(101);
        }
    }
}
