//! Reading what the helper needs of a process from `/proc`, and whether a
//! pidfd's process is still alive. Used by `target` (the process a request
//! names) and `lineage` (chains of parents); it imports neither.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::ids::{StartTime, Uid};
use crate::sys;

/// What `/proc/PID/stat` and `status` say about a process.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub comm: String,
    pub ppid: i32,
    pub flags: u64,
    pub start_time: StartTime,
    pub real_uid: Uid,
    /// Thread-group id: equal to the pid for a process, different for a
    /// thread that is not the group's leader.
    pub tgid: i32,
}

const PF_KTHREAD: u64 = 0x0020_0000;

impl ProcInfo {
    /// Reads `/proc/PID/stat` and the real uid from `/proc/PID/status`.
    pub fn read(pid: i32) -> Option<ProcInfo> {
        let mut info = parse_stat(&read_proc(&format!("/proc/{pid}/stat"))?)?;
        let status = String::from_utf8(read_proc(&format!("/proc/{pid}/status"))?).ok()?;
        info.real_uid = Uid::new(status_field(&status, "Uid:")?.parse().ok()?);
        info.tgid = status_field(&status, "Tgid:")?.parse().ok()?;
        Some(info)
    }

    /// Reads `/proc/PID/stat` and takes the real uid and thread group from
    /// the pidfd (`PIDFD_GET_INFO`), which names exactly the pinned
    /// process and costs one `ioctl` instead of formatting
    /// `/proc/PID/status`; kernels without it get [`ProcInfo::read`].
    pub fn read_pinned(pid: i32, pidfd: &OwnedFd) -> Option<ProcInfo> {
        let Some(ids) = sys::pidfd_info(pidfd.as_fd()) else {
            return ProcInfo::read(pid);
        };
        let mut info = parse_stat(&read_proc(&format!("/proc/{pid}/stat"))?)?;
        info.real_uid = ids.ruid;
        info.tgid = ids.tgid;
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
    // A `)` before the `(` makes the range empty: no name, no fields.
    let comm = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    Some(ProcInfo {
        comm,
        ppid: f.get(1)?.parse().ok()?,
        flags: f.get(6)?.parse().ok()?,
        start_time: StartTime(f.get(19)?.parse().ok()?),
        real_uid: Uid::new(u32::MAX),
        tgid: 0,
    })
}

/// The first value on the `name` line of a `/proc/PID/status` text (for
/// `Uid:`, the real uid).
pub fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()
}

/// The parent of `pid`, from `/proc/PID/stat` alone (one read per step of
/// an ancestor walk).
pub fn ppid_of(pid: i32) -> Option<i32> {
    parse_stat(&read_proc(&format!("/proc/{pid}/stat"))?).map(|i| i.ppid)
}

/// Reads a small /proc file whole: open, read, close. A read that does
/// not fill the buffer is the end, as procfs answers these files in one
/// read (procps relies on the same); `fs::read` would first ask the size
/// (always 0 here) and then read once more to see the end, two system
/// calls more on every step of the ancestor walk.
fn read_proc(path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut f = fs::File::open(path).ok()?;
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    loop {
        match f.read(&mut buf[n..]) {
            Ok(k) if n + k < buf.len() => {
                buf.truncate(n + k);
                return Some(buf);
            }
            Ok(k) => {
                n += k;
                buf.resize(n * 2, 0);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// A pidfd becomes readable when its process exits; until then the pid
/// cannot have been reused.
pub fn alive(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(ready) => ready == 0,
        Err(Errno::EINTR) => alive(pidfd),
        Err(_) => false,
    }
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
    fn kernel_threads_are_known_by_their_flag_pid_2_or_parent_2() {
        let stat = |ppid: i32, flags: u64| {
            let line = format!("9 (k) S {ppid} 0 0 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n");
            parse_stat(line.as_bytes()).expect("parses")
        };
        assert!(stat(0, PF_KTHREAD).is_kernel_thread(9));
        assert!(stat(2, 0).is_kernel_thread(9));
        assert!(stat(0, 0).is_kernel_thread(2));
        assert!(!stat(1, 0x0040_0100).is_kernel_thread(9));
        let own = ProcInfo::read(std::process::id() as i32).expect("own stat");
        assert!(!own.is_kernel_thread(std::process::id() as i32));
    }

    #[test]
    fn truncated_stat_is_rejected() {
        assert!(parse_stat(b"12 (x) S 1 2").is_none());
        assert!(parse_stat(b"garbage").is_none());
        assert!(parse_stat(b")(").is_none());
    }
}
