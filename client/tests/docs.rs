//! The man pages and completions the build generates from `src/cli.rs`:
//! one page per command and subcommand, each formatting without a warning
//! (groff), the top page listing every subcommand, and every completion
//! offering every subcommand.

#[allow(dead_code)]
#[path = "../src/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;

fn generated(sub: &str) -> PathBuf {
    PathBuf::from(env!("OUT_DIR")).join(sub)
}

/// Every command path: `monitoreo`, `monitoreo-ps`, `monitoreo-jobs-logs`...
fn names() -> Vec<(String, String)> {
    fn walk(c: &clap::Command, name: String, out: &mut Vec<(String, String)>) {
        out.push((name.clone(), c.get_name().to_string()));
        for s in c.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(s, format!("{name}-{}", s.get_name()), out);
        }
    }
    let mut out = Vec::new();
    walk(&cli::Cli::command(), "monitoreo".into(), &mut out);
    out
}

#[test]
fn every_command_has_a_page_and_the_top_page_lists_every_subcommand() {
    let top = std::fs::read_to_string(generated("man/monitoreo.1")).unwrap();
    for (page, word) in names() {
        let p = generated(&format!("man/{page}.1"));
        assert!(p.exists(), "{} is missing", p.display());
        if page.matches('-').count() == 1 {
            assert!(
                top.replace("\\-", "-").contains(&format!("{page}(1)")),
                "monitoreo.1 does not list {word}"
            );
        }
    }
    // The same definition: what the binary's --help lists is what the
    // pages list.
    let help = Command::new(env!("CARGO_BIN_EXE_monitoreo"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for sub in [
        "ps", "top", "show", "kill", "renice", "run", "jobs", "users", "host", "whoami", "contexts",
    ] {
        assert!(
            help.contains(&format!("  {sub} ")),
            "--help lacks {sub}: {help}"
        );
        assert!(generated(&format!("man/monitoreo-{sub}.1")).exists());
    }
}

#[test]
fn every_completion_offers_every_subcommand() {
    for file in ["monitoreo.bash", "_monitoreo", "monitoreo.fish"] {
        let text = std::fs::read_to_string(generated(&format!("completions/{file}"))).unwrap();
        for (_, word) in names().into_iter().skip(1) {
            assert!(text.contains(&word), "{file} does not offer {word}");
        }
        for opt in [
            "--context",
            "--all-contexts",
            "--output",
            "--follow",
            "--watch",
        ] {
            // fish names a long option `-l name`.
            let needle = if file.ends_with(".fish") {
                format!("-l {}", &opt[2..])
            } else {
                opt.to_string()
            };
            assert!(text.contains(&needle), "{file} does not offer {opt}");
        }
    }
    let bash = Command::new("bash")
        .arg("-n")
        .arg(generated("completions/monitoreo.bash"))
        .status()
        .unwrap();
    assert!(bash.success(), "the bash completion does not parse");
}

#[test]
#[ignore = "needs groff"]
fn every_page_formats_without_a_warning() {
    for (page, _) in names() {
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z", "-Tutf8"])
            .arg(generated(&format!("man/{page}.1")))
            .output()
            .expect("groff runs (apt-get install groff)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{page}.1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What the generated bash completion offers for `words` (the last one
/// being completed), with `monitoreo` on PATH and `config` as its file.
fn bash_complete(words: &[&str], config: &std::path::Path) -> Vec<String> {
    let script = generated("completions/monitoreo.bash");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_monitoreo monitoreo \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_monitoreo"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .env("PATH", path)
        .env("MONITOREO_CONFIG", config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn the_completions_offer_the_configured_context_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[contexts.web-1]\nurl = \"http://a\"\nkey_env = \"K\"\n\
         [contexts.web-2]\nurl = \"http://b\"\nkey_env = \"K\"\n",
    )
    .unwrap();
    assert_eq!(
        bash_complete(&["monitoreo", "ps", "-c", ""], &config),
        ["web-1", "web-2"]
    );
    assert_eq!(
        bash_complete(&["monitoreo", "--context", "web-"], &config),
        ["web-1", "web-2"]
    );
    assert_eq!(
        bash_complete(&["monitoreo", "contexts", "use", "w"], &config),
        ["web-1", "web-2"]
    );
    assert_eq!(
        bash_complete(&["monitoreo", "contexts", "rm", "web-2"], &config),
        ["web-2"]
    );
    // Elsewhere the words are the definition's.
    let top = bash_complete(&["monitoreo", ""], &config);
    assert!(
        top.iter().any(|w| w == "ps") && !top.iter().any(|w| w == "web-1"),
        "{top:?}"
    );
    for file in ["_monitoreo", "monitoreo.fish"] {
        let text = std::fs::read_to_string(generated(&format!("completions/{file}"))).unwrap();
        assert!(text.contains("monitoreo contexts ls -q"), "{file}");
    }
}
