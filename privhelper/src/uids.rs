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

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::RangeInclusive;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{
    getgroups, getresgid, getresuid, setgroups, setresgid, setresuid, setuid, Gid, Pid, Uid,
};
use serde_json::json;

use crate::ids::JobUid;
use crate::sys;

/// The uids of the per-job range and which of them are taken.
#[derive(Debug, Default)]
pub struct UidPool {
    range: Option<RangeInclusive<u32>>,
    in_use: HashSet<u32>,
    /// Uids this helper has seen cleaned: free and in here means clean, so
    /// a reload need not clean them again.
    cleaned: HashSet<u32>,
    /// Uids whose cleanup failed or hung: never handed out again by this
    /// helper (they stay in `in_use`).
    quarantined: HashSet<u32>,
    next: u32,
}

impl UidPool {
    /// Uses `range` from now on (after a policy reload); uids still held by
    /// jobs stay taken until released.
    pub fn set_range(&mut self, range: Option<RangeInclusive<u32>>) {
        if let Some(r) = range.as_ref().filter(|r| !r.contains(&self.next)) {
            self.next = *r.start();
        }
        self.range = range;
    }

    /// The next uid, round robin, that no running or draining job holds
    /// and that is `usable`, or `None` when there is none.
    pub fn allocate(&mut self, usable: impl Fn(u32) -> bool) -> Option<u32> {
        let range = self.range.clone()?;
        let (first, last) = (*range.start(), *range.end());
        // Never outside the range, whatever `next` holds.
        let from = self.next.clamp(first, last);
        let uid = (from..=last)
            .chain(first..from)
            .find(|u| !self.in_use.contains(u) && usable(*u))?;
        self.in_use.insert(uid);
        self.next = if uid == last { first } else { uid + 1 };
        Some(uid)
    }

    /// Marks `uid` taken (a uid being reclaimed).
    pub fn take(&mut self, uid: u32) {
        self.in_use.insert(uid);
    }

    /// Whether `uid` is held by a job of ours (or quarantined).
    pub fn taken(&self, uid: u32) -> bool {
        self.in_use.contains(&uid)
    }

    /// Whether `uid` is free and was cleaned by this helper since its last
    /// use.
    pub fn clean(&self, uid: u32) -> bool {
        !self.taken(uid) && self.cleaned.contains(&uid)
    }

    /// Returns `uid` to the pool: call only once nothing runs as it and
    /// its cleanup succeeded.
    pub fn release(&mut self, uid: u32) {
        self.in_use.remove(&uid);
        self.cleaned.insert(uid);
    }

    /// Takes `uid` out of the pool for good (until the helper restarts):
    /// its cleanup failed or hung, so what its last job left may still be
    /// there. Logged; counted in [`UidPool::quarantined`].
    pub fn quarantine(&mut self, uid: u32, why: &str) {
        self.in_use.insert(uid);
        self.quarantined.insert(uid);
        crate::log::event(
            "uid_quarantined",
            &[("job_uid", json!(uid)), ("reason", json!(why))],
        );
    }

    /// How many uids are quarantined.
    pub fn quarantined(&self) -> usize {
        self.quarantined.len()
    }
}

/// Where every helper of the host locks the job uids it holds.
pub const LOCK_DIR: &str = "/run/monitoreo-uids";

/// The helper's hold on its job uids against every other helper of the
/// host: one file, `LOCK_DIR/uids`, in which a helper holds an
/// open-file-description write lock on byte `uid` for each uid of its
/// range — one descriptor and one `fcntl` for a whole range, released by
/// the kernel when the helper exits, however it exits. Two instances with
/// overlapping ranges therefore cannot both run.
pub struct UidLocks {
    file: File,
}

impl UidLocks {
    /// Opens the lock file, creating its directory (0700) if need be. The
    /// directory must be this user's and writable by nobody else: anyone
    /// who could plant or hold a lock there could stop every helper.
    pub fn open(dir: &Path) -> Result<UidLocks, String> {
        let at = |e: io::Error| format!("uid locks {}: {e}", dir.display());
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(at(e)),
            _ => {}
        }
        let m = fs::symlink_metadata(dir).map_err(at)?;
        let (owner, mode) = (m.uid(), m.mode() & 0o7777);
        if !m.is_dir() || owner != nix::unistd::geteuid().as_raw() || mode & 0o022 != 0 {
            let dir = dir.display();
            return Err(format!(
                "uid locks {dir}: owned by uid {owner} with mode {mode:o}; must be a directory \
                 of ours, writable by nobody else"
            ));
        }
        Ok(UidLocks {
            file: lock_file(dir, true).map_err(at)?,
        })
    }

    /// Whether another live helper holds a uid of `range`, without taking
    /// anything (`--check`): a missing lock file means none does.
    pub fn probe(dir: &Path, range: &RangeInclusive<u32>) -> Result<(), String> {
        match lock_file(dir, false) {
            Ok(file) => UidLocks { file }.held_by_another(range, false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("uid locks {}: {e}", dir.display())),
        }
    }

    /// Locks every uid of `range`; when another helper holds one, says
    /// which of its uids overlap.
    pub fn take(&mut self, range: &RangeInclusive<u32>) -> Result<(), String> {
        self.held_by_another(range, true)
    }

    /// Takes (`lock`) or asks about the lock on byte `uid` for each uid of
    /// `range`; refused, asks who holds it to name the overlap.
    fn held_by_another(&self, range: &RangeInclusive<u32>, lock: bool) -> Result<(), String> {
        let mut l = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: libc::off_t::from(*range.start()),
            l_len: libc::off_t::from(range.end() - range.start()) + 1,
            // Open-file-description locks require 0 here.
            l_pid: 0,
        };
        if lock {
            match fcntl(&self.file, FcntlArg::F_OFD_SETLK(&l)) {
                Ok(_) => return Ok(()),
                Err(Errno::EAGAIN | Errno::EACCES) => {}
                Err(e) => return Err(format!("uid locks: {e}")),
            }
        }
        match fcntl(&self.file, FcntlArg::F_OFD_GETLK(&mut l)) {
            Err(e) if !lock => return Err(format!("uid locks: {e}")),
            Ok(_) if !lock && i32::from(l.l_type) == libc::F_UNLCK => return Ok(()),
            _ => {}
        }
        let (first, last) = (range.start(), range.end());
        let (held, held_last) = (l.l_start, l.l_start + l.l_len.max(1) - 1);
        Err(format!(
            "job uids {first}-{last} overlap uids {held}-{held_last} that another running helper \
             holds (locked in {LOCK_DIR}/uids); give each instance a [run] uids range of its own"
        ))
    }
}

/// The lock file `uids` in `dir`, never through a symbolic link: opened
/// to read, or (`create`) to lock, and then made 0600 if absent.
fn lock_file(dir: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join("uids"))
}

/// Job uids of `range` that a process on the host runs as (a dead
/// helper's job), each with the reason, for the log.
pub fn in_use_on_host(range: &RangeInclusive<u32>) -> Vec<(u32, String)> {
    let found = process_uids().filter(|(_, uid)| range.contains(uid));
    let found = found.map(|(pid, uid)| (uid, format!("process {pid} runs as it")));
    found.collect::<BTreeMap<_, _>>().into_iter().collect()
}

/// Becomes `uid` and `gid` for good, in a forked child: no supplementary
/// groups, the real, effective and saved ids all set, then checked, and a
/// check that root cannot be regained. The helper's one privilege drop:
/// jobs, cleaners and sweepers all go through it. Never to uid or gid 0
/// (no `JobUid` is root's). Not dumpable from then on, whatever
/// `fs.suid_dumpable` says: until `execve` (which makes the command
/// dumpable again) the child still holds the helper's descriptors and
/// memory, which another process of the uid must not reach through
/// `ptrace` or `pidfd_getfd`.
pub fn become_uid(id: JobUid) -> io::Result<()> {
    let denied = || io::Error::from_raw_os_error(libc::EPERM);
    let (u, g) = (Uid::from_raw(id.uid()), Gid::from_raw(id.gid()));
    setgroups(&[]).map_err(io::Error::from)?;
    setresgid(g, g, g).map_err(io::Error::from)?;
    setresuid(u, u, u).map_err(io::Error::from)?;
    nix::sys::prctl::set_dumpable(false)?;
    let ids = getresuid().map_err(io::Error::from)?;
    let gids = getresgid().map_err(io::Error::from)?;
    if [ids.real, ids.effective, ids.saved] != [u; 3]
        || [gids.real, gids.effective, gids.saved] != [g; 3]
        || !getgroups().is_ok_and(|v| v.is_empty())
        || setuid(Uid::from_raw(0)).is_ok()
    {
        return Err(denied());
    }
    Ok(())
}

/// Forks a child that becomes `uid` for good (`become_uid`) and exits 0
/// if `work` then returns true, 1 otherwise (at once, if it could not
/// become `uid`); returns its pid and a pidfd that becomes readable when it
/// is done. The parent reaps it. The cleaners and sweeps of a uid run so.
pub fn fork_as(id: JobUid, work: impl FnOnce() -> bool) -> io::Result<(i32, OwnedFd)> {
    let Some(pid) = sys::fork()? else {
        let ok = become_uid(id).is_ok() && work();
        sys::exit_child(if ok { 0 } else { 1 });
    };
    let pidfd = sys::pidfd_open(pid, 0).inspect_err(|_| {
        let _ = waitpid(Pid::from_raw(pid.get()), None);
    })?;
    Ok((pid.get(), pidfd))
}

/// Kills every process whose real or saved uid is `uid`: a forked child
/// takes that uid and calls `kill(-1, SIGKILL)`, which reaches exactly the
/// processes a user may signal — its own. Used without cgroup containment,
/// where a job that called `setsid` left its process group, and for a uid
/// a dead helper's job still runs as. Never as root (that would be every
/// process on the host): `fork_as` runs it only once the child is `uid`.
pub fn sweep(id: JobUid) -> io::Result<()> {
    let (pid, fd) = fork_as(id, || kill(Pid::from_raw(-1), Signal::SIGKILL).is_ok())?;
    // A process of the uid may stop the sweeper before it is killed: the
    // loop never waits on it for more than a moment (the drain retries).
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    if !matches!(poll(&mut fds, PollTimeout::from(500u16)), Ok(1)) {
        let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
    }
    waitpid(Pid::from_raw(pid), None).map_err(io::Error::from)?;
    Ok(())
}

/// Whether a process runs as `uid`: any of its real, effective, saved or
/// file-system uids (`/proc/PID/status`) is `uid`. The owner of
/// `/proc/PID` alone would miss a process of `uid` running a setuid-root
/// program, and on some kernels one that made itself not dumpable.
pub fn runs_as(uid: u32) -> bool {
    processes().any(|(_, e)| {
        let status = fs::read_to_string(e.path().join("status")).unwrap_or_default();
        let ids = status.lines().find_map(|l| l.strip_prefix("Uid:"));
        ids.is_some_and(|ids| ids.split_whitespace().any(|u| u.parse() == Ok(uid)))
    })
}

/// Whether any process still runs with real uid `uid` (a `/proc` scan).
pub fn has_processes(uid: u32) -> bool {
    process_uids().any(|(_, u)| u == uid)
}

/// (pid, real uid) of every process, from `/proc/PID/status`.
fn process_uids() -> impl Iterator<Item = (u32, u32)> {
    processes().filter_map(|(pid, e)| {
        let status = fs::read_to_string(e.path().join("status")).ok()?;
        Some((
            pid,
            crate::proc::status_field(&status, "Uid:")?.parse().ok()?,
        ))
    })
}

/// Every `/proc/PID` directory, with its pid.
fn processes() -> impl Iterator<Item = (u32, fs::DirEntry)> {
    let entries = fs::read_dir("/proc").into_iter().flatten().flatten();
    entries.filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs root"]
    fn become_uid_drops_every_id_and_cannot_regain_root() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root: run it as root (scripts/test does)"
        );
        // With `fs.suid_dumpable = 1` the kernel leaves a process that
        // changed its uids dumpable: the host setting become_uid must not
        // depend on. Set for the test only, restored at its end.
        let dumpable = "/proc/sys/fs/suid_dumpable";
        let before = fs::read_to_string(dumpable).expect("suid_dumpable");
        struct Restore<'a>(&'a str, String);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                fs::write(self.0, &self.1).expect("restore suid_dumpable");
            }
        }
        let _restore = Restore(dumpable, before);
        fs::write(dumpable, "1").expect("suid_dumpable = 1");
        // In a child: the test process keeps its root.
        let pid = sys::fork_in_test().expect("fork");
        if pid == 0 {
            let ok = nix::sys::prctl::set_dumpable(true).is_ok()
                && become_uid(JobUid::new(65534, 65533).expect("not root")).is_ok()
                && getresuid().is_ok_and(|r| r.saved.as_raw() == 65534)
                && getresgid().is_ok_and(|r| r.saved.as_raw() == 65533)
                && nix::sys::prctl::get_dumpable() == Ok(false)
                && setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_err();
            sys::exit_child(if ok { 0 } else { 1 });
        }
        let st = waitpid(Pid::from_raw(pid), None).expect("wait");
        assert_eq!(
            st,
            nix::sys::wait::WaitStatus::Exited(Pid::from_raw(pid), 0)
        );
    }

    #[test]
    fn uids_are_unique_round_robin_and_bounded() {
        let mut p = UidPool::default();
        assert_eq!(p.allocate(|_| true), None, "no range, no uid");
        p.set_range(Some(100..=102));
        assert_eq!(p.allocate(|_| true), Some(100));
        assert_eq!(p.allocate(|_| true), Some(101));
        assert_eq!(p.allocate(|_| true), Some(102));
        assert_eq!(p.allocate(|_| true), None, "all taken");
        p.release(101);
        assert_eq!(p.allocate(|_| true), Some(101));
        p.release(100);
        p.release(102);
        // Round robin: the uid after the last one handed out comes first.
        assert_eq!(p.allocate(|_| true), Some(102));
        assert_eq!(p.allocate(|_| true), Some(100));
        assert_eq!(p.in_use.len(), 3);
    }

    #[test]
    fn a_new_range_keeps_taken_uids_taken() {
        let mut p = UidPool::default();
        p.set_range(Some(10..=11));
        assert_eq!(p.allocate(|_| true), Some(10));
        p.set_range(Some(10..=12));
        assert_eq!(p.allocate(|_| true), Some(11));
        assert_eq!(p.allocate(|_| true), Some(12));
        assert_eq!(p.allocate(|_| true), None);
    }
}
