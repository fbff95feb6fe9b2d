//! The audit trail: one JSON line per state-changing request (time, key
//! name, route, pid, start time, outcome) to a file or stderr.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use protocol::JobId;

use crate::ids::{Pid, StartTime};

pub struct Audit {
    file: Option<Mutex<std::fs::File>>,
}

/// One record.
pub struct Entry<'a> {
    pub key: &'a str,
    pub route: &'a str,
    pub pid: Option<Pid>,
    pub start_time: Option<StartTime>,
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

    pub fn record(&self, e: &Entry<'_>) {
        let line = serde_json::json!({
            "time": crate::clock::rfc3339(crate::clock::now_ms()),
            "key": e.key,
            "route": e.route,
            "pid": e.pid,
            "start_time": e.start_time,
            "status": e.status,
            "outcome": e.outcome,
            "job": e.job.map(|j| j.to_hex()),
        })
        .to_string();
        match &self.file {
            Some(f) => {
                let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(err) = writeln!(f, "{line}") {
                    eprintln!("monitoreo-gateway: audit log write failed: {err}; {line}");
                }
            }
            None => eprintln!("{line}"),
        }
    }
}
