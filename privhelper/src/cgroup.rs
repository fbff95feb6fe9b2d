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

use protocol::JobLimits;

/// Which cgroup v2 controllers the helper enabled for its job cgroups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Controllers {
    pub memory: bool,
    pub pids: bool,
    pub cpu: bool,
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
    let v1 = root.map(|r| r.v1.clone()).unwrap_or_default();
    let memory = match (v1.memory.is_some(), c.memory) {
        (true, _) => "cgroup v1 memory.limit_in_bytes",
        (false, true) => "cgroup v2 memory.max",
        (false, false) => "RLIMIT_AS per process",
    };
    let pids = match (v1.pids.is_some(), c.pids) {
        (true, _) => "cgroup v1 pids.max",
        (false, true) => "cgroup v2 pids.max",
        (false, false) => "RLIMIT_NPROC per job uid",
    };
    (memory, pids)
}

impl CgroupRoot {
    /// `explicit`, or the helper's own cgroup in the cgroup2 mount (on a
    /// hybrid host that mount is e.g. /sys/fs/cgroup/unified). Returns
    /// `None` when no writable cgroup v2 with `cgroup.kill` is found.
    /// Enables the memory, pids and cpu controllers for job cgroups where
    /// the hierarchy offers them, and takes the v1 `memory` and `pids`
    /// hierarchies for the limits it does not offer.
    pub fn discover(explicit: Option<&Path>) -> Option<CgroupRoot> {
        let dir = match explicit {
            Some(d) => d.to_path_buf(),
            None => own_group("cgroup2", None)?,
        };
        // A child group can be made there, and killed at once.
        probe(&dir).filter(|&has_kill| has_kill)?;
        let mut controllers = enable_controllers(&dir);
        let v1 = |in_v2: bool, name| {
            let dir = (!in_v2).then(|| own_group("cgroup", Some(name)))??;
            probe(&dir).map(|_| dir)
        };
        let v1 = V1 {
            memory: v1(controllers.memory, "memory"),
            pids: v1(controllers.pids, "pids"),
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

    /// Creates the directory for one job (and its groups in the v1
    /// hierarchies in use) with the cgroup limits of `limits`. The name
    /// carries the helper's pid, so helpers sharing a cgroup (tests, a
    /// restarted helper beside a draining one) never collide. A failure
    /// leaves nothing behind.
    pub fn create(&self, name: &str, limits: &JobLimits) -> io::Result<JobCgroup> {
        let name = format!("monitoreo-{}-job-{name}", std::process::id());
        let dir = self.dir.join(&name);
        fs::create_dir(&dir)?;
        let mut cg = JobCgroup { dir, v1: vec![] };
        let written = self.write_limits(&mut cg, &name, limits);
        if written.is_err() {
            let _ = cg.remove();
        }
        written.map(|()| cg)
    }

    /// Makes the job's v1 groups and writes each limit where it is held:
    /// in v1, `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` (no
    /// swap beyond it) and `pids.max`; in v2, `memory.max`,
    /// `memory.swap.max = 0`, `pids.max`, `cpu.max`. The swap files are
    /// absent without swap accounting, and then skipped.
    fn write_limits(&self, cg: &mut JobCgroup, name: &str, l: &JobLimits) -> io::Result<()> {
        let in_v1 = |base: &Option<PathBuf>| base.as_ref().map(|b| b.join(name));
        let (memory_v1, pids_v1) = (in_v1(&self.v1.memory), in_v1(&self.v1.pids));
        for dir in memory_v1.iter().chain(&pids_v1) {
            fs::create_dir(dir)?;
            cg.v1.push(dir.clone());
        }
        let (v2, mem1, pids1) = (Some(&cg.dir), memory_v1.as_ref(), pids_v1.as_ref());
        let (mem2, pids2) = (
            v2.filter(|_| mem1.is_none()),
            v2.filter(|_| pids1.is_none()),
        );
        let mem = l.cgroup_memory_max.map(|m| m.to_string());
        let pids = l.cgroup_pids_max.map(|p| p.to_string());
        let cpu = l.cgroup_cpu_max_us.map(|q| format!("{q} {CPU_PERIOD_US}"));
        let writes = [
            (mem1, "memory.limit_in_bytes", mem.clone()),
            (mem1, "memory.memsw.limit_in_bytes", mem.clone()),
            (pids1, "pids.max", pids.clone()),
            (mem2, "memory.max", mem.clone()),
            (mem2, "memory.swap.max", mem.map(|_| "0".to_string())),
            (pids2, "pids.max", pids),
            (v2, "cpu.max", cpu),
        ];
        for (dir, file, value) in writes {
            let (Some(dir), Some(value)) = (dir, value) else {
                continue;
            };
            match fs::write(dir.join(file), value) {
                Err(e) if file.contains("sw") && e.kind() == io::ErrorKind::NotFound => {}
                r => r?,
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
            let entries = fs::read_dir(base).into_iter().flatten().flatten();
            let stale = entries.filter(|e| crate::home::left_by_a_gone_helper(&e.file_name()));
            for dir in stale.map(|e| e.path()) {
                // Only the v2 group can be killed at once; v1 groups of
                // a gone helper are empty once its v2 ones are.
                if i == 0 {
                    let _ = fs::write(dir.join("cgroup.kill"), b"1");
                }
                removed += usize::from(fs::remove_dir(&dir).is_ok() && i == 0);
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
    let wanted: Vec<String> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| offered.split_whitespace().any(|o| o == *c))
        .map(|c| format!("+{c}"))
        .collect();
    let control = dir.join("cgroup.subtree_control");
    let line = wanted.join(" ");
    let busy = |r: io::Result<()>| r.is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY));
    if !wanted.is_empty() && busy(fs::write(&control, &line)) {
        let leaf = dir.join("monitoreo-helper");
        let made = fs::create_dir(&leaf).err();
        let made = made.map_or(true, |e| e.kind() == io::ErrorKind::AlreadyExists);
        let pid = std::process::id().to_string();
        if made && fs::write(leaf.join("cgroup.procs"), pid).is_ok() {
            let _ = fs::write(&control, &line);
        }
    }
    let enabled = fs::read_to_string(&control).unwrap_or_default();
    let on = |c: &str| enabled.split_whitespace().any(|e| e == c);
    Controllers {
        memory: on("memory"),
        pids: on("pids"),
        cpu: on("cpu"),
    }
}

/// The helper's own group in the hierarchy mounted as `fstype`: cgroup2
/// (`controller` `None`), or the v1 one of `controller`. Its path in
/// `/proc/self/cgroup` (the `0::` line, or the line listing the
/// controller), taken relative to the mount's root, under the mount point.
fn own_group(fstype: &str, controller: Option<&str>) -> Option<PathBuf> {
    let listed = |list: &str| list.split(',').any(|c| Some(c) == controller);
    let mount = crate::ns::mounts()
        .into_iter()
        .find(|m| m.fstype == fstype && (controller.is_none() || listed(&m.options)))?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let (id, rest) = l.split_once(':')?;
        let (list, path) = rest.split_once(':')?;
        let ours = controller.map_or(id == "0" && list.is_empty(), |_| listed(list));
        ours.then_some(path)
    })?;
    let rel = path.strip_prefix(mount.root.as_str()).unwrap_or(path);
    Some(mount.point.join(rel.trim_start_matches('/')))
}

/// Whether `dir` takes a new child group (made and removed at once): `None`
/// if not, else whether that group has `cgroup.kill`.
fn probe(dir: &Path) -> Option<bool> {
    let probe = dir.join(format!("monitoreo-probe-{}", std::process::id()));
    fs::create_dir(&probe).ok()?;
    let has_kill = probe.join("cgroup.kill").exists();
    let _ = fs::remove_dir(&probe);
    Some(has_kill)
}

/// One job's cgroup, and its groups in the v1 hierarchies in use.
#[derive(Debug)]
pub struct JobCgroup {
    dir: PathBuf,
    v1: Vec<PathBuf>,
}

impl JobCgroup {
    /// The directory's own name (`monitoreo-<pid>-job-<hex>`), which
    /// `/proc/PID/cgroup` shows for every process of the job.
    pub fn name(&self) -> Option<&str> {
        self.dir.file_name()?.to_str()
    }

    /// Every `cgroup.procs` the child writes itself into: the v2 one and
    /// those of its v1 groups.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        let dirs = std::iter::once(&self.dir).chain(&self.v1);
        dirs.map(|d| d.join("cgroup.procs")).collect()
    }

    /// Kills every process in the cgroup.
    pub fn kill(&self) -> io::Result<()> {
        fs::write(self.dir.join("cgroup.kill"), b"1")
    }

    /// (`cpu.stat` `usage_usec`, `memory.peak`) of the job so far; each
    /// `None` where the file is absent (no memory controller, old kernel).
    pub fn usage(&self) -> (Option<u64>, Option<u64>) {
        let stat = fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let usage = |l: &str| l.strip_prefix("usage_usec ")?.trim().parse().ok();
        let cpu = stat.lines().find_map(usage);
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
        let mut dirs = self.v1.iter().chain(std::iter::once(&self.dir));
        dirs.try_for_each(|dir| match fs::remove_dir(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
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
