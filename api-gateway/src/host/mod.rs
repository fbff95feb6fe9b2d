//! The host itself, for `GET /api/host`: psutil's system-wide figures
//! under psutil's names and units (`virtual_memory`, `swap_memory`,
//! `cpu_percent`, `cpu_times_percent`, `getloadavg`, `disk_usage`,
//! `disk_io_counters`, `net_io_counters`, …), read from `/proc`, `/sys`
//! and `statvfs` when a request asks, never in the background.
//!
//! - `parse.rs` — pure parsers of the files, with psutil's arithmetic.
//! - `cpu.rs` — the CPU sample: two reads of `/proc/stat` a stated
//!   window apart, the first the latest any request made.
//!
//! What the gateway's namespaces decide: `net_io_counters` are its
//! network namespace's interfaces, `disk_usage` its mount namespace's
//! real file systems, `hostname` its UTS namespace's (under the packaged
//! units, the host's).

pub mod cpu;
pub mod parse;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

pub use cpu::{Cpu, CpuPercent, Start};
use parse::{DiskIo, NetIo, SwapMemory, VirtualMemory};

use crate::procs::States;

/// `cpu_count`: logical CPUs online, and physical cores (`null` when
/// `/sys` does not say).
#[derive(Debug, Clone, Serialize)]
pub struct CpuCount {
    pub logical: usize,
    pub physical: Option<usize>,
}

/// One real mounted file system and its `disk_usage`, bytes; `free` and
/// `percent` are what an unprivileged user may still use, as psutil
/// (and `df`) count them.
#[derive(Debug, Clone, Serialize)]
pub struct DiskUsage {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub percent: f64,
}

/// Everything but the CPU figures, read at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub hostname: String,
    pub kernel: String,
    pub boot_time: u64,
    pub uptime: f64,
    pub cpu_count: CpuCount,
    pub virtual_memory: VirtualMemory,
    pub swap_memory: SwapMemory,
    pub getloadavg: [f64; 3],
    pub processes: States,
    pub disk_usage: Vec<DiskUsage>,
    pub disk_io_counters: BTreeMap<String, DiskIo>,
    pub net_io_counters: BTreeMap<String, NetIo>,
}

fn read(path: &str) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

impl Snapshot {
    /// Reads it all now (blocking: a walk of every process's stat, and a
    /// `statvfs` per real file system).
    pub fn take() -> std::io::Result<Snapshot> {
        let stat = read("/proc/stat")?;
        let (cpus, btime) = parse::stat(&stat);
        let mem = read("/proc/meminfo")?;
        let mem = parse::meminfo(&mem);
        let vmstat = read("/proc/vmstat").unwrap_or_default();
        let uptime = read("/proc/uptime")?
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let getloadavg = parse::loadavg(&read("/proc/loadavg")?).unwrap_or_default();
        let mounts = parse::mounts(
            &read("/proc/self/mounts")?,
            &read("/proc/filesystems").unwrap_or_default(),
        );
        Ok(Snapshot {
            hostname: read("/proc/sys/kernel/hostname")?.trim_end().to_string(),
            kernel: read("/proc/sys/kernel/osrelease")?.trim_end().to_string(),
            boot_time: btime.unwrap_or(0),
            uptime,
            cpu_count: CpuCount {
                logical: cpus.len().saturating_sub(1),
                physical: physical_cores(),
            },
            virtual_memory: parse::virtual_memory(&mem),
            swap_memory: parse::swap_memory(&mem, &vmstat),
            getloadavg,
            processes: crate::procs::states()?,
            disk_usage: mounts.into_iter().filter_map(usage).collect(),
            disk_io_counters: parse::diskstats(&read("/proc/diskstats").unwrap_or_default()),
            net_io_counters: parse::net_dev(&read("/proc/net/dev").unwrap_or_default()),
        })
    }
}

/// psutil's `disk_usage` of one mount; `None` when `statvfs` fails (a
/// mount the gateway's user may not reach is left out, not an error).
fn usage(mut m: parse::Mount) -> Option<DiskUsage> {
    if matches!(m.device.as_str(), "/dev/root" | "rootfs") {
        m.device = root_device().unwrap_or(m.device);
    }
    let st = nix::sys::statvfs::statvfs(m.mountpoint.as_str()).ok()?;
    let frsize = st.fragment_size();
    let total = st.blocks().saturating_mul(frsize);
    let free_root = st.blocks_free().saturating_mul(frsize);
    let free = st.blocks_available().saturating_mul(frsize);
    let used = total.saturating_sub(free_root);
    Some(DiskUsage {
        device: m.device,
        mountpoint: m.mountpoint,
        fstype: m.fstype,
        total,
        used,
        free,
        percent: parse::percent(used, used + free),
    })
}

/// The device `/` is on, as psutil names a root mounted as `/dev/root`
/// or `rootfs`: `/dev/` and the `DEVNAME` of its block device in `/sys`.
fn root_device() -> Option<String> {
    use nix::sys::stat::{major, minor, stat};
    let dev = stat("/").ok()?.st_dev;
    let uevent = read(&format!(
        "/sys/dev/block/{}:{}/uevent",
        major(dev),
        minor(dev)
    ))
    .ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(format!("/dev/{name}"))
}

/// Physical cores as psutil counts them: distinct `core_cpus_list` (or
/// `thread_siblings_list`) of the CPUs in `/sys`.
fn physical_cores() -> Option<usize> {
    let cpus = std::fs::read_dir("/sys/devices/system/cpu").ok()?;
    let mut lists = std::collections::HashSet::new();
    for e in cpus.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let numbered = name
            .strip_prefix("cpu")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !numbered {
            continue;
        }
        let topo = e.path().join("topology");
        if let Ok(l) = read(&topo.join("core_cpus_list").to_string_lossy())
            .or_else(|_| read(&topo.join("thread_siblings_list").to_string_lossy()))
        {
            lists.insert(l.trim().to_string());
        }
    }
    (!lists.is_empty()).then_some(lists.len())
}

/// The longest `interval` a request may ask for.
pub const MAX_INTERVAL: Duration = Duration::from_secs(10);
