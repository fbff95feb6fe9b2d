//! `kill` and `renice`. Named pids are each pinned by the start time the
//! gateway shows now and acted on with it, so a pid reused between the
//! read and the act is refused (409) rather than hit. `--tree` and
//! `--match` go through the plan/execute API: the plan (every target with
//! its verdict and rule) is shown, confirmed unless `-y`, and executed
//! with the count that was shown, so a changed set acts on nothing.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{json, Value};

use crate::cli::{Output, Targets};
use crate::config::Context;
use crate::conn::Conn;
use crate::error::{Failure, Status};
use crate::hosts::fan;
use crate::output::{self, cell, clean, out, Answer};
use crate::procs::pin;

/// What to do to each target.
pub enum Act {
    Signal(String),
    Priority(i32),
}

/// The match keys the plan API takes.
const MATCH_KEYS: &[&str] = &["name", "exe", "cmdline", "user", "cgroup", "unit"];

impl Act {
    /// The signal as the plan API names it (`SIGTERM`); a number as given.
    fn signal_name(s: &str) -> String {
        let up = s.trim().to_ascii_uppercase();
        if up.chars().all(|c| c.is_ascii_digit()) || up.starts_with("SIG") {
            up
        } else {
            format!("SIG{up}")
        }
    }

    fn plan_action(&self) -> Value {
        match self {
            Act::Signal(s) => json!({ "signal": Act::signal_name(s) }),
            Act::Priority(n) => json!({ "priority": n }),
        }
    }

    fn describe(&self) -> String {
        match self {
            Act::Signal(s) => format!("send {}", Act::signal_name(s)),
            Act::Priority(n) => format!("renice to {n}"),
        }
    }
}

pub fn run(hosts: &[(String, Context)], form: Output, act: &Act, t: &Targets) -> Status {
    if t.tree || !t.matches.is_empty() {
        return match selector(t) {
            Ok(sel) => plan(hosts, form, act, t, &sel),
            Err(f) => {
                output::complain(None, &f);
                Status::Error
            }
        };
    }
    if t.pids.is_empty() {
        output::complain(
            None,
            &Failure::Local("name at least one pid, or --tree PID, or --match KEY=VALUE".into()),
        );
        return Status::Error;
    }
    let answers = fan(hosts, |c| Ok(each(c, act, &t.pids, t.dry_run)));
    show_each(form, &answers)
}

/// Pins and acts on each pid in turn; one result per pid, the API's
/// answer (or error envelope) under `answer`.
fn each(c: &Conn, act: &Act, pids: &[u32], dry_run: bool) -> Value {
    let mut results = Vec::new();
    for &pid in pids {
        let r = pin(c, pid).and_then(|p| {
            let mut body = json!({ "pid": pid, "start_time": p["start_time"] });
            let method = match act {
                Act::Signal(s) => {
                    // A number goes as a number, a name as given.
                    body["signal"] = match s.trim().parse::<u32>() {
                        Ok(n) => json!(n),
                        Err(_) => json!(s),
                    };
                    "DELETE"
                }
                Act::Priority(n) => {
                    body["priority"] = json!(n);
                    "PATCH"
                }
            };
            if dry_run {
                body["dry_run"] = json!(true);
            }
            c.send(method, "/api/ps", &body).map(|a| (p, a))
        });
        results.push(match r {
            Ok((p, a)) => {
                let outcome = if dry_run {
                    a["verdict"].as_str().unwrap_or("unknown").to_string()
                } else {
                    match act {
                        Act::Signal(_) => "signalled".into(),
                        Act::Priority(_) => "reniced".into(),
                    }
                };
                json!({"pid": pid, "start_time": p["start_time"], "name": p["name"],
                       "username": p["username"], "outcome": outcome, "answer": a})
            }
            Err(f) => {
                let outcome = if f.is_refusal() { "refused" } else { "failed" };
                json!({"pid": pid, "outcome": outcome, "answer": f.to_json()})
            }
        });
    }
    json!({ "result": "ok", "results": results })
}

fn show_each(form: Output, answers: &[Answer]) -> Status {
    let multi = answers.len() > 1;
    let mut status = Status::Done;
    for (h, r) in answers {
        for x in r.iter().flat_map(|v| v["results"].as_array()).flatten() {
            let why = || {
                let a = &x["answer"];
                format!(
                    "pid {}: {} ({})",
                    x["pid"],
                    cell(&a["message"]),
                    cell(&a["code"])
                )
            };
            match x["outcome"].as_str() {
                Some("refused") => {
                    status = status.and(Status::Partial);
                    eprintln!("monitoreo: {}{}", host_prefix(multi, h), why());
                }
                Some("failed") => {
                    status = status.and(Status::Error);
                    eprintln!("monitoreo: {}{}", host_prefix(multi, h), why());
                }
                _ => {}
            }
        }
    }
    let cols: &[output::Col] = &[
        output::Col {
            head: "PID",
            get: |x| cell(&x["pid"]),
        },
        output::Col {
            head: "NAME",
            get: |x| cell(&x["name"]),
        },
        output::Col {
            head: "USER",
            get: |x| cell(&x["username"]),
        },
        output::Col {
            head: "OUTCOME",
            get: |x| cell(&x["outcome"]),
        },
        output::Col {
            head: "DETAIL",
            get: detail,
        },
    ];
    status.and(output::list(form, answers, "results", cols, cols))
}

fn host_prefix(multi: bool, h: &str) -> String {
    if multi {
        format!("{}: ", clean(h))
    } else {
        String::new()
    }
}

/// What the answer adds: a refusal's message, a dry run's rule.
fn detail(x: &Value) -> String {
    let a = &x["answer"];
    if let Some(m) = a["message"].as_str() {
        return clean(m);
    }
    match a["rule"].as_str() {
        Some(r) => format!("rule {}", clean(r)),
        None => String::new(),
    }
}

fn selector(t: &Targets) -> Result<Value, Failure> {
    if t.tree {
        let [root] = t.pids[..] else {
            return Err(Failure::Local(
                "--tree takes exactly one pid, the root".into(),
            ));
        };
        return Ok(json!({ "tree_of": root, "include_root": !t.no_root }));
    }
    if !t.pids.is_empty() {
        return Err(Failure::Local(
            "--match selects the processes itself: name no pid".into(),
        ));
    }
    let mut m = serde_json::Map::new();
    for kv in &t.matches {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Failure::Local(format!("--match {kv:?} is not KEY=VALUE")))?;
        if !MATCH_KEYS.contains(&k) {
            return Err(Failure::Local(format!(
                "--match key {k:?} is not one of {}",
                MATCH_KEYS.join(", ")
            )));
        }
        if m.insert(k.to_string(), json!(v)).is_some() {
            return Err(Failure::Local(format!("--match {k} given twice")));
        }
    }
    Ok(json!({ "match": m }))
}

const PLAN_COLS: &[output::Col] = &[
    output::Col {
        head: "PID",
        get: |x| cell(&x["pid"]),
    },
    output::Col {
        head: "START_TIME",
        get: |x| cell(&x["start_time"]),
    },
    output::Col {
        head: "USER",
        get: |x| cell(&x["user"]),
    },
    output::Col {
        head: "NAME",
        get: |x| cell(&x["name"]),
    },
    output::Col {
        head: "VERDICT",
        get: |x| cell(&x["verdict"]),
    },
    output::Col {
        head: "RULE",
        get: |x| cell(&x["rule"]),
    },
];

const RESULT_COLS: &[output::Col] = &[
    output::Col {
        head: "PID",
        get: |x| cell(&x["pid"]),
    },
    output::Col {
        head: "START_TIME",
        get: |x| cell(&x["start_time"]),
    },
    output::Col {
        head: "OUTCOME",
        get: |x| cell(&x["outcome"]),
    },
    output::Col {
        head: "DETAIL",
        get: |x| {
            let r = cell(&x["rule"]);
            if r != "-" {
                return format!("rule {r}");
            }
            let e = cell(&x["errno"]);
            if e != "-" {
                e
            } else {
                String::new()
            }
        },
    },
];

/// Plan on every gateway, show, confirm, execute each plan with its count.
fn plan(hosts: &[(String, Context)], form: Output, act: &Act, t: &Targets, sel: &Value) -> Status {
    let body =
        json!({ "selector": sel, "action": act.plan_action(), "max_targets": t.max_targets });
    let plans = fan(hosts, |c| c.send("POST", "/api/actions/plan", &body));
    let human = matches!(form, Output::Table | Output::Wide);
    let status = if human || t.dry_run {
        output::list(form, &plans, "targets", PLAN_COLS, PLAN_COLS)
    } else {
        output::status_of(&plans)
    };
    let ready: Vec<&(String, Result<Value, Failure>)> =
        plans.iter().filter(|(_, r)| r.is_ok()).collect();
    if t.dry_run || ready.is_empty() {
        return status;
    }
    let count: u64 = ready
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|v| v["count"].as_u64().unwrap_or(0))
        .sum();
    if !t.yes {
        match confirm(&format!(
            "{} {count} process(es) on {} gateway(s)?",
            act.describe(),
            ready.len()
        )) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("monitoreo: nothing done");
                return status.and(Status::Error);
            }
            Err(f) => {
                output::complain(None, &f);
                return Status::Error;
            }
        }
    }
    let chosen: Vec<(String, Context)> = hosts
        .iter()
        .filter(|(n, _)| ready.iter().any(|(h, _)| h == n))
        .cloned()
        .collect();
    let results = fan(&chosen, |c| {
        let p = ready
            .iter()
            .find(|(h, _)| *h == c.name)
            .and_then(|(_, r)| r.as_ref().ok())
            .ok_or_else(|| Failure::Local("no plan".into()))?;
        let id = p["plan_id"].as_str().unwrap_or_default();
        let path = format!("/api/actions/{}", crate::procs::enc(id));
        c.send("POST", &path, &json!({ "expect_count": p["count"] }))
    });
    if human {
        out("\n");
    }
    let mut st = output::list(form, &results, "results", RESULT_COLS, RESULT_COLS);
    if results
        .iter()
        .any(|(_, r)| r.as_ref().is_ok_and(|v| v["status"] != "complete"))
    {
        st = st.and(Status::Partial);
    }
    status.and(st)
}

/// Asks on the terminal; refuses to guess when there is none.
fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Local(
            "standard input is not a terminal: nothing done; pass -y to act without asking".into(),
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Local(format!("reading the answer: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
