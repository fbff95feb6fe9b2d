//! Identifying the process a request names, and the built-in protections.
//!
//! Order (the one PROTOCOL.md documents): the raw pid must be ≥ 2; a pidfd
//! is opened *first*; then `/proc/PID/stat` and `status` are read; the
//! pidfd must still be alive after the read (so the read described the
//! process the pidfd names — a pid is not reused before its process is
//! reaped); the start time must equal the request's; then the built-in
//! protections (kernel thread, the helper, the peer, their ancestors).
//! Only then does the policy get a say (in `server`).

use std::collections::HashSet;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::ids::{Pid, StartTime, Uid};
use crate::sys;

/// What `/proc/PID/stat` and `status` say about a process.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub comm: String,
    pub ppid: i32,
    pub flags: u64,
    pub start_time: StartTime,
    pub real_uid: Uid,
}

const PF_KTHREAD: u64 = 0x0020_0000;

impl ProcInfo {
    /// Reads `/proc/PID/stat` and the real uid from `/proc/PID/status`.
    pub fn read(pid: i32) -> Option<ProcInfo> {
        let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
        let mut info = parse_stat(&stat)?;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        info.real_uid = Uid::new(uid);
        Some(info)
    }

    pub fn is_kernel_thread(&self, pid: i32) -> bool {
        self.flags & PF_KTHREAD != 0 || pid == 2 || self.ppid == 2
    }
}

/// Parses the fields the helper needs from `/proc/PID/stat`. The command
/// name may hold spaces and parentheses, so fields are counted from the
/// *last* `)`.
pub fn parse_stat(stat: &[u8]) -> Option<ProcInfo> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = String::from_utf8_lossy(&stat[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    Some(ProcInfo {
        comm,
        ppid: f.get(1)?.parse().ok()?,
        flags: f.get(6)?.parse().ok()?,
        start_time: StartTime(f.get(19)?.parse().ok()?),
        real_uid: Uid::new(u32::MAX),
    })
}

/// Why a target was not resolved.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A built-in protection, named.
    Denied(&'static str),
    NoSuchProcess,
    Mismatch,
    Failed(i32),
}

/// A live process, pinned by its pidfd, that passed the built-in checks.
pub struct Resolved {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub info: ProcInfo,
}

/// Pids the helper must never act on: itself, the peer, and every ancestor
/// of either, computed at the moment of the request.
pub fn protected(peer_pid: Option<i32>) -> (HashSet<i32>, i32) {
    let me = std::process::id() as i32;
    let mut set = HashSet::new();
    for start in [Some(me), peer_pid].into_iter().flatten() {
        let mut pid = start;
        while pid > 1 && set.insert(pid) {
            match ProcInfo::read(pid) {
                Some(i) => pid = i.ppid,
                None => break,
            }
        }
    }
    set.insert(1);
    (set, me)
}

/// Resolves `raw_pid` + `start_time` to a pinned process, applying the
/// built-in protections in the documented order.
pub fn resolve(raw_pid: i32, start_time: u64, peer_pid: Option<i32>) -> Result<Resolved, Refusal> {
    let pid = Pid::new(raw_pid).map_err(|b| Refusal::Denied(b.rule()))?;
    let pidfd = match sys::pidfd_open(pid.get()) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(Refusal::NoSuchProcess),
        Err(e) => return Err(Refusal::Failed(e.raw_os_error().unwrap_or(libc::EIO))),
    };
    let info = ProcInfo::read(pid.get()).ok_or(Refusal::NoSuchProcess)?;
    if !alive(&pidfd) {
        return Err(Refusal::NoSuchProcess);
    }
    if info.start_time != StartTime(start_time) {
        return Err(Refusal::Mismatch);
    }
    if info.is_kernel_thread(pid.get()) {
        return Err(Refusal::Denied("builtin:kernel-thread"));
    }
    let (protected, me) = protected(peer_pid);
    if pid.get() == me {
        return Err(Refusal::Denied("builtin:self"));
    }
    if Some(pid.get()) == peer_pid {
        return Err(Refusal::Denied("builtin:gateway"));
    }
    if protected.contains(&pid.get()) {
        return Err(Refusal::Denied("builtin:ancestor"));
    }
    Ok(Resolved { pid, pidfd, info })
}

/// A pidfd becomes readable when its process exits; until then the pid
/// cannot have been reused.
pub fn alive(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => true,
        Ok(_) => false,
        Err(Errno::EINTR) => alive(pidfd),
        Err(_) => false,
    }
}

/// Sends `sig` through the pidfd.
pub fn signal(r: &Resolved, sig: i32) -> Result<(), Refusal> {
    sys::pidfd_send_signal(r.pidfd.as_raw_fd(), sig).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => Refusal::NoSuchProcess,
        other => Refusal::Failed(other.unwrap_or(libc::EIO)),
    })
}

/// `setpriority` takes a bare pid: check the pidfd is still alive after
/// the call, so a process that exited in between is reported, not hidden.
pub fn renice(r: &Resolved, nice: i32) -> Result<(), Refusal> {
    sys::set_nice(r.pid.get(), nice).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => Refusal::NoSuchProcess,
        other => Refusal::Failed(other.unwrap_or(libc::EIO)),
    })?;
    if !alive(&r.pidfd) {
        return Err(Refusal::NoSuchProcess);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_and_spaces_in_the_name_parses() {
        let line =
            b"1234 (a) (b c)) S 77 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 1 2\n";
        let i = parse_stat(line).expect("parses");
        assert_eq!(i.comm, "a) (b c)");
        assert_eq!(i.ppid, 77);
        assert_eq!(i.flags, 4194560);
        assert_eq!(i.start_time, StartTime(987654));
    }

    #[test]
    fn truncated_stat_is_rejected() {
        assert!(parse_stat(b"12 (x) S 1 2").is_none());
        assert!(parse_stat(b"garbage").is_none());
        assert!(parse_stat(b")(").is_none());
    }

    #[test]
    fn own_process_is_protected_and_readable() {
        let me = std::process::id() as i32;
        let info = ProcInfo::read(me).expect("own stat");
        assert!(!info.is_kernel_thread(me));
        let (set, self_pid) = protected(None);
        assert_eq!(self_pid, me);
        assert!(set.contains(&me) && set.contains(&info.ppid));
    }
}
