//! Reading processes and users from /proc.
//!
//! Everything here is blocking; the HTTP layer calls it from
//! `spawn_blocking`.
//!
//! # Fields
//! The default set is every field of [`FIELD_NAMES`] except `memory_maps`
//! (per-mapping sizes from `/proc/PID/smaps`) and `connections` (inet
//! sockets of the process, from `/proc/net/{tcp,tcp6,udp,udp6}` of the
//! gateway's network namespace): those two are costly and are only read when
//! named in `?fields=`. `environ` is never served: `Fields::parse("environ")`
//! is `UnknownField`. `pid` is always present.
//!
//! Shapes: `name` the kernel's comm (at most 15 bytes); `cmdline` array
//! of strings; `status` psutil's strings
//! (`running`, `sleeping`, `disk-sleep`, `stopped`, `tracing-stop`,
//! `zombie`, `dead`, `wake-kill`, `waking`, `idle`, `parked`); `username`
//! of the real uid (the uid as a string if it has no passwd entry);
//! `uids`/`gids` `{real,effective,saved}`; `terminal` device path or null;
//! `create_time` epoch seconds (boot time + start ticks / CLK_TCK);
//! `start_time` raw clock ticks after boot (exact, what `DELETE`/`PATCH`
//! take); `cpu_times` `{user,system,children_user,children_system,iowait}`
//! seconds; `cpu_percent` percent of one CPU over the sampler's last window
//! (0.0 until the first window ends; 2 decimals); `memory_info`
//! `{rss,vms,shared,text,lib,data,dirty}` bytes (statm); `memory_percent`
//! rss / MemTotal × 100 (4 decimals); `num_ctx_switches` `{voluntary,involuntary}`;
//! `open_files` `[{path,fd}]` (regular files only; null, like
//! `connections`, when the fd links cannot be read); `threads`
//! `[{id,user_time,system_time}]`; `io_counters` `{read_count,write_count,
//! read_bytes,write_bytes,read_chars,write_chars}`; `cpu_affinity` array of
//! CPU numbers (`Cpus_allowed_list`).
//!
//! A field the kernel hides from the gateway's user (EACCES/EPERM) is
//! `null`. A process that exits during a listing is left out; during
//! [`ProcReader::one_json`] it is `NoSuchProcess`.

mod fields;
mod json;
mod net;
mod parse;
mod procfs;
mod read;
mod sampler;
mod users;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

pub use fields::{Field, ALL_FIELDS, FIELD_NAMES};

use net::NetTable;
use procfs::{list_pids, SysInfo};
use read::{Outcome, Plan, SortVal, Walker};
use sampler::Sampler;
use users::Passwd;

/// Errors from reading /proc or parsing listing parameters.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),
    #[error("unknown field {0:?}")]
    UnknownField(String),
    #[error("cannot sort by {0:?}")]
    BadSort(String),
    #[error("reading /proc: {0}")]
    Io(#[from] std::io::Error),
}

pub use fields::Fields;

/// `?sort=-cpu_percent`: a field name, `-` prefix for descending. Numbers
/// sort numerically, strings bytewise, nulls last; ties keep pid order.
#[derive(Debug, Clone)]
pub struct SortKey {
    pub field: String,
    pub descending: bool,
}

impl SortKey {
    /// Parses `name` or `-name`; `BadSort` unless the field is sortable
    /// (see [`Field::sortable`]).
    pub fn parse(s: &str) -> Result<SortKey, ProcError> {
        let (descending, field) = match s.trim().strip_prefix('-') {
            Some(f) => (true, f),
            None => (false, s.trim()),
        };
        let key = SortKey {
            field: field.to_string(),
            descending,
        };
        key.resolve()?;
        Ok(key)
    }

    fn resolve(&self) -> Result<Field, ProcError> {
        Field::from_name(&self.field)
            .filter(|f| f.sortable())
            .ok_or_else(|| ProcError::BadSort(self.field.clone()))
    }
}

/// A listing request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub fields: Fields,
    /// Only processes whose real uid is this.
    pub uid: Option<u32>,
    pub sort: Option<SortKey>,
    pub limit: Option<usize>,
}

/// Reads /proc; owns the background CPU sampler.
pub struct ProcReader {
    window: Duration,
    sys: SysInfo,
    passwd: Passwd,
    sampler: Sampler,
}

impl ProcReader {
    /// Starts the background sampler with this window.
    pub fn new(cpu_window: Duration) -> ProcReader {
        let sys = SysInfo::load();
        ProcReader {
            window: cpu_window,
            sys,
            passwd: Passwd::new("/etc/passwd"),
            sampler: Sampler::start(cpu_window, sys.hz),
        }
    }

    /// The sampler's window in seconds (reported as `cpu_percent_window_s`).
    pub fn window_secs(&self) -> f64 {
        self.window.as_secs_f64()
    }

    /// A JSON array (`[{...},{...}]`) of the matching processes, in pid
    /// order unless sorted; `limit` applies after the sort.
    pub fn list_json(&self, q: &ListQuery) -> Result<Vec<u8>, ProcError> {
        let sort = q
            .sort
            .as_ref()
            .map(|s| s.resolve().map(|f| (f, s.descending)))
            .transpose()?;
        let plan = Plan {
            emit: q.fields,
            need: sort.map_or(q.fields, |(f, _)| q.fields.with(f)),
            uid: q.uid,
            sort: sort.map(|(f, _)| f),
        };
        let limit = q.limit.unwrap_or(usize::MAX);
        let pids = list_pids()?;
        let users = self.passwd.table();
        let cpu = self.sampler.latest();
        let net = plan.emit.has(Field::Connections).then(NetTable::load);
        let mut w = Walker::new(&self.sys, &users, &cpu, net.as_ref());
        let per_proc = 48 + 40 * plan.emit.names().count();
        let mut out = Vec::with_capacity(2 + pids.len().min(limit) * per_proc);
        out.push(b'[');
        match sort {
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
                    if w.process(pid, &plan, &mut out) == Outcome::Written {
                        n += 1;
                    } else {
                        out.truncate(mark);
                    }
                }
            }
            Some((_, descending)) => {
                let mut spans: Vec<(SortVal, usize, usize)> = Vec::with_capacity(pids.len());
                for pid in pids {
                    let start = out.len();
                    if w.process(pid, &plan, &mut out) == Outcome::Written {
                        spans.push((
                            std::mem::replace(&mut w.key, SortVal::Null),
                            start,
                            out.len(),
                        ));
                    }
                }
                spans.sort_by(|a, b| compare(&a.0, &b.0, descending));
                let mut sorted = Vec::with_capacity(out.len() + spans.len());
                sorted.push(b'[');
                for (i, (_, s, e)) in spans.iter().take(limit).enumerate() {
                    if i > 0 {
                        sorted.push(b',');
                    }
                    sorted.extend_from_slice(&out[*s..*e]);
                }
                out = sorted;
            }
        }
        out.push(b']');
        Ok(out)
    }

    /// One process as a JSON object.
    pub fn one_json(&self, pid: i32, fields: &Fields) -> Result<Vec<u8>, ProcError> {
        if pid <= 0 {
            return Err(ProcError::NoSuchProcess(pid));
        }
        let plan = Plan {
            emit: *fields,
            need: *fields,
            uid: None,
            sort: None,
        };
        let users = self.passwd.table();
        let cpu = self.sampler.latest();
        let net = plan.emit.has(Field::Connections).then(NetTable::load);
        let mut w = Walker::new(&self.sys, &users, &cpu, net.as_ref());
        let mut out = Vec::with_capacity(2048);
        match w.process(pid, &plan, &mut out) {
            Outcome::Written => Ok(out),
            _ => Err(ProcError::NoSuchProcess(pid)),
        }
    }

    /// Start time (clock ticks since boot, /proc/PID/stat field 22).
    pub fn start_time(&self, pid: i32) -> Result<u64, ProcError> {
        if pid <= 0 {
            return Err(ProcError::NoSuchProcess(pid));
        }
        let (users, cpu) = (users::Table::default(), sampler::CpuMap::new());
        Walker::new(&self.sys, &users, &cpu, None)
            .start_time(pid)
            .ok_or(ProcError::NoSuchProcess(pid))
    }

    /// `(username, running process count)` for every user with a process,
    /// by name.
    pub fn users(&self) -> Result<Vec<(String, usize)>, ProcError> {
        let table = self.passwd.table();
        let cpu = sampler::CpuMap::new();
        let mut w = Walker::new(&self.sys, &table, &cpu, None);
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for pid in list_pids()? {
            if let Some(uid) = w.real_uid(pid) {
                *counts.entry(uid).or_default() += 1;
            }
        }
        let mut v: Vec<(String, usize)> = counts
            .into_iter()
            .map(|(uid, n)| {
                (
                    table
                        .name(uid)
                        .map_or_else(|| uid.to_string(), str::to_string),
                    n,
                )
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// The uid of a user name from the passwd database, if it exists.
    pub fn uid_of_user(&self, name: &str) -> Option<u32> {
        self.passwd.table().uid(name)
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
