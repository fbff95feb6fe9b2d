//! The command line of the real `monitoreo-gateway` binary: exit statuses
//! (0 success, 1 failure, 2 usage error), the keys usage, and `keys list`
//! with and without a keys file. Needs no root: run as root, the keys
//! commands stay root in these root-owned temp dirs.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::GATEWAY;

fn gateway(args: &[&str]) -> Output {
    Command::new(GATEWAY).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A config whose state dir (and so keys file) lives in `dir`.
fn config_in(dir: &Path) -> PathBuf {
    let config = dir.join("gateway.toml");
    let state = dir.join("state");
    std::fs::write(&config, format!("state_dir = \"{}\"\n", state.display())).unwrap();
    config
}

#[test]
fn usage_errors_exit_2_with_a_message_and_a_pointer_to_the_help() {
    // clap's words for what clap refuses; the gateway's for what
    // `args::check` refuses after it.
    let cases: [(&[&str], &str); 8] = [
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["serve", "--bogus"], "unexpected argument '--bogus'"),
        (
            &["serve", "--config"],
            "a value is required for '--config <PATH>'",
        ),
        (&["serve", "--json"], "unexpected argument '--json'"),
        (&["keys", "add", "ops"], "--scopes <LIST>"),
        (
            &["keys", "add", "ops", "--scopes", "root"],
            "invalid value 'root'",
        ),
        (
            &["keys", "add", "a/b", "--scopes", "read"],
            "key name \"a/b\"",
        ),
        (&["keys", "frob"], "unrecognized subcommand 'frob'"),
    ];
    for (args, want) in cases {
        let out = gateway(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.contains("--help"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let keys = gateway(&["keys", "add", "a/b", "--scopes", "read"]);
    assert!(text(&keys.stderr).contains("monitoreo-gateway keys --help"));
}

#[test]
fn runtime_failures_exit_1() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing.toml");
    let out = gateway(&["keys", "list", "--config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("missing.toml"));
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "colour = \"red\"\n").unwrap();
    let out = gateway(&["serve", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("colour"));
}

#[test]
fn keys_alone_prints_the_keys_usage_on_stdout_and_exits_0() {
    for args in [&["keys"][..], &["keys", "--help"]] {
        let out = gateway(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let usage = text(&out.stdout);
        for cmd in ["keys add NAME", "keys list", "keys revoke NAME", "--json"] {
            assert!(usage.contains(cmd), "{args:?}: {usage}");
        }
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn the_gateway_alone_prints_its_help_and_exits_0() {
    let alone = gateway(&[]);
    assert_eq!(alone.status.code(), Some(0));
    assert_eq!(alone.stdout, gateway(&["--help"]).stdout);
    assert!(text(&alone.stdout).contains("EXIT STATUS"));
}

#[test]
fn keys_list_without_a_keys_file_says_so_on_stderr_and_exits_0() {
    let d = tempfile::tempdir().unwrap();
    let config = config_in(d.path());
    let config = config.to_str().unwrap();
    for json in [false, true] {
        let mut args = vec!["keys", "list", "--config", config];
        if json {
            args.push("--json");
        }
        let out = gateway(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        let keys_file = d.path().join("state/keys.json");
        assert!(
            err.contains(&format!("no keys file at {}", keys_file.display())),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "monitoreo-gateway keys add NAME --scopes read,signal,renice,exec --config {config}"
            )),
            "{err}"
        );
        let stdout = text(&out.stdout);
        if json {
            assert_eq!(stdout.trim(), "[]");
        } else {
            assert!(stdout.is_empty(), "{stdout}");
        }
    }
    assert!(!d.path().join("state").exists(), "listing created files");
}

#[test]
fn keys_list_json_is_an_array_of_records_without_hashes() {
    let d = tempfile::tempdir().unwrap();
    let config = config_in(d.path());
    let config = config.to_str().unwrap();
    let add = |name: &str, scopes: &str, extra: &[&str]| {
        let mut args = vec!["keys", "add", name, "--scopes", scopes, "--config", config];
        args.extend_from_slice(extra);
        let out = gateway(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout).lines().next().unwrap().to_string()
    };
    let ops = add("ops", "read,exec", &["--expires", "1d"]);
    let viewer = add("viewer", "read", &[]);
    let out = gateway(&["keys", "revoke", "viewer", "--config", config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = gateway(&["keys", "list", "--json", "--config", config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let stored = std::fs::read_to_string(d.path().join("state/keys.json")).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    for k in stored.as_array().unwrap() {
        let hash = k["sha256"].as_str().unwrap();
        assert!(!stdout.contains(hash), "a hash was listed: {stdout}");
    }
    assert!(!stdout.contains("sha256") && !stdout.contains(&ops) && !stdout.contains(&viewer));

    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "ops");
    assert_eq!(list[0]["scopes"], serde_json::json!(["read", "exec"]));
    assert_eq!(list[0]["revoked"], false);
    assert_eq!(list[0]["state"], "active");
    let created = list[0]["created"].as_u64().unwrap();
    assert_eq!(list[0]["expires"].as_u64(), Some(created + 86_400));
    assert_eq!(list[1]["name"], "viewer");
    assert_eq!(list[1]["expires"], serde_json::Value::Null);
    assert_eq!(list[1]["revoked"], true);
    assert_eq!(list[1]["state"], "revoked");

    // The plain listing has the same keys, one line each.
    let out = gateway(&["keys", "list", "--config", config]);
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("ops\tread,exec\t") && lines[0].ends_with("active"));
    assert!(lines[1].starts_with("viewer\tread\t") && lines[1].ends_with("revoked"));
}

#[test]
fn keys_add_warns_when_admin_can_grant_nothing_and_still_creates_the_key() {
    let d = tempfile::tempdir().unwrap();
    let config = config_in(d.path());
    let config = config.to_str().unwrap();
    let add = |name: &str, scopes: &str| {
        let out = gateway(&["keys", "add", name, "--scopes", scopes, "--config", config]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with("mon_"), "{scopes}: no token");
        text(&out.stderr)
    };
    for (name, scopes) in [("boss", "admin"), ("auditor", "read,admin")] {
        let err = add(name, scopes);
        assert!(
            err.contains(&format!(
                "warning: key \"{name}\" has admin but none of exec, signal, renice"
            )),
            "{scopes}: {err}"
        );
    }
    for (name, scopes) in [
        ("ops", "read,exec,admin"),
        ("reaper", "read,signal,admin"),
        ("viewer", "read"),
    ] {
        let err = add(name, scopes);
        assert!(!err.contains("warning"), "{scopes}: {err}");
    }
    let out = gateway(&["keys", "list", "--config", config]);
    let listed = text(&out.stdout);
    assert!(
        listed.lines().any(|l| l.starts_with("boss\tadmin\t")),
        "{listed}"
    );
}
