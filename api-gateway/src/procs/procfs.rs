//! The few raw /proc reads that both the process reader and the CPU
//! sampler need: the pid list, whole-file reads into a reused buffer, and
//! the machine constants. It imports neither of them, so neither imports
//! the other.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;

use super::parse;
use crate::ids::Pid;

/// Machine constants read once.
#[derive(Debug, Clone, Copy)]
pub struct SysInfo {
    /// CLK_TCK.
    pub hz: u64,
    /// Page size in bytes.
    pub page: u64,
    /// Boot time, seconds since the epoch.
    pub btime: u64,
    /// MemTotal in bytes.
    pub mem_total: u64,
    /// Who the gateway is, to foresee which reads the kernel will refuse.
    pub me: Access,
}

/// The gateway's own credentials, as the kernel weighs them when another
/// process's `io`, `exe`, `cwd` and `fd/` are read.
///
/// Those files need ptrace-read access (`io`, `exe`, `cwd`: the reader's
/// fsuid and fsgid equal to all of the target's uids and gids, or
/// `CAP_SYS_PTRACE`) or ownership of the `fd/` directory (the target's
/// euid, or `CAP_DAC_OVERRIDE`/`CAP_DAC_READ_SEARCH`). When the target's
/// status already shows that the answer is no, asking the kernel again
/// only costs system calls (five per process in a listing of other
/// users' processes); the answer is `null` either way. Security modules
/// can refuse more, never allow more, so a "no" foreseen here is one the
/// kernel would give.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub pid: u32,
    /// Effective uid and gid (the gateway never sets its fsuid apart).
    pub uid: u32,
    pub gid: u32,
    pub cap_ptrace: bool,
    pub cap_dac: bool,
}

impl Access {
    /// The running process's.
    pub fn of_self() -> Access {
        let cap_eff = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("CapEff:")
                        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                })
            })
            // Unknown: assume every capability, so nothing is foreseen.
            .unwrap_or(u64::MAX);
        const DAC_OVERRIDE: u64 = 1 << 1;
        const DAC_READ_SEARCH: u64 = 1 << 2;
        const SYS_PTRACE: u64 = 1 << 19;
        Access {
            pid: std::process::id(),
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            cap_ptrace: cap_eff & SYS_PTRACE != 0,
            cap_dac: cap_eff & (DAC_OVERRIDE | DAC_READ_SEARCH) != 0,
        }
    }

    /// Whether the kernel will refuse this process's `io`, `exe` and
    /// `cwd` to us, from the uids and gids its status shows.
    pub fn ptrace_refused(&self, pid: u32, uids: [u32; 3], gids: [u32; 3]) -> bool {
        pid != self.pid
            && !self.cap_ptrace
            && (uids.iter().any(|&u| u != self.uid) || gids.iter().any(|&g| g != self.gid))
    }

    /// Whether the kernel will refuse this process's `fd/` directory to us
    /// (mode 0500, owned by the process's euid).
    pub fn fd_dir_refused(&self, pid: u32, euid: u32) -> bool {
        pid != self.pid && !self.cap_dac && euid != self.uid
    }
}

impl SysInfo {
    /// Reads sysconf, /proc/stat and /proc/meminfo (fallbacks: 100 Hz,
    /// 4 KiB pages, 0).
    pub fn load() -> SysInfo {
        use nix::unistd::{sysconf, SysconfVar};
        let conf = |v, d: u64| match sysconf(v) {
            Ok(Some(x)) if x > 0 => x as u64,
            _ => d,
        };
        let btime = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("btime ")
                        .map(|v| parse::unsigned(v.trim().as_bytes()))
                })
            })
            .unwrap_or(0);
        let mem_total = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("MemTotal:")
                        .map(|v| parse::unsigned(v.trim().as_bytes()) * 1024)
                })
            })
            .unwrap_or(0);
        SysInfo {
            hz: conf(SysconfVar::CLK_TCK, 100),
            page: conf(SysconfVar::PAGE_SIZE, 4096),
            btime,
            mem_total,
            me: Access::of_self(),
        }
    }
}

/// The pids in /proc, ascending.
pub fn list_pids() -> io::Result<Vec<Pid>> {
    let mut pids: Vec<Pid> = fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name();
            let b = n.as_bytes();
            if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(b).ok()?.parse::<Pid>().ok()
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Reads a single-record /proc file (stat, status, statm, io, cmdline)
/// whole into `buf`; a short read is end of file, as in procps.
pub fn slurp(path: &str, buf: &mut Vec<u8>) -> io::Result<usize> {
    read_into(path, buf, true)
}

/// Reads `path` into `buf` (grown as needed); with `once`, a short read
/// is taken as end of file.
pub fn read_into(path: &str, buf: &mut Vec<u8>, once: bool) -> io::Result<usize> {
    read_file(File::open(path)?, buf, once)
}

/// Reads the open file `f` into `buf`, as [`read_into`].
pub fn read_file(mut f: File, buf: &mut Vec<u8>, once: bool) -> io::Result<usize> {
    let mut n = 0;
    loop {
        if n == buf.len() {
            let l = (buf.len() * 2).max(8192);
            buf.resize(l, 0);
        }
        match f.read(&mut buf[n..]) {
            Ok(0) => return Ok(n),
            Ok(k) if once && n + k < buf.len() => return Ok(n + k),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return if n > 0 { Ok(n) } else { Err(e) },
        }
    }
}

/// `(start_time, utime + stime)` of `pid` from one small read of its
/// stat, `None` if it is not there.
pub fn stat_ticks(pid: Pid) -> Option<(u64, u64)> {
    let mut buf = vec![0u8; 1024];
    let n = slurp(&format!("/proc/{pid}/stat"), &mut buf).ok()?;
    parse::stat(&buf[..n]).map(|s| (s.start_time, s.utime + s.stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unprivileged(uid: u32, gid: u32) -> Access {
        Access {
            pid: 4242,
            uid,
            gid,
            cap_ptrace: false,
            cap_dac: false,
        }
    }

    #[test]
    fn refusals_are_foreseen_only_where_the_kernel_must_refuse() {
        let me = unprivileged(1000, 1000);
        // Our own credentials everywhere: the kernel would allow it.
        assert!(!me.ptrace_refused(7, [1000; 3], [1000; 3]));
        assert!(!me.fd_dir_refused(7, 1000));
        // Any uid or gid of the target that is not ours: refused.
        assert!(me.ptrace_refused(7, [1000, 0, 1000], [1000; 3]));
        assert!(me.ptrace_refused(7, [1000; 3], [1000, 1000, 5]));
        assert!(me.ptrace_refused(7, [0; 3], [0; 3]));
        // fd/ belongs to the target's euid.
        assert!(me.fd_dir_refused(7, 0));
        assert!(!me.fd_dir_refused(7, 1000));
        // Ourselves, or with the capability: never foreseen.
        assert!(!me.ptrace_refused(4242, [0; 3], [0; 3]));
        assert!(!me.fd_dir_refused(4242, 0));
        let ptrace = Access {
            cap_ptrace: true,
            cap_dac: true,
            ..me
        };
        assert!(!ptrace.ptrace_refused(7, [0; 3], [0; 3]));
        assert!(!ptrace.fd_dir_refused(7, 0));
    }

    /// Set by the privileged run of the test below for its run as nobody.
    const DRIVER_ENV: &str = "MONITOREO_FORESEEN_DRIVER";

    /// Against the kernel: every refusal foreseen for a process of this
    /// machine is one the kernel gives. A privileged run foresees nothing,
    /// so it re-runs this test as nobody (setpriv) and checks that run,
    /// where at least the driver, root's, is foreseen refused.
    #[test]
    fn every_foreseen_refusal_is_a_real_one() {
        let me = Access::of_self();
        if me.cap_ptrace {
            crate::procs::tests::rerun_as_nobody(
                "procs::procfs::tests::every_foreseen_refusal_is_a_real_one",
                DRIVER_ENV,
            );
            return;
        }
        let mut checked = 0;
        for pid in list_pids().expect("pids") {
            let Ok(status) = fs::read(format!("/proc/{pid}/status")) else {
                continue;
            };
            let s = parse::status(&status);
            let (Some(u), Some(g)) = (s.uids, s.gids) else {
                continue;
            };
            let p = pid.get() as u32;
            if me.ptrace_refused(p, u, g) {
                let r = fs::read(format!("/proc/{pid}/io"));
                if fs::metadata(format!("/proc/{pid}")).is_ok() {
                    let e = r.expect_err("foreseen refusal of io was allowed");
                    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{pid}: {e}");
                    checked += 1;
                }
            }
            if me.fd_dir_refused(p, u[1]) && fs::metadata(format!("/proc/{pid}")).is_ok() {
                if let Err(e) = fs::read_dir(format!("/proc/{pid}/fd")) {
                    assert_ne!(e.kind(), io::ErrorKind::Other, "{pid}: {e}");
                } else {
                    panic!("{pid}: foreseen refusal of fd/ was allowed");
                }
            }
        }
        eprintln!("checked {checked} foreseen refusals against the kernel");
        if std::env::var_os(DRIVER_ENV).is_some() {
            assert!(checked > 0, "the root driver's io was not foreseen refused");
            eprintln!("CHECKED as nobody");
        }
    }
}
