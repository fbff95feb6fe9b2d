//! A private home per job, and the sweep of what a job left in the shared
//! temporary directories, so that a uid handed to a later job finds
//! nothing of the earlier one's files.
//!
//! Each per-job-uid job gets `HOME` = `TMPDIR` = a fresh directory
//! `<tmp>/monitoreo-<helper pid>-job-<id>` (0700), which the job's child
//! creates with `mkdir` once it runs as the job's uid (a name planted by
//! anyone else makes the start fail instead of being used). When the job
//! has drained, a cleaner process running as that uid removes the home
//! and every top-level entry of `/tmp`, `/var/tmp` and `/dev/shm` the uid
//! owns (`remove_dir_all` does not follow symbolic links); only then is
//! the uid handed out again. The helper itself needs neither CAP_CHOWN
//! nor CAP_FOWNER for any of it.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use crate::sys;

/// World-writable directories a job may have left files in.
const SHARED_TMP: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// The private home of a job under `base`. The name carries the helper's
/// pid, like the job's cgroup, so helpers sharing `/tmp` never collide.
pub fn path(base: &Path, job_hex: &str) -> PathBuf {
    base.join(format!("monitoreo-{}-job-{job_hex}", std::process::id()))
}

/// Starts the cleaner of a uid whose job has drained: a child that takes
/// the uid (so it needs no privilege over the files and can touch nothing
/// else), removes the job's home and every top-level entry the uid owns in
/// the shared temporary directories, and exits. Returns its pid and a
/// pidfd that becomes readable when it is done.
pub fn clean_as(uid: u32, home: Option<&Path>) -> io::Result<(i32, OwnedFd)> {
    let home = home.map(Path::to_path_buf);
    let pid = sys::fork()?;
    if pid == 0 {
        let id = Uid::from_raw(uid);
        let gid = Gid::from_raw(uid);
        let dropped = setgroups(&[]).is_ok()
            && setresgid(gid, gid, gid).is_ok()
            && setresuid(id, id, id).is_ok()
            && !nix::unistd::geteuid().is_root();
        if !dropped {
            sys::exit_child(1);
        }
        if let Some(h) = &home {
            let _ = fs::remove_dir_all(h);
        }
        sweep_tmp(uid);
        sys::exit_child(0);
    }
    match sys::pidfd_open(pid, 0) {
        Ok(fd) => Ok((pid, fd)),
        Err(e) => {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            Err(e)
        }
    }
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
/// `uid` owns. Runs in the cleaner, as `uid`, once nothing else does.
fn sweep_tmp(uid: u32) {
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
            // The cleaner cannot report; what it could not remove (a
            // directory the job made unreadable to itself) stays.
            let _ = r;
        }
    }
}
