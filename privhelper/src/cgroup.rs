//! Per-job cgroup v2 directories: the containment that makes a timeout
//! final. Every process a job forks — after `setsid`, a double fork, or
//! anything else — stays in the job's cgroup, and writing `1` to
//! `cgroup.kill` kills all of them at once.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the helper makes job cgroups, if it can.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    dir: PathBuf,
}

impl CgroupRoot {
    /// `explicit`, or the helper's own cgroup: the `0::` line of
    /// /proc/self/cgroup joined to the cgroup2 mount from mountinfo (on a
    /// hybrid host that mount is e.g. /sys/fs/cgroup/unified). Returns
    /// `None` when no writable cgroup v2 with `cgroup.kill` is found.
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
        has_kill.then_some(CgroupRoot { dir })
    }

    /// Creates the directory for one job.
    pub fn create(&self, name: &str) -> io::Result<JobCgroup> {
        let dir = self.dir.join(format!("monitoreo-job-{name}"));
        fs::create_dir(&dir)?;
        Ok(JobCgroup { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
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
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Kills every process in the cgroup.
    pub fn kill(&self) -> io::Result<()> {
        fs::write(self.dir.join("cgroup.kill"), b"1")
    }

    /// Kills what is left, waits (bounded) for the cgroup to empty and
    /// removes it.
    pub fn destroy(&self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let _ = self.kill();
            match fs::remove_dir(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}
