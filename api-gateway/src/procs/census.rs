//! Host-wide counts for `/metrics`: processes by state, and per real uid
//! the number of processes, their CPU seconds and their resident memory.
//!
//! One pass over `/proc/PID/stat` and `/proc/PID/status` of every process,
//! done only when a scrape asks. A process that exits during the pass is
//! left out; an unreadable `status` counts the process under its state
//! but under no user.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::parse;
use super::procfs::{list_pids, slurp, SysInfo};
use super::users::Table;

/// What one uid runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserUsage {
    /// The passwd name, or the uid in decimal.
    pub name: String,
    pub processes: u64,
    /// utime + stime of its live processes, in seconds.
    pub cpu_seconds: f64,
    /// Sum of the RSS of its live processes, in bytes.
    pub rss_bytes: u64,
}

/// The host at one instant.
#[derive(Debug, Clone, Default)]
pub struct Census {
    /// psutil's state name → number of processes.
    pub states: BTreeMap<&'static str, u64>,
    /// One entry per uid with a process, in no particular order.
    pub users: Vec<UserUsage>,
}

/// Processes by state and all their threads, for `/api/host`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct States {
    pub total: u64,
    pub running: u64,
    pub sleeping: u64,
    pub disk_sleep: u64,
    /// Stopped by a signal or by a tracer.
    pub stopped: u64,
    pub zombie: u64,
    pub idle: u64,
    /// In a state none of the above names (dead, parked, waking).
    pub other: u64,
    /// Threads of all of them.
    pub threads: u64,
}

/// Counts every process by state now: one read of each stat.
pub fn states() -> std::io::Result<States> {
    let mut s = States::default();
    let mut buf = vec![0u8; 4096];
    let mut path = String::with_capacity(32);
    for pid in list_pids()? {
        path.clear();
        let _ = write!(path, "/proc/{pid}/stat");
        let Ok(n) = slurp(&path, &mut buf) else {
            continue;
        };
        let Some(st) = parse::stat(&buf[..n]) else {
            continue;
        };
        s.total += 1;
        s.threads += st.num_threads;
        *match st.state {
            b'R' => &mut s.running,
            b'S' => &mut s.sleeping,
            b'D' => &mut s.disk_sleep,
            b'T' | b't' => &mut s.stopped,
            b'Z' => &mut s.zombie,
            b'I' => &mut s.idle,
            _ => &mut s.other,
        } += 1;
    }
    Ok(s)
}

/// Counts every process now.
pub fn take(sys: &SysInfo, users: &Table) -> std::io::Result<Census> {
    let mut census = Census::default();
    let mut by_uid: HashMap<u32, UserUsage> = HashMap::new();
    let mut buf = vec![0u8; 4096];
    let mut path = String::with_capacity(32);
    let hz = sys.hz.max(1) as f64;
    for pid in list_pids()? {
        path.clear();
        let _ = write!(path, "/proc/{pid}/stat");
        let Ok(n) = slurp(&path, &mut buf) else {
            continue;
        };
        let Some(st) = parse::stat(&buf[..n]) else {
            continue;
        };
        let (state, ticks, rss) = (st.state, st.utime + st.stime, st.rss * sys.page);
        *census.states.entry(parse::status_name(state)).or_default() += 1;
        path.clear();
        let _ = write!(path, "/proc/{pid}/status");
        let Some(uid) = slurp(&path, &mut buf)
            .ok()
            .and_then(|n| parse::real_uid(&buf[..n]))
        else {
            continue;
        };
        let u = by_uid.entry(uid).or_insert_with(|| UserUsage {
            name: users
                .name(uid)
                .map_or_else(|| uid.to_string(), str::to_string),
            ..UserUsage::default()
        });
        u.processes += 1;
        u.cpu_seconds += ticks as f64 / hz;
        u.rss_bytes += rss;
    }
    census.users = by_uid.into_values().collect();
    Ok(census)
}
