//! A private home per job, and the sweep of what a job left in the shared
//! temporary directories, so that a uid handed to a later job finds
//! nothing of the earlier one's files.
//!
//! Each per-job-uid job gets `HOME` = `TMPDIR` = a fresh directory
//! `<tmp>/monitoreo-<helper pid>-job-<id>` (0700, owned by the job's uid), created with
//! `mkdir` (which never follows a planted link) and chowned through its own
//! descriptor. When the job has drained, the directory is removed, and so
//! is every top-level entry of `/tmp`, `/var/tmp` and `/dev/shm` owned by
//! the job's uid. Both are removed with `remove_dir_all`, which does not
//! follow symbolic links.

use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::unistd::{fchown, Gid, Uid};

/// World-writable directories a job may have left files in.
const SHARED_TMP: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// Creates the job's private home under `base`. The name carries the
/// helper's pid, like the job's cgroup, so helpers sharing `/tmp` never
/// collide.
pub fn create(base: &Path, job_hex: &str, uid: u32) -> io::Result<PathBuf> {
    let dir = base.join(format!("monitoreo-{}-job-{job_hex}", std::process::id()));
    DirBuilder::new().mode(0o700).create(&dir)?;
    let fd = File::open(&dir)?;
    if !fd.metadata()?.is_dir() {
        return Err(io::Error::other("job home is not a directory"));
    }
    fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(uid))).map_err(io::Error::from)?;
    Ok(dir)
}

/// Removes the job homes under `base` left by a helper that is gone:
/// `monitoreo-<pid>-job-*` whose `<pid>` no longer runs.
pub fn remove_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        if left_by_a_gone_helper(&e.file_name()) {
            remove(&e.path());
        }
    }
}

/// Whether `name` is `monitoreo-<pid>-job-*` (a job's home or cgroup) of
/// a helper whose pid no longer runs.
pub fn left_by_a_gone_helper(name: &std::ffi::OsStr) -> bool {
    let owner = name
        .to_str()
        .and_then(|n| n.strip_prefix("monitoreo-"))
        .and_then(|n| n.split_once("-job-"))
        .and_then(|(pid, _)| pid.parse::<u32>().ok());
    match owner {
        Some(pid) => pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

/// Removes the job's home (after the job drained).
pub fn remove(dir: &Path) {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            crate::log::event(
                "job_error",
                &[(
                    "error",
                    serde_json::json!(format!("removing {}: {e}", dir.display())),
                )],
            );
        }
        _ => {}
    }
}

/// Removes every top-level entry of the shared temporary directories that
/// `uid` owns. Call only once nothing runs as `uid` any more.
pub fn sweep_tmp(uid: u32) {
    for base in SHARED_TMP {
        let Ok(entries) = fs::read_dir(base) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.uid() != uid {
                continue;
            }
            let r = if meta.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            if let Err(e) = r {
                crate::log::event(
                    "job_error",
                    &[(
                        "error",
                        serde_json::json!(format!("removing {}: {e}", path.display())),
                    )],
                );
            }
        }
    }
}
