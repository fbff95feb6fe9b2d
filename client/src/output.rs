//! Printing answers: `table`/`wide` for people, `json` (the API's answer
//! as sent; several gateways: an array of them, each with `context`) and
//! `jsonl` (one object per line) for programs. Text from a gateway is
//! never written raw to a terminal: control characters are escaped, so a
//! process named with an escape sequence cannot drive the terminal.

use std::io::Write;

use serde_json::Value;

use crate::cli::Output;
use crate::error::{Failure, Status};

/// One gateway's answer to one command.
pub type Answer = (String, Result<Value, Failure>);

/// A table column: its heading and how a row shows in it.
pub struct Col {
    pub head: &'static str,
    pub get: fn(&Value) -> String,
}

/// Writes to stdout and flushes. A reader that went away (`| head`) ends
/// the command quietly, as the default SIGPIPE would.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("monitoreo: writing the output: {e}");
        std::process::exit(1);
    }
}

/// Writes raw bytes (job output) to stdout or stderr, flushed.
pub fn raw(to_stderr: bool, bytes: &[u8]) {
    let r = if to_stderr {
        let mut e = std::io::stderr().lock();
        e.write_all(bytes).and_then(|()| e.flush())
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(bytes).and_then(|()| o.flush())
    };
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// One line on stderr for a gateway's failure, named when there are several.
pub fn complain(host: Option<&str>, f: &Failure) {
    match host {
        Some(h) => eprintln!("monitoreo: {h}: {}", clean(&f.to_string())),
        None => eprintln!("monitoreo: {}", clean(&f.to_string())),
    }
}

/// Control characters shown escaped (`\x1b`, `\n`), everything else kept.
pub fn clean(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            o.extend(c.escape_default());
        } else {
            o.push(c);
        }
    }
    o
}

/// A JSON value as a cell: strings bare, null as `-`, the rest as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => clean(s),
        other => clean(&other.to_string()),
    }
}

/// Rows under headings, columns padded; the last column is not padded.
pub fn table(heads: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = heads.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        let cells: Vec<&str> = cells.collect();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
            }
        }
        s.push('\n');
        s
    };
    let mut s = line(&mut heads.iter().copied());
    for r in rows {
        s.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    s
}

/// The answer with the context's name added, for a result of several.
pub fn tagged(host: &str, v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.insert("context".into(), Value::String(host.to_string()));
    }
    v
}

/// The status of answers from one or several gateways: failures are
/// printed; all failed is an error, some failed is partial.
pub fn status_of(answers: &[Answer]) -> Status {
    let multi = answers.len() > 1;
    let failed = answers.iter().filter(|(_, r)| r.is_err()).count();
    for (h, r) in answers {
        if let Err(f) = r {
            complain(multi.then_some(h.as_str()), f);
        }
    }
    if failed == 0 {
        Status::Done
    } else if failed == answers.len() {
        Status::Error
    } else {
        Status::Partial
    }
}

/// A listing: the rows of each answer's `member` array.
pub fn list(form: Output, answers: &[Answer], member: &str, cols: &[Col], wide: &[Col]) -> Status {
    let multi = answers.len() > 1;
    if answers.iter().all(|(_, r)| r.is_err()) {
        return status_of(answers);
    }
    match form {
        Output::Json => json(answers),
        Output::Jsonl => {
            let mut s = String::new();
            for (h, r) in answers {
                if let Ok(v) = r {
                    for row in v[member].as_array().into_iter().flatten() {
                        let row = if multi { tagged(h, row) } else { row.clone() };
                        s.push_str(&row.to_string());
                        s.push('\n');
                    }
                }
            }
            out(&s);
        }
        Output::Table | Output::Wide => {
            let cols = if form == Output::Wide { wide } else { cols };
            let mut heads: Vec<&str> = Vec::new();
            if multi {
                heads.push("HOST");
            }
            heads.extend(cols.iter().map(|c| c.head));
            let mut rows = Vec::new();
            for (h, r) in answers {
                if let Ok(v) = r {
                    for row in v[member].as_array().into_iter().flatten() {
                        let mut cells = Vec::new();
                        if multi {
                            cells.push(clean(h));
                        }
                        cells.extend(cols.iter().map(|c| (c.get)(row)));
                        rows.push(cells);
                    }
                }
            }
            out(&table(&heads, &rows));
        }
    }
    status_of(answers)
}

/// One object per gateway (`member` of the answer, or the answer itself
/// when `member` is empty), shown as `FIELD  VALUE` lines.
pub fn object(
    form: Output,
    answers: &[Answer],
    member: &str,
    lines: fn(&Value) -> Vec<(String, String)>,
) -> Status {
    let multi = answers.len() > 1;
    if answers.iter().all(|(_, r)| r.is_err()) {
        return status_of(answers);
    }
    match form {
        Output::Json => json(answers),
        Output::Jsonl => {
            let mut s = String::new();
            for (h, r) in answers {
                if let Ok(v) = r {
                    let o = if member.is_empty() { v } else { &v[member] };
                    let o = if multi { tagged(h, o) } else { o.clone() };
                    s.push_str(&o.to_string());
                    s.push('\n');
                }
            }
            out(&s);
        }
        Output::Table | Output::Wide => {
            let mut rows = Vec::new();
            for (h, r) in answers {
                if let Ok(v) = r {
                    let o = if member.is_empty() { v } else { &v[member] };
                    for (k, val) in lines(o) {
                        let mut cells = Vec::new();
                        if multi {
                            cells.push(clean(h));
                        }
                        cells.push(k);
                        cells.push(val);
                        rows.push(cells);
                    }
                }
            }
            let heads: &[&str] = if multi {
                &["HOST", "FIELD", "VALUE"]
            } else {
                &["FIELD", "VALUE"]
            };
            out(&table(heads, &rows));
        }
    }
    status_of(answers)
}

/// Every member of an object as a line, in the answer's order.
pub fn all_members(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "result")
        .map(|(k, v)| (clean(k), cell(v)))
        .collect()
}

/// `json`: the answer as the gateway sent it; of several, an array of
/// them, each with `context`, failures as their error envelopes.
fn json(answers: &[Answer]) {
    let doc = if answers.len() == 1 {
        match &answers[0].1 {
            Ok(v) => v.clone(),
            // Said on stderr; stdout holds answers only.
            Err(_) => return,
        }
    } else {
        Value::Array(
            answers
                .iter()
                .map(|(h, r)| match r {
                    Ok(v) => tagged(h, v),
                    Err(f) => tagged(h, &f.to_json()),
                })
                .collect(),
        )
    };
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    ));
}
