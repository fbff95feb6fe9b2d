//! The real `monitoreo-privhelper` binary's exit statuses: 2 for a usage
//! error, with a message and a pointer to `--help`; 1 for any other
//! failure; 0 for `--help` and `--version`. Needs no root.

use std::process::{Command, Output};

fn helper(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_monitoreo-privhelper"))
        .args(args)
        .output()
        .expect("run helper")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn usage_errors_exit_2_with_a_message_and_a_pointer_to_the_help() {
    let cases: [(&[&str], &str); 5] = [
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
        (&["serve"], "unexpected argument 'serve'"),
        (&["--policy"], "a value is required for '--policy <PATH>'"),
        (&["--max-connections", "0"], "--max-connections"),
        (&["--idle-timeout-s", "soon"], "--idle-timeout-s"),
    ];
    for (args, want) in cases {
        let out = helper(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.contains("try '--help'"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_policy_that_cannot_be_read_exits_1() {
    let missing = std::env::temp_dir().join(format!("ph-cli-{}-missing.toml", std::process::id()));
    let out = helper(&["--check", "--policy", missing.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("missing.toml"));
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let help = helper(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("EXIT STATUS"));
    let version = helper(&["-V"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(text(&version.stdout).starts_with("monitoreo-privhelper "));
}
