//! Documents that cannot drift:
//! - the man page and the shell completions, generated at build time from
//!   the same clap definition as `--help`, name every option it names, and
//!   the man page formats without a warning (the gateway's `tests/docs.rs`
//!   checks that the package installs them);
//! - every table of checks in PROTOCOL.md has a `test` column, and every
//!   test it names is a test function of the workspace (in the file the
//!   cell names, when it names one);
//! - PROTOCOL.md's table of log events lists exactly the events the
//!   helper's code writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// What `build.rs` generated: `man/...` or `completions/...`.
fn generated(rel: &str) -> String {
    let p = Path::new(env!("OUT_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_monitoreo-privhelper"))
        .arg("--help")
        .output()
        .expect("run helper");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// Every `--long` and `-s` option in `text`.
fn options(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    for i in 0..b.len() {
        let starts_word = i == 0 || b" \t\n[(|,".contains(&b[i - 1]);
        if !starts_word || b[i] != b'-' {
            continue;
        }
        let end = (i + 1..b.len())
            .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'-'))
            .unwrap_or(b.len());
        let word = &text[i..end];
        let long =
            word.len() > 3 && word.starts_with("--") && word.as_bytes()[2].is_ascii_alphabetic();
        let short = word.len() == 2 && word.as_bytes()[1].is_ascii_alphabetic();
        if (long || short) && !found.iter().any(|f| f == word) {
            found.push(word.to_string());
        }
    }
    found
}

#[test]
fn the_man_page_and_every_completion_name_every_option_of_the_help() {
    let opts = options(&help());
    for want in [
        "--policy",
        "--socket",
        "--gateway-user",
        "--cgroup-root",
        "--max-connections",
        "--idle-timeout-s",
        "--check",
        "--help",
        "-h",
        "--version",
        "-V",
    ] {
        assert!(
            opts.iter().any(|o| o == want),
            "the help lost {want}: {opts:?}"
        );
    }
    let man = generated("man/monitoreo-privhelper.8").replace("\\-", "-");
    for o in &opts {
        assert!(
            man.contains(o.as_str()),
            "the man page does not mention {o}"
        );
    }
    for file in [
        "completions/monitoreo-privhelper.bash",
        "completions/_monitoreo-privhelper",
        "completions/monitoreo-privhelper.fish",
    ] {
        let text = generated(file);
        let fish = file.ends_with(".fish");
        // Long options; a short alias need not be offered.
        for o in opts.iter().filter(|o| o.starts_with("--")) {
            // fish declares `-l check` rather than spelling `--check`.
            let want = match (fish, o.strip_prefix("--")) {
                (true, Some(long)) => format!("-l {long}"),
                _ => o.clone(),
            };
            assert!(text.contains(&want), "{file} does not offer {o}");
        }
    }
}

#[test]
#[ignore = "needs groff (Debian's groff-base)"]
fn the_man_page_formats_without_warnings() {
    let out = Command::new("groff")
        .args(["-man", "-ww", "-z", "-Tutf8"])
        .arg(Path::new(env!("OUT_DIR")).join("man/monitoreo-privhelper.8"))
        .output()
        .expect("groff runs: install Debian's groff-base (.ci/run does)");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// Every `.rs` file under `dir`, build output, dependencies and hidden
/// directories left out.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            if !name.starts_with("target") && name != "node_modules" {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

/// A test function: the file it is in and its name.
#[derive(Debug, Clone)]
struct TestFn {
    file: PathBuf,
    name: String,
}

/// The functions of `text` marked `#[test]` (or `#[tokio::test…]`),
/// looking past other attributes, doc comments and blank lines.
fn test_fns(file: &Path, text: &str) -> Vec<TestFn> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim_start();
        let l = l.strip_prefix("pub ").unwrap_or(l);
        let l = l.strip_prefix("async ").unwrap_or(l);
        let Some(rest) = l.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let is_test = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.is_empty() || l.starts_with("#[") || l.starts_with("//"))
            .any(|l| l == "#[test]" || l.starts_with("#[tokio::test"));
        if is_test && !name.is_empty() {
            found.push(TestFn {
                file: file.to_path_buf(),
                name,
            });
        }
    }
    found
}

/// Every test function of the workspace.
fn workspace_tests() -> Vec<TestFn> {
    let mut files = Vec::new();
    rust_files(&repo(), &mut files);
    files
        .iter()
        .flat_map(|f| test_fns(f, &std::fs::read_to_string(f).unwrap_or_default()))
        .collect()
}

/// The spans of `text` between backticks.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The cells of one table line, split on `|` outside backticks.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut code = false;
    for c in inner.chars() {
        if c == '`' {
            code = !code;
        }
        if c == '|' && !code {
            out.push(std::mem::take(&mut cell));
        } else {
            cell.push(c);
        }
    }
    out.push(cell);
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// A markdown table: its header cells and its rows (each with the line it
/// is on, 1-based).
struct Table {
    header: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

/// Every table of `text` outside code blocks.
fn tables(text: &str) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    let mut in_code = false;
    let mut current: Option<Table> = None;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        let is_row = !in_code && line.trim_start().starts_with('|');
        match (&mut current, is_row) {
            (Some(t), true) => {
                let c = cells(line);
                let separator = c.iter().all(|c| c.chars().all(|ch| "-: ".contains(ch)));
                if !separator {
                    t.rows.push((i + 1, c));
                }
            }
            (None, true) => {
                current = Some(Table {
                    header: cells(line),
                    rows: Vec::new(),
                });
            }
            (_, false) => out.extend(current.take()),
        }
    }
    out.extend(current.take());
    out
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Problems with the `test` columns of `doc` (named `name`): a table of
/// checks without one, a row that names no test, a test that is not a test
/// function of `tests` (in the files the cell names before it, if any), a
/// file that does not exist.
fn check_test_columns(name: &str, doc: &str, tests: &[TestFn]) -> Vec<String> {
    let mut problems = Vec::new();
    for t in tables(doc) {
        let col = t.header.iter().position(|h| h == "test");
        let of_checks = t.header.iter().any(|h| h == "check");
        let Some(col) = col else {
            if of_checks {
                problems.push(format!(
                    "{name}: a table of checks ({}) has no `test` column",
                    t.header.join(" | ")
                ));
            }
            continue;
        };
        for (line, row) in &t.rows {
            let at = format!("{name}, line {line}");
            let Some(cell) = row.get(col) else {
                problems.push(format!("{at}: no `test` cell"));
                continue;
            };
            // Files named so far in this cell, if any: the tests after
            // them are looked for there.
            let mut files: Option<Vec<PathBuf>> = None;
            let mut named = 0;
            for span in backticked(cell) {
                if span.ends_with(".rs") {
                    let matching: Vec<PathBuf> = tests
                        .iter()
                        .map(|t| t.file.clone())
                        .filter(|f| f.ends_with(&span))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    if matching.is_empty() {
                        problems.push(format!("{at}: `{span}` is no file with tests"));
                    }
                    files = Some(matching);
                } else if is_ident(&span) {
                    named += 1;
                    let found = tests.iter().any(|t| {
                        t.name == span && files.as_ref().map_or(true, |fs| fs.contains(&t.file))
                    });
                    if !found {
                        let place = match &files {
                            Some(_) => " in the file the cell names",
                            None => "",
                        };
                        problems.push(format!(
                            "{at}: `{span}` is no test function of the workspace{place}"
                        ));
                    }
                } else {
                    problems.push(format!(
                        "{at}: `{span}` in a test cell is neither a test file nor a test function"
                    ));
                }
            }
            if named == 0 {
                problems.push(format!("{at}: the row names no test"));
            }
        }
    }
    problems
}

/// The events `source` writes: the literal name of every `log::event(…)`
/// call and of every `"event"` key given a literal value; a `log::event`
/// whose name is not a literal is a problem (it could write anything).
fn written_events(file: &str, source: &str) -> (BTreeSet<String>, Vec<String>) {
    let literal = |rest: &str| -> Option<String> {
        let rest = rest.trim_start().strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    };
    let mut events = BTreeSet::new();
    let mut problems = Vec::new();
    for (i, _) in source.match_indices("log::event(") {
        match literal(&source[i + "log::event(".len()..]) {
            Some(name) => {
                events.insert(name);
            }
            None => problems.push(format!(
                "{file}: a log::event call whose name is not a string literal"
            )),
        }
    }
    for (i, _) in source.match_indices("\"event\"") {
        let rest = source[i + "\"event\"".len()..].trim_start();
        let rest = rest.strip_prefix(".into()").unwrap_or(rest).trim_start();
        let Some(rest) = rest.strip_prefix([',', ':']) else {
            continue;
        };
        let rest = rest.trim_start();
        let rest = rest.strip_prefix("json!(").unwrap_or(rest);
        if let Some(name) = literal(rest) {
            events.insert(name);
        }
    }
    (events, problems)
}

/// The first cells of the table whose header starts with `event`.
fn listed_events(doc: &str) -> Option<BTreeSet<String>> {
    let t = tables(doc)
        .into_iter()
        .find(|t| t.header.first().is_some_and(|h| h == "event"))?;
    Some(
        t.rows
            .iter()
            .filter_map(|(_, r)| r.first())
            .flat_map(|c| backticked(c))
            .collect(),
    )
}

/// Problems between the events a document lists and those the code writes.
fn check_events(doc: &str, sources: &[(String, String)]) -> Vec<String> {
    let Some(listed) = listed_events(doc) else {
        return vec!["PROTOCOL.md has no table whose first column is `event`".into()];
    };
    let mut written = BTreeSet::new();
    let mut problems = Vec::new();
    for (file, text) in sources {
        let (events, p) = written_events(file, text);
        written.extend(events);
        problems.extend(p);
    }
    for e in written.difference(&listed) {
        problems.push(format!(
            "the helper writes the event `{e}`, which PROTOCOL.md does not list"
        ));
    }
    for e in listed.difference(&written) {
        problems.push(format!(
            "PROTOCOL.md lists the event `{e}`, which the helper never writes"
        ));
    }
    problems
}

fn helper_sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&repo().join("privhelper/src"), &mut files);
    files
        .iter()
        .map(|f| {
            (
                f.display().to_string(),
                std::fs::read_to_string(f).unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn every_check_names_a_test_that_exists() {
    let tests = workspace_tests();
    let problems = check_test_columns("PROTOCOL.md", &read("PROTOCOL.md"), &tests);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The check tables are there to be checked.
    let with_tests = tables(&read("PROTOCOL.md"))
        .iter()
        .filter(|t| t.header.iter().any(|h| h == "test"))
        .count();
    assert!(
        with_tests >= 6,
        "only {with_tests} tables with a test column"
    );
}

#[test]
fn the_log_events_listed_are_exactly_those_the_helper_writes() {
    let problems = check_events(&read("PROTOCOL.md"), &helper_sources());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checkers_catch_a_missing_test_and_an_event_out_of_step() {
    let tests = workspace_tests();
    let doc = "| # | check | where | test |\n| --- | --- | --- | --- |\n\
               | 1 | a | b | `no_such_test_anywhere` |\n\
               | 2 | a | b | `e2e.rs` `help` |\n\
               | 3 | a | b | `docs.rs` `the_man_page_formats_without_warnings` |\n\
               | 4 | a | b | `e2e.rs` `the_man_page_formats_without_warnings` |\n\
               | 5 | a | b | none |\n\
               | 6 | a | b | `nowhere.rs` `pids_below_two_never_become_pids` |\n\
               \n| check | where |\n| --- | --- |\n| a | b |\n";
    let p = check_test_columns("X.md", doc, &tests).join("\n");
    assert!(p.contains("line 3: `no_such_test_anywhere`"), "{p}");
    // `help` is a function of this file, but not a test.
    assert!(p.contains("line 4: `help`"), "{p}");
    assert!(!p.contains("line 5"), "{p}");
    assert!(
        p.contains("line 6: `the_man_page_formats_without_warnings`"),
        "{p}"
    );
    assert!(p.contains("line 7: the row names no test"), "{p}");
    assert!(p.contains("`nowhere.rs` is no file"), "{p}");
    assert!(p.contains("has no `test` column"), "{p}");

    let doc = "| event | when |\n| --- | --- |\n| `started` | x |\n| `gone` | y |\n";
    let src = |t: &str| vec![("x.rs".to_string(), t.to_string())];
    let p = check_events(
        doc,
        &src("log::event(\"started\", &[]);\ncrate::log::event(\n    \"new_one\", &[]);"),
    )
    .join("\n");
    assert!(p.contains("writes the event `new_one`"), "{p}");
    assert!(p.contains("lists the event `gone`"), "{p}");
    assert!(!p.contains("`started`"), "{p}");
    let p = check_events(doc, &src("log::event(name, &[]);")).join("\n");
    assert!(p.contains("not a string literal"), "{p}");
    let (written, _) = written_events(
        "x.rs",
        "line.insert(\"event\".into(), json!(\"decision\"));",
    );
    assert!(written.contains("decision"), "{written:?}");
}
