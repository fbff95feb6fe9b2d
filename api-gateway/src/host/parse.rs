//! Parsers of the host-wide `/proc` files, each a pure function of the
//! file's text so that the unit tests feed them fixtures. Units and
//! meanings are psutil's (5.9, Linux): bytes, not kiB or sectors;
//! milliseconds for disk times.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

/// One `cpu` or `cpuN` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user, nice, system, idle, iowait, irq, softirq, steal, guest,
    /// guest_nice, in the kernel's order (a field an older kernel lacks
    /// is 0).
    pub t: [u64; 10],
}

impl CpuTimes {
    /// The names of [`CpuTimes::t`], psutil's.
    pub const NAMES: [&'static str; 10] = [
        "user",
        "nice",
        "system",
        "idle",
        "iowait",
        "irq",
        "softirq",
        "steal",
        "guest",
        "guest_nice",
    ];
}

/// `/proc/stat`: the `cpu` line first, then each `cpuN` line in order,
/// and `btime`.
pub fn stat(text: &str) -> (Vec<CpuTimes>, Option<u64>) {
    let mut cpus = Vec::new();
    let mut btime = None;
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some(w) if w.starts_with("cpu") => {
                let mut c = CpuTimes::default();
                for (slot, v) in c.t.iter_mut().zip(words) {
                    *slot = v.parse().unwrap_or(0);
                }
                cpus.push(c);
            }
            Some("btime") => btime = words.next().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    (cpus, btime)
}

/// `/proc/meminfo` as bytes by name (`MemTotal` → bytes).
pub fn meminfo(text: &str) -> BTreeMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let kib: u64 = v.split_ascii_whitespace().next()?.parse().ok()?;
            Some((k, kib.saturating_mul(1024)))
        })
        .collect()
}

/// psutil's `virtual_memory()`, bytes (percent: of total, not available).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct VirtualMemory {
    pub total: u64,
    pub available: u64,
    pub percent: f64,
    pub used: u64,
    pub free: u64,
    pub active: u64,
    pub inactive: u64,
    pub buffers: u64,
    pub cached: u64,
    pub shared: u64,
    pub slab: u64,
}

/// `virtual_memory()` from meminfo, as psutil computes it: `cached`
/// includes `SReclaimable`, `used` is total − free − cached − buffers
/// (total − free if that is negative), `available` is `MemAvailable`.
pub fn virtual_memory(m: &BTreeMap<&str, u64>) -> VirtualMemory {
    let g = |k: &str| m.get(k).copied().unwrap_or(0);
    let total = g("MemTotal");
    let free = g("MemFree");
    let buffers = g("Buffers");
    let cached = g("Cached") + g("SReclaimable");
    let used = match total.checked_sub(free + cached + buffers) {
        Some(u) => u,
        None => total.saturating_sub(free),
    };
    let mut available = m.get("MemAvailable").copied().unwrap_or(free);
    if available > total {
        available = free;
    }
    VirtualMemory {
        total,
        available,
        percent: percent(total.saturating_sub(available), total),
        used,
        free,
        active: g("Active"),
        inactive: g("Inactive"),
        buffers,
        cached,
        shared: g("Shmem"),
        slab: g("Slab"),
    }
}

/// psutil's `swap_memory()`, bytes; `sin`/`sout` swapped in and out
/// since boot.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SwapMemory {
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub percent: f64,
    pub sin: u64,
    pub sout: u64,
}

/// `swap_memory()` from meminfo and `/proc/vmstat` (pages of 4 KiB, as
/// psutil counts them).
pub fn swap_memory(m: &BTreeMap<&str, u64>, vmstat: &str) -> SwapMemory {
    let total = m.get("SwapTotal").copied().unwrap_or(0);
    let free = m.get("SwapFree").copied().unwrap_or(0);
    let pages = |name: &str| {
        vmstat
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .map_or(0, |p: u64| p.saturating_mul(4096))
    };
    let used = total.saturating_sub(free);
    SwapMemory {
        total,
        used,
        free,
        percent: percent(used, total),
        sin: pages("pswpin"),
        sout: pages("pswpout"),
    }
}

/// `/proc/loadavg`'s three averages.
pub fn loadavg(text: &str) -> Option<[f64; 3]> {
    let mut w = text.split_ascii_whitespace().map(|v| v.parse().ok());
    Some([w.next()??, w.next()??, w.next()??])
}

/// psutil's `disk_io_counters(perdisk=True)` for one disk.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DiskIo {
    pub read_count: u64,
    pub write_count: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Milliseconds spent reading.
    pub read_time: u64,
    pub write_time: u64,
    pub read_merged_count: u64,
    pub write_merged_count: u64,
    /// Milliseconds the disk was busy.
    pub busy_time: u64,
}

/// `/proc/diskstats`: every device it lists (partitions too, as psutil
/// does per disk), sectors of 512 bytes.
pub fn diskstats(text: &str) -> BTreeMap<String, DiskIo> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let (name, io) = match f.len() {
            14 | 18.. => (
                f[2],
                DiskIo {
                    read_count: n(3),
                    read_merged_count: n(4),
                    read_bytes: n(5).saturating_mul(512),
                    read_time: n(6),
                    write_count: n(7),
                    write_merged_count: n(8),
                    write_bytes: n(9).saturating_mul(512),
                    write_time: n(10),
                    busy_time: n(12),
                },
            ),
            15 => (
                // Linux 2.6.25's format: the name one field later.
                f[3],
                DiskIo {
                    read_count: n(2),
                    read_merged_count: n(4),
                    read_bytes: n(5).saturating_mul(512),
                    read_time: n(6),
                    write_count: n(7),
                    write_merged_count: n(8),
                    write_bytes: n(9).saturating_mul(512),
                    write_time: n(10),
                    busy_time: n(12),
                },
            ),
            7 => (
                f[2],
                DiskIo {
                    read_count: n(3),
                    read_bytes: n(4).saturating_mul(512),
                    write_count: n(5),
                    write_bytes: n(6).saturating_mul(512),
                    ..DiskIo::default()
                },
            ),
            _ => continue,
        };
        out.insert(name.to_string(), io);
    }
    out
}

/// psutil's `net_io_counters(pernic=True)` for one interface.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct NetIo {
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub errin: u64,
    pub errout: u64,
    pub dropin: u64,
    pub dropout: u64,
}

/// `/proc/net/dev` (the gateway's network namespace).
pub fn net_dev(text: &str) -> BTreeMap<String, NetIo> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let f: Vec<u64> = rest
            .split_ascii_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if f.len() < 12 {
            continue;
        }
        out.insert(
            name.trim().to_string(),
            NetIo {
                bytes_recv: f[0],
                packets_recv: f[1],
                errin: f[2],
                dropin: f[3],
                bytes_sent: f[8],
                packets_sent: f[9],
                errout: f[10],
                dropout: f[11],
            },
        );
    }
    out
}

/// A mounted file system psutil's `disk_partitions()` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
}

/// The real file systems of `/proc/self/mounts`, as psutil's
/// `disk_partitions(all=False)` picks them: a device is named (not
/// `none`), and the type is one `/proc/filesystems` lists without
/// `nodev` (or zfs), so no pseudo, memory or network file system (whose
/// `statvfs` could hang) is among them. In the file's order.
pub fn mounts(mounts: &str, filesystems: &str) -> Vec<Mount> {
    let real: HashSet<&str> = filesystems
        .lines()
        .filter_map(|l| match l.split_once('\t') {
            Some(("nodev", t)) => (t.trim() == "zfs").then_some("zfs"),
            _ => Some(l.trim()),
        })
        .collect();
    mounts
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            let (device, point, fstype) = (w.next()?, w.next()?, w.next()?);
            (!device.is_empty() && device != "none" && real.contains(fstype)).then(|| Mount {
                device: unescape(device),
                mountpoint: unescape(point),
                fstype: fstype.to_string(),
            })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash in a mount field
/// as `\040`, `\011`, `\012` and `\134`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |a, c| a.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `used` as a percent of `total`, one decimal, as psutil rounds it; 0
/// for a total of 0.
pub fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (1000.0 * used as f64 / total as f64).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_reads_every_cpu_line_and_btime() {
        let (cpus, btime) = stat(
            "cpu  10 1 5 100 2 0 3 0 0 0\ncpu0 5 1 2 50 1 0 1 0 0 0\ncpu1 5 0 3 50 1 0 2 0 0 0\nintr 1 2\nbtime 1700000000\n",
        );
        assert_eq!(cpus.len(), 3);
        assert_eq!(cpus[0].t[..4], [10, 1, 5, 100]);
        assert_eq!(cpus[2].t[6], 2);
        assert_eq!(btime, Some(1_700_000_000));
        // An old kernel's shorter line: the missing fields are 0.
        let (old, _) = stat("cpu 1 2 3 4\n");
        assert_eq!(old[0].t, [1, 2, 3, 4, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn memory_is_computed_as_psutil_does() {
        let m = "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 50 kB\nCached: 300 kB\nSReclaimable: 50 kB\nShmem: 10 kB\nActive: 200 kB\nInactive: 300 kB\nSlab: 70 kB\nSwapTotal: 400 kB\nSwapFree: 300 kB\n";
        let m = meminfo(m);
        let v = virtual_memory(&m);
        assert_eq!(v.total, 1_024_000);
        assert_eq!(v.cached, 350 * 1024);
        assert_eq!(v.used, (1000 - 100 - 350 - 50) * 1024);
        assert_eq!(v.available, 600 * 1024);
        assert_eq!(v.percent, 40.0);
        assert_eq!((v.shared, v.slab), (10 * 1024, 70 * 1024));
        let s = swap_memory(&m, "pgfault 9\npswpin 3\npswpout 5\n");
        assert_eq!((s.used, s.percent), (100 * 1024, 25.0));
        assert_eq!((s.sin, s.sout), (3 * 4096, 5 * 4096));
        // No swap: 0 %, not a division by zero.
        assert_eq!(swap_memory(&meminfo(""), "").percent, 0.0);
    }

    #[test]
    fn disk_and_network_counters_are_in_bytes() {
        let d = diskstats(
            " 254 0 vda 10 2 80 7 20 3 160 9 0 11 16 0 0 0 0 0 0\n   7 0 loop0 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        );
        let vda = &d["vda"];
        assert_eq!((vda.read_count, vda.read_bytes), (10, 80 * 512));
        assert_eq!((vda.write_count, vda.write_bytes), (20, 160 * 512));
        assert_eq!((vda.read_time, vda.write_time, vda.busy_time), (7, 9, 11));
        assert!(d.contains_key("loop0"));
        let n = net_dev(
            "Inter-| Receive | Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n  eth0: 100 2 3 4 0 0 0 0 200 5 6 7 0 0 0 0\n",
        );
        let e = &n["eth0"];
        assert_eq!(
            (e.bytes_recv, e.packets_recv, e.errin, e.dropin),
            (100, 2, 3, 4)
        );
        assert_eq!(
            (e.bytes_sent, e.packets_sent, e.errout, e.dropout),
            (200, 5, 6, 7)
        );
    }

    #[test]
    fn only_real_file_systems_are_mounts_and_their_names_are_unescaped() {
        let fs = "nodev\tsysfs\nnodev\ttmpfs\n\text4\n\tvfat\nnodev\tzfs\n";
        let m = mounts(
            "proc /proc proc rw 0 0\n/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n/dev/sdb1 /mnt/my\\040disk vfat rw 0 0\nnone /x ext4 rw 0 0\npool/a /a zfs rw 0 0\n",
            fs,
        );
        let points: Vec<&str> = m.iter().map(|m| m.mountpoint.as_str()).collect();
        assert_eq!(points, ["/", "/mnt/my disk", "/a"]);
        assert_eq!(m[0].device, "/dev/vda");
        assert_eq!(unescape("a\\134b\\011c\\0"), "a\\b\tc\\0");
    }

    #[test]
    fn loadavg_needs_three_numbers() {
        assert_eq!(loadavg("0.5 1.25 2 1/200 42\n"), Some([0.5, 1.25, 2.0]));
        assert_eq!(loadavg("0.5 x"), None);
    }
}
