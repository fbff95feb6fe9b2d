//! The ancestor protection with chains kept between requests.
//!
//! The helper keeps its own chain of parents (and the peer's) pinned by
//! pidfds and walks it again only when a member exits. This test kills the
//! helper's parent between two requests on one connection and gives a new
//! process the dead parent's pid (`ns_last_pid`): the helper must refuse
//! the parent while it lives, and afterwards judge the newcomer by the
//! policy, not by a stale chain. It is alone in its file (its own test
//! binary) because `ns_last_pid` steers the pid of the next process
//! created anywhere. Needs root.

mod support;

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocol::{Action, Response, Signal, Target};
use support::*;

fn signal(c: &mut api_gateway::helper::Connection, pid: i32) -> Response {
    support::act_one(
        c,
        Target {
            pid,
            start_time: start_time(pid),
        },
        Action::Signal(Signal::Cont),
        test_caller(),
    )
}

/// The only child of `pid` (the helper under its wrapper shell).
fn only_child(pid: i32) -> i32 {
    let t = Instant::now();
    loop {
        let kids =
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(k) = kids.split_whitespace().next() {
            return k.parse().expect("a pid");
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{pid} has no child");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `sleep` run as nobody that gets exactly `pid`, or `None` if other
/// processes kept taking it.
fn sleeper_at(pid: i32) -> Option<Proc> {
    for _ in 0..200 {
        fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).expect("ns_last_pid");
        let mut c = Command::new("sleep")
            .arg("60")
            .uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep");
        if c.id() as i32 == pid {
            return Some(Proc(c));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    None
}

#[test]
#[ignore = "needs root"]
fn a_dead_ancestors_pid_is_judged_afresh_and_a_live_one_refused() {
    require_root();
    // `sh` stays the helper's parent: the command is not its last one.
    let mut h = Helper::start_with(
        "lineage",
        &policy(60920, ""),
        &[],
        &["sh", "-c", "\"$@\"; exit $?", "sh"],
    );
    let shell = h.child.id() as i32;
    let helper = only_child(shell);
    let mut c = h.connect();

    // The first signal walks and keeps the chains; the parent is refused.
    let bystander = Proc(
        Command::new("sleep")
            .arg("60")
            .uid(65534)
            .gid(65534)
            .spawn()
            .expect("sleep"),
    );
    assert_eq!(signal(&mut c, bystander.id() as i32), Response::Ok);
    match signal(&mut c, shell) {
        Response::Denied { rule, .. } => assert_eq!(rule, "builtin:ancestor"),
        other => panic!("the helper's parent was not refused: {other:?}"),
    }

    // The parent dies; the helper lives on under a reaper.
    h.child.kill().expect("kill the shell");
    h.child.wait().expect("reap the shell");
    let t = Instant::now();
    while stat_field(helper, 4) == Some(shell as u64) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "helper not reparented"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(newcomer) = sleeper_at(shell) else {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(helper),
            nix::sys::signal::SIGTERM,
        );
        panic!("could not start a process at pid {shell} in 200 tries");
    };
    // Same connection, kept chains: the newcomer is nobody's sleep, which
    // the policy allows; a stale chain would call it an ancestor.
    let r = signal(&mut c, shell);
    let still_protected = signal(&mut c, 1);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helper),
        nix::sys::signal::SIGTERM,
    );
    drop((newcomer, bystander));
    assert_eq!(r, Response::Ok, "the newcomer at the dead parent's pid");
    assert!(
        matches!(&still_protected, Response::Denied { .. }),
        "{still_protected:?}"
    );
}
