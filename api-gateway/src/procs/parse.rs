//! Parsers for the text of /proc files. Pure functions over bytes: no I/O,
//! no allocation except where a result needs it.
//!
//! Guarantees: `/proc/PID/stat` is split at the LAST `)`, so a process name
//! holding `) (` or spaces cannot shift the numeric fields; malformed input
//! yields `None`/zeros, never a panic.

/// The parts of `/proc/PID/stat` the listing uses (raw kernel units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat<'a> {
    pub comm: &'a [u8],
    pub state: u8,
    pub ppid: i64,
    pub tty_nr: u64,
    /// Fields 10 and 12: page faults that needed no disk read, and those
    /// that did.
    pub minflt: u64,
    pub majflt: u64,
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    pub nice: i64,
    pub num_threads: u64,
    /// Field 22: clock ticks after boot.
    pub start_time: u64,
    pub vsize: u64,
    /// Resident pages.
    pub rss: u64,
    pub processor: i64,
    /// Field 42: delayacct_blkio_ticks.
    pub iowait: u64,
}

/// Parses `/proc/PID/stat` (or `/proc/PID/task/TID/stat`).
pub fn stat(b: &[u8]) -> Option<Stat<'_>> {
    let lp = b.iter().position(|&c| c == b'(')?;
    let rp = b.iter().rposition(|&c| c == b')')?;
    if rp < lp {
        return None;
    }
    let rest = b.get(rp + 2..)?;
    let mut f = [0i64; 40];
    let mut state = 0u8;
    let mut n = 0;
    for (i, tok) in rest
        .split(|&c| c == b' ' || c == b'\n')
        .filter(|t| !t.is_empty())
        .take(40)
        .enumerate()
    {
        if i == 0 {
            state = tok[0];
        } else {
            f[i] = signed(tok);
        }
        n = i + 1;
    }
    if n < 22 {
        return None;
    }
    let u = |i: usize| f[i].max(0) as u64;
    Some(Stat {
        comm: &b[lp + 1..rp],
        state,
        ppid: f[1],
        tty_nr: u(4),
        minflt: u(7),
        majflt: u(9),
        utime: u(11),
        stime: u(12),
        cutime: u(13),
        cstime: u(14),
        nice: f[16],
        num_threads: u(17),
        start_time: u(19),
        vsize: u(20),
        rss: u(21),
        processor: f[36],
        iowait: u(39),
    })
}

/// psutil's name for a `/proc/PID/stat` state letter.
pub fn status_name(state: u8) -> &'static str {
    match state {
        b'R' => "running",
        b'S' => "sleeping",
        b'D' => "disk-sleep",
        b'T' => "stopped",
        b't' => "tracing-stop",
        b'Z' => "zombie",
        b'X' | b'x' => "dead",
        b'K' => "wake-kill",
        b'W' => "waking",
        b'I' => "idle",
        b'P' => "parked",
        _ => "unknown",
    }
}

/// The parts of `/proc/PID/status` the listing uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status<'a> {
    /// real, effective, saved
    /// The thread group (process) this task belongs to.
    pub tgid: Option<u32>,
    pub uids: Option<[u32; 3]>,
    pub gids: Option<[u32; 3]>,
    pub voluntary: u64,
    pub involuntary: u64,
    /// `VmSwap`, in KiB.
    pub swap_kib: u64,
    /// Raw `Cpus_allowed_list` value, e.g. `0-3,6`.
    pub cpus_allowed: Option<&'a [u8]>,
}

/// Parses `/proc/PID/status`.
pub fn status(b: &[u8]) -> Status<'_> {
    let mut s = Status::default();
    for line in b.split(|&c| c == b'\n') {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let (k, v) = (&line[..colon], trim(&line[colon + 1..]));
        match k {
            b"Tgid" => s.tgid = u32::try_from(unsigned(v)).ok(),
            b"Uid" => s.uids = ids3(v),
            b"Gid" => s.gids = ids3(v),
            b"voluntary_ctxt_switches" => s.voluntary = unsigned(v),
            b"nonvoluntary_ctxt_switches" => s.involuntary = unsigned(v),
            b"VmSwap" => s.swap_kib = unsigned(v),
            b"Cpus_allowed_list" => s.cpus_allowed = Some(v),
            _ => {}
        }
    }
    s
}

/// Real uid only (for filters and user counts).
pub fn real_uid(b: &[u8]) -> Option<u32> {
    status(b).uids.map(|u| u[0])
}

fn ids3(v: &[u8]) -> Option<[u32; 3]> {
    let mut it = v
        .split(|&c| c == b'\t' || c == b' ')
        .filter(|t| !t.is_empty());
    let mut out = [0u32; 3];
    for slot in &mut out {
        *slot = u32::try_from(unsigned(it.next()?)).ok()?;
    }
    Some(out)
}

/// Expands a CPU list (`0-2,5`) into CPU numbers; malformed parts skipped.
pub fn cpu_list(v: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    for part in v.split(|&c| c == b',').map(trim).filter(|p| !p.is_empty()) {
        let mut ends = part.splitn(2, |&c| c == b'-');
        let lo = ends.next().map(unsigned).unwrap_or(0) as u32;
        let hi = ends.next().map(|h| unsigned(h) as u32).unwrap_or(lo);
        if hi >= lo && hi - lo < 1 << 16 {
            out.extend(lo..=hi);
        }
    }
    out
}

/// `/proc/PID/statm` in pages: size, resident, shared, text, lib, data, dirty.
pub fn statm(b: &[u8]) -> [u64; 7] {
    let mut m = [0u64; 7];
    for (slot, tok) in m.iter_mut().zip(
        b.split(|&c| c == b' ' || c == b'\n')
            .filter(|t| !t.is_empty()),
    ) {
        *slot = unsigned(tok);
    }
    m
}

/// `/proc/PID/io`: read_count (syscr), write_count (syscw), read_bytes,
/// write_bytes, read_chars (rchar), write_chars (wchar).
pub fn io(b: &[u8]) -> [u64; 6] {
    let mut v = [0u64; 6];
    for line in b.split(|&c| c == b'\n') {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let i = match &line[..colon] {
            b"syscr" => 0,
            b"syscw" => 1,
            b"read_bytes" => 2,
            b"write_bytes" => 3,
            b"rchar" => 4,
            b"wchar" => 5,
            _ => continue,
        };
        v[i] = unsigned(trim(&line[colon + 1..]));
    }
    v
}

/// Splits `/proc/PID/cmdline` into arguments the way psutil does: on NUL
/// (trailing NUL dropped); a single NUL-less or one-argument line holding
/// spaces (a process that rewrote its title) is split on spaces.
pub fn cmdline(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        return Vec::new();
    }
    let sep = if data.ends_with(&[0]) { 0 } else { b' ' };
    let body = data.strip_suffix(&[sep]).unwrap_or(data);
    let args: Vec<&[u8]> = body.split(|&c| c == sep).collect();
    if sep == 0 && args.len() == 1 && body.contains(&b' ') {
        return body.split(|&c| c == b' ').collect();
    }
    args
}

/// `/proc/PID/smaps_rollup` as psutil's extra `memory_full_info` figures,
/// in bytes: uss (private clean + dirty + hugetlb), pss, swap.
pub fn smaps_rollup(b: &[u8]) -> [u64; 3] {
    let mut v = [0u64; 3];
    for line in b.split(|&c| c == b'\n') {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let kb = unsigned(trim(&line[colon + 1..])) * 1024;
        match &line[..colon] {
            b"Private_Clean" | b"Private_Dirty" | b"Private_Hugetlb" => v[0] += kb,
            b"Pss" => v[1] = kb,
            b"Swap" => v[2] = kb,
            _ => {}
        }
    }
    v
}

/// One `memory_maps` entry: a path and its summed sizes in bytes
/// (rss, size, pss, shared_clean, shared_dirty, private_clean,
/// private_dirty, referenced, anonymous, swap).
pub type MapGroup = (Vec<u8>, [u64; 10]);

/// Names of the [`MapGroup`] sizes, in order.
pub const MAP_KEYS: [&str; 10] = [
    "rss",
    "size",
    "pss",
    "shared_clean",
    "shared_dirty",
    "private_clean",
    "private_dirty",
    "referenced",
    "anonymous",
    "swap",
];

/// Groups `/proc/PID/smaps` by mapped path (anonymous = `[anon]`), like
/// psutil's `memory_maps(grouped=True)`.
pub fn smaps_grouped(b: &[u8]) -> Vec<MapGroup> {
    const K: [&[u8]; 10] = [
        b"Rss",
        b"Size",
        b"Pss",
        b"Shared_Clean",
        b"Shared_Dirty",
        b"Private_Clean",
        b"Private_Dirty",
        b"Referenced",
        b"Anonymous",
        b"Swap",
    ];
    let mut groups: Vec<MapGroup> = Vec::new();
    let mut cur = None;
    for line in b.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let first = line.split(|&c| c == b' ').next().unwrap_or(b"");
        if let Some(key) = first.strip_suffix(b":") {
            if let (Some(g), Some(i)) = (cur, K.iter().position(|k| *k == key)) {
                let v = unsigned(trim(&line[first.len()..])) * 1024;
                let entry: &mut MapGroup = &mut groups[g];
                entry.1[i] += v;
            }
            continue;
        }
        // header: address perms offset dev inode [path]
        let mut rest = line;
        for _ in 0..5 {
            let p = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
            rest = trim(&rest[p..]);
        }
        let path: &[u8] = if rest.is_empty() { b"[anon]" } else { rest };
        cur = Some(match groups.iter().position(|g| g.0 == path) {
            Some(i) => i,
            None => {
                groups.push((path.to_vec(), [0; 10]));
                groups.len() - 1
            }
        });
    }
    groups
}

/// The device path of a controlling terminal number (`tty_nr`), for the
/// common majors (pts, tty, ttyS, console); `None` for 0 or others.
pub fn tty_name(tty_nr: u64) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xf_ff00);
    match (major, minor) {
        (136..=143, m) => Some(format!("/dev/pts/{}", (major - 136) * 256 + m)),
        (4, m) if m < 64 => Some(format!("/dev/tty{m}")),
        (4, m) => Some(format!("/dev/ttyS{}", m - 64)),
        (5, 0) => Some("/dev/tty".into()),
        (5, 1) => Some("/dev/console".into()),
        _ => None,
    }
}

/// Leading decimal digits as a number (0 if none).
pub fn unsigned(s: &[u8]) -> u64 {
    let mut v = 0u64;
    for &b in s {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
    }
    v
}

fn signed(s: &[u8]) -> i64 {
    match s.strip_prefix(b"-") {
        Some(rest) => -(unsigned(rest) as i64),
        None => unsigned(s) as i64,
    }
}

/// Strips spaces, tabs and a trailing newline.
pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\n'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &[u8] = b"4242 (a) (b c) S 1 4242 4242 34817 4242 4194304 100 0 0 0 \
        250 31 7 9 20 -5 3 0 123456 10485760 512 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 \
        17 1 0 0 42 0 0\n";

    #[test]
    fn stat_with_paren_space_in_comm_keeps_fields_aligned() {
        let s = stat(STAT).unwrap();
        assert_eq!(s.comm, b"a) (b c");
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.tty_nr, 34817);
        assert_eq!((s.utime, s.stime, s.cutime, s.cstime), (250, 31, 7, 9));
        assert_eq!(s.nice, -5);
        assert_eq!(s.num_threads, 3);
        assert_eq!(s.start_time, 123456);
        assert_eq!(s.vsize, 10485760);
        assert_eq!(s.rss, 512);
        assert_eq!(s.processor, 1);
        assert_eq!(s.iowait, 42);
    }

    #[test]
    fn truncated_stat_is_rejected() {
        assert_eq!(stat(b"12 (x) S 1 2 3"), None);
        assert_eq!(stat(b"garbage"), None);
        assert_eq!(stat(b""), None);
    }

    #[test]
    fn status_yields_ids_switches_and_cpu_list() {
        let b = b"Name:\tx\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t6\t7\t8\n\
            Cpus_allowed_list:\t0-1,3\nvoluntary_ctxt_switches:\t9\nnonvoluntary_ctxt_switches:\t4\n";
        let s = status(b);
        assert_eq!(s.uids, Some([1000, 1001, 1002]));
        assert_eq!(s.gids, Some([5, 6, 7]));
        assert_eq!((s.voluntary, s.involuntary), (9, 4));
        assert_eq!(cpu_list(s.cpus_allowed.unwrap()), [0, 1, 3]);
        assert_eq!(real_uid(b), Some(1000));
    }

    #[test]
    fn cmdline_splits_like_psutil() {
        assert_eq!(cmdline(b"sleep\x0010\x00"), [&b"sleep"[..], b"10"]);
        assert_eq!(
            cmdline(b"nginx: worker process"),
            [&b"nginx:"[..], b"worker", b"process"]
        );
        assert_eq!(cmdline(b"a b\x00"), [&b"a"[..], b"b"]);
        assert!(cmdline(b"").is_empty());
    }

    #[test]
    fn statm_io_and_tty() {
        assert_eq!(statm(b"10 5 3 2 0 4 0\n"), [10, 5, 3, 2, 0, 4, 0]);
        let v = io(b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 5\nwrite_bytes: 6\ncancelled_write_bytes: 7\n");
        assert_eq!(v, [3, 4, 5, 6, 1, 2]);
        assert_eq!(tty_name(34817).as_deref(), Some("/dev/pts/1"));
        assert_eq!(tty_name(0), None);
        assert_eq!(tty_name(0x401).as_deref(), Some("/dev/tty1"));
    }

    #[test]
    fn smaps_rollup_yields_uss_pss_and_swap() {
        let b = b"00400000-7fff [rollup]\nRss: 100 kB\nPss: 60 kB\nPss_Anon: 1 kB\n\
Private_Clean: 8 kB\nPrivate_Dirty: 32 kB\nPrivate_Hugetlb: 2 kB\nSwap: 4 kB\nSwapPss: 4 kB\n";
        assert_eq!(smaps_rollup(b), [42 * 1024, 60 * 1024, 4 * 1024]);
    }

    #[test]
    fn smaps_are_grouped_by_path() {
        let b = b"00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n\
Size:                328 kB\nRss:                 100 kB\nSwap:  1 kB\n\
00651000-00652000 r--p 00051000 08:02 173521      /usr/bin/dbus-daemon\nRss: 4 kB\n\
7f0000-7f1000 rw-p 00000000 00:00 0 \nRss: 8 kB\nVmFlags: rd wr\n";
        let g = smaps_grouped(b);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, b"/usr/bin/dbus-daemon");
        assert_eq!(g[0].1[0], 104 * 1024);
        assert_eq!(g[0].1[1], 328 * 1024);
        assert_eq!(g[0].1[9], 1024);
        assert_eq!(g[1].0, b"[anon]");
        assert_eq!(g[1].1[0], 8 * 1024);
    }
}
