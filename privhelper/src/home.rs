//! What a job uid leaves that outlives its job, and the cleaner that
//! removes it before the uid is handed out again.
//!
//! A job with a uid of its own gets `HOME` = `TMPDIR` = a fresh directory
//! `/tmp/monitoreo-<helper pid>-job-<id>` (0700) inside its private `/tmp`
//! (`ns`), which the child creates once it runs as the job's uid. That
//! directory, and everything else the job wrote or created, dies with the
//! job's namespaces. What does not: the uid's keyrings, and files a job of
//! an older helper left in the host's world-writable directories. When the
//! job has drained, a cleaner process running as that uid removes both;
//! only when it exits 0 is the uid handed out again (`jobs`). The helper
//! itself needs neither CAP_CHOWN nor CAP_FOWNER for any of it.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::sys;

/// The private home of a job, inside its own `/tmp`.
pub fn path(job_hex: &str) -> PathBuf {
    Path::new("/tmp").join(format!("monitoreo-{}-job-{job_hex}", std::process::id()))
}

/// How long a uid's cleaner may take before the uid is quarantined.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A uid's cleaner: its pid, a pidfd the loop polls, and when it is given
/// up on.
pub struct Cleaner {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub deadline: Instant,
}

impl Cleaner {
    /// Starts the cleaner of a uid whose job has drained: a child that
    /// takes the uid (so it needs no privilege over what it removes and can
    /// touch nothing else), clears the uid's keyrings and removes every
    /// top-level entry the uid owns in the host's world-writable
    /// directories `shared`, and exits 0 only when all of it is gone.
    ///
    /// A job's files and IPC objects die with its namespaces (`ns`); the
    /// keyrings of a uid outlive every process (the kernel keeps a uid's
    /// user keyring and persistent keyring), and the sweep of `shared`
    /// catches what a job of an older helper without namespaces left.
    pub fn start(uid: u32, shared: &[PathBuf]) -> io::Result<Cleaner> {
        let id = crate::ids::JobUid::new(uid, uid)?;
        let (pid, pidfd) = crate::uids::fork_as(id, || clear_keyrings() && sweep(uid, shared))?;
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
    pub fn outcome(&self) -> Option<Result<(), String>> {
        let hung = Instant::now() >= self.deadline;
        if crate::proc::alive(&self.pidfd) && !hung {
            return None;
        }
        if hung {
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        }
        Some(match (hung, waitpid(Pid::from_raw(self.pid), None)) {
            (true, _) => Err(format!("the cleaner took longer than {CLEANUP_TIMEOUT:?}")),
            (false, Ok(WaitStatus::Exited(_, 0))) => Ok(()),
            (false, other) => Err(format!("the cleaner ended with {other:?}")),
        })
    }
}

/// Empties the caller's user, user-session and persistent keyrings and
/// checks that they read back empty. A kernel without keys (`ENOSYS`) or
/// without persistent keyrings (`EOPNOTSUPP`) has nothing to clear.
fn clear_keyrings() -> bool {
    if !sys::keyrings_usable() {
        return true;
    }
    let absent = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EOPNOTSUPP));
    let persistent = match sys::keyctl(
        sys::KEYCTL_GET_PERSISTENT,
        -1,
        sys::KEY_SPEC_PROCESS_KEYRING,
    ) {
        Ok(id) => Some(id),
        Err(e) if absent(&e) => None,
        Err(_) => return false,
    };
    let rings = [
        sys::KEY_SPEC_USER_KEYRING,
        sys::KEY_SPEC_USER_SESSION_KEYRING,
    ];
    rings.into_iter().chain(persistent).all(|ring| {
        match sys::keyctl(sys::KEYCTL_CLEAR, ring, 0) {
            Err(e) if absent(&e) => true,
            Err(_) => false,
            // A zero-length read returns the keyring's size: 0 is empty.
            Ok(_) => sys::keyctl(sys::KEYCTL_READ, ring, 0).is_ok_and(|n| n == 0),
        }
    })
}

/// Whether `name` is `monitoreo-<pid>-job-*` (a job's home or cgroup) of
/// a helper whose pid no longer runs.
pub fn left_by_a_gone_helper(name: &std::ffi::OsStr) -> bool {
    let owner = name.to_str().and_then(|n| n.strip_prefix("monitoreo-"));
    let owner = owner.and_then(|n| n.split_once("-job-")?.0.parse::<u32>().ok());
    owner.is_some_and(|pid| {
        pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// Removes every top-level entry of `shared` that `uid` owns; whether none
/// is left. Runs in the cleaner, as `uid`, once nothing else does.
fn sweep(uid: u32, shared: &[PathBuf]) -> bool {
    let entries = shared.iter().filter_map(|base| fs::read_dir(base).ok());
    let paths = entries.flatten().flatten().map(|e| e.path());
    let owned = paths.filter_map(|p| Some((fs::symlink_metadata(&p).ok()?, p)));
    let mut clean = true;
    for (meta, path) in owned.filter(|(meta, _)| meta.uid() == uid) {
        let r = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        // A directory the job made unreadable to itself stays: then
        // the uid is quarantined rather than handed out.
        clean &= r.is_ok();
    }
    clean
}
