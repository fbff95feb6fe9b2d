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
    let mut f = File::open(path)?;
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
