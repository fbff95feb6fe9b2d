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
    for _ in 0..MAX_VISITS {
        let Some((dir, depth)) = queue.pop_front() else {
            break;
        };
        let entries = fs::read_dir(&dir).into_iter().flatten().flatten();
        let dirs = entries.filter(|e| e.file_type().is_ok_and(|t| t.is_dir()));
        let paths = dirs.map(|e| e.path());
        for path in paths.filter(|p| !SKIP.iter().any(|s| p == Path::new(s))) {
            if world_writable(&path) {
                found.push(path);
            } else if depth + 1 < MAX_DEPTH {
                queue.push_back((path, depth + 1));
            }
        }
    }
    let points = mounts().into_iter().map(|m| m.point);
    found.extend(points.filter(|m| !SKIP.iter().any(|s| m.starts_with(s)) && world_writable(m)));
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
    let (none, private) = (None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE);
    mount(none, "/", none, private, none)?;
    let points = mounts().into_iter().map(|m| m.point);
    for m in points.filter(|m| !["/proc", "/sys", "/dev"].iter().any(|s| m.starts_with(s))) {
        let c = CString::new(m.as_os_str().as_bytes()).map_err(io::Error::other)?;
        match sys::set_read_only(&c) {
            // A mount hidden under another one cannot be reached anyway.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            r => r?,
        }
    }
    let tmpfs = format!("mode=1777,size={tmpfs_bytes},nr_inodes=65536");
    for dir in shared {
        let (fstype, data, noexec) = if dir == Path::new("/dev/mqueue") {
            ("mqueue", None, MsFlags::MS_NOEXEC)
        } else {
            ("tmpfs", Some(tmpfs.as_str()), MsFlags::empty())
        };
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | noexec;
        match mount(Some(fstype), dir, Some(fstype), flags, data) {
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

/// One line of `/proc/self/mountinfo`: the mount's root within its file
/// system (field 4), its mount point (field 5, with its octal escapes
/// undone), and after the separator its file system type and super options.
/// The one reader of mountinfo: `cgroup` finds its hierarchies here.
pub struct Mount {
    pub root: String,
    pub point: PathBuf,
    pub fstype: String,
    pub options: String,
}

/// Every mount of this mount namespace.
pub fn mounts() -> Vec<Mount> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mount = |line: &str| {
        let (pre, post) = line.split_once(" - ")?;
        let (pre, post): (Vec<&str>, Vec<&str>) =
            (pre.split(' ').collect(), post.split(' ').collect());
        Some(Mount {
            root: pre.get(3)?.to_string(),
            point: PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(pre.get(4)?))),
            fstype: post.first()?.to_string(),
            options: post.get(2)?.to_string(),
        })
    };
    text.lines().filter_map(mount).collect()
}

/// Undoes mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        let octal = tail.get(..3).and_then(|d| std::str::from_utf8(d).ok());
        let (byte, skip) = match octal.and_then(|d| u8::from_str_radix(d, 8).ok()) {
            Some(o) if c == b'\\' => (o, 3),
            _ => (c, 0),
        };
        out.push(byte);
        rest = &tail[skip..];
    }
    out
}

/// `dirs` without duplicates and without any directory inside another:
/// sorted by components, a directory's subtree follows it at once.
fn outermost(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.sort();
    dirs.dedup_by(|d, kept| d.starts_with(kept));
    dirs
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
