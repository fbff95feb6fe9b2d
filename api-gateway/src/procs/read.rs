//! Reading one process from /proc and writing it as a JSON object.
//!
//! The approach is the floor's: plain open/read/close of each /proc file
//! into one reused buffer, a short read taken as end of file for the
//! single-record files, and only the files the requested fields need.
//!
//! Guarantees:
//! - a field whose file the kernel refuses (EACCES/EPERM: another user's
//!   process) is `null`, the rest of the object is still served;
//! - a process that disappears while being read (ENOENT/ESRCH, then its
//!   stat gone or its start time changed) is dropped whole, never half
//!   written;
//! - `environ` is never opened.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::fields::{Field, Fields};
use super::json::{self, key};
use super::net::NetTable;
use super::parse;
use super::procfs::{read_into, SysInfo};
use super::sampler::{Cpu, Key};
use super::users::Table;
use crate::ids::Pid;

/// A value to sort processes by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortVal {
    Num(f64),
    Str(Vec<u8>),
    Null,
}

/// What to read and write for each process.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Fields written.
    pub emit: Fields,
    /// Fields read (emit plus the sort field).
    pub need: Fields,
    /// Only this real uid.
    pub uid: Option<u32>,
    pub sort: Option<Field>,
}

/// Result of reading one process.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Written,
    /// Left out by the uid filter.
    Filtered,
    /// Exited (or never existed).
    Gone,
}

/// Reads processes one after another, reusing its buffers.
pub struct Walker<'a> {
    pub sys: &'a SysInfo,
    pub users: &'a Table,
    pub cpu: Cpu<'a>,
    pub net: Option<&'a NetTable>,
    /// When set, every process read appends its utime+stime here (the
    /// listing is then kept as the next listings' CPU baseline).
    pub seen: Option<Vec<(Key, u64)>>,
    /// Sort value of the last process written.
    pub key: SortVal,
    buf: Vec<u8>,
    path: String,
    dir: usize,
    gone: bool,
}

impl<'a> Walker<'a> {
    pub fn new(
        sys: &'a SysInfo,
        users: &'a Table,
        cpu: Cpu<'a>,
        net: Option<&'a NetTable>,
    ) -> Self {
        Walker {
            sys,
            users,
            cpu,
            net,
            seen: None,
            key: SortVal::Null,
            // Grown by the first read (8 KiB, then doubled as needed).
            buf: Vec::new(),
            path: String::with_capacity(64),
            dir: 0,
            gone: false,
        }
    }

    fn at(&mut self, file: &str) -> &str {
        self.path.truncate(self.dir);
        self.path.push_str(file);
        &self.path
    }

    fn note(&mut self, e: &io::Error) {
        if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ESRCH) {
            self.gone = true;
        }
    }

    fn read(&mut self, file: &str) -> Option<usize> {
        self.path.truncate(self.dir);
        self.path.push_str(file);
        match read_into(&self.path, &mut self.buf, file != "smaps") {
            Ok(n) => Some(n),
            Err(e) => {
                self.note(&e);
                None
            }
        }
    }

    fn link(&mut self, file: &str) -> Option<Vec<u8>> {
        let r = fs::read_link(self.at(file));
        match r {
            Ok(p) => Some(p.into_os_string().into_vec()),
            Err(e) => {
                self.note(&e);
                None
            }
        }
    }

    /// Start time of `pid` (stat field 22), `None` if it is not there.
    pub fn start_time(&mut self, pid: Pid) -> Option<u64> {
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/");
        self.dir = self.path.len();
        let n = self.read("stat")?;
        parse::stat(&self.buf[..n]).map(|s| s.start_time)
    }

    /// Real uid of `pid`, `None` if unreadable.
    pub fn real_uid(&mut self, pid: Pid) -> Option<u32> {
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/");
        self.dir = self.path.len();
        let n = self.read("status")?;
        parse::real_uid(&self.buf[..n])
    }

    /// Appends `pid` as a JSON object to `out` (or nothing, see [`Outcome`]).
    pub fn process(&mut self, pid: Pid, plan: &Plan, out: &mut Vec<u8>) -> Outcome {
        use Field as F;
        let mark = out.len();
        let (emit, need) = (plan.emit, plan.need);
        self.gone = false;
        self.key = SortVal::Null;
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/");
        self.dir = self.path.len();

        // ---- stat: always (existence, start time)
        let Some(n) = self.read("stat") else {
            return Outcome::Gone;
        };
        let Some(st) = parse::stat(&self.buf[..n]) else {
            return Outcome::Gone;
        };
        let (hz, page, start) = (self.sys.hz, self.sys.page, st.start_time);
        let ticks = st.utime + st.stime;
        if let Some(seen) = &mut self.seen {
            seen.push(((pid, start), ticks));
        }
        let cpu_pct = self.cpu.percent(&(pid, start), ticks);
        let rss = st.rss * page;
        let mem_pct = if self.sys.mem_total > 0 {
            100.0 * rss as f64 / self.sys.mem_total as f64
        } else {
            0.0
        };
        out.extend_from_slice(b"{\"pid\":");
        json::int(out, i64::from(pid.get()));
        if emit.has(F::Ppid) {
            key(out, F::Ppid.name());
            json::int(out, st.ppid);
        }
        if emit.has(F::Name) {
            key(out, F::Name.name());
            json::string(out, st.comm);
        }
        if emit.has(F::Status) {
            key(out, F::Status.name());
            json::string(out, parse::status_name(st.state).as_bytes());
        }
        let tty = if need.has(F::Terminal) {
            parse::tty_name(st.tty_nr)
        } else {
            None
        };
        if emit.has(F::Terminal) {
            key(out, F::Terminal.name());
            match &tty {
                Some(t) => json::string(out, t.as_bytes()),
                None => out.extend_from_slice(b"null"),
            }
        }
        if emit.has(F::Nice) {
            key(out, F::Nice.name());
            json::int(out, st.nice);
        }
        if emit.has(F::NumThreads) {
            key(out, F::NumThreads.name());
            json::uint(out, st.num_threads);
        }
        if emit.has(F::CpuNum) {
            key(out, F::CpuNum.name());
            json::int(out, st.processor);
        }
        if emit.has(F::StartTime) {
            key(out, F::StartTime.name());
            json::uint(out, start);
        }
        if emit.has(F::CreateTime) {
            key(out, F::CreateTime.name());
            json::ticks(out, self.sys.btime * hz + start, hz);
        }
        if emit.has(F::CpuTimes) {
            key(out, F::CpuTimes.name());
            for (i, (k, v)) in [
                ("user", st.utime),
                ("system", st.stime),
                ("children_user", st.cutime),
                ("children_system", st.cstime),
                ("iowait", st.iowait),
            ]
            .into_iter()
            .enumerate()
            {
                out.extend_from_slice(if i == 0 { b"{\"" } else { b",\"" });
                out.extend_from_slice(k.as_bytes());
                out.extend_from_slice(b"\":");
                json::ticks(out, v, hz);
            }
            out.push(b'}');
        }
        if emit.has(F::CpuPercent) {
            key(out, F::CpuPercent.name());
            json::float(out, (cpu_pct * 100.0).round() / 100.0);
        }
        if emit.has(F::MemoryPercent) {
            key(out, F::MemoryPercent.name());
            json::float(out, (mem_pct * 10_000.0).round() / 10_000.0);
        }
        if let Some(sf) = plan.sort {
            let num = |v: f64| SortVal::Num(v);
            self.key = match sf {
                F::Pid => num(f64::from(pid.get())),
                F::Ppid => num(st.ppid as f64),
                F::Name => SortVal::Str(st.comm.to_vec()),
                F::Status => SortVal::Str(parse::status_name(st.state).into()),
                F::Terminal => tty.map_or(SortVal::Null, |t| SortVal::Str(t.into_bytes())),
                F::Nice => num(st.nice as f64),
                F::NumThreads => num(st.num_threads as f64),
                F::CpuNum => num(st.processor as f64),
                F::StartTime | F::CreateTime => num(start as f64),
                F::CpuTimes => num((st.utime + st.stime) as f64),
                F::CpuPercent => num(cpu_pct),
                F::MemoryPercent | F::MemoryInfo | F::MemoryInfoEx => num(rss as f64),
                _ => SortVal::Null,
            };
        }

        // ---- status
        const STATUS: [Field; 5] = [
            F::Username,
            F::Uids,
            F::Gids,
            F::NumCtxSwitches,
            F::CpuAffinity,
        ];
        if need.any(&STATUS) || plan.uid.is_some() {
            match self.read("status") {
                Some(n) => {
                    let s = parse::status(&self.buf[..n]);
                    if let Some(want) = plan.uid {
                        if s.uids.map(|u| u[0]) != Some(want) {
                            out.truncate(mark);
                            return Outcome::Filtered;
                        }
                    }
                    let uname: Option<Vec<u8>> = s.uids.map(|u| match self.users.name(u[0]) {
                        Some(n) => n.as_bytes().to_vec(),
                        None => u[0].to_string().into_bytes(),
                    });
                    if emit.has(F::Username) {
                        key(out, F::Username.name());
                        match &uname {
                            Some(u) => json::string(out, u),
                            None => out.extend_from_slice(b"null"),
                        }
                    }
                    for (f, ids) in [(F::Uids, s.uids), (F::Gids, s.gids)] {
                        if emit.has(f) {
                            key(out, f.name());
                            match ids {
                                Some([r, e, sv]) => {
                                    out.extend_from_slice(b"{\"real\":");
                                    json::uint(out, u64::from(r));
                                    out.extend_from_slice(b",\"effective\":");
                                    json::uint(out, u64::from(e));
                                    out.extend_from_slice(b",\"saved\":");
                                    json::uint(out, u64::from(sv));
                                    out.push(b'}');
                                }
                                None => out.extend_from_slice(b"null"),
                            }
                        }
                    }
                    if emit.has(F::NumCtxSwitches) {
                        key(out, F::NumCtxSwitches.name());
                        out.extend_from_slice(b"{\"voluntary\":");
                        json::uint(out, s.voluntary);
                        out.extend_from_slice(b",\"involuntary\":");
                        json::uint(out, s.involuntary);
                        out.push(b'}');
                    }
                    if emit.has(F::CpuAffinity) {
                        key(out, F::CpuAffinity.name());
                        match s.cpus_allowed {
                            Some(v) => {
                                out.push(b'[');
                                for (i, c) in parse::cpu_list(v).into_iter().enumerate() {
                                    if i > 0 {
                                        out.push(b',');
                                    }
                                    json::uint(out, u64::from(c));
                                }
                                out.push(b']');
                            }
                            None => out.extend_from_slice(b"null"),
                        }
                    }
                    if plan.sort == Some(F::Username) {
                        self.key = uname.map_or(SortVal::Null, SortVal::Str);
                    }
                }
                None => {
                    if plan.uid.is_some() {
                        out.truncate(mark);
                        return if self.gone {
                            Outcome::Gone
                        } else {
                            Outcome::Filtered
                        };
                    }
                    nulls(out, emit, &STATUS);
                }
            }
        }

        // ---- cmdline
        if emit.has(F::Cmdline) {
            key(out, F::Cmdline.name());
            match self.read("cmdline") {
                Some(n) => {
                    out.push(b'[');
                    for (i, a) in parse::cmdline(&self.buf[..n]).into_iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        json::string(out, a);
                    }
                    out.push(b']');
                }
                None => out.extend_from_slice(b"null"),
            }
        }

        // ---- statm (and smaps_rollup for memory_full_info)
        if emit.any(&[F::MemoryInfo, F::MemoryInfoEx, F::MemoryFullInfo]) {
            let statm = self.read("statm").map(|n| parse::statm(&self.buf[..n]));
            for f in [F::MemoryInfo, F::MemoryInfoEx] {
                if emit.has(f) {
                    key(out, f.name());
                    match &statm {
                        Some(m) => {
                            statm_members(out, m, page);
                            out.push(b'}');
                        }
                        None => out.extend_from_slice(b"null"),
                    }
                }
            }
            if emit.has(F::MemoryFullInfo) {
                key(out, F::MemoryFullInfo.name());
                let rollup = self
                    .read("smaps_rollup")
                    .map(|n| parse::smaps_rollup(&self.buf[..n]));
                match (&statm, rollup) {
                    (Some(m), Some([uss, pss, swap])) => {
                        statm_members(out, m, page);
                        for (k, v) in [("uss", uss), ("pss", pss), ("swap", swap)] {
                            key(out, k);
                            json::uint(out, v);
                        }
                        out.push(b'}');
                    }
                    _ => out.extend_from_slice(b"null"),
                }
            }
        }

        // ---- io
        if emit.has(F::IoCounters) {
            key(out, F::IoCounters.name());
            match self.read("io") {
                Some(n) => {
                    let v = parse::io(&self.buf[..n]);
                    let names = [
                        "read_count",
                        "write_count",
                        "read_bytes",
                        "write_bytes",
                        "read_chars",
                        "write_chars",
                    ];
                    for (i, (k, x)) in names.into_iter().zip(v).enumerate() {
                        out.extend_from_slice(if i == 0 { b"{\"" } else { b",\"" });
                        out.extend_from_slice(k.as_bytes());
                        out.extend_from_slice(b"\":");
                        json::uint(out, x);
                    }
                    out.push(b'}');
                }
                None => out.extend_from_slice(b"null"),
            }
        }

        // ---- exe, cwd
        for f in [F::Exe, F::Cwd] {
            if need.has(f) {
                let l = self.link(f.name());
                if emit.has(f) {
                    key(out, f.name());
                    match &l {
                        Some(p) => json::string(out, p),
                        None => out.extend_from_slice(b"null"),
                    }
                }
                if plan.sort == Some(f) {
                    self.key = l.map_or(SortVal::Null, SortVal::Str);
                }
            }
        }

        // ---- fd/
        if need.any(&[F::NumFds, F::OpenFiles, F::Connections]) {
            self.fds(plan, out);
        }

        // ---- task/*/stat
        if emit.has(F::Threads) {
            self.threads(out);
        }

        // ---- smaps
        if emit.has(F::MemoryMaps) {
            key(out, F::MemoryMaps.name());
            match self.read("smaps") {
                Some(n) => {
                    out.push(b'[');
                    for (i, (path, v)) in parse::smaps_grouped(&self.buf[..n]).iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(b"{\"path\":");
                        json::string(out, path);
                        for (k, x) in parse::MAP_KEYS.iter().zip(v) {
                            key(out, k);
                            json::uint(out, *x);
                        }
                        out.push(b'}');
                    }
                    out.push(b']');
                }
                None => out.extend_from_slice(b"null"),
            }
        }

        if self.gone {
            // Something was missing: is it a kernel thread/zombie without
            // that file, or did the process exit (or its pid get reused)?
            let dir = self.dir;
            if self.start_time(pid) != Some(start) {
                out.truncate(mark);
                return Outcome::Gone;
            }
            self.dir = dir;
        }
        out.push(b'}');
        Outcome::Written
    }

    fn fds(&mut self, plan: &Plan, out: &mut Vec<u8>) {
        use Field as F;
        let emit = plan.emit;
        let entries = fs::read_dir(self.at("fd"));
        let dir = match entries {
            Ok(d) => d,
            Err(e) => {
                self.note(&e);
                nulls(out, emit, &[F::NumFds, F::OpenFiles, F::Connections]);
                if plan.sort == Some(F::NumFds) {
                    self.key = SortVal::Null;
                }
                return;
            }
        };
        let want_links = emit.has(F::OpenFiles) || emit.has(F::Connections);
        let mut count = 0u64;
        let mut files: Vec<u8> = Vec::new();
        let mut conns: Vec<u8> = Vec::new();
        let mut denied = false;
        for ent in dir.flatten() {
            count += 1;
            if !want_links {
                continue;
            }
            let name = ent.file_name();
            let fd = name.as_bytes();
            self.path.truncate(self.dir);
            self.path.push_str("fd/");
            self.path.push_str(&name.to_string_lossy());
            let target = match fs::read_link(&self.path) {
                Ok(t) => t,
                Err(e) => {
                    // The fd list is readable but the links are not (e.g. a
                    // non-dumpable process): the lists are unknown, not empty.
                    denied |= e.kind() == io::ErrorKind::PermissionDenied;
                    continue;
                }
            };
            let t = target.as_os_str().as_bytes();
            if t.starts_with(b"/") {
                if emit.has(F::OpenFiles) && fs::metadata(&self.path).is_ok_and(|m| m.is_file()) {
                    files.push(if files.is_empty() { b'[' } else { b',' });
                    files.extend_from_slice(b"{\"path\":");
                    json::string(&mut files, t);
                    files.extend_from_slice(b",\"fd\":");
                    files.extend_from_slice(fd);
                    files.push(b'}');
                }
            } else if let (Some(net), Some(ino)) = (
                self.net.filter(|_| emit.has(F::Connections)),
                t.strip_prefix(b"socket:[")
                    .and_then(|r| r.strip_suffix(b"]")),
            ) {
                if let Some(tail) = net.get(parse::unsigned(ino)) {
                    conns.push(if conns.is_empty() { b'[' } else { b',' });
                    conns.extend_from_slice(b"{\"fd\":");
                    conns.extend_from_slice(fd);
                    conns.extend_from_slice(tail);
                }
            }
        }
        if emit.has(F::NumFds) {
            key(out, F::NumFds.name());
            json::uint(out, count);
        }
        for (f, buf) in [(F::OpenFiles, &files), (F::Connections, &conns)] {
            if emit.has(f) {
                key(out, f.name());
                if denied {
                    out.extend_from_slice(b"null");
                } else if buf.is_empty() {
                    out.extend_from_slice(b"[]");
                } else {
                    out.extend_from_slice(buf);
                    out.push(b']');
                }
            }
        }
        if plan.sort == Some(F::NumFds) {
            self.key = SortVal::Num(count as f64);
        }
    }

    fn threads(&mut self, out: &mut Vec<u8>) {
        key(out, Field::Threads.name());
        let entries = fs::read_dir(self.at("task"));
        let dir = match entries {
            Ok(d) => d,
            Err(e) => {
                self.note(&e);
                out.extend_from_slice(b"null");
                return;
            }
        };
        let mut tids: Vec<u32> = dir
            .flatten()
            .filter_map(|e| {
                std::str::from_utf8(e.file_name().as_bytes())
                    .ok()?
                    .parse()
                    .ok()
            })
            .collect();
        tids.sort_unstable();
        let hz = self.sys.hz;
        out.push(b'[');
        let mut first = true;
        for tid in tids {
            self.path.truncate(self.dir);
            let _ = write!(self.path, "task/{tid}/stat");
            let Ok(n) = read_into(&self.path, &mut self.buf, true) else {
                continue;
            };
            let Some(st) = parse::stat(&self.buf[..n]) else {
                continue;
            };
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(b"{\"id\":");
            json::uint(out, u64::from(tid));
            out.extend_from_slice(b",\"user_time\":");
            json::ticks(out, st.utime, hz);
            out.extend_from_slice(b",\"system_time\":");
            json::ticks(out, st.stime, hz);
            out.push(b'}');
        }
        out.push(b']');
    }
}

/// Writes `{"rss":..,...,"dirty":..` (no closing brace) from statm pages.
fn statm_members(out: &mut Vec<u8>, m: &[u64; 7], page: u64) {
    let order = [
        ("rss", 1),
        ("vms", 0),
        ("shared", 2),
        ("text", 3),
        ("lib", 4),
        ("data", 5),
        ("dirty", 6),
    ];
    for (i, (k, idx)) in order.into_iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"{\"" } else { b",\"" });
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        json::uint(out, m[idx] * page);
    }
}

/// Writes `"name":null` for each of `fs` in `emit`.
fn nulls(out: &mut Vec<u8>, emit: Fields, fs: &[Field]) {
    for f in fs {
        if emit.has(*f) {
            key(out, f.name());
            out.extend_from_slice(b"null");
        }
    }
}
