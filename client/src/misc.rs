//! `users`, `host`, `whoami` and `contexts ...`.

use std::io::IsTerminal;

use serde_json::Value;

use crate::cli::{ContextAdd, ContextsCommand, Global, Output};
use crate::config::{self, Config, Context};
use crate::error::{Failure, Status};
use crate::hosts::fan;
use crate::output::{self, cell, clean, out, Col};
use crate::procs::bytes;

pub fn users(hosts: &[(String, Context)], form: Output) -> Status {
    let answers = fan(hosts, |c| c.get("/api/users"));
    let cols: &[Col] = &[
        Col {
            head: "USER",
            get: |u| cell(&u["username"]),
        },
        Col {
            head: "UID",
            get: |u| cell(&u["uid"]),
        },
        Col {
            head: "PROCESSES",
            get: |u| cell(&u["running"]),
        },
    ];
    output::list(form, &answers, "users", cols, cols)
}

pub fn whoami(hosts: &[(String, Context)], form: Output) -> Status {
    let answers = fan(hosts, |c| c.get("/api/whoami"));
    output::object(form, &answers, "", |v| {
        let scopes = v["scopes"]
            .as_array()
            .map(|a| a.iter().map(cell).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| cell(&v["scopes"]));
        let mut l = vec![
            ("key".to_string(), cell(&v["key"])),
            ("scopes".to_string(), scopes),
        ];
        l.extend(
            output::all_members(v)
                .into_iter()
                .filter(|(k, _)| k != "key" && k != "scopes"),
        );
        l
    })
}

/// The host's main figures in a table; json gives the whole answer. Only
/// the figures the answer has are shown, so a gateway that adds or lacks
/// one is still shown.
pub fn host(hosts: &[(String, Context)], form: Output) -> Status {
    let answers = fan(hosts, |c| c.get("/api/host"));
    output::object(form, &answers, "", host_lines)
}

fn host_lines(v: &Value) -> Vec<(String, String)> {
    let v = if v["host"].is_object() { &v["host"] } else { v };
    let mut l = Vec::new();
    let mut put = |k: &str, s: String| {
        if s != "-" {
            l.push((k.to_string(), s));
        }
    };
    put("hostname", cell(&v["hostname"]));
    put(
        "uptime",
        v["uptime"]
            .as_f64()
            .map_or_else(|| cell(&v["uptime"]), duration),
    );
    put("cpus", cell(&v["cpu_count"]));
    let cpu = &v["cpu_percent"];
    put(
        "cpu %",
        if cpu.is_object() {
            cell(&cpu["total"])
        } else {
            cell(cpu)
        },
    );
    put(
        "load average",
        match v["getloadavg"].as_array() {
            Some(a) => a.iter().map(cell).collect::<Vec<_>>().join(" "),
            None => "-".into(),
        },
    );
    for (k, m) in [
        ("memory", &v["virtual_memory"]),
        ("swap", &v["swap_memory"]),
    ] {
        if m.is_object() {
            put(
                k,
                format!(
                    "{} used of {} ({}%)",
                    bytes(&m["used"]),
                    bytes(&m["total"]),
                    cell(&m["percent"])
                ),
            );
        }
    }
    // Every other plain figure, as sent.
    for (k, x) in v.as_object().into_iter().flatten() {
        let known = [
            "result",
            "hostname",
            "uptime",
            "cpu_count",
            "cpu_percent",
            "getloadavg",
            "virtual_memory",
            "swap_memory",
        ];
        if !known.contains(&k.as_str()) && !x.is_object() && !x.is_array() {
            put(&clean(k), cell(x));
        }
    }
    l
}

fn duration(s: f64) -> String {
    let s = s as u64;
    format!(
        "{}d {:02}:{:02}:{:02}",
        s / 86400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

pub fn contexts(g: &Global, cmd: &ContextsCommand) -> Status {
    match contexts_inner(g, cmd) {
        Ok(s) => s,
        Err(f) => {
            output::complain(None, &f);
            Status::Error
        }
    }
}

fn contexts_inner(g: &Global, cmd: &ContextsCommand) -> Result<Status, Failure> {
    let path = match &g.config {
        Some(p) => p.clone(),
        None => config::default_path()?,
    };
    let mut cfg = Config::load(&path)?;
    match cmd {
        ContextsCommand::Ls { quiet: true } => {
            out(&cfg
                .contexts
                .keys()
                .map(|n| format!("{n}\n"))
                .collect::<String>());
            Ok(Status::Done)
        }
        ContextsCommand::Ls { quiet: false } => {
            match g.output {
                Output::Json | Output::Jsonl => {
                    let list: Vec<Value> = cfg
                        .contexts
                        .iter()
                        .map(|(n, c)| {
                            let mut v = serde_json::to_value(c).unwrap_or_default();
                            v["name"] = Value::String(n.clone());
                            v["current"] = Value::Bool(cfg.current.as_deref() == Some(n));
                            v
                        })
                        .collect();
                    if g.output == Output::Json {
                        out(&format!(
                            "{}\n",
                            serde_json::to_string_pretty(&list).unwrap_or_default()
                        ));
                    } else {
                        out(&list.iter().map(|v| format!("{v}\n")).collect::<String>());
                    }
                }
                Output::Table | Output::Wide => {
                    let rows: Vec<Vec<String>> = cfg
                        .contexts
                        .iter()
                        .map(|(n, c)| {
                            let cur = if cfg.current.as_deref() == Some(n) {
                                "*"
                            } else {
                                ""
                            };
                            vec![cur.into(), clean(n), clean(&c.url), clean(&c.auth())]
                        })
                        .collect();
                    out(&output::table(&["CURRENT", "NAME", "URL", "AUTH"], &rows));
                }
            }
            Ok(Status::Done)
        }
        ContextsCommand::Add(a) => {
            let ctx = new_context(a)?;
            let first = cfg.contexts.is_empty();
            cfg.contexts.insert(a.name.clone(), ctx);
            if a.make_current || first {
                cfg.current = Some(a.name.clone());
            }
            cfg.save(&path)?;
            if std::io::stderr().is_terminal() {
                eprintln!(
                    "monitoreo: context {} saved in {}",
                    clean(&a.name),
                    path.display()
                );
            }
            Ok(Status::Done)
        }
        ContextsCommand::Use { name } => {
            if !cfg.contexts.contains_key(name) {
                return Err(Failure::Local(format!(
                    "no context named {:?}",
                    clean(name)
                )));
            }
            cfg.current = Some(name.clone());
            cfg.save(&path)?;
            Ok(Status::Done)
        }
        ContextsCommand::Rm { name } => {
            if cfg.contexts.remove(name).is_none() {
                return Err(Failure::Local(format!(
                    "no context named {:?}",
                    clean(name)
                )));
            }
            if cfg.current.as_deref() == Some(name) {
                cfg.current = None;
            }
            cfg.save(&path)?;
            Ok(Status::Done)
        }
    }
}

fn new_context(a: &ContextAdd) -> Result<Context, Failure> {
    let ok_name = !a.name.is_empty()
        && a.name.len() <= 64
        && a.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok_name {
        return Err(Failure::Local(format!(
            "context name {:?} is not 1-64 characters of A-Z a-z 0-9 - _ .",
            clean(&a.name)
        )));
    }
    if !(a.url.starts_with("http://") || a.url.starts_with("https://")) {
        return Err(Failure::Local(format!(
            "--url {:?} is not http:// or https://",
            clean(&a.url)
        )));
    }
    if a.key_file.is_none() && a.key_env.is_none() && a.client_cert.is_none() {
        return Err(Failure::Local(
            "say how to authenticate: --key-file, --key-env or --client-cert".into(),
        ));
    }
    let abs = |p: &Option<std::path::PathBuf>| -> Result<Option<std::path::PathBuf>, Failure> {
        p.as_ref()
            .map(|p| {
                std::path::absolute(p).map_err(|e| Failure::Local(format!("{}: {e}", p.display())))
            })
            .transpose()
    };
    Ok(Context {
        url: a.url.clone(),
        key_file: abs(&a.key_file)?,
        key_env: a.key_env.clone(),
        ca_file: abs(&a.ca_file)?,
        client_cert: abs(&a.client_cert)?,
        client_key: abs(&a.client_key)?,
    })
}
