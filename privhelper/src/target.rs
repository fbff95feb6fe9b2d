//! Identifying the process a request names, and the built-in protections.
//!
//! Order (the one PROTOCOL.md documents): the raw pid must be ≥ 2; a pidfd
//! is opened *first*; then `/proc/PID/stat` is read (and the real uid and
//! thread group, from the pidfd or `status`); the pidfd must still be
//! alive after the read (so the read described the process the pidfd
//! names — a pid is not reused before its process is reaped); the pid
//! must lead its thread group; the start time must equal the request's;
//! then the built-in protections (kernel thread, the helper, the peer,
//! their ancestors). Only then does the policy get a say (in `batch`).

// A refusal is the answer itself (`Response`), built once and moved on:
// boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use protocol::Response;

use crate::ids::{Nice, Pid, StartTime};
use crate::lineage::Lineage;
use crate::proc::{alive, ProcInfo};
use crate::rule::Builtin;
use crate::sys;

/// A live process, pinned by its pidfd, that passed the built-in checks.
pub struct Resolved {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub info: ProcInfo,
    /// The path `/proc/PID/exe` names (empty when unreadable) and the
    /// device and inode of that file, read before the liveness check.
    pub exe: (String, Option<(u64, u64)>),
    /// The pidfd's inode: per process where the kernel has pidfs (6.9+),
    /// what a plan compares besides the start time.
    pub pidfd_ino: Option<u64>,
}

/// What the helper must never act on: itself, the peer, and every
/// ancestor of either, from their chains of parents ([`Lineage`]), which
/// the connection and the server keep between requests.
pub struct Guard<'a> {
    pub me: i32,
    pub peer: i32,
    pub ours: &'a mut Option<Lineage>,
    pub theirs: &'a mut Option<Lineage>,
}

impl Guard<'_> {
    /// Whether the target's pidfd is still alive, asked in the same `poll`
    /// that asks whether a member of either chain has exited; a chain with
    /// an exited member (or none yet) is walked again here, so [`rule`]
    /// sees the chains as they are now.
    ///
    /// [`rule`]: Guard::rule
    fn target_alive(&mut self, target: &OwnedFd) -> bool {
        let ours = self.ours.as_ref().filter(|l| l.kept(self.me));
        let theirs = self.theirs.as_ref().filter(|l| l.kept(self.peer));
        let mut fds = vec![PollFd::new(target.as_fd(), PollFlags::POLLIN)];
        let n_ours = ours.map_or(0, |l| l.fds().count());
        for l in [ours, theirs].into_iter().flatten() {
            fds.extend(l.fds().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        }
        let ready = loop {
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(_) => break -1,
            }
        };
        // Cannot tell (`poll` failed): count everything as exited, walk again.
        let gone = |p: &PollFd| ready < 0 || p.revents().is_some_and(|r| !r.is_empty());
        let lives = !gone(&fds[0]);
        let ours_hold = ours.is_some() && !fds[1..1 + n_ours].iter().any(gone);
        let theirs_hold = theirs.is_some() && !fds[1 + n_ours..].iter().any(gone);
        drop(fds);
        if !ours_hold {
            *self.ours = Some(Lineage::walk(self.me));
        }
        if !theirs_hold {
            *self.theirs = Some(Lineage::walk(self.peer));
        }
        lives
    }

    /// The built-in rule that protects `pid`, if one does.
    fn rule(&self, pid: i32) -> Option<Builtin> {
        let ancestor = |chain: &Option<Lineage>| chain.as_ref().is_some_and(|c| c.contains(pid));
        if pid == self.me {
            Some(Builtin::Helper)
        } else if pid == self.peer {
            Some(Builtin::Gateway)
        } else if pid == 1 || ancestor(self.ours) || ancestor(self.theirs) {
            Some(Builtin::Ancestor)
        } else {
            None
        }
    }
}

/// Resolves `raw_pid` + `start_time` to a pinned process, applying the
/// built-in protections in the documented order.
pub fn resolve(raw_pid: i32, start_time: u64, guard: &mut Guard<'_>) -> Result<Resolved, Response> {
    let pid = Pid::new(raw_pid).map_err(Builtin::denied)?;
    let pidfd = match sys::pidfd_open(pid, 0) {
        Ok(fd) => fd,
        // pidfd_open refuses a thread that is not a group leader (EINVAL
        // before Linux 6.9, ENOENT since): say so rather than "failed".
        Err(e) if e.raw_os_error() != Some(libc::ESRCH) && is_non_leader_thread(pid.get()) => {
            return Err(Response::NotAProcess)
        }
        Err(e) => return Err(gone_or_failed(e)),
    };
    let info = ProcInfo::read_pinned(pid.get(), &pidfd).ok_or(Response::NoSuchProcess)?;
    let exe = exe(pid.get());
    if !guard.target_alive(&pidfd) {
        return Err(Response::NoSuchProcess);
    }
    if info.tgid != pid.get() {
        return Err(Response::NotAProcess);
    }
    if info.start_time != StartTime(start_time) {
        return Err(Response::Mismatch);
    }
    if info.is_kernel_thread(pid.get()) {
        return Err(Builtin::KernelThread.denied());
    }
    if let Some(rule) = guard.rule(pid.get()) {
        return Err(rule.denied());
    }
    Ok(Resolved {
        pid,
        // Read before `pidfd` moves in.
        pidfd_ino: nix::sys::stat::fstat(pidfd.as_fd()).ok().map(|s| s.st_ino),
        pidfd,
        info,
        exe,
    })
}

/// What `/proc/PID/exe` names: its path and the file's device and inode.
/// Describes the pinned process only if its pidfd is alive afterwards.
pub fn exe(pid: i32) -> (String, Option<(u64, u64)>) {
    let link = format!("/proc/{pid}/exe");
    let path = fs::read_link(&link).map(|p| p.to_string_lossy().into_owned());
    let link = std::ffi::CString::new(link).ok();
    let id = link.and_then(|l| sys::cached_dev_ino(&l).ok());
    (path.unwrap_or_default(), id)
}

/// Whether `/proc/PID/status` names another thread group than `pid`.
fn is_non_leader_thread(pid: i32) -> bool {
    ProcInfo::read(pid).is_some_and(|i| i.tgid != pid)
}

/// A failed system call's answer: the process is gone (`ESRCH`), or
/// `Failed` with the errno.
fn gone_or_failed(e: io::Error) -> Response {
    match e.raw_os_error() {
        Some(libc::ESRCH) => Response::NoSuchProcess,
        other => Response::Failed {
            errno: other.unwrap_or(libc::EIO),
        },
    }
}

/// Sends `sig` through the pidfd.
pub fn signal(r: &Resolved, sig: i32) -> Result<(), Response> {
    sys::pidfd_send_signal(r.pidfd.as_fd(), sig).map_err(gone_or_failed)
}

/// Sets `nice` on every thread of the pinned process; returns how many.
///
/// `setpriority(PRIO_PROCESS, id)` acts on one thread, so each thread of
/// `/proc/PID/task` is set in turn. Each tid is pinned first with a thread
/// pidfd (`PIDFD_THREAD`, Linux 6.9+) and must still belong to the target
/// and be alive after the call, so the bare tid `setpriority` takes named
/// our thread. The list is re-read until no new thread appears (bounded),
/// and afterwards the process must still be alive with the same start time.
pub fn renice(r: &Resolved, nice: Nice) -> Result<u32, Response> {
    let pid = r.pid.get();
    let mut done: HashSet<Pid> = HashSet::new();
    for _pass in 0..8 {
        // The tids in `/proc/PID/task` not yet set.
        let dir = fs::read_dir(format!("/proc/{pid}/task")).map_err(|_| Response::NoSuchProcess)?;
        let new: Vec<Pid> = dir
            .flatten()
            .filter_map(|e| Pid::new(e.file_name().to_str()?.parse().ok()?).ok())
            .filter(|t| !done.contains(t))
            .collect();
        if new.is_empty() {
            break;
        }
        for tid in new {
            if renice_thread(pid, tid, nice)? {
                done.insert(tid);
            }
        }
    }
    let same = ProcInfo::read(pid).is_some_and(|i| i.start_time == r.info.start_time);
    if !alive(&r.pidfd) || !same || done.is_empty() {
        return Err(Response::NoSuchProcess);
    }
    Ok(u32::try_from(done.len()).unwrap_or(u32::MAX))
}

/// Renices one thread of `pid`. `Ok(false)`: the thread ended meanwhile.
fn renice_thread(pid: i32, tid: Pid, nice: Nice) -> Result<bool, Response> {
    let esrch = |e: &io::Error| e.raw_os_error() == Some(libc::ESRCH);
    let pin = match sys::pidfd_open(tid, sys::PIDFD_THREAD) {
        Ok(fd) => Some(fd),
        Err(e) if esrch(&e) => return Ok(false),
        // Kernels before 6.9 have no thread pidfds: fall back to the bare
        // tid, checked against the task list below (see PROTOCOL.md).
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => None,
        Err(e) => return Err(gone_or_failed(e)),
    };
    let ours = || fs::metadata(format!("/proc/{pid}/task/{}", tid.get())).is_ok();
    if !ours() {
        return Ok(false);
    }
    match sys::set_nice(tid, nice) {
        Err(e) if esrch(&e) => Ok(false),
        Err(e) => Err(gone_or_failed(e)),
        Ok(()) => Ok(pin.as_ref().map_or(true, alive) && ours()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_protected_and_readable() {
        let me = std::process::id() as i32;
        let info = ProcInfo::read(me).expect("own stat");
        assert!(!info.is_kernel_thread(me));
        let (mut ours, mut theirs) = (None, None);
        let mut g = Guard {
            me,
            peer: -1,
            ours: &mut ours,
            theirs: &mut theirs,
        };
        let fd = sys::pidfd_open(Pid::new(me).expect("a pid"), 0).expect("own pidfd");
        assert!(g.target_alive(&fd), "walks both chains");
        assert_eq!(g.rule(me), Some(Builtin::Helper));
        assert_eq!(g.rule(info.ppid), Some(Builtin::Ancestor));
        assert_eq!(g.rule(1), Some(Builtin::Ancestor));
        assert_eq!(g.rule(-1), Some(Builtin::Gateway));
        let pinned = ProcInfo::read_pinned(me, &fd).expect("pinned read");
        assert_eq!(
            (pinned.real_uid, pinned.tgid, pinned.start_time),
            (info.real_uid, info.tgid, info.start_time)
        );
    }

    /// A process that exits once it is pinned is "no such process" at
    /// every later step: the read, the liveness check, the signal and the
    /// renice; nothing reaches the pid's next owner.
    #[test]
    fn a_target_gone_after_it_was_pinned_is_no_such_process_at_every_step() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("sleep");
        let pid = child.id() as i32;
        let start = ProcInfo::read(pid).expect("child stat").start_time;
        let me = std::process::id() as i32;
        let (mut ours, mut theirs) = (None, None);
        let mut g = Guard {
            me,
            peer: -1,
            ours: &mut ours,
            theirs: &mut theirs,
        };
        let r = resolve(pid, start.0, &mut g).expect("resolves while it runs");
        assert_eq!(
            resolve(pid, start.0 + 1, &mut g).err(),
            Some(Response::Mismatch)
        );
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(ProcInfo::read_pinned(pid, &r.pidfd).is_none(), "read");
        assert!(!g.target_alive(&r.pidfd), "liveness");
        assert_eq!(signal(&r, libc::SIGTERM), Err(Response::NoSuchProcess));
        assert_eq!(
            renice(&r, Nice::new(0).expect("valid")).err(),
            Some(Response::NoSuchProcess)
        );
    }
}
