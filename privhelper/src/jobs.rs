//! Running and finished jobs. The helper, not the gateway, owns a job's
//! deadline: a timed-out job is killed whether or not anyone is connected.
//! Finished jobs are kept in a bounded table so the gateway can still ask
//! for their status after a reconnect.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{killpg, Signal as NixSignal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use protocol::{Containment, JobId, JobState, JobStatus};

use crate::cgroup::JobCgroup;

/// How many finished jobs are remembered.
pub const FINISHED_KEPT: usize = 1024;

/// A job whose shell has not been reaped yet.
pub struct Running {
    pub pidfd: OwnedFd,
    pub deadline: Instant,
    pub cgroup: Option<JobCgroup>,
    pub status: JobStatus,
    pub timed_out: bool,
}

/// All jobs.
#[derive(Default)]
pub struct Jobs {
    pub running: HashMap<JobId, Running>,
    finished: HashMap<JobId, JobStatus>,
    order: VecDeque<JobId>,
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

    /// Time until the nearest deadline (for the poll timeout).
    pub fn next_deadline(&self) -> Option<Duration> {
        let now = Instant::now();
        self.running
            .values()
            .filter(|r| !r.timed_out)
            .map(|r| r.deadline.saturating_duration_since(now))
            .min()
    }

    /// Kills the whole job: its cgroup, or its process group.
    pub fn kill(r: &Running) {
        match &r.cgroup {
            Some(cg) => {
                if let Err(e) = cg.kill() {
                    eprintln!("job {}: cgroup.kill failed: {e}", r.status.pid);
                }
            }
            None => {
                let _ = killpg(nix::unistd::Pid::from_raw(r.status.pid), NixSignal::SIGKILL);
            }
        }
    }

    /// Kills every job whose deadline has passed.
    pub fn enforce_deadlines(&mut self) {
        let now = Instant::now();
        for (id, r) in self.running.iter_mut() {
            if !r.timed_out && r.deadline <= now {
                r.timed_out = true;
                eprintln!("job {id}: timeout reached, killing pid {}", r.status.pid);
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
        // A job ends with its shell: whatever it left behind is killed.
        Jobs::kill(&r);
        if let Some(cg) = &r.cgroup {
            if let Err(e) = cg.destroy() {
                eprintln!("job {id}: removing its cgroup failed: {e}");
            }
        }
        r.status.exit_code = code;
        r.status.signal = sig;
        r.status.timed_out = r.timed_out;
        r.status.ended_ms = Some(now_ms());
        r.status.state = if r.timed_out {
            JobState::TimedOut
        } else if sig.is_some() {
            JobState::Killed
        } else {
            JobState::Exited
        };
        eprintln!(
            "job {id}: pid {} ended: {} exit_code={:?} signal={:?}",
            r.status.pid,
            r.status.state.name(),
            code,
            sig
        );
        self.finished.insert(*id, r.status);
        self.order.push_back(*id);
        while self.order.len() > FINISHED_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.finished.remove(&old);
            }
        }
        true
    }

    /// At shutdown: kill everything still running.
    pub fn kill_all(&mut self) {
        let ids: Vec<JobId> = self.running.keys().copied().collect();
        for id in ids {
            if let Some(r) = self.running.get(&id) {
                Jobs::kill(r);
            }
            for _ in 0..100 {
                if self.reap(&id) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A fresh status for a job that just started.
pub fn started(pid: i32, start_time: u64, containment: Containment, limit: u64) -> JobStatus {
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
        output_limit: limit,
    }
}
