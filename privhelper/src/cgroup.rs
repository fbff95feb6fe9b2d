//! Per-job cgroup v2 directories: the containment that makes a timeout
//! final, and the resource limits of a job. Every process a job forks —
//! after `setsid`, a double fork, or anything else — stays in the job's
//! cgroup, and writing `1` to `cgroup.kill` kills all of them at once.
//!
//! The helper never waits here: a killed cgroup is removed once its
//! `cgroup.events` says `populated 0`, which the server's poll loop watches
//! (`POLLPRI` on the open events file).

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Which cgroup v2 controllers the helper enabled for its job cgroups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Controllers {
    pub memory: bool,
    pub pids: bool,
    pub cpu: bool,
}

/// The limits to write into a new job cgroup (only for enabled controllers).
#[derive(Debug, Clone, Copy)]
pub struct CgroupLimits {
    pub memory_max: u64,
    pub pids_max: u64,
    /// `cpu.max` quota per 100 ms period, µs.
    pub cpu_quota_us: u64,
}

/// `cpu.max` period, µs.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Where the helper makes job cgroups, if it can.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    dir: PathBuf,
    controllers: Controllers,
}

impl CgroupRoot {
    /// `explicit`, or the helper's own cgroup: the `0::` line of
    /// /proc/self/cgroup joined to the cgroup2 mount from mountinfo (on a
    /// hybrid host that mount is e.g. /sys/fs/cgroup/unified). Returns
    /// `None` when no writable cgroup v2 with `cgroup.kill` is found.
    /// Enables the memory, pids and cpu controllers for job cgroups where
    /// the hierarchy offers them.
    pub fn discover(explicit: Option<&Path>) -> Option<CgroupRoot> {
        let dir = match explicit {
            Some(d) => d.to_path_buf(),
            None => {
                let mount = cgroup2_mount()?;
                let own = fs::read_to_string("/proc/self/cgroup").ok()?;
                let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
                mount.join(rel.trim_start_matches('/'))
            }
        };
        let probe = dir.join(format!("monitoreo-probe-{}", std::process::id()));
        fs::create_dir(&probe).ok()?;
        let has_kill = probe.join("cgroup.kill").exists();
        let _ = fs::remove_dir(&probe);
        if !has_kill {
            return None;
        }
        let controllers = enable_controllers(&dir);
        Some(CgroupRoot { dir, controllers })
    }

    /// Creates the directory for one job and writes the limits its
    /// controllers allow. The name carries the helper's pid, so helpers
    /// sharing a cgroup (tests, a restarted helper beside a draining one)
    /// never collide.
    pub fn create(&self, name: &str, limits: &CgroupLimits) -> io::Result<JobCgroup> {
        let dir = self
            .dir
            .join(format!("monitoreo-{}-job-{name}", std::process::id()));
        fs::create_dir(&dir)?;
        let cg = JobCgroup { dir };
        let c = self.controllers;
        let writes = [
            (c.memory, "memory.max", limits.memory_max.to_string()),
            (c.memory, "memory.swap.max", "0".to_string()),
            (c.pids, "pids.max", limits.pids_max.to_string()),
            (
                c.cpu,
                "cpu.max",
                format!("{} {CPU_PERIOD_US}", limits.cpu_quota_us),
            ),
        ];
        for (enabled, file, value) in writes {
            if !enabled {
                continue;
            }
            if let Err(e) = fs::write(cg.dir.join(file), value) {
                // memory.swap.max is absent without swap accounting.
                if file == "memory.swap.max" && e.kind() == io::ErrorKind::NotFound {
                    continue;
                }
                let _ = fs::remove_dir(&cg.dir);
                return Err(e);
            }
        }
        Ok(cg)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Kills and removes job cgroups left by a helper that is gone (a crash,
    /// a SIGKILL): `monitoreo-<pid>-job-*` whose `<pid>` no longer runs.
    /// Returns how many were removed; a cgroup still emptying is left for
    /// the next start.
    pub fn remove_stale(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            if !crate::home::left_by_a_gone_helper(&e.file_name()) {
                continue;
            }
            let cg = JobCgroup { dir: e.path() };
            let _ = cg.kill();
            if cg.remove().is_ok() {
                removed += 1;
            }
        }
        removed
    }

    pub fn controllers(&self) -> Controllers {
        self.controllers
    }
}

/// Enables `memory`, `pids` and `cpu` in `dir/cgroup.subtree_control` where
/// `dir/cgroup.controllers` offers them, and reports what is in force.
///
/// cgroup v2 forbids enabling domain controllers for the children of a
/// cgroup that holds processes itself (EBUSY); the helper then moves itself
/// into a leaf `dir/monitoreo-helper` first, as systemd's delegation
/// documentation advises.
fn enable_controllers(dir: &Path) -> Controllers {
    let offered = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<&str> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| offered.split_whitespace().any(|o| o == *c))
        .collect();
    if !wanted.is_empty() {
        let line = wanted
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        let control = dir.join("cgroup.subtree_control");
        if let Err(e) = fs::write(&control, &line) {
            if e.raw_os_error() == Some(libc::EBUSY) {
                let leaf = dir.join("monitoreo-helper");
                let moved =
                    match fs::create_dir(&leaf) {
                        Ok(()) => true,
                        Err(e) => e.kind() == io::ErrorKind::AlreadyExists,
                    } && fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())
                        .is_ok();
                if moved {
                    let _ = fs::write(&control, &line);
                }
            }
        }
    }
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let on = |c: &str| enabled.split_whitespace().any(|e| e == c);
    Controllers {
        memory: on("memory"),
        pids: on("pids"),
        cpu: on("cpu"),
    }
}

fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split_whitespace().next()? == "cgroup2")
            .then(|| pre.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// One job's cgroup.
#[derive(Debug)]
pub struct JobCgroup {
    dir: PathBuf,
}

impl JobCgroup {
    /// Path of `cgroup.procs`, which the child writes itself into.
    /// The directory's own name (`monitoreo-<pid>-job-<hex>`), which
    /// `/proc/PID/cgroup` shows for every process of the job.
    pub fn name(&self) -> Option<&str> {
        self.dir.file_name()?.to_str()
    }

    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Kills every process in the cgroup.
    pub fn kill(&self) -> io::Result<()> {
        fs::write(self.dir.join("cgroup.kill"), b"1")
    }

    /// (`cpu.stat` `usage_usec`, `memory.peak`) of the job so far; each
    /// `None` where the file is absent (no memory controller, old kernel).
    pub fn usage(&self) -> (Option<u64>, Option<u64>) {
        let cpu = fs::read_to_string(self.dir.join("cpu.stat"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse().ok())
            });
        let peak = fs::read_to_string(self.dir.join("memory.peak"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        (cpu, peak)
    }

    /// `cgroup.events`, opened for the poll loop: it raises `POLLPRI` when
    /// `populated` changes.
    pub fn open_events(&self) -> io::Result<File> {
        File::open(self.dir.join("cgroup.events"))
    }

    /// Removes the (empty) directory; one attempt, never a wait.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_dir(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Whether `cgroup.events` (read through `events`, which also re-arms its
/// `POLLPRI`) says processes remain.
pub fn populated(events: &File) -> io::Result<bool> {
    let mut buf = [0u8; 256];
    let n = events.read_at(&mut buf, 0)?;
    let text = String::from_utf8_lossy(&buf[..n]);
    Ok(!text.lines().any(|l| l.trim() == "populated 0"))
}
