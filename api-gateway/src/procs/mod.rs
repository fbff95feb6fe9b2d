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
//! `null`. A process that exits during a listing is left out; during
//! [`ProcReader::one_json`] it is `NoSuchProcess`.
//!
//! # Users
//! A user is named by its passwd name or, for a uid without a passwd
//! entry, by the uid in decimal: that is how listings show it
//! (`username`, `/api/users`), and [`ProcReader::resolve_user`] takes both
//! forms back, a passwd name first.

mod census;
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

pub use census::{Census, UserUsage};
pub use fields::{Field, Fields, Spec, TABLE as FIELD_TABLE};

use net::NetTable;
use procfs::{list_pids, SysInfo};
use read::{Outcome, Plan, SortVal, Walker};
use sampler::Sampler;
use users::Passwd;

use crate::ids::{Pid, StartTime};

/// Errors from reading /proc.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no process with pid {0}")]
    NoSuchProcess(Pid),
    #[error("reading /proc: {0}")]
    Io(#[from] std::io::Error),
}

/// `?sort=-cpu_percent`: a sortable field, `-` prefix for descending.
/// Numbers sort numerically, strings bytewise, nulls last; ties keep pid
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        let sort = q.sort.map(|s| (s.field, s.descending));
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
    pub fn one_json(&self, pid: Pid, fields: &Fields) -> Result<Vec<u8>, ProcError> {
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
    pub fn start_time(&self, pid: Pid) -> Result<StartTime, ProcError> {
        let (users, cpu) = (users::Table::default(), sampler::CpuMap::new());
        Walker::new(&self.sys, &users, &cpu, None)
            .start_time(pid)
            .map(StartTime::from_ticks)
            .ok_or(ProcError::NoSuchProcess(pid))
    }

    /// Every user with a process, by name, with its uid and process
    /// count. A uid without a passwd entry is named by its decimal form.
    pub fn users(&self) -> Result<Vec<UserCount>, ProcError> {
        let table = self.passwd.table();
        let cpu = sampler::CpuMap::new();
        let mut w = Walker::new(&self.sys, &table, &cpu, None);
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
