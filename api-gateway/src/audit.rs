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
//!
//! The trail names keys, clients and every command run, so the file is
//! the gateway's alone: created 0600, and an existing one that group or
//! others may open, or that another user owns (who could rewrite it), is
//! refused at start rather than written to ([`OpenError`]).

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
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

/// Why the audit file was not opened; each is one line for stderr that
/// says what was found and what is expected.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("audit log {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(
        "audit log {path} has mode {mode:04o}, which lets group or others open it; \
         it must be 0600 (owner only): chmod 0600 {path}"
    )]
    Mode { path: PathBuf, mode: u32 },
    #[error(
        "audit log {path} is owned by uid {owner}; it must be owned by uid {me}, \
         which the gateway runs as: chown {me} {path}"
    )]
    Owner { path: PathBuf, owner: u32, me: u32 },
}

impl Audit {
    /// Opens (or creates, 0600) the audit file for appending; `None` is
    /// stderr. The checks are made on the opened descriptor, so they hold
    /// for the file written to, whatever the path named a moment before.
    pub fn open(path: Option<&PathBuf>) -> Result<Audit, OpenError> {
        let file = match path {
            Some(p) => Some(Mutex::new(open_owned(p)?)),
            None => None,
        };
        Ok(Audit { file })
    }

    /// Writes one request's line.
    pub fn record(&self, e: &Entry<'_>) {
        let command_bytes = e
            .command
            .filter(|c| c.len() > MAX_COMMAND_BYTES)
            .map(str::len);
        let line = Line {
            auth: e.auth,
            client: e.client,
            command: e.command.map(|c| cut(c, MAX_COMMAND_BYTES)),
            command_bytes,
            event: "request",
            job: e.job.map(|j| j.to_hex()),
            key: e.key,
            outcome: e.outcome,
            pid: e.pid.as_ref(),
            priority: e.priority.as_ref(),
            request_id: crate::reqid::hex(e.request_id),
            route: e.route,
            signal: e.signal.as_ref(),
            start_time: e.start_time.as_ref(),
            status: e.status,
            time: crate::clock::rfc3339(crate::clock::now_ms()),
        };
        self.write_value(&line);
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
        self.write_value(&line);
    }

    /// Appends `line` as JSON and its newline in one `write(2)`: with
    /// `O_APPEND` a line then lands whole even if another process appends
    /// to the same file, and a request costs one system call here, not two.
    fn write_value(&self, line: &impl serde::Serialize) {
        let mut buf = Vec::with_capacity(512);
        if let Err(err) = serde_json::to_writer(&mut buf, line) {
            // Only a failing Serialize impl gets here; none of ours fails.
            eprintln!("monitoreo-gateway: audit line not encoded: {err}");
            return;
        }
        buf.push(b'\n');
        match &self.file {
            Some(f) => {
                let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(err) = f.write_all(&buf) {
                    let line = String::from_utf8_lossy(&buf);
                    eprint!("monitoreo-gateway: audit log write failed: {err}; {line}");
                }
            }
            None => eprint!("{}", String::from_utf8_lossy(&buf)),
        }
    }
}

/// `path` opened for appending, created 0600 if missing, and refused
/// unless it is ours and closed to group and others.
fn open_owned(path: &Path) -> Result<std::fs::File, OpenError> {
    let io = |e| OpenError::Io(path.into(), e);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(OpenError::Owner {
            path: path.into(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(OpenError::Mode {
            path: path.into(),
            mode,
        });
    }
    Ok(file)
}

/// One request's line. Fields in alphabetical order, each always present
/// (`null` when it does not apply) except `command_bytes`: the order and
/// shape the trail has always had.
#[derive(serde::Serialize)]
struct Line<'a> {
    auth: Option<&'a str>,
    client: IpAddr,
    command: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command_bytes: Option<usize>,
    event: &'static str,
    job: Option<String>,
    key: Option<&'a str>,
    outcome: &'a str,
    pid: Option<&'a Value>,
    priority: Option<&'a Value>,
    request_id: String,
    route: &'a str,
    signal: Option<&'a Value>,
    start_time: Option<&'a Value>,
    status: u16,
    time: String,
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

    /// The line written to a file: every field, in the order and shape the
    /// trail has always had, `command_bytes` only for a cut command.
    #[test]
    fn a_line_has_every_field_in_order_and_a_cut_command_says_its_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path)).expect("open");
        let long = "é".repeat(MAX_COMMAND_BYTES);
        for command in [None, Some("echo \"hi\"\n"), Some(long.as_str())] {
            audit.record(&Entry {
                request_id: 0x1f,
                key: Some("ops"),
                auth: Some("bearer"),
                client: "::1".parse().expect("ip"),
                route: "POST /api/ps",
                pid: Some(serde_json::json!(42)),
                start_time: None,
                signal: Some(serde_json::json!("TERM")),
                priority: None,
                command,
                status: 201,
                outcome: "ok",
                job: Some(JobId([0xab; 16])),
            });
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let fields = |l: &str| -> Vec<String> {
            let v: serde_json::Map<String, Value> = serde_json::from_str(l).expect("json");
            v.keys().cloned().collect()
        };
        let all = [
            "auth",
            "client",
            "command",
            "event",
            "job",
            "key",
            "outcome",
            "pid",
            "priority",
            "request_id",
            "route",
            "signal",
            "start_time",
            "status",
            "time",
        ];
        assert_eq!(fields(lines[0]), all);
        let head = r#"{"auth":"bearer","client":"::1","command":null,"event":"request","job":"abababababababababababababababab","key":"ops","outcome":"ok","pid":42,"priority":null,"request_id":"000000000000001f","route":"POST /api/ps","signal":"TERM","start_time":null,"status":201,"time":""#;
        assert!(lines[0].starts_with(head), "{}", lines[0]);
        let v: Value = serde_json::from_str(lines[1]).expect("json");
        assert_eq!(v["command"], "echo \"hi\"\n");
        assert!(v.get("command_bytes").is_none());
        let v: Value = serde_json::from_str(lines[2]).expect("json");
        assert_eq!(v["command_bytes"], 2 * MAX_COMMAND_BYTES);
        assert_eq!(v["command"].as_str().map(str::len), Some(MAX_COMMAND_BYTES));
    }
}
