//! Per-job cgroup v2 directories: the containment that makes a timeout
//! final, and the resource limits of a job. Every process a job forks —
//! after `setsid`, a double fork, or anything else — stays in the job's
//! cgroup, and writing `1` to `cgroup.kill` kills all of them at once.
//!
//! The helper never waits here: a killed cgroup is removed once its
//! `cgroup.events` says `populated 0`, which the server's poll loop watches
//! (`POLLPRI` on the open events file).
//!
//! On a hybrid host the v2 hierarchy has no controllers (they are bound to
//! the v1 hierarchies): containment and `cgroup.kill` stay v2, and a job's
//! memory and process limits go into a group of its own in the v1
//! `memory` and `pids` hierarchies (`V1`), joined by the child with the v2
//! one and removed with it. The v1 memory controller charges tmpfs and
//! shared memory to the group of the process that touched them, as v2
//! does.

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
    v1: V1,
}

/// The helper's own groups in the v1 `memory` and `pids` hierarchies, used
/// for the limits the v2 hierarchy cannot hold (`None`: not used).
#[derive(Debug, Clone, Default)]
pub struct V1 {
    pub memory: Option<PathBuf>,
    pub pids: Option<PathBuf>,
}

/// Which mechanism holds a job's memory and process-count limits, for the
/// start line and `--check`.
pub fn mechanisms(root: Option<&CgroupRoot>) -> (&'static str, &'static str) {
    let c = root.map(CgroupRoot::controllers).unwrap_or_default();
    let v1 = root.map(|r| &r.v1);
    let memory = if v1.is_some_and(|v| v.memory.is_some()) {
        "cgroup v1 memory.limit_in_bytes"
    } else if c.memory {
        "cgroup v2 memory.max"
    } else {
        "RLIMIT_AS per process"
    };
    let pids = if v1.is_some_and(|v| v.pids.is_some()) {
        "cgroup v1 pids.max"
    } else if c.pids {
        "cgroup v2 pids.max"
    } else {
        "RLIMIT_NPROC per job uid"
    };
    (memory, pids)
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
        let mut controllers = enable_controllers(&dir);
        let v1 = V1 {
            memory: (!controllers.memory).then(|| v1_dir("memory")).flatten(),
            pids: (!controllers.pids).then(|| v1_dir("pids")).flatten(),
        };
        // A limit held in v1 is reported like its v2 form.
        controllers.memory |= v1.memory.is_some();
        controllers.pids |= v1.pids.is_some();
        Some(CgroupRoot {
            dir,
            controllers,
            v1,
        })
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
        let mut cg = JobCgroup {
            dir,
            v1: Vec::new(),
        };
        if let Err(e) = self.create_v1(&mut cg, name, limits) {
            let _ = cg.remove();
            return Err(e);
        }
        let c = Controllers {
            memory: self.controllers.memory && self.v1.memory.is_none(),
            pids: self.controllers.pids && self.v1.pids.is_none(),
            ..self.controllers
        };
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
                let _ = cg.remove();
                return Err(e);
            }
        }
        Ok(cg)
    }

    /// The job's groups in the v1 hierarchies in use, with their limits:
    /// `memory.limit_in_bytes`, then `memory.memsw.limit_in_bytes` (no
    /// swap beyond it, where swap is accounted), and `pids.max`.
    fn create_v1(&self, cg: &mut JobCgroup, name: &str, limits: &CgroupLimits) -> io::Result<()> {
        let job = format!("monitoreo-{}-job-{name}", std::process::id());
        let memory = limits.memory_max.to_string();
        let plans = [
            (
                &self.v1.memory,
                vec![
                    ("memory.limit_in_bytes", memory.clone()),
                    ("memory.memsw.limit_in_bytes", memory),
                ],
            ),
            (
                &self.v1.pids,
                vec![("pids.max", limits.pids_max.to_string())],
            ),
        ];
        for (base, writes) in plans {
            let Some(base) = base else { continue };
            let dir = base.join(&job);
            fs::create_dir(&dir)?;
            cg.v1.push(dir.clone());
            for (file, value) in writes {
                match fs::write(dir.join(file), value) {
                    // memsw is absent without swap accounting.
                    Err(e) if file.contains("memsw") && e.kind() == io::ErrorKind::NotFound => {}
                    r => r?,
                }
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Kills and removes job cgroups left by a helper that is gone (a crash,
    /// a SIGKILL): `monitoreo-<pid>-job-*` whose `<pid>` no longer runs.
    /// Returns how many were removed; a cgroup still emptying is left for
    /// the next start.
    pub fn remove_stale(&self) -> usize {
        let mut removed = 0;
        let v1 = [&self.v1.memory, &self.v1.pids].into_iter().flatten();
        for (i, base) in std::iter::once(&self.dir).chain(v1).enumerate() {
            let Ok(entries) = fs::read_dir(base) else {
                continue;
            };
            for e in entries.flatten() {
                if !crate::home::left_by_a_gone_helper(&e.file_name()) {
                    continue;
                }
                let cg = JobCgroup {
                    dir: e.path(),
                    v1: Vec::new(),
                };
                // Only the v2 group can be killed at once; v1 groups of
                // a gone helper are empty once its v2 ones are.
                if i == 0 {
                    let _ = cg.kill();
                }
                if cg.remove().is_ok() && i == 0 {
                    removed += 1;
                }
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

/// The helper's own group in the v1 hierarchy of `controller`, if that
/// hierarchy is mounted and takes a new child group (probed).
fn v1_dir(controller: &str) -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (root, mount) = info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split_whitespace();
        let v1 = post.next()? == "cgroup" && post.nth(1)?.split(',').any(|o| o == controller);
        let mut pre = pre.split_whitespace();
        v1.then(|| Some((pre.nth(3)?.to_string(), PathBuf::from(pre.next()?))))
            .flatten()
    })?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, list, path) = (f.next()?, f.next()?, f.next()?);
        list.split(',').any(|c| c == controller).then_some(path)
    })?;
    let rel = path.strip_prefix(root.as_str()).unwrap_or(path);
    let dir = mount.join(rel.trim_start_matches('/'));
    let probe = dir.join(format!("monitoreo-probe-{}", std::process::id()));
    fs::create_dir(&probe).ok()?;
    let _ = fs::remove_dir(&probe);
    Some(dir)
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

/// One job's cgroup, and its groups in the v1 hierarchies in use.
#[derive(Debug)]
pub struct JobCgroup {
    dir: PathBuf,
    v1: Vec<PathBuf>,
}

impl JobCgroup {
    /// Path of `cgroup.procs`, which the child writes itself into.
    /// The directory's own name (`monitoreo-<pid>-job-<hex>`), which
    /// `/proc/PID/cgroup` shows for every process of the job.
    pub fn name(&self) -> Option<&str> {
        self.dir.file_name()?.to_str()
    }

    /// Every `cgroup.procs` the child writes itself into: the v2 one and
    /// those of its v1 groups.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        std::iter::once(&self.dir)
            .chain(&self.v1)
            .map(|d| d.join("cgroup.procs"))
            .collect()
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
        let peak = std::iter::once(self.dir.join("memory.peak"))
            .chain(self.v1.iter().map(|d| d.join("memory.max_usage_in_bytes")))
            .find_map(|f| fs::read_to_string(f).ok()?.trim().parse().ok());
        (cpu, peak)
    }

    /// `cgroup.events`, opened for the poll loop: it raises `POLLPRI` when
    /// `populated` changes.
    pub fn open_events(&self) -> io::Result<File> {
        File::open(self.dir.join("cgroup.events"))
    }

    /// Removes the (empty) directories, v1 ones first; one attempt each,
    /// never a wait. The first failure is the answer (the drain retries).
    pub fn remove(&self) -> io::Result<()> {
        for dir in self.v1.iter().chain(std::iter::once(&self.dir)) {
            match fs::remove_dir(dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
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
