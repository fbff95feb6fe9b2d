//! Reading processes and users from /proc.
//!
//! Everything here is blocking; the HTTP layer calls it from
//! `spawn_blocking`.
//!
//! # Fields
//! The names, the default set, the sort keys and the JSON shape of every
//! field are in one table, [`fields::TABLE`]; the reader writes them in
//! that order. `environ` is never served. `pid` is always present.
//!
//! A field the kernel hides from the gateway's user (EACCES/EPERM) is
//! `null`. So is a field [`withhold`] keeps from the caller (another key's
//! job), and the object's `withheld` member then names it with the reason. A process that exits during a listing is left out; during
//! [`ProcReader::one_json_with`] it is `NoSuchProcess`.
//!
//! # Users
//! A user is named by its passwd name or, for a uid without a passwd
//! entry, by the uid in decimal: that is how listings show it
//! (`username`, `/api/users`), and [`ProcReader::resolve_user`] takes both
//! forms back, a passwd name first.

mod census;
mod fields;
mod groups;
mod json;
mod net;
mod parse;
mod private;
mod procfs;
mod read;
mod sampler;
mod select;
mod users;
mod withhold;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use census::{states, Census, States, UserUsage};
pub use fields::{Field, Fields, Spec, TABLE as FIELD_TABLE};
pub use groups::{GroupRule, GroupRules, Member, DEFAULT_MAX_GROUPS};

use net::NetTable;
use procfs::{list_pids, SysInfo};
use read::{Outcome, Plan, SortVal, Walker};
use sampler::{Cpu, Sampler, Walk};

pub use private::{
    FIELDS as READER_FIELDS, POLICY as READ_POLICY_REASON, UNAVAILABLE as READER_UNAVAILABLE_REASON,
};
pub use sampler::{Figure, Single, Stated};
pub use select::{Candidate, Match, Selector};
pub use withhold::{job_of, Withhold, FIELDS as WITHHELD_FIELDS, REASON as WITHHELD_REASON};

/// A single read's answer from [`ProcReader::one_json_live`].
#[derive(Debug)]
pub enum Live {
    /// The object, and the window and age of its `cpu_percent` if asked.
    Body(Vec<u8>, Option<Stated>),
    /// Read again then (a short CPU sample after an idle spell).
    WaitUntil(Instant),
}
use users::Passwd;

use crate::ids::{Pid, StartTime};

/// Errors from reading /proc.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no process with pid {0}")]
    NoSuchProcess(Pid),
    #[error("{0} is a thread id, not a process")]
    NotAProcess(Pid),
    #[error("reading /proc: {0}")]
    Io(#[from] std::io::Error),
}

/// `?sort=-cpu_percent`: a sortable field, `-` prefix for descending.
/// Numbers sort numerically, strings bytewise, nulls last; ties keep pid
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub field: Field,
    pub descending: bool,
}

impl SortKey {
    /// Parses `name` or `-name`; the error names the value.
    pub fn parse(s: &str) -> Result<SortKey, String> {
        let (descending, name) = match s.strip_prefix('-') {
            Some(f) => (true, f),
            None => (false, s),
        };
        Field::from_name(name)
            .filter(|f| f.sortable())
            .map(|field| SortKey { field, descending })
            .ok_or_else(|| {
                format!("cannot sort by {s:?}; sort takes a sortable field name, '-' first for descending")
            })
    }

    /// Every accepted `sort` value, for the OpenAPI enum.
    pub fn all_values() -> Vec<String> {
        FIELD_TABLE
            .iter()
            .filter(|s| s.sortable)
            .flat_map(|s| [s.name.to_string(), format!("-{}", s.name)])
            .collect()
    }
}

/// One line of `/api/users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCount {
    /// The passwd name, or the uid in decimal.
    pub name: String,
    pub uid: u32,
    pub running: usize,
}

/// A listing request (the key under which concurrent listings share a
/// walk).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListQuery {
    pub fields: Fields,
    /// Only processes whose real uid is this.
    pub uid: Option<u32>,
    pub sort: Option<SortKey>,
    pub limit: Option<usize>,
}

/// Reads /proc; owns the CPU baselines ([`sampler`]).
pub struct ProcReader {
    sys: SysInfo,
    passwd: Passwd,
    sampler: Sampler,
    /// monitoreo-reader's socket, for the private fields of processes
    /// the kernel refuses the gateway.
    reader_socket: Option<PathBuf>,
    /// Idle connections to the reader.
    reader_pool: Arc<private::Pool>,
}

/// A listing ready to be written: its plan and its CPU baseline, chosen
/// (and, after an idle spell, sampled) when it was prepared.
pub struct Listing<'a> {
    reader: &'a ProcReader,
    withhold: &'a Withhold,
    plan: Plan,
    sort: Option<(Field, bool)>,
    limit: usize,
    baseline: Option<Arc<Walk>>,
    /// The window and age of the `cpu_percent` figures, when asked for.
    pub cpu: Option<Stated>,
}

impl ProcReader {
    /// A reader whose `cpu_percent` figures follow `cpu_window` (see
    /// [`sampler`]). Starts no thread.
    pub fn new(cpu_window: Duration) -> ProcReader {
        let sys = SysInfo::load();
        ProcReader {
            sys,
            passwd: Passwd::new("/etc/passwd"),
            sampler: Sampler::new(cpu_window, sys.hz),
            reader_socket: None,
            reader_pool: Arc::default(),
        }
    }

    /// Asks monitoreo-reader at `socket` for the private fields the
    /// kernel refuses the gateway.
    pub fn with_reader(mut self, socket: Option<PathBuf>) -> ProcReader {
        self.reader_socket = socket;
        self
    }

    /// Whose private fields the gateway reads, and which: the reader's
    /// `[read]` policy (owners as its file writes them, field names), or
    /// every owner's and field when the gateway may read them itself.
    /// `Err` names why there is none: `no_reader` (none configured) or
    /// `reader_unavailable`. Blocks for one round trip.
    pub fn read_rules(&self) -> Result<(Vec<String>, Vec<&'static str>), &'static str> {
        let names = |bits: u8| {
            private::FIELDS
                .iter()
                .filter(|(_, b)| bits & b != 0)
                .map(|(f, _)| f.name())
                .collect()
        };
        let me = &self.sys.me;
        if me.cap_ptrace && me.cap_dac {
            return Ok((vec!["*".to_string()], names(u8::MAX)));
        }
        let socket = self.reader_socket.as_ref().ok_or("no_reader")?;
        let r = private::rules(socket).ok_or("reader_unavailable")?;
        Ok((r.owners, names(r.fields)))
    }

    /// The reader's answer for a walk of `pids` that writes `plan`, or
    /// `None` when it asks for no private field or the gateway can read
    /// every process's itself.
    fn private_stream(&self, plan: &Plan, pids: &[Pid]) -> Option<private::Stream> {
        let bits = private::FIELDS
            .iter()
            .filter(|(f, _)| plan.need.has(*f))
            .fold(0, |b, (_, bit)| b | bit);
        let me = &self.sys.me;
        if bits == 0 || (me.cap_ptrace && me.cap_dac) {
            return None;
        }
        Some(match &self.reader_socket {
            Some(path) => {
                let pids = pids.iter().map(|p| p.get() as u32).collect();
                private::Stream::new(path, bits, pids, Some(self.reader_pool.clone()))
            }
            None => private::Stream::none(),
        })
    }

    /// Plans a listing as seen by a caller from whom `withhold` keeps
    /// other keys' jobs. If it carries or sorts by `cpu_percent` and no
    /// recent listing is a baseline, this blocks for a short two-point
    /// sample first.
    pub fn prepare<'a>(&'a self, q: &ListQuery, withhold: &'a Withhold) -> Listing<'a> {
        let sort = q.sort.map(|s| (s.field, s.descending));
        let plan = Plan {
            emit: q.fields,
            need: sort.map_or(q.fields, |(f, _)| q.fields.with(f)),
            uid: q.uid,
            sort: sort.map(|(f, _)| f),
        };
        let baseline = plan
            .need
            .has(Field::CpuPercent)
            .then(|| self.sampler.baseline());
        let cpu = baseline.as_ref().map(|w| Stated {
            window_s: w.at.elapsed().as_secs_f64(),
            age_s: 0.0,
        });
        Listing {
            reader: self,
            withhold,
            plan,
            sort,
            limit: q.limit.unwrap_or(usize::MAX),
            baseline,
            cpu,
        }
    }

    /// The `cpu_percent` of one process from one read of its stat: a
    /// figure, or when to ask again (after an idle spell). Never walks
    /// /proc and never sleeps.
    pub fn cpu_of(&self, pid: Pid) -> Result<Single, ProcError> {
        let (start, ticks) = procfs::stat_ticks(pid).ok_or(ProcError::NoSuchProcess(pid))?;
        Ok(self.sampler.single((pid, start), ticks))
    }

    /// One process as a JSON object, its `cpu_percent` (if asked for)
    /// being `figure`; never sleeps.
    pub fn one_json_with(
        &self,
        pid: Pid,
        fields: &Fields,
        figure: Option<Figure>,
        withhold: &Withhold,
    ) -> Result<(Vec<u8>, Option<Stated>), ProcError> {
        let cpu = figure.map_or(Cpu::Unasked, |f| Cpu::Fixed(f.percent));
        let out = self.one_object(pid, fields, cpu, withhold)?;
        Ok((out, figure.map(|f| f.stated)))
    }

    /// One process as a JSON object, `cpu_percent` from `cpu`.
    fn one_object(
        &self,
        pid: Pid,
        fields: &Fields,
        cpu: Cpu<'_>,
        withhold: &Withhold,
    ) -> Result<Vec<u8>, ProcError> {
        let plan = Plan {
            emit: *fields,
            need: *fields,
            uid: None,
            sort: None,
        };
        let users = self.passwd.table();
        let net = plan.emit.has(Field::Connections).then(NetTable::load);
        let mut w = Walker::new(&self.sys, &users, cpu, net.as_ref());
        w.withhold = Some(withhold);
        w.leaders_only = true;
        w.private = self.private_stream(&plan, &[pid]);
        let mut out = Vec::with_capacity(2048);
        match w.process(pid, &plan, &mut out) {
            Outcome::Written => Ok(out),
            Outcome::Thread => Err(ProcError::NotAProcess(pid)),
            _ => Err(ProcError::NoSuchProcess(pid)),
        }
    }

    /// One process as a JSON object with its `cpu_percent` taken from the
    /// same read of its stat (one stat read where [`ProcReader::cpu_of`]
    /// and [`ProcReader::one_json_with`] make two), or, after an idle
    /// spell, when to read it again for a two-point sample.
    pub fn one_json_live(
        &self,
        pid: Pid,
        fields: &Fields,
        withhold: &Withhold,
    ) -> Result<Live, ProcError> {
        let answer = std::cell::Cell::new(None);
        let cpu = Cpu::Live {
            sampler: &self.sampler,
            answer: &answer,
        };
        let out = self.one_object(pid, fields, cpu, withhold)?;
        Ok(match answer.take() {
            Some(Single::WaitUntil(t)) => Live::WaitUntil(t),
            Some(Single::Figure(f)) => Live::Body(out, Some(f.stated)),
            None => Live::Body(out, None),
        })
    }

    /// Start time (clock ticks since boot, /proc/PID/stat field 22).
    pub fn start_time(&self, pid: Pid) -> Result<StartTime, ProcError> {
        procfs::stat_ticks(pid)
            .map(|(start, _)| StartTime::from_ticks(start))
            .ok_or(ProcError::NoSuchProcess(pid))
    }

    /// Every user with a process, by name, with its uid and process
    /// count. A uid without a passwd entry is named by its decimal form.
    pub fn users(&self) -> Result<Vec<UserCount>, ProcError> {
        let table = self.passwd.table();
        let mut w = Walker::new(&self.sys, &table, Cpu::Unasked, None);
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for pid in list_pids()? {
            if let Some(uid) = w.real_uid(pid) {
                *counts.entry(uid).or_default() += 1;
            }
        }
        let mut v: Vec<UserCount> = counts
            .into_iter()
            .map(|(uid, running)| UserCount {
                name: table
                    .name(uid)
                    .map_or_else(|| uid.to_string(), str::to_string),
                uid,
                running,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Processes by state and per user, for `/metrics`: one pass over
    /// every process's stat and status, only when asked.
    pub fn census(&self) -> Result<Census, ProcError> {
        Ok(census::take(&self.sys, &self.passwd.table())?)
    }

    /// The processes `[metrics.groups]` puts in a group, for `/metrics`:
    /// one pass, only when asked.
    pub fn groups(&self, rules: &GroupRules) -> Result<Vec<Member>, ProcError> {
        Ok(groups::take(rules, &self.sys, &self.passwd.table())?)
    }

    /// The processes `sel` names, for a planned action (see [`select`]).
    pub fn select(&self, sel: &Selector, withhold: &Withhold) -> Result<Vec<Candidate>, ProcError> {
        Ok(select::select(sel, &self.passwd.table(), withhold)?)
    }

    /// The uid a user is named by: a passwd name first, else a uid in
    /// decimal (how listings name a uid without a passwd entry).
    pub fn resolve_user(&self, name: &str) -> Option<u32> {
        self.passwd.table().uid(name).or_else(|| {
            (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
                .then(|| name.parse().ok())
                .flatten()
        })
    }
}

impl Listing<'_> {
    /// Appends the JSON array of the listing to `out`, and keeps the
    /// stat reads it made as the next listings' CPU baseline. `flush`
    /// sees `out` once /proc could be listed (the answer is a success
    /// from then on) and, in an unsorted listing, after every row, so
    /// that a streamed answer can send and empty it as it grows; the
    /// walk stops when it returns false (the client is gone).
    pub fn write(
        self,
        out: &mut Vec<u8>,
        flush: &mut dyn FnMut(&mut Vec<u8>) -> bool,
    ) -> Result<(), ProcError> {
        let r = self.reader;
        let (plan, limit) = (self.plan, self.limit);
        let began = Instant::now();
        let uptime = sampler::uptime_ticks(r.sys.hz);
        let pids = list_pids()?;
        let users = r.passwd.table();
        let cpu = match &self.baseline {
            Some(walk) => Cpu::Since {
                walk,
                secs: began.saturating_duration_since(walk.at).as_secs_f64(),
                hz: r.sys.hz.max(1) as f64,
            },
            None => Cpu::Unasked,
        };
        let net = plan.emit.has(Field::Connections).then(NetTable::load);
        let mut w = Walker::new(&r.sys, &users, cpu, net.as_ref());
        w.withhold = Some(self.withhold);
        w.private = r.private_stream(&plan, &pids);
        w.seen = Some(Vec::with_capacity(pids.len()));
        let per_proc = 48 + 40 * plan.emit.names().count();
        out.reserve(2 + pids.len().min(limit) * per_proc);
        out.push(b'[');
        if !flush(out) {
            return Ok(());
        }
        match self.sort {
            None => {
                let mut n = 0;
                for pid in pids {
                    if n >= limit {
                        break;
                    }
                    let mark = out.len();
                    if n > 0 {
                        out.push(b',');
                    }
                    if w.process(pid, &plan, out) == Outcome::Written {
                        n += 1;
                        if !flush(out) {
                            return Ok(());
                        }
                    } else {
                        out.truncate(mark);
                    }
                }
            }
            Some((_, descending)) => {
                let base = out.len();
                let mut spans: Vec<(SortVal, usize, usize)> = Vec::with_capacity(pids.len());
                for pid in pids {
                    let start = out.len();
                    if w.process(pid, &plan, out) == Outcome::Written {
                        spans.push((
                            std::mem::replace(&mut w.key, SortVal::Null),
                            start,
                            out.len(),
                        ));
                    }
                }
                spans.sort_by(|a, b| compare(&a.0, &b.0, descending));
                let mut sorted = Vec::with_capacity(out.len() - base + spans.len());
                for (i, (_, s, e)) in spans.iter().take(limit).enumerate() {
                    if i > 0 {
                        sorted.push(b',');
                    }
                    sorted.extend_from_slice(&out[*s..*e]);
                }
                out.truncate(base);
                out.extend_from_slice(&sorted);
            }
        }
        out.push(b']');
        if let Some(seen) = w.seen.take() {
            r.sampler.keep(Arc::new(Walk {
                at: began,
                uptime_ticks: uptime,
                ticks: seen.into_iter().collect(),
            }));
        }
        Ok(())
    }
}

/// Nulls last in both directions; numbers numerically, strings bytewise.
fn compare(a: &SortVal, b: &SortVal, descending: bool) -> Ordering {
    let ord = match (a, b) {
        (SortVal::Null, SortVal::Null) => return Ordering::Equal,
        (SortVal::Null, _) => return Ordering::Greater,
        (_, SortVal::Null) => return Ordering::Less,
        (SortVal::Num(x), SortVal::Num(y)) => x.total_cmp(y),
        (SortVal::Str(x), SortVal::Str(y)) => x.cmp(y),
        (SortVal::Num(_), SortVal::Str(_)) => Ordering::Less,
        (SortVal::Str(_), SortVal::Num(_)) => Ordering::Greater,
    };
    if descending {
        ord.reverse()
    } else {
        ord
    }
}

#[cfg(test)]
mod tests;
