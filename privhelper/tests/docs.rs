//! The man page and the shell completions cannot drift from `--help`:
//! every option the real helper's help names must appear in
//! `packaging/man/monitoreo-privhelper.8` and in each completion script,
//! and the man page must format without a warning. (The gateway's
//! `tests/docs.rs` checks that the package installs them.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
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
    let man = read("packaging/man/monitoreo-privhelper.8").replace("\\-", "-");
    for o in &opts {
        assert!(
            man.contains(o.as_str()),
            "the man page does not mention {o}"
        );
    }
    for file in [
        "packaging/completions/monitoreo-privhelper.bash",
        "packaging/completions/_monitoreo-privhelper",
        "packaging/completions/monitoreo-privhelper.fish",
    ] {
        let text = read(file);
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
        .arg(repo().join("packaging/man/monitoreo-privhelper.8"))
        .output()
        .expect("groff runs: install Debian's groff-base (.ci/run does)");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
