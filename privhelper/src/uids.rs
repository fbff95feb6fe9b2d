//! Job identities: one uid (and the gid of the same number) per running
//! job, from the policy's `[run] uids` range, in the spirit of systemd's
//! `DynamicUser`. Two jobs never hold the same uid at once, so one job can
//! neither trace, read, signal nor renice another (the kernel's own uid
//! checks do the work), and `RLIMIT_NPROC` bounds each job by itself.
//!
//! A uid returns to the pool only when nothing of its job is left: its
//! cgroup is empty, or — without cgroup containment — a sweep that kills
//! every process of the uid found none left. Uids are handed out round
//! robin, so a freed uid is the last to be reused.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::ops::RangeInclusive;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Pid, Uid};

use crate::sys;

/// The uids of the per-job range and which of them are taken.
#[derive(Debug, Default)]
pub struct UidPool {
    range: Option<RangeInclusive<u32>>,
    in_use: HashSet<u32>,
    /// Uids whose cleanup failed or hung: never handed out again by this
    /// helper (they stay in `in_use`).
    quarantined: HashSet<u32>,
    next: u32,
}

impl UidPool {
    /// Uses `range` from now on (after a policy reload); uids still held by
    /// jobs stay taken until released.
    pub fn set_range(&mut self, range: Option<RangeInclusive<u32>>) {
        if let Some(r) = &range {
            if !r.contains(&self.next) {
                self.next = *r.start();
            }
        }
        self.range = range;
    }

    /// A uid no running or draining job holds, or `None` when all are.
    pub fn allocate(&mut self) -> Option<u32> {
        let range = self.range.clone()?;
        let size = u64::from(range.end() - range.start()) + 1;
        let mut candidate = self.next;
        for _ in 0..size {
            if !range.contains(&candidate) {
                candidate = *range.start();
            }
            let this = candidate;
            candidate = if this == *range.end() {
                *range.start()
            } else {
                this + 1
            };
            if self.in_use.insert(this) {
                self.next = candidate;
                return Some(this);
            }
        }
        None
    }

    /// Returns `uid` to the pool: call only once nothing runs as it and
    /// its cleanup succeeded.
    pub fn release(&mut self, uid: u32) {
        self.in_use.remove(&uid);
    }

    /// Takes `uid` out of the pool for good (until the helper restarts):
    /// its cleanup failed or hung, so what its last job left may still be
    /// there. Logged; counted in [`UidPool::quarantined`].
    pub fn quarantine(&mut self, uid: u32, why: &str) {
        self.in_use.insert(uid);
        self.quarantined.insert(uid);
        crate::log::event(
            "uid_quarantined",
            &[
                ("job_uid", serde_json::json!(uid)),
                ("reason", serde_json::json!(why)),
            ],
        );
    }

    /// How many uids are quarantined.
    pub fn quarantined(&self) -> usize {
        self.quarantined.len()
    }
}

/// Kills every process whose real or saved uid is `uid`: a forked child
/// takes that uid and calls `kill(-1, SIGKILL)`, which reaches exactly the
/// processes a user may signal — its own. Used without cgroup containment,
/// where a job that called `setsid` left its process group.
pub fn sweep(uid: u32) -> io::Result<()> {
    let pid = sys::fork()?;
    if pid == 0 {
        let id = Uid::from_raw(uid);
        let gid = Gid::from_raw(uid);
        let ok = setgroups(&[]).is_ok()
            && setresgid(gid, gid, gid).is_ok()
            && setresuid(id, id, id).is_ok();
        // Never kill(-1) as root: that would be every process on the host.
        if ok && !nix::unistd::geteuid().is_root() {
            let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
            sys::exit_child(0);
        }
        sys::exit_child(1);
    }
    waitpid(Pid::from_raw(pid), None).map_err(io::Error::from)?;
    Ok(())
}

/// Whether any process still runs with real uid `uid` (a `/proc` scan).
pub fn has_processes(uid: u32) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .any(|e| {
            fs::read_to_string(e.path().join("status")).is_ok_and(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|u| u.parse::<u32>().ok())
                    == Some(uid)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_unique_round_robin_and_bounded() {
        let mut p = UidPool::default();
        assert_eq!(p.allocate(), None, "no range, no uid");
        p.set_range(Some(100..=102));
        assert_eq!(p.allocate(), Some(100));
        assert_eq!(p.allocate(), Some(101));
        assert_eq!(p.allocate(), Some(102));
        assert_eq!(p.allocate(), None, "all taken");
        p.release(101);
        assert_eq!(p.allocate(), Some(101));
        p.release(100);
        p.release(102);
        // Round robin: the uid after the last one handed out comes first.
        assert_eq!(p.allocate(), Some(102));
        assert_eq!(p.allocate(), Some(100));
        assert_eq!(p.in_use.len(), 3);
    }

    #[test]
    fn a_new_range_keeps_taken_uids_taken() {
        let mut p = UidPool::default();
        p.set_range(Some(10..=11));
        assert_eq!(p.allocate(), Some(10));
        p.set_range(Some(10..=12));
        assert_eq!(p.allocate(), Some(11));
        assert_eq!(p.allocate(), Some(12));
        assert_eq!(p.allocate(), None);
    }
}
