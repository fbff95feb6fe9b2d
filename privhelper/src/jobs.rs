//! Running, draining and finished jobs. The helper, not the gateway, owns a
//! job's deadline: a timed-out job is killed whether or not anyone is
//! connected. When a job's shell is reaped the rest of the job is killed and
//! the job *drains*: its cgroup is removed and its uid freed only once the
//! kernel reports the cgroup empty (`cgroup.events`), watched by the poll
//! loop — nothing here sleeps. Finished jobs are kept in a bounded table so
//! the gateway can still ask for their status after a reconnect.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal as NixSignal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use protocol::{Containment, JobId, JobLimits, JobState, JobStatus};

use crate::cgroup::{self, JobCgroup};
use crate::home;
use crate::log;
use crate::policy::JobOf;
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
            let _ = crate::sys::pidfd_send_signal(self.pidfd.as_raw_fd(), libc::SIGKILL);
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
    pub running: HashMap<JobId, Running>,
    pub draining: HashMap<JobId, Draining>,
    pub uids: UidPool,
    /// The host's world-writable directories (`ns::discover`), which a
    /// uid's cleaner sweeps.
    pub shared: Vec<PathBuf>,
    finished: HashMap<JobId, JobStatus>,
    order: VecDeque<JobId>,
    /// Ended since the last [`Jobs::take_ended`], for event subscribers.
    ended: Vec<(JobId, JobStatus)>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Jobs {
    pub fn known(&self, id: &JobId) -> bool {
        self.running.contains_key(id) || self.finished.contains_key(id)
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

    /// Reaps the job if its shell has exited; returns whether it finished.
    pub fn reap(&mut self, id: &JobId) -> bool {
        let Some(r) = self.running.get(id) else {
            return false;
        };
        let pid = nix::unistd::Pid::from_raw(r.status.pid);
        let (code, sig) = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => (Some(c), None),
            Ok(WaitStatus::Signaled(_, s, _)) => (None, Some(s as i32)),
            Ok(_) => return false,
            Err(_) => (None, None),
        };
        let Some(mut r) = self.running.remove(id) else {
            return false;
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
                log::event(
                    "job_error",
                    &[
                        ("job", json!(id.to_hex())),
                        ("error", json!(format!("cannot watch cgroup.events: {e}"))),
                    ],
                );
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
        true
    }

    /// The jobs that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<(JobId, JobStatus)> {
        std::mem::take(&mut self.ended)
    }

    /// Tries to finish draining `id`: if nothing of the job is left, removes
    /// its cgroup and frees its uid; otherwise kills it again (at most every
    /// [`DRAIN_RETRY`]). Returns whether the job is gone.
    pub fn drain(&mut self, id: &JobId) -> bool {
        let Some(d) = self.draining.get_mut(id) else {
            return true;
        };
        if let Some(c) = &d.cleaner {
            let Some(outcome) = c.outcome() else {
                return false;
            };
            if let Some(uid) = d.pool_uid {
                match outcome {
                    Ok(()) => self.uids.release(uid),
                    Err(why) => self.uids.quarantine(uid, &why),
                }
            }
            self.draining.remove(id);
            return true;
        }
        let empty = match (&d.cgroup, &d.events) {
            (Some(_), Some(ev)) => !cgroup::populated(ev).unwrap_or(true),
            // No events file: removal itself tells (EBUSY while populated).
            (Some(cg), None) => cg.remove().is_ok(),
            (None, _) => match d.pool_uid {
                Some(uid) => {
                    if let Err(e) = uids::sweep(uid) {
                        log::event(
                            "job_error",
                            &[
                                ("job", json!(id.to_hex())),
                                ("error", json!(format!("sweeping uid {uid} failed: {e}"))),
                            ],
                        );
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
            return false;
        }
        if let Some(cg) = &d.cgroup {
            if let Err(e) = cg.remove() {
                log::event(
                    "job_error",
                    &[
                        ("job", json!(id.to_hex())),
                        (
                            "error",
                            json!(format!("removing its empty cgroup failed: {e}")),
                        ),
                    ],
                );
                d.next_retry = Instant::now() + DRAIN_RETRY;
                return false;
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
                    log::event(
                        "job_error",
                        &[
                            ("job", json!(id.to_hex())),
                            (
                                "error",
                                json!(format!("starting the uid {uid} cleaner: {e}")),
                            ),
                        ],
                    );
                    d.next_retry = Instant::now() + DRAIN_RETRY;
                }
            }
            return false;
        }
        self.draining.remove(id);
        true
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

    /// Cleans every uid of `range` that no job of ours holds, before its
    /// first use: a uid's keyrings and files in the shared directories
    /// outlive helpers, so a uid is handed out only after a cleanup that
    /// this helper saw succeed. Waits for the cleaners (bounded by
    /// [`CLEANUP_TIMEOUT`]) — called before the socket serves, at start
    /// and for a new range on reload. A uid whose cleanup fails is
    /// quarantined.
    pub fn clean_range(&mut self, range: &std::ops::RangeInclusive<u32>) {
        let mut cleaners = Vec::new();
        let free: Vec<u32> = range.clone().filter(|u| !self.uids.taken(*u)).collect();
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
        while !self.running.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let ids: Vec<JobId> = self.running.keys().copied().collect();
            let mut fds: Vec<PollFd<'_>> = self
                .running
                .values()
                .map(|r| PollFd::new(r.pidfd.as_fd(), PollFlags::POLLIN))
                .collect();
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            if poll(&mut fds, PollTimeout::from(ms)).is_err() {
                break;
            }
            drop(fds);
            for id in ids {
                self.reap(&id);
            }
        }
        // Then let the killed cgroups empty (bounded), so that a stopped
        // helper leaves no job cgroup behind.
        loop {
            let ids: Vec<JobId> = self.draining.keys().copied().collect();
            for id in ids {
                self.drain(&id);
            }
            let left = until.saturating_duration_since(Instant::now());
            if self.draining.is_empty() || left.is_zero() {
                break;
            }
            let mut fds: Vec<PollFd<'_>> = self
                .draining
                .values()
                .filter_map(|d| match (&d.cleaner, &d.events) {
                    (Some(c), _) => Some(PollFd::new(c.pidfd.as_fd(), PollFlags::POLLIN)),
                    (None, Some(f)) => Some(PollFd::new(f.as_fd(), PollFlags::POLLPRI)),
                    (None, None) => None,
                })
                .collect();
            let ms = left.min(DRAIN_RETRY).as_millis().max(1);
            let _ = poll(
                &mut fds,
                PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX)),
            );
        }
    }
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
            pidfd: crate::sys::pidfd_open(pid, 0).expect("pidfd"),
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
        crate::sys::pidfd_send_signal(c.pidfd.as_raw_fd(), libc::SIGKILL).expect("kill");
        let killed = settle(&c).expect_err("killed");
        assert!(killed.contains("Signaled"), "{killed}");
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
        assert!(jobs.drain(&id), "a hung cleaner must not hold the drain");
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
