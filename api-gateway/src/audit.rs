//! The audit trail: one JSON line per authenticated request and per
//! refused authentication, to a file or stderr (the journal). A line says
//! who (key name and how it authenticated, client address), what (route,
//! target pid and start time, signal, priority or command as given), when,
//! with which `request_id` (the helper's decision lines carry the same
//! one), and how it ended (status, outcome, job).
//!
//! A flood of refused authentications from one address is summarised:
//! the first few of each minute are written line by line, the rest only
//! counted, and one `auth_failures` line per address and minute gives the
//! count (see `http::throttle`).

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use protocol::JobId;
use serde_json::Value;

/// The longest command written whole; a longer one is cut there and the
/// line says how long it was.
pub const MAX_COMMAND_BYTES: usize = 4096;

pub struct Audit {
    file: Option<Mutex<std::fs::File>>,
}

/// One request's record.
pub struct Entry<'a> {
    pub request_id: u64,
    /// The key's name; `None` when authentication was refused.
    pub key: Option<&'a str>,
    /// `bearer` or `certificate`; `None` when refused.
    pub auth: Option<&'static str>,
    pub client: IpAddr,
    /// `DELETE /api/ps`.
    pub route: &'a str,
    /// The target, as resolved, or else as given in the body.
    pub pid: Option<Value>,
    pub start_time: Option<Value>,
    /// As given in the body.
    pub signal: Option<Value>,
    pub priority: Option<Value>,
    pub command: Option<&'a str>,
    pub status: u16,
    pub outcome: &'a str,
    pub job: Option<JobId>,
}

impl Audit {
    pub fn open(path: Option<&PathBuf>) -> std::io::Result<Audit> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            )),
            None => None,
        };
        Ok(Audit { file })
    }

    /// Writes one request's line.
    pub fn record(&self, e: &Entry<'_>) {
        let mut line = serde_json::json!({
            "time": crate::clock::rfc3339(crate::clock::now_ms()),
            "event": "request",
            "request_id": crate::reqid::hex(e.request_id),
            "key": e.key,
            "auth": e.auth,
            "client": e.client.to_string(),
            "route": e.route,
            "pid": e.pid,
            "start_time": e.start_time,
            "signal": e.signal,
            "priority": e.priority,
            "command": e.command.map(|c| cut(c, MAX_COMMAND_BYTES)),
            "status": e.status,
            "outcome": e.outcome,
            "job": e.job.map(|j| j.to_hex()),
        });
        if let Some(c) = e.command.filter(|c| c.len() > MAX_COMMAND_BYTES) {
            line["command_bytes"] = c.len().into();
        }
        self.write(&line.to_string());
    }

    /// Writes the summary of the refused authentications from `client`
    /// that were counted but not written one by one.
    pub fn failures_summary(&self, client: &str, not_written: u64, total: u64, window_s: u64) {
        let line = serde_json::json!({
            "time": crate::clock::rfc3339(crate::clock::now_ms()),
            "event": "auth_failures",
            "client": client,
            "failures": total,
            "not_written": not_written,
            "window_s": window_s,
        });
        self.write(&line.to_string());
    }

    /// Appends `line` and its newline in one `write(2)`: with `O_APPEND`
    /// a line then lands whole even if another process appends to the
    /// same file, and a request costs one system call here, not two.
    fn write(&self, line: &str) {
        match &self.file {
            Some(f) => {
                let mut buf = String::with_capacity(line.len() + 1);
                buf.push_str(line);
                buf.push('\n');
                let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(err) = f.write_all(buf.as_bytes()) {
                    eprintln!("monitoreo-gateway: audit log write failed: {err}; {line}");
                }
            }
            None => eprintln!("{line}"),
        }
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_command_is_cut_at_a_character_boundary() {
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("aéb", 3), "aé");
    }
}
