//! `ps`, `top`, `show` and `ps --watch`: process listings read from
//! `/api/ps`, their columns, and the change stream of a watch.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use serde_json::Value;

use crate::cli::{Output, PsArgs, TopArgs};
use crate::config::Context;
use crate::error::{Failure, Status};
use crate::hosts::fan;
use crate::output::{self, cell, clean, out, Answer, Col};

/// What the table columns read; json asks for the gateway's defaults.
const TABLE_FIELDS: &str =
    "pid,ppid,username,nice,cpu_percent,memory_percent,memory_info,status,num_threads,start_time,name,cmdline";

/// What a watch compares by default: what a process is, not its figures,
/// which change at every listing.
const WATCH_FIELDS: &str = "pid,ppid,username,nice,start_time,name,cmdline";

pub const COLS: &[Col] = &[
    Col {
        head: "PID",
        get: |p| cell(&p["pid"]),
    },
    Col {
        head: "USER",
        get: |p| cell(&p["username"]),
    },
    Col {
        head: "%CPU",
        get: |p| fixed(&p["cpu_percent"]),
    },
    Col {
        head: "%MEM",
        get: |p| fixed(&p["memory_percent"]),
    },
    Col {
        head: "RSS",
        get: |p| bytes(&p["memory_info"]["rss"]),
    },
    Col {
        head: "STAT",
        get: |p| cell(&p["status"]),
    },
    Col {
        head: "NAME",
        get: |p| cell(&p["name"]),
    },
];

pub const WIDE: &[Col] = &[
    Col {
        head: "PID",
        get: |p| cell(&p["pid"]),
    },
    Col {
        head: "PPID",
        get: |p| cell(&p["ppid"]),
    },
    Col {
        head: "USER",
        get: |p| cell(&p["username"]),
    },
    Col {
        head: "NI",
        get: |p| cell(&p["nice"]),
    },
    Col {
        head: "%CPU",
        get: |p| fixed(&p["cpu_percent"]),
    },
    Col {
        head: "%MEM",
        get: |p| fixed(&p["memory_percent"]),
    },
    Col {
        head: "RSS",
        get: |p| bytes(&p["memory_info"]["rss"]),
    },
    Col {
        head: "STAT",
        get: |p| cell(&p["status"]),
    },
    Col {
        head: "THR",
        get: |p| cell(&p["num_threads"]),
    },
    Col {
        head: "START_TIME",
        get: |p| cell(&p["start_time"]),
    },
    Col {
        head: "COMMAND",
        get: command,
    },
];

fn fixed(v: &Value) -> String {
    v.as_f64().map_or_else(|| cell(v), |f| format!("{f:.1}"))
}

/// Bytes in binary units, as ps and top show them.
pub fn bytes(v: &Value) -> String {
    let Some(mut n) = v.as_f64() else {
        return cell(v);
    };
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if n < 1024.0 {
            return if unit == "B" {
                format!("{n}{unit}")
            } else {
                format!("{n:.1}{unit}")
            };
        }
        n /= 1024.0;
    }
    format!("{n:.1}TiB")
}

/// The command line joined, or the name when it is empty or withheld.
fn command(p: &Value) -> String {
    match p["cmdline"].as_array() {
        Some(a) if !a.is_empty() => clean(
            &a.iter()
                .map(|s| s.as_str().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => format!("[{}]", cell(&p["name"])),
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn ps_path(a: &PsArgs, fields: Option<&str>) -> String {
    let mut q = Vec::new();
    if let Some(f) = fields {
        q.push(format!("fields={}", enc(f)));
    }
    if let Some(u) = &a.user {
        q.push(format!("user={}", enc(u)));
    }
    if let Some(s) = &a.sort {
        q.push(format!("sort={}", enc(s)));
    }
    if let Some(l) = a.limit {
        q.push(format!("limit={l}"));
    }
    if q.is_empty() {
        "/api/ps".into()
    } else {
        format!("/api/ps?{}", q.join("&"))
    }
}

/// Keeps the processes whose name contains `name`; `name` itself is
/// dropped again when only the filter asked for it.
fn filter_name(mut v: Value, name: Option<&str>, drop_name: bool) -> Value {
    if let (Some(n), Some(list)) = (name, v["processes"].as_array_mut()) {
        list.retain(|p| p["name"].as_str().is_some_and(|s| s.contains(n)));
        if drop_name {
            for p in list.iter_mut() {
                if let Some(o) = p.as_object_mut() {
                    o.remove("name");
                }
            }
        }
    }
    v
}

/// The fields to ask for, with `name` added when the filter needs it;
/// and whether it was added.
fn with_name(fields: Option<String>, filter: bool) -> (Option<String>, bool) {
    match fields {
        Some(f) if filter && !f.split(',').any(|x| x == "name") => {
            (Some(format!("{f},name")), true)
        }
        other => (other, false),
    }
}

pub fn ps(hosts: &[(String, Context)], form: Output, a: &PsArgs) -> Status {
    let asked = (!a.fields.is_empty()).then(|| a.fields.join(","));
    let filter = a.name.is_some();
    if a.watch {
        let fields = asked.unwrap_or_else(|| WATCH_FIELDS.to_string());
        let (fields, drop) = with_name(Some(fields), filter);
        let path = ps_path(a, fields.as_deref());
        return watch(hosts, form, &path, a.name.as_deref(), drop, a.interval);
    }
    let fields = match (&asked, form) {
        (Some(f), _) => Some(f.clone()),
        (None, Output::Table | Output::Wide) => Some(TABLE_FIELDS.to_string()),
        (None, _) => None,
    };
    let (fields, drop) = with_name(fields, filter);
    let path = ps_path(a, fields.as_deref());
    let answers = fan(hosts, |c| {
        c.get(&path)
            .map(|v| filter_name(v, a.name.as_deref(), drop))
    });
    match (&asked, form) {
        (Some(_), Output::Table | Output::Wide) => by_fields(&answers, &a.fields),
        _ => output::list(form, &answers, "processes", COLS, WIDE),
    }
}

/// A table whose columns are the fields asked for, in that order.
fn by_fields(answers: &[Answer], fields: &[String]) -> Status {
    let multi = answers.len() > 1;
    let upper: Vec<String> = fields.iter().map(|f| f.to_uppercase()).collect();
    let mut heads: Vec<&str> = Vec::new();
    if multi {
        heads.push("HOST");
    }
    heads.extend(upper.iter().map(String::as_str));
    let mut rows = Vec::new();
    for (h, r) in answers {
        for p in r.iter().flat_map(|v| v["processes"].as_array()).flatten() {
            let mut cells = Vec::new();
            if multi {
                cells.push(clean(h));
            }
            cells.extend(fields.iter().map(|f| cell(&p[f.as_str()])));
            rows.push(cells);
        }
    }
    out(&output::table(&heads, &rows));
    output::status_of(answers)
}

/// `ps --watch`: lists every `interval` seconds and prints each change
/// as it is seen, flushed line by line so that a pipe gets it at once. It
/// ends only when interrupted or when its reader goes away; a gateway that
/// fails is reported and asked again at the next turn.
fn watch(
    hosts: &[(String, Context)],
    form: Output,
    path: &str,
    name: Option<&str>,
    drop_name: bool,
    interval: f64,
) -> Status {
    let multi = hosts.len() > 1;
    let mut seen: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut first = true;
    loop {
        let answers = fan(hosts, |c| {
            c.get(path).map(|v| filter_name(v, name, drop_name))
        });
        let mut now = BTreeMap::new();
        let mut failed = Vec::new();
        for (h, r) in &answers {
            match r {
                Ok(v) => {
                    for p in v["processes"].as_array().into_iter().flatten() {
                        let id = format!("{}@{}", p["pid"], p["start_time"]);
                        now.insert((h.clone(), id), p.clone());
                    }
                }
                Err(f) => {
                    output::complain(multi.then_some(h.as_str()), f);
                    failed.push(h.clone());
                }
            }
        }
        // A gateway that did not answer keeps what it last showed.
        for (k, v) in &seen {
            if failed.contains(&k.0) {
                now.insert(k.clone(), v.clone());
            }
        }
        let mut events = Vec::new();
        for (k, p) in &now {
            match seen.get(k) {
                None => events.push(("added", &k.0, p)),
                Some(old) if old != p => events.push(("modified", &k.0, p)),
                _ => {}
            }
        }
        for (k, p) in &seen {
            if !now.contains_key(k) {
                events.push(("deleted", &k.0, p));
            }
        }
        print_events(form, multi, &events, first);
        first = false;
        seen = now;
        std::thread::sleep(Duration::from_secs_f64(interval.max(0.1)));
    }
}

fn print_events(form: Output, multi: bool, events: &[(&str, &String, &Value)], header: bool) {
    let mut s = String::new();
    match form {
        Output::Json | Output::Jsonl => {
            for (e, h, p) in events {
                let mut o = serde_json::json!({"event": e, "process": p});
                if multi {
                    o["context"] = Value::String((*h).clone());
                }
                s.push_str(&o.to_string());
                s.push('\n');
            }
        }
        Output::Table | Output::Wide => {
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|(e, h, p)| {
                    let mut r = vec![e.to_string()];
                    if multi {
                        r.push(clean(h));
                    }
                    r.extend([cell(&p["pid"]), cell(&p["username"]), command(p)]);
                    r
                })
                .collect();
            let heads: &[&str] = if multi {
                &["EVENT", "HOST", "PID", "USER", "COMMAND"]
            } else {
                &["EVENT", "PID", "USER", "COMMAND"]
            };
            let t = output::table(heads, &rows);
            // The heading once; the rows of each turn after it. Columns
            // are padded per turn, which is what a stream can do.
            let body = t.split_once('\n').map_or("", |(_, b)| b);
            if header {
                s.push_str(t.lines().next().unwrap_or(""));
                s.push('\n');
            }
            s.push_str(body);
        }
    }
    if !s.is_empty() {
        out(&s);
    }
}

/// `top`: the busiest processes of each gateway, refreshed. On a terminal
/// the screen is redrawn; piped, each refresh is printed after the last,
/// with no control sequence.
pub fn top(hosts: &[(String, Context)], form: Output, a: &TopArgs) -> Status {
    let tty = std::io::stdout().is_terminal();
    let path = format!(
        "/api/ps?fields={}&sort={}&limit={}",
        TABLE_FIELDS,
        enc(&a.sort),
        a.limit
    );
    let mut turn = 0;
    loop {
        turn += 1;
        if tty && matches!(form, Output::Table | Output::Wide) {
            out("\x1b[H\x1b[2J");
        }
        let answers = fan(hosts, |c| c.get(&path));
        let total: usize = answers
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .map(|v| v["processes"].as_array().map_or(0, Vec::len))
            .sum();
        if matches!(form, Output::Table | Output::Wide) {
            out(&format!(
                "monitoreo top: {} gateway(s), {total} processes shown, sorted by {}\n",
                answers.iter().filter(|(_, r)| r.is_ok()).count(),
                clean(&a.sort)
            ));
        }
        let status = output::list(form, &answers, "processes", COLS, WIDE);
        if a.iterations != 0 && turn >= a.iterations {
            return status;
        }
        if !tty && matches!(form, Output::Table | Output::Wide) {
            out("\n");
        }
        std::thread::sleep(Duration::from_secs_f64(a.interval.max(0.1)));
    }
}

pub fn show(hosts: &[(String, Context)], form: Output, pid: u32) -> Status {
    let answers = fan(hosts, |c| c.get(&format!("/api/ps/{pid}")));
    output::object(form, &answers, "process", output::all_members)
}

/// The one process `pid` names now, with its start time: what a kill or
/// renice pins.
pub fn pin(c: &crate::conn::Conn, pid: u32) -> Result<Value, Failure> {
    let v = c.get(&format!(
        "/api/ps/{pid}?fields=pid,start_time,name,username"
    ))?;
    Ok(v["process"].clone())
}
