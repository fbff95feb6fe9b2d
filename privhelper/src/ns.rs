//! A private world for each job with a uid of its own, as systemd's
//! `PrivateTmp=`, `PrivateIPC=` and `ProtectSystem=strict` give a service:
//! a new mount namespace in which every file system is read-only except a
//! fresh tmpfs over each world-writable directory of the host, and a new
//! IPC namespace (SysV shared memory, semaphores and message queues, POSIX
//! message queues). Both die with the job's last process, so nothing a job
//! leaves there reaches the next holder of its uid or any other job, and a
//! job cannot fill the host's disks beyond its output files.
//!
//! The world-writable directories are found, not listed: a walk from `/`
//! a few levels deep plus every mount point ([`discover`], at start and on
//! reload). One deeper than the walk goes is simply read-only to jobs,
//! like the rest of the tree.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::sys;

/// How deep the walk from `/` looks for world-writable directories.
const MAX_DEPTH: usize = 4;

/// At most this many directories are looked at by one walk.
const MAX_VISITS: usize = 50_000;

/// Trees the walk never enters: the kernel's own, whose world-writable
/// entries (if any) are not places a job can leave files in.
const SKIP: [&str; 2] = ["/proc", "/sys"];

/// The world-writable directories of the host, outermost only (one inside
/// another is hidden by the tmpfs over its parent).
pub fn discover() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut queue = VecDeque::from([(PathBuf::from("/"), 0usize)]);
    let mut visits = 0;
    while let Some((dir, depth)) = queue.pop_front() {
        visits += 1;
        if visits > MAX_VISITS {
            break;
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = e.path();
            if SKIP.iter().any(|s| path == Path::new(s)) {
                continue;
            }
            if world_writable(&path) {
                found.push(path);
            } else if depth + 1 < MAX_DEPTH {
                queue.push_back((path, depth + 1));
            }
        }
    }
    found.extend(
        mount_points()
            .into_iter()
            .filter(|m| !SKIP.iter().any(|s| m.starts_with(s)) && world_writable(m)),
    );
    outermost(found)
}

/// Enters a new mount and IPC namespace and makes the job's view: every
/// mount outside `/proc`, `/sys` and `/dev` read-only, then a fresh tmpfs
/// of at most `tmpfs_bytes` over each of `shared` (a new mqueue file system
/// over `/dev/mqueue`). Runs in the forked child, as root, before it drops
/// privilege; needs `CAP_SYS_ADMIN`.
pub fn enter(shared: &[PathBuf], tmpfs_bytes: u64) -> io::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC)?;
    // Nothing mounted here may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    for m in mount_points() {
        if ["/proc", "/sys", "/dev"].iter().any(|s| m.starts_with(s)) {
            continue;
        }
        let c = CString::new(m.as_os_str().as_bytes()).map_err(io::Error::other)?;
        match sys::set_read_only(&c) {
            // A mount hidden under another one cannot be reached anyway.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            r => r?,
        }
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let options = format!("mode=1777,size={tmpfs_bytes},nr_inodes=65536");
    for dir in shared {
        let r = if dir == Path::new("/dev/mqueue") {
            mount(
                Some("mqueue"),
                dir,
                Some("mqueue"),
                flags | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
        } else {
            mount(
                Some("tmpfs"),
                dir,
                Some("tmpfs"),
                flags,
                Some(options.as_str()),
            )
        };
        match r {
            // Removed since it was found: nothing to cover.
            Err(nix::errno::Errno::ENOENT) => {}
            r => r?,
        }
    }
    Ok(())
}

fn world_writable(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o002 != 0)
}

/// Every mount point of this mount namespace (`/proc/self/mountinfo`,
/// field 5, with its octal escapes undone).
fn mount_points() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(p))))
        .collect()
}

/// Undoes mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (b[i], octal) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `dirs` without duplicates and without any directory inside another.
fn outermost(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.sort();
    dirs.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for d in dirs {
        if !out.iter().any(|o| d.starts_with(o)) {
            out.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/mnt/a\040b\134c"), b"/mnt/a b\\c");
        assert_eq!(unescape(r"/x\0"), b"/x\\0");
    }

    #[test]
    fn only_the_outermost_directories_are_kept() {
        let got = outermost(vec![
            "/tmp/a".into(),
            "/var/tmp".into(),
            "/tmp".into(),
            "/tmp".into(),
            "/tmpx".into(),
        ]);
        let want: Vec<PathBuf> = vec!["/tmp".into(), "/tmpx".into(), "/var/tmp".into()];
        assert_eq!(got, want);
    }

    #[test]
    fn the_hosts_tmp_is_found() {
        let dirs = discover();
        // Every Linux host this runs on has a world-writable /tmp.
        assert!(dirs.contains(&PathBuf::from("/tmp")), "{dirs:?}");
        assert!(dirs.iter().all(|d| world_writable(d)), "{dirs:?}");
    }
}
