//! `--check` and strict keys: the policy file is validated without starting the helper.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Tests run in parallel: each call gets a directory of its own.
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn check(policy: &str) -> std::process::Output {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ph-check-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("policy.toml");
    std::fs::write(&path, policy).expect("write policy");
    let out = Command::new(env!("CARGO_BIN_EXE_monitoreo-privhelper"))
        .arg("--check")
        .arg("--policy")
        .arg(&path)
        .output()
        .expect("run helper");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn check_accepts_a_good_policy() {
    let out = check("[signal]\nowners = [\"nobody\"]\nsignals = [\"TERM\"]\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unknown_key_is_an_error_naming_the_key() {
    let out = check("[signal]\nowners = [\"nobody\"]\ncolour = \"red\"\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
}

#[test]
fn an_unknown_key_is_an_error_naming_its_line() {
    let out = check("[signal]\nowners = [\"nobody\"]\ncolour = \"red\"\n");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("line 3"), "{text}");
}
