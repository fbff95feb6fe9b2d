//! Reading the private fields of one process, as the policy allows.
//!
//! Each process's directory is opened once (`O_PATH`) and every file is
//! opened relative to it, so all reads name one process; its start time
//! is read before and after, and an entry is made only when both agree
//! (a pid reused meanwhile, or a process that exited, is left out). The
//! owner is taken from `status` before any private file is opened, and
//! only the fields the policy allows for that owner are opened at all.
//!
//! What is opened: `stat`, `status`, `exe`, `cwd`, `io`, `fd/` and its
//! links, `smaps`, `ns/net` and `net/{tcp,tcp6,udp,udp6}`, each by a
//! name fixed in this file. Never `environ`, `mem`, `pagemap`, `auxv` or
//! anything else that shows memory contents: no request can name a file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};

use crate::net::NetTable;
use crate::policy::ReadPolicy;
use crate::wire::{field, Entry, MapGroup, OpenFile, Private, MAX_ENTRY};

/// Reads processes one after another for one request, keeping the
/// network tables of the namespaces it has met.
pub struct ProcWalker<'a> {
    policy: &'a ReadPolicy,
    asked: u8,
    buf: Vec<u8>,
    nets: HashMap<u64, NetTable>,
}

/// Room left in an entry for one process's lists (the rest is the fixed
/// part and bincode's lengths).
const BUDGET: usize = MAX_ENTRY - 64 * 1024;

impl<'a> ProcWalker<'a> {
    pub fn new(policy: &'a ReadPolicy, asked: u8) -> Self {
        ProcWalker {
            policy,
            asked: asked & field::ALL,
            buf: Vec::with_capacity(8192),
            nets: HashMap::new(),
        }
    }

    /// The entry of `pid`, or `None` if it is gone (or never was).
    pub fn entry(&mut self, pid: u32) -> Option<Entry> {
        let dir = nix::fcntl::open(
            format!("/proc/{pid}").as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let start_time = self.start_time(&dir)?;
        let uid = self.real_uid(&dir)?;
        let allowed = self.policy.allowed(uid, self.asked);
        let mut p = Private {
            refused: self.asked & !allowed,
            ..Private::default()
        };
        if allowed != 0 {
            self.fill(&dir, allowed, &mut p);
        }
        (self.start_time(&dir) == Some(start_time)).then_some(Entry {
            pid,
            start_time,
            private: p,
        })
    }

    fn fill(&mut self, dir: &OwnedFd, allowed: u8, p: &mut Private) {
        let has = |b| allowed & b != 0;
        let mut budget = BUDGET;
        let link = |name: &str| {
            readlinkat(dir.as_fd(), name)
                .ok()
                .map(OsStringExt::into_vec)
        };
        if has(field::EXE) {
            p.exe = link("exe");
        }
        if has(field::CWD) {
            p.cwd = link("cwd");
        }
        if has(field::IO_COUNTERS) {
            p.io_counters = self.read(dir, "io").map(|n| io(&self.buf[..n]));
        }
        if has(field::NUM_FDS | field::OPEN_FILES | field::CONNECTIONS) {
            self.fds(dir, allowed, p, &mut budget);
        }
        if has(field::MEMORY_MAPS) {
            if let Some(n) = self.read(dir, "smaps") {
                let mut groups = smaps_grouped(&self.buf[..n]);
                let mut used = 0;
                let keep = groups
                    .iter()
                    .take_while(|g| {
                        used += g.path.len() + 96;
                        used <= budget
                    })
                    .count();
                p.truncated |= keep < groups.len();
                groups.truncate(keep);
                p.memory_maps = Some(groups);
            }
        }
    }

    fn fds(&mut self, dir: &OwnedFd, allowed: u8, p: &mut Private, budget: &mut usize) {
        let Ok(fd) = openat(
            dir.as_fd(),
            "fd",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return;
        };
        let Ok(mut d) = nix::dir::Dir::from_fd(fd) else {
            return;
        };
        let mut fds: Vec<u32> = d
            .iter()
            .flatten()
            .filter_map(|e| {
                std::str::from_utf8(e.file_name().to_bytes())
                    .ok()?
                    .parse()
                    .ok()
            })
            .collect();
        fds.sort_unstable();
        if allowed & field::NUM_FDS != 0 {
            p.num_fds = Some(fds.len() as u64);
        }
        let (files, conns) = (
            allowed & field::OPEN_FILES != 0,
            allowed & field::CONNECTIONS != 0,
        );
        if !files && !conns {
            return;
        }
        let mut open_files = Vec::new();
        let mut connections = Vec::new();
        let mut path = String::with_capacity(32);
        for n in fds {
            path.clear();
            path.push_str("fd/");
            path.push_str(&n.to_string());
            let Ok(target) = readlinkat(dir.as_fd(), path.as_str()) else {
                continue;
            };
            let t = target.as_os_str().as_bytes();
            // psutil's rule: a path, to a regular file that still exists
            // (a deleted one's link ends in " (deleted)").
            if files && t.starts_with(b"/") && !t.ends_with(b" (deleted)") {
                let regular = fstatat(dir.as_fd(), path.as_str(), AtFlags::empty())
                    .is_ok_and(|m| m.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG);
                if regular {
                    if *budget < t.len() + 16 {
                        p.truncated = true;
                        continue;
                    }
                    *budget -= t.len() + 16;
                    open_files.push(OpenFile {
                        path: t.to_vec(),
                        fd: n,
                    });
                }
            } else if let Some(ino) = conns
                .then(|| t.strip_prefix(b"socket:[")?.strip_suffix(b"]"))
                .flatten()
                .and_then(|i| std::str::from_utf8(i).ok()?.parse::<u64>().ok())
            {
                if let Some(c) = self.net(dir).and_then(|t| t.get(ino, n)) {
                    if *budget < 64 {
                        p.truncated = true;
                        continue;
                    }
                    *budget -= 64;
                    connections.push(c);
                }
            }
        }
        if files {
            p.open_files = Some(open_files);
        }
        if conns {
            p.connections = Some(connections);
        }
    }

    /// The tables of the process's network namespace, read on first use.
    fn net(&mut self, dir: &OwnedFd) -> Option<&NetTable> {
        let ns = fstatat(dir.as_fd(), "ns/net", AtFlags::empty())
            .ok()?
            .st_ino;
        if !self.nets.contains_key(&ns) {
            let t = NetTable::load(|f| {
                let n = self.read(dir, &format!("net/{f}"))?;
                Some(self.buf[..n].to_vec())
            });
            self.nets.insert(ns, t);
        }
        self.nets.get(&ns)
    }

    /// Reads `name` under the process's directory into the buffer.
    fn read(&mut self, dir: &OwnedFd, name: &str) -> Option<usize> {
        let fd = openat(
            dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        read_all(File::from(fd), &mut self.buf).ok()
    }

    fn start_time(&mut self, dir: &OwnedFd) -> Option<u64> {
        let n = self.read(dir, "stat")?;
        let b = &self.buf[..n];
        let close = b.iter().rposition(|&c| c == b')')?;
        let rest = std::str::from_utf8(b.get(close + 2..)?).ok()?;
        // Field 22; `rest` starts at field 3.
        rest.split(' ').nth(19)?.parse().ok()
    }

    fn real_uid(&mut self, dir: &OwnedFd) -> Option<u32> {
        let n = self.read(dir, "status")?;
        let text = std::str::from_utf8(&self.buf[..n]).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("Uid:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

/// Reads a file whole into `buf` (grown as needed).
fn read_all(mut f: File, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    f.read_to_end(buf)
}

/// `/proc/PID/io`: syscr, syscw, read_bytes, write_bytes, rchar, wchar
/// (psutil's read_count, write_count, read_bytes, write_bytes,
/// read_chars, write_chars).
fn io(b: &[u8]) -> [u64; 6] {
    let mut v = [0u64; 6];
    for line in String::from_utf8_lossy(b).lines() {
        let Some((k, x)) = line.split_once(':') else {
            continue;
        };
        let i = match k {
            "syscr" => 0,
            "syscw" => 1,
            "read_bytes" => 2,
            "write_bytes" => 3,
            "rchar" => 4,
            "wchar" => 5,
            _ => continue,
        };
        v[i] = x.trim().parse().unwrap_or(0);
    }
    v
}

/// Groups `/proc/PID/smaps` by mapped path (an unnamed mapping is
/// `[anon]`), summing each size, as psutil's `memory_maps(grouped=True)`.
fn smaps_grouped(b: &[u8]) -> Vec<MapGroup> {
    const K: [&[u8]; 10] = [
        b"Rss",
        b"Size",
        b"Pss",
        b"Shared_Clean",
        b"Shared_Dirty",
        b"Private_Clean",
        b"Private_Dirty",
        b"Referenced",
        b"Anonymous",
        b"Swap",
    ];
    let mut groups: Vec<MapGroup> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut cur = None;
    for line in b.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let first = line.split(|&c| c == b' ').next().unwrap_or(b"");
        if let Some(key) = first.strip_suffix(b":") {
            if let (Some(g), Some(i)) = (cur, K.iter().position(|k| *k == key)) {
                let kb: u64 = std::str::from_utf8(&line[first.len()..])
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                let entry: &mut MapGroup = &mut groups[g];
                entry.sizes[i] += kb * 1024;
            }
            continue;
        }
        // A header: address perms offset dev inode [path].
        let mut rest = line;
        for _ in 0..5 {
            let p = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
            rest = rest[p..].trim_ascii_start();
        }
        // psutil names a deleted file's mapping by the file's old path.
        let path: &[u8] = match rest.trim_ascii_end() {
            b"" => b"[anon]",
            p => p.strip_suffix(b" (deleted)").unwrap_or(p),
        };
        cur = Some(*index.entry(path.to_vec()).or_insert_with(|| {
            groups.push(MapGroup {
                path: path.to_vec(),
                sizes: [0; 10],
            });
            groups.len() - 1
        }));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_are_grouped_by_path_in_bytes() {
        let smaps = b"00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\nRss:                   8 kB\nSize:                 16 kB\n00651000-00652000 rw-p 00051000 08:02 173521      /usr/bin/dbus-daemon\nRss:                   4 kB\nSwap:                  1 kB\n7fff0000-7fff1000 rw-p 00000000 00:00 0 \nAnonymous:             4 kB\n";
        let g = smaps_grouped(smaps);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].path, b"/usr/bin/dbus-daemon");
        assert_eq!(
            (g[0].sizes[0], g[0].sizes[1], g[0].sizes[9]),
            (12 * 1024, 16 * 1024, 1024)
        );
        assert_eq!(g[1].path, b"[anon]");
        assert_eq!(g[1].sizes[8], 4096);
    }

    #[test]
    fn io_names_are_psutils() {
        let v = io(b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 5\nwrite_bytes: 6\ncancelled_write_bytes: 7\n");
        assert_eq!(v, [3, 4, 5, 6, 1, 2]);
    }

    #[test]
    fn own_process_is_read_whole_when_allowed_and_refused_otherwise() {
        let me = std::process::id();
        let uid = nix::unistd::getuid().as_raw();
        let all = ReadPolicy::parse(
            &format!("[read]\nowners = [{uid}]\nfields = [\"exe\", \"cwd\", \"num_fds\", \"open_files\", \"io_counters\", \"memory_maps\"]\n"),
            "",
        )
        .unwrap();
        let e = ProcWalker::new(&all, field::ALL).entry(me).unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(e.private.exe.as_deref(), Some(exe.as_os_str().as_bytes()));
        assert_eq!(e.private.refused, field::CONNECTIONS);
        assert!(e.private.num_fds.unwrap() >= 3);
        assert!(e
            .private
            .memory_maps
            .unwrap()
            .iter()
            .any(|g| g.path == exe.as_os_str().as_bytes()));
        let none = ReadPolicy::default();
        let e = ProcWalker::new(&none, field::ALL).entry(me).unwrap();
        assert_eq!(
            e.private,
            Private {
                refused: field::ALL,
                ..Private::default()
            }
        );
        assert!(ProcWalker::new(&none, field::ALL).entry(u32::MAX).is_none());
    }
}
