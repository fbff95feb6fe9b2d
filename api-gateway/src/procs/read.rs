//! Reading one process from /proc and writing it as a JSON object.
//!
//! The approach is the floor's: plain open/read/close of each /proc file
//! into one reused buffer, a short read taken as end of file for the
//! single-record files, and only the files the requested fields need.
//! Each process's directory is opened once (`O_PATH`) and its files are
//! opened relative to it: one path walk through `/proc/PID` per process
//! instead of one per file, and every file read names the same process
//! (a pid reused meanwhile makes the reads fail, not mix two processes).
//!
//! Guarantees:
//! - a field whose file the kernel refuses (EACCES/EPERM: another user's
//!   process) is `null`, the rest of the object is still served;
//! - a process that disappears while being read (ENOENT/ESRCH, then its
//!   stat gone or its start time changed) is dropped whole, never half
//!   written;
//! - `environ` is never opened;
//! - a process of another key's job ([`Withhold`]) has the withheld fields
//!   `null`, named in its `withheld` member, and sorts as if they were;
//!   their files are not even read.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::Mode;

use super::fields::{Field, Fields};
use super::json::{self, key};
use super::net::NetTable;
use super::parse;
use super::private::{self, Lookup, Stream};
use super::procfs::{read_file, SysInfo};
use super::sampler::{Cpu, Key};
use super::users::Table;
use super::withhold::{self, Withhold};
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
    /// A thread that is not its group's leader: `/proc` answers for it,
    /// though its directory is not listed, but it is not a process.
    Thread,
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
    /// The caller's view of other keys' jobs; `None` withholds nothing.
    pub withhold: Option<&'a Withhold>,
    /// Refuse a thread id (a pid asked for by number, not listed).
    pub leaders_only: bool,
    /// Other users' private fields from the reader, when the plan asks
    /// for one (`None`: no reader, those fields are foreseen refusals).
    pub private: Option<Stream>,
    /// Fields of the process being written that are `null` for a reason
    /// other than another key's job, and the reason.
    reasons: Vec<(Field, &'static str)>,
    buf: Vec<u8>,
    /// The entered process's status, kept apart from `buf` because it may
    /// be read before stat (to judge whose process it is) and used after.
    status: Vec<u8>,
    path: String,
    /// `/proc/PID` of the process being read (`O_PATH`).
    dir: Option<OwnedFd>,
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
            withhold: None,
            leaders_only: false,
            private: None,
            reasons: Vec::new(),
            // Grown by the first read (8 KiB, then doubled as needed).
            buf: Vec::new(),
            status: Vec::new(),
            path: String::with_capacity(64),
            dir: None,
            gone: false,
        }
    }

    /// Opens `/proc/PID` for the reads that follow; `false` (and the
    /// process counted as gone if it is) when it cannot be opened.
    fn enter(&mut self, pid: Pid) -> bool {
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}");
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match nix::fcntl::open(self.path.as_str(), flags, Mode::empty()) {
            Ok(fd) => {
                self.dir = Some(fd);
                true
            }
            Err(e) => {
                self.dir = None;
                self.note(&e.into());
                false
            }
        }
    }

    /// Opens `file` under the entered process's directory.
    fn open(&mut self, file: &str, flags: OFlag) -> io::Result<OwnedFd> {
        let Some(dir) = &self.dir else {
            return Err(io::ErrorKind::NotFound.into());
        };
        Ok(openat(
            dir.as_fd(),
            file,
            flags | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?)
    }

    fn note(&mut self, e: &io::Error) {
        if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ESRCH) {
            self.gone = true;
        }
    }

    fn read(&mut self, file: &str) -> Option<usize> {
        let r = self
            .open(file, OFlag::O_RDONLY)
            .and_then(|fd| read_file(fd.into(), &mut self.buf, file != "smaps"));
        match r {
            Ok(n) => Some(n),
            Err(e) => {
                self.note(&e);
                None
            }
        }
    }

    /// Reads the entered process's status into `self.status`.
    fn read_status(&mut self) -> Option<usize> {
        let mut buf = std::mem::take(&mut self.status);
        let r = self
            .open("status", OFlag::O_RDONLY)
            .and_then(|fd| read_file(fd.into(), &mut buf, true));
        self.status = buf;
        match r {
            Ok(n) => Some(n),
            Err(e) => {
                self.note(&e);
                None
            }
        }
    }

    /// Whether the entered process is withheld from the caller; reads its
    /// status (kept in `self.status`, its length returned) and, for a
    /// shared job uid only, its cgroup.
    fn judge(&mut self, w: &Withhold) -> (bool, Option<usize>) {
        let n = self.read_status();
        let uid = n.and_then(|n| parse::real_uid(&self.status[..n]));
        let hidden = w.hides(uid, || self.read("cgroup").map(|n| self.buf[..n].to_vec()));
        (hidden, n)
    }

    fn link(&mut self, file: &str) -> Option<Vec<u8>> {
        let r = match &self.dir {
            Some(dir) => readlinkat(dir.as_fd(), file).map_err(io::Error::from),
            None => Err(io::ErrorKind::NotFound.into()),
        };
        match r {
            Ok(p) => Some(p.into_vec()),
            Err(e) => {
                self.note(&e);
                None
            }
        }
    }

    /// The entries of directory `file` (`fd`, `task`) of the entered
    /// process, as names.
    fn list(&mut self, file: &str) -> io::Result<Vec<std::ffi::OsString>> {
        let fd = self.open(file, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let mut dir = nix::dir::Dir::from_fd(fd)?;
        Ok(dir
            .iter()
            .flatten()
            .map(|e| std::ffi::OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
            .filter(|n| n != "." && n != "..")
            .collect())
    }

    /// Start time of `pid` (stat field 22), `None` if it is not there.
    pub fn start_time(&mut self, pid: Pid) -> Option<u64> {
        if !self.enter(pid) {
            return None;
        }
        let n = self.read("stat")?;
        parse::stat(&self.buf[..n]).map(|s| s.start_time)
    }

    /// Real uid of `pid`, `None` if unreadable.
    pub fn real_uid(&mut self, pid: Pid) -> Option<u32> {
        if !self.enter(pid) {
            return None;
        }
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
        self.reasons.clear();
        let private_asked = private::FIELDS.iter().any(|(f, _)| need.has(*f));

        if !self.enter(pid) {
            return Outcome::Gone;
        }
        // ---- whose: judged before any field is written
        let (withheld, mut status_read) = match self.withhold {
            Some(w) if w.concerns(emit, plan.sort) => self.judge(w),
            _ => (false, None),
        };
        if self.leaders_only {
            status_read = status_read.or_else(|| self.read_status());
            match status_read.and_then(|n| parse::status(&self.status[..n]).tgid) {
                Some(tgid) if tgid == pid.get() as u32 => {}
                Some(_) => return Outcome::Thread,
                None => return Outcome::Gone,
            }
        }

        // ---- stat: always (existence, start time)
        let Some(n) = self.read("stat") else {
            return Outcome::Gone;
        };
        let Some(st) = parse::stat(&self.buf[..n]) else {
            return Outcome::Gone;
        };
        let (hz, page, start) = (self.sys.hz, self.sys.page, st.start_time);
        let ticks = st.utime + st.stime;
        // A live process with one thread has only its leader: `threads`
        // need not list task/ (a zombie leader may have one live thread
        // besides itself, so its task/ is listed).
        let only_leader = st.num_threads == 1 && !matches!(st.state, b'Z' | b'X' | b'x');
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
            if withheld {
                out.extend_from_slice(b"null");
            } else {
                json::string(out, st.comm);
            }
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
                F::Name if withheld => SortVal::Null,
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
        // What the kernel will refuse, once status has shown the owner.
        let (mut ptrace_refused, mut fd_refused) = (false, false);
        if need.any(&STATUS) || plan.uid.is_some() || private_asked {
            if status_read.is_none() {
                status_read = self.read_status();
            }
            match status_read {
                Some(n) => {
                    let s = parse::status(&self.status[..n]);
                    if let (Some(u), Some(g)) = (s.uids, s.gids) {
                        let (me, p) = (&self.sys.me, pid.get() as u32);
                        ptrace_refused = me.ptrace_refused(p, u, g);
                        fd_refused = me.fd_dir_refused(p, u[1]);
                    }
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
            match if withheld { None } else { self.read("cmdline") } {
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

        // ---- what the reader says, for what the kernel refuses us
        let (rd, why) = if private_asked && (ptrace_refused || fd_refused) {
            match self
                .private
                .as_mut()
                .map(|s| s.get(pid.get() as u32, start))
            {
                Some(Lookup::Read(p)) => (Some(p), None),
                Some(Lookup::Missing) => (None, None),
                Some(Lookup::Unavailable) | None => (None, Some(private::UNAVAILABLE)),
            }
        } else {
            (None, None)
        };
        let rd = rd.as_ref();

        // ---- io
        if emit.has(F::IoCounters) && ptrace_refused {
            self.reader_value(out, F::IoCounters, rd, why);
        } else if emit.has(F::IoCounters) {
            key(out, F::IoCounters.name());
            match self.read("io") {
                Some(n) => {
                    json::io_counters(out, parse::io(&self.buf[..n]));
                }
                None => out.extend_from_slice(b"null"),
            }
        }

        // ---- exe, cwd
        for f in [F::Exe, F::Cwd] {
            if need.has(f) {
                let l = if withheld {
                    None
                } else if ptrace_refused {
                    rd.and_then(|p| {
                        if f == F::Exe {
                            p.exe.clone()
                        } else {
                            p.cwd.clone()
                        }
                    })
                } else {
                    self.link(f.name())
                };
                if emit.has(f) {
                    key(out, f.name());
                    match &l {
                        Some(p) => json::string(out, p),
                        None => {
                            out.extend_from_slice(b"null");
                            if ptrace_refused && !withheld {
                                self.reason(f, rd, why);
                            }
                        }
                    }
                }
                if plan.sort == Some(f) {
                    self.key = l.map_or(SortVal::Null, SortVal::Str);
                }
            }
        }

        // ---- fd/
        if need.any(&[F::NumFds, F::OpenFiles, F::Connections]) {
            if fd_refused {
                for f in [F::NumFds, F::OpenFiles, F::Connections] {
                    if withheld && withhold::FIELDS.contains(&f) {
                        nulls(out, emit, &[f]);
                    } else if emit.has(f) {
                        self.reader_value(out, f, rd, why);
                    }
                }
                if plan.sort == Some(F::NumFds) {
                    self.key = rd
                        .and_then(|p| p.num_fds)
                        .map_or(SortVal::Null, |n| SortVal::Num(n as f64));
                }
            } else {
                self.fds(plan, out, withheld);
            }
        }

        // ---- task/*/stat
        if emit.has(F::Threads) {
            self.threads(out, only_leader.then_some(pid));
        }

        // ---- smaps
        if emit.has(F::MemoryMaps) && ptrace_refused && !withheld {
            self.reader_value(out, F::MemoryMaps, rd, why);
        } else if emit.has(F::MemoryMaps) {
            key(out, F::MemoryMaps.name());
            match if withheld { None } else { self.read("smaps") } {
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
            if self.start_time(pid) != Some(start) {
                out.truncate(mark);
                return Outcome::Gone;
            }
        }
        self.dir = None;
        if withheld {
            for f in withhold::FIELDS.iter().filter(|f| emit.has(**f)) {
                self.reasons.push((*f, withhold::REASON));
            }
        }
        if !self.reasons.is_empty() {
            self.reasons.sort_by_key(|(f, _)| *f as usize);
            out.extend_from_slice(b",\"withheld\":{");
            for (i, (f, why)) in self.reasons.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::string(out, f.name().as_bytes());
                out.push(b':');
                json::string(out, why.as_bytes());
            }
            out.push(b'}');
        }
        out.push(b'}');
        Outcome::Written
    }

    /// Writes field `f` from the reader's answer, or `null` and the reason.
    fn reader_value(
        &mut self,
        out: &mut Vec<u8>,
        f: Field,
        rd: Option<&reader::wire::Private>,
        why: Option<&'static str>,
    ) {
        if !rd.is_some_and(|p| private::write(out, f, p)) {
            key(out, f.name());
            out.extend_from_slice(b"null");
            self.reason(f, rd, why);
        }
    }

    /// Notes why `f` is `null`: the reader's policy refused it, or `why`.
    fn reason(&mut self, f: Field, rd: Option<&reader::wire::Private>, why: Option<&'static str>) {
        let refused = rd.is_some_and(|p| p.refused & private::bit(f) != 0);
        if let Some(r) = if refused { Some(private::POLICY) } else { why } {
            self.reasons.push((f, r));
        }
    }

    /// `withheld`: the links (`open_files`, `connections`) are not read
    /// and are `null`; the count still is.
    fn fds(&mut self, plan: &Plan, out: &mut Vec<u8>, withheld: bool) {
        use Field as F;
        let emit = plan.emit;
        let entries = self.list("fd");
        let names = match entries {
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
        let want_links = !withheld && (emit.has(F::OpenFiles) || emit.has(F::Connections));
        let mut count = 0u64;
        let mut files: Vec<u8> = Vec::new();
        let mut conns: Vec<u8> = Vec::new();
        let mut denied = false;
        let Some(dirfd) = self.dir.as_ref().map(|d| d.as_fd()) else {
            return;
        };
        for name in &names {
            count += 1;
            if !want_links {
                continue;
            }
            let fd = name.as_bytes();
            self.path.clear();
            self.path.push_str("fd/");
            self.path.push_str(&name.to_string_lossy());
            let target = match readlinkat(dirfd, self.path.as_str()).map_err(io::Error::from) {
                Ok(t) => t,
                Err(e) => {
                    // The fd list is readable but the links are not (e.g. a
                    // non-dumpable process): the lists are unknown, not empty.
                    denied |= e.kind() == io::ErrorKind::PermissionDenied;
                    continue;
                }
            };
            let t = target.as_os_str().as_bytes();
            // psutil's rule: a path, to a regular file that still exists
            // (a deleted one's link ends in " (deleted)").
            if t.starts_with(b"/") && !t.ends_with(b" (deleted)") {
                let is_file = || {
                    nix::sys::stat::fstatat(dirfd, self.path.as_str(), nix::fcntl::AtFlags::empty())
                        .is_ok_and(|m| m.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG)
                };
                if emit.has(F::OpenFiles) && is_file() {
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
                if denied || withheld {
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

    /// `threads`: each thread's times from `task/TID/stat`; `only` names
    /// the one thread when the process is known to have no other.
    fn threads(&mut self, out: &mut Vec<u8>, only: Option<Pid>) {
        key(out, Field::Threads.name());
        let mut tids: Vec<u32> = match only {
            Some(pid) => vec![pid.get() as u32],
            None => match self.list("task") {
                Ok(names) => names
                    .iter()
                    .filter_map(|n| std::str::from_utf8(n.as_bytes()).ok()?.parse().ok())
                    .collect(),
                Err(e) => {
                    self.note(&e);
                    out.extend_from_slice(b"null");
                    return;
                }
            },
        };
        tids.sort_unstable();
        let hz = self.sys.hz;
        out.push(b'[');
        let mut first = true;
        for tid in tids {
            let mut file = std::mem::take(&mut self.path);
            file.clear();
            let _ = write!(file, "task/{tid}/stat");
            let r = self
                .open(&file, OFlag::O_RDONLY)
                .and_then(|fd| read_file(fd.into(), &mut self.buf, true));
            self.path = file;
            let Ok(n) = r else {
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
