//! `run` and `jobs ...`: jobs as the gateway keeps them (`/api/jobs`),
//! and following one's output live over Server-Sent Events. Event ids are
//! byte offsets, so after a cut connection the follower reconnects with
//! `Last-Event-ID` and gets exactly the bytes it had not got.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::cli::{JobsCommand, Output, RunArgs};
use crate::config::Context;
use crate::conn::Conn;
use crate::error::{Failure, Status};
use crate::hosts::fan;
use crate::output::{self, cell, clean, out, Col};
use crate::procs::enc;

const COLS: &[Col] = &[
    Col {
        head: "ID",
        get: |j| cell(&j["id"]),
    },
    Col {
        head: "STATE",
        get: |j| cell(&j["state"]),
    },
    Col {
        head: "EXIT",
        get: |j| cell(&j["exit_code"]),
    },
    Col {
        head: "CREATED",
        get: |j| cell(&j["created_at"]),
    },
    Col {
        head: "COMMAND",
        get: |j| cell(&j["cmd"]),
    },
];

const WIDE: &[Col] = &[
    Col {
        head: "ID",
        get: |j| cell(&j["id"]),
    },
    Col {
        head: "OWNER",
        get: |j| cell(&j["owner"]),
    },
    Col {
        head: "STATE",
        get: |j| cell(&j["state"]),
    },
    Col {
        head: "PID",
        get: |j| cell(&j["pid"]),
    },
    Col {
        head: "EXIT",
        get: |j| cell(&j["exit_code"]),
    },
    Col {
        head: "SIGNAL",
        get: |j| cell(&j["signal"]),
    },
    Col {
        head: "STDOUT",
        get: |j| crate::procs::bytes(&j["stdout_bytes"]),
    },
    Col {
        head: "STDERR",
        get: |j| crate::procs::bytes(&j["stderr_bytes"]),
    },
    Col {
        head: "CREATED",
        get: |j| cell(&j["created_at"]),
    },
    Col {
        head: "ENDED",
        get: |j| cell(&j["ended_at"]),
    },
    Col {
        head: "COMMAND",
        get: |j| cell(&j["cmd"]),
    },
];

/// How many times in a row a cut stream is reconnected without any new
/// event before following gives up.
const RECONNECTS: u32 = 10;

/// A job id as the API spells it: 32 lowercase hex characters. Checked
/// here so that no other text is put into a path.
fn job_id(id: &str) -> Result<&str, Failure> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(id)
    } else {
        Err(Failure::Local(format!(
            "{:?} is not a job id (32 lowercase hex characters)",
            clean(id)
        )))
    }
}

pub fn run(hosts: &[(String, Context)], form: Output, a: &RunArgs) -> Status {
    let mut body = json!({ "cmd": a.command.join(" ") });
    if let Some(t) = a.timeout {
        body["timeout_s"] = json!(t);
    }
    if a.follow {
        let [(name, ctx)] = hosts else {
            output::complain(None, &Failure::Local("--follow runs on one context".into()));
            return Status::Error;
        };
        let r = Conn::new(name, ctx).and_then(|c| {
            let started = c.send("POST", "/api/jobs", &body)?;
            let id = started["job"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            follow(&c, job_id(&id)?)
        });
        return match r {
            Ok(job) => exit_status(&job),
            Err(f) => {
                output::complain(None, &f);
                Status::Error
            }
        };
    }
    let answers = fan(hosts, |c| c.send("POST", "/api/jobs", &body));
    output::object(form, &answers, "job", job_lines)
}

/// The job's own status as this command's: its exit code, 128 + a
/// signal that ended it (as a shell reports it), 1 when it has neither.
fn exit_status(job: &Value) -> Status {
    let code = job["exit_code"]
        .as_i64()
        .or_else(|| job["signal"].as_i64().map(|s| 128 + s))
        .unwrap_or(1);
    // Exit codes of a Unix process are 0..=255.
    std::process::exit(code.clamp(0, 255) as i32)
}

fn job_lines(j: &Value) -> Vec<(String, String)> {
    output::all_members(j)
}

pub fn jobs(hosts: &[(String, Context)], form: Output, cmd: &JobsCommand) -> Status {
    match cmd {
        JobsCommand::Ls {
            state,
            limit,
            watch,
            interval,
        } => {
            let mut q = Vec::new();
            if let Some(s) = state {
                q.push(format!("state={}", enc(s)));
            }
            if let Some(l) = limit {
                q.push(format!("limit={l}"));
            }
            let path = if q.is_empty() {
                "/api/jobs".to_string()
            } else {
                format!("/api/jobs?{}", q.join("&"))
            };
            if *watch {
                return watch_jobs(hosts, form, &path, *interval);
            }
            let answers = fan(hosts, |c| c.get(&path));
            output::list(form, &answers, "jobs", COLS, WIDE)
        }
        JobsCommand::Show { id, wait } => with_id(id, |id| {
            let path = match wait {
                Some(w) => format!("/api/jobs/{id}?wait={w}"),
                None => format!("/api/jobs/{id}"),
            };
            let answers = fan(hosts, |c| c.get(&path));
            output::object(form, &answers, "job", job_lines)
        }),
        JobsCommand::Logs {
            id,
            follow: f,
            stderr,
        } => with_id(id, |id| {
            let [(name, ctx)] = hosts else {
                output::complain(None, &Failure::Local("logs reads one context's job".into()));
                return Status::Error;
            };
            let r = Conn::new(name, ctx).and_then(|c| {
                if *f {
                    follow(&c, id).map(|_| ())
                } else {
                    let which = if *stderr { "stderr" } else { "stdout" };
                    let mut r = c.stream(&format!("/api/jobs/{id}/{which}"), &[])?;
                    let mut buf = vec![0; 16 << 10];
                    loop {
                        let n = r
                            .read(&mut buf)
                            .map_err(|e| Failure::Transport(format!("reading the output: {e}")))?;
                        if n == 0 {
                            return Ok(());
                        }
                        output::raw(false, &buf[..n]);
                    }
                }
            });
            match r {
                Ok(()) => Status::Done,
                Err(e) => {
                    output::complain(None, &e);
                    Status::Error
                }
            }
        }),
        JobsCommand::Cancel { id } => with_id(id, |id| {
            // DELETE cancels a running job but deletes one that has ended:
            // a cancel looks first, so that it never deletes.
            let answers = fan(hosts, |c| {
                let j = c.get(&format!("/api/jobs/{id}"))?;
                if !matches!(j["job"]["state"].as_str(), Some("running" | "starting")) {
                    return Err(Failure::Local(format!(
                        "job {id} has ended ({}): nothing to cancel (`jobs rm` removes it)",
                        cell(&j["job"]["state"])
                    )));
                }
                c.delete(&format!("/api/jobs/{id}"))
            });
            output::object(form, &answers, "job", job_lines)
        }),
        JobsCommand::Rm { id } => with_id(id, |id| {
            let answers = fan(hosts, |c| {
                let j = c.get(&format!("/api/jobs/{id}"))?;
                if matches!(j["job"]["state"].as_str(), Some("running" | "starting")) {
                    return Err(Failure::Local(format!(
                        "job {id} is running: cancel it first (`jobs cancel`)"
                    )));
                }
                c.delete(&format!("/api/jobs/{id}"))
            });
            output::object(form, &answers, "job", job_lines)
        }),
    }
}

fn with_id(id: &str, f: impl FnOnce(&str) -> Status) -> Status {
    match job_id(id) {
        Ok(id) => f(id),
        Err(e) => {
            output::complain(None, &e);
            Status::Error
        }
    }
}

/// Follows a job's events, writing its stdout and stderr bytes to ours,
/// until its `exit` event; returns the job as that event gives it. A cut
/// connection is resumed from the last event's id.
pub fn follow(c: &Conn, id: &str) -> Result<Value, Failure> {
    let path = format!("/api/jobs/{id}/events");
    let mut last: Option<String> = None;
    let mut idle = 0;
    loop {
        let headers: Vec<(&str, &str)> = match &last {
            Some(l) => vec![("Last-Event-ID", l.as_str())],
            None => Vec::new(),
        };
        let before = last.clone();
        let why = match c.stream(&path, &headers) {
            Ok(r) => match read_events(BufReader::new(r), &mut last) {
                Ok(Some(job)) => return Ok(job),
                Ok(None) => Failure::Transport("the event stream ended before the job".into()),
                Err(f) => f,
            },
            Err(f @ Failure::Api { .. }) | Err(f @ Failure::Local(_)) => return Err(f),
            Err(f) => f,
        };
        if last != before {
            idle = 0;
        }
        idle += 1;
        if idle > RECONNECTS {
            return Err(why);
        }
        std::thread::sleep(Duration::from_millis(200 * u64::from(idle.min(10))));
    }
}

/// Reads events until `exit` (its data returned), the end of the stream
/// (`None`) or an error; `last` keeps the id of the last event acted on.
fn read_events(mut r: impl BufRead, last: &mut Option<String>) -> Result<Option<Value>, Failure> {
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = r
            .read_line(&mut line)
            .map_err(|e| Failure::Transport(format!("the event stream: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        let l = line.trim_end_matches(['\n', '\r']);
        if l.is_empty() {
            let event = fields.remove("event").unwrap_or_default();
            let data = fields.remove("data").unwrap_or_default();
            let id = fields.remove("id");
            fields.clear();
            let data: Value = match serde_json::from_str(&data) {
                Ok(v) => v,
                Err(_) if event.is_empty() => continue,
                Err(e) => return Err(Failure::Transport(format!("an event's data: {e}"))),
            };
            match event.as_str() {
                "stdout" | "stderr" => {
                    let bytes = match (data["text"].as_str(), data["base64"].as_str()) {
                        (Some(t), _) => t.as_bytes().to_vec(),
                        (None, Some(b)) => base64::engine::general_purpose::STANDARD
                            .decode(b)
                            .map_err(|e| Failure::Transport(format!("an event's base64: {e}")))?,
                        _ => Vec::new(),
                    };
                    output::raw(event == "stderr", &bytes);
                }
                "exit" => {
                    let job = if data["job"].is_object() {
                        data["job"].clone()
                    } else {
                        data
                    };
                    return Ok(Some(job));
                }
                _ => {}
            }
            if id.is_some() {
                *last = id;
            }
            continue;
        }
        if l.starts_with(':') {
            continue;
        }
        let (k, v) = l.split_once(':').unwrap_or((l, ""));
        let v = v.strip_prefix(' ').unwrap_or(v);
        match k {
            "event" => {
                fields.insert("event", v.to_string());
            }
            "id" => {
                fields.insert("id", v.to_string());
            }
            "data" => {
                let d = fields.entry("data").or_default();
                if !d.is_empty() {
                    d.push('\n');
                }
                d.push_str(v);
            }
            _ => {}
        }
    }
}

/// `jobs ls --watch`: a change stream of the listing, as `ps --watch`.
fn watch_jobs(hosts: &[(String, Context)], form: Output, path: &str, interval: f64) -> Status {
    let multi = hosts.len() > 1;
    let mut seen: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut first = true;
    loop {
        let answers = fan(hosts, |c| c.get(path));
        let mut now = BTreeMap::new();
        for (h, r) in &answers {
            match r {
                Ok(v) => {
                    for j in v["jobs"].as_array().into_iter().flatten() {
                        now.insert((h.clone(), cell(&j["id"])), j.clone());
                    }
                }
                Err(f) => {
                    output::complain(multi.then_some(h.as_str()), f);
                    for (k, v) in &seen {
                        if &k.0 == h {
                            now.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        let mut s = String::new();
        let mut line = |e: &str, h: &str, j: &Value| match form {
            Output::Json | Output::Jsonl => {
                let mut o = json!({"event": e, "job": j});
                if multi {
                    o["context"] = json!(h);
                }
                s.push_str(&o.to_string());
                s.push('\n');
            }
            Output::Table | Output::Wide => {
                let host = if multi {
                    format!("{}  ", clean(h))
                } else {
                    String::new()
                };
                s.push_str(&format!(
                    "{e:<9} {host}{}  {:<9}  {}\n",
                    cell(&j["id"]),
                    cell(&j["state"]),
                    cell(&j["cmd"])
                ));
            }
        };
        if first && matches!(form, Output::Table | Output::Wide) {
            out(if multi {
                "EVENT     HOST  ID  STATE  COMMAND\n"
            } else {
                "EVENT     ID  STATE  COMMAND\n"
            });
        }
        for (k, j) in &now {
            match seen.get(k) {
                None => line("added", &k.0, j),
                Some(old) if old != j => line("modified", &k.0, j),
                _ => {}
            }
        }
        for (k, j) in &seen {
            if !now.contains_key(k) {
                line("deleted", &k.0, j);
            }
        }
        if !s.is_empty() {
            out(&s);
        }
        first = false;
        seen = now;
        std::thread::sleep(Duration::from_secs_f64(interval.max(0.1)));
    }
}
