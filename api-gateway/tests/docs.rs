//! Documentation and layout that cannot drift:
//! - every file, directory and `module::item` / `Type::item` that
//!   ARCHITECTURE.md and PROTOCOL.md name in backticks exists;
//! - neither cites line numbers (they rot with the next edit);
//! - the README lists exactly the gateway's process fields;
//! - no module of the gateway imports one that imports it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file of the repository (no build output, no git internals).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            out.push(p.clone());
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn backticked(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for block in text.split("```").step_by(2) {
        let mut parts = block.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            if !inside.contains('\n') {
                out.push(inside.to_string());
            }
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let edge = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        edge(before) && edge(after)
    })
}

/// Problems with one document's references.
fn check_doc(name: &str, all: &[PathBuf]) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(name)).unwrap_or_default();
    assert!(!text.is_empty(), "{name} is missing or empty");
    check_text(name, &text, all)
}

fn check_text(name: &str, text: &str, all: &[PathBuf]) -> Vec<String> {
    let root = root();
    let rs: Vec<(PathBuf, String)> = all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap_or_default()))
        .collect();
    let mut problems = Vec::new();
    for span in backticked(text) {
        let s = span.trim();
        if s.starts_with('/') || [' ', '<', '{', '='].iter().any(|c| s.contains(*c)) {
            continue;
        }
        let path_like = [".rs", ".md", ".toml", ".sh"]
            .iter()
            .any(|e| s.ends_with(e))
            || (s.ends_with('/') && s.len() > 1);
        if path_like && !s.contains("::") {
            let rel = s.trim_end_matches('/');
            let found = if rel.contains('/') {
                root.join(rel).exists() || all.iter().any(|p| p.ends_with(rel))
            } else {
                all.iter().any(|p| p.file_name().is_some_and(|f| f == rel))
            };
            if !found {
                problems.push(format!("{name}: `{s}` names no file or directory"));
            }
            continue;
        }
        let segs: Vec<&str> = s.trim_end_matches("()").split("::").collect();
        if segs.len() < 2 || !segs.iter().all(|p| is_ident(p)) {
            continue;
        }
        let (owner, item) = (segs[segs.len() - 2], segs[segs.len() - 1]);
        let ok = if owner.starts_with(|c: char| c.is_ascii_uppercase()) {
            let defines = |t: &str| {
                ["struct", "enum", "trait", "type"]
                    .iter()
                    .any(|k| t.contains(&format!("{k} {owner}")))
            };
            rs.iter().any(|(_, t)| defines(t)) && rs.iter().any(|(_, t)| contains_word(t, item))
        } else {
            // A module: `owner.rs`, `owner/mod.rs`, or the crate `owner/`.
            rs.iter().any(|(p, t)| {
                let file = p.file_stem().is_some_and(|f| f == owner)
                    || (p.ends_with("mod.rs") && p.parent().is_some_and(|d| d.ends_with(owner)))
                    || (p.ends_with("src/lib.rs")
                        && p.parent().and_then(Path::parent).is_some_and(|d| {
                            d.file_name()
                                .is_some_and(|n| n.to_string_lossy().replace('-', "_") == owner)
                        }));
                file && contains_word(t, item)
            })
        };
        if !ok {
            problems.push(format!("{name}: `{s}` names no such item"));
        }
    }
    for line in text.lines() {
        for ext in [".rs:", ".md:", ".toml:"] {
            if let Some(i) = line.find(ext) {
                if line[i + ext.len()..].starts_with(|c: char| c.is_ascii_digit()) {
                    problems.push(format!("{name}: cites a line number: {line}"));
                }
            }
        }
        let lower = line.to_ascii_lowercase();
        for word in ["line ", "lines "] {
            for (i, _) in lower.match_indices(word) {
                if lower[i + word.len()..].starts_with(|c: char| c.is_ascii_digit()) {
                    problems.push(format!("{name}: cites a line number: {line}"));
                }
            }
        }
    }
    problems
}

#[test]
fn architecture_and_protocol_name_only_files_and_items_that_exist() {
    let mut all = Vec::new();
    files(&root(), &mut all);
    let mut problems = check_doc("ARCHITECTURE.md", &all);
    problems.extend(check_doc("PROTOCOL.md", &all));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_catches_a_stale_reference() {
    let mut all = Vec::new();
    files(&root(), &mut all);
    let text = "see `routes.rs`, `routes::handle`, `Router::handle`, server.rs:12\n";
    let problems = check_text("X.md", text, &all);
    let text = problems.join("\n");
    assert!(text.contains("`routes.rs`"), "{text}");
    assert!(text.contains("`routes::handle`"), "{text}");
    assert!(!text.contains("X.md: `Router::handle`"), "{text}");
    assert!(text.contains("line number"), "{text}");
}

#[test]
fn the_readme_lists_exactly_the_process_fields() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let section = readme
        .split("<!-- fields:start -->")
        .nth(1)
        .and_then(|s| s.split("<!-- fields:end -->").next())
        .expect("README has a fields:start/fields:end section");
    let listed: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let table: Vec<String> = api_gateway::procs::FIELD_TABLE
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(listed, table, "README field list vs procs/fields.rs");
}

/// The module a source file is, as a path under the crate (`http::router`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

#[test]
fn no_gateway_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let rs: Vec<PathBuf> = all
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs") && !p.ends_with("main.rs"))
        .collect();
    let modules: BTreeSet<Vec<String>> = rs.iter().map(|f| module_of(&src, f)).collect();
    // The deepest module a `crate::a::b::c` path reaches.
    let resolve = |path: Vec<String>| -> Vec<String> {
        let mut best = Vec::new();
        for i in 1..=path.len() {
            if modules.contains(&path[..i]) {
                best = path[..i].to_vec();
            }
        }
        best
    };
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &rs {
        let me = module_of(&src, f);
        let text = std::fs::read_to_string(f).unwrap_or_default();
        // Test modules (at the end of a file) are not part of the layering.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut targets = Vec::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + 7..];
            if let Some(group) = rest.strip_prefix('{') {
                for name in group.split('}').next().unwrap_or("").split(',') {
                    targets.push(vec![name
                        .trim()
                        .split("::")
                        .next()
                        .unwrap_or("")
                        .to_string()]);
                }
            } else {
                let p: Vec<String> = rest
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                targets.push(p);
            }
        }
        for (i, _) in code.match_indices("super::") {
            if i > 0 && code[..i].ends_with("::") {
                continue;
            }
            let rest = &code[i + 7..];
            // `super` of `a::b` (a/b.rs or a/b/mod.rs) is `a`.
            let mut p = me.clone();
            p.pop();
            if let Some(group) = rest.strip_prefix('{') {
                for name in group.split('}').next().unwrap_or("").split(',') {
                    let mut q = p.clone();
                    q.push(name.trim().split("::").next().unwrap_or("").to_string());
                    targets.push(q);
                }
                continue;
            }
            p.extend(
                rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|s| !s.is_empty() && *s != "*")
                    .map(str::to_string),
            );
            targets.push(p);
        }
        if me.is_empty() {
            // lib.rs names its modules without `crate::`.
            for m in modules.iter().filter(|m| m.len() == 1) {
                let needle = format!("{}::", m[0]);
                let used = code.match_indices(&needle).any(|(i, _)| {
                    !code[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                });
                if used {
                    targets.push(m.clone());
                }
            }
        }
        for t in targets {
            let t = resolve(t);
            if t != me {
                edges.entry(me.clone()).or_default().insert(t);
            }
        }
    }
    let mut cycles = Vec::new();
    for (a, outs) in &edges {
        for b in outs {
            if a < b && edges.get(b).is_some_and(|o| o.contains(a)) {
                cycles.push(format!("{} <-> {}", a.join("::"), b.join("::")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules importing each other:\n{}",
        cycles.join("\n")
    );
    // The known layering holds.
    let http: Vec<String> = vec!["http".into(), "router".into()];
    assert!(
        !edges
            .get(&http)
            .is_some_and(|o| o.iter().any(|m| m.first().is_some_and(|f| f == "api"))),
        "http imports api"
    );
    // `http/` knows nothing of processes or jobs, nor of the state that
    // holds them: what it needs is handed to the router as hooks.
    let domain = [
        "api", "state", "ids", "jobs", "procs", "helper", "audit", "metrics", "flight",
    ];
    for (m, outs) in edges
        .iter()
        .filter(|(m, _)| m.first().is_some_and(|f| f == "http"))
    {
        for o in outs {
            assert!(
                !o.first().is_some_and(|f| domain.contains(&f.as_str())),
                "{} imports {}",
                m.join("::"),
                o.join("::")
            );
        }
    }
    for f in rs
        .iter()
        .filter(|f| module_of(&src, f).first().is_some_and(|m| m == "http"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        assert!(
            !text.contains("protocol::"),
            "{} names the helper's protocol",
            f.display()
        );
    }
}
