//! Key → key and instance → instance through the helper, played by an
//! attacker: a key acting on another key's job, a key going after a job
//! uid's cleaner, a job leaving residue for the next holder of its uid, a
//! second helper taking uids another one holds. Needs root (as another
//! user each test prints a SKIPPED line; under CI it fails).

mod support;

use std::process::{Child, Command};
use std::time::Duration;

use protocol::{Caller, Request, Response, Signal, Target};
use support::*;

fn signal(c: &mut protocol::Connection, pid: i32, sig: Signal, caller: Caller) -> Response {
    c.request(
        &Request::Signal {
            target: Target {
                pid,
                start_time: start_time(pid),
            },
            signal: sig,
            caller,
        },
        &[],
    )
    .expect("answer")
}

fn key(name: &str, all_jobs: bool) -> Caller {
    Caller {
        key: name.into(),
        all_jobs,
    }
}

/// A `sleep` running as `uid` (and gid), started by the test itself, as
/// the helper starts a uid's cleaner: outside any running job.
// Returned to the caller, which kills and waits for it.
#[allow(clippy::zombie_processes)]
fn sleep_as(uid: u32) -> Child {
    let child = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "sleep",
            "60",
        ])
        .spawn()
        .expect("setpriv");
    let pid = child.id() as i32;
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).map_or(true, |c| c.trim() != "sleep")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "setpriv never ran sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

#[test]
fn another_keys_job_is_refused_and_its_owner_and_an_admin_may_act() {
    if !root_or_skip("another_keys_job_is_refused_and_its_owner_and_an_admin_may_act") {
        return;
    }
    let h = Helper::start("ten-keys", &policy(60930, ""));
    let mut c = h.connect();
    let (job, files) = start_job(&mut c, &h.dir, 1, "echo ready; exec sleep 60", 30_000);
    wait_for_text(&files.out, "ready", Duration::from_secs(5));
    for sig in [Signal::Kill, Signal::Stop] {
        match signal(&mut c, job.pid, sig, key("mallory", false)) {
            Response::Denied { rule, .. } => assert_eq!(rule, "builtin:other-key-job"),
            other => panic!("{sig:?} from another key: {other:?}"),
        }
    }
    let renice = c
        .request(
            &Request::Renice {
                target: Target {
                    pid: job.pid,
                    start_time: start_time(job.pid),
                },
                nice: 19,
                caller: key("mallory", false),
            },
            &[],
        )
        .expect("answer");
    assert!(
        matches!(&renice, Response::Denied { rule, .. } if rule == "builtin:other-key-job"),
        "{renice:?}"
    );
    assert!(
        alive_and_running(job.pid),
        "another key's signal got through"
    );
    assert_eq!(
        stat_field(job.pid, 19),
        Some(0),
        "another key's renice got through"
    );
    // The decision line names the key that asked.
    assert!(h
        .events("decision")
        .iter()
        .any(|e| e["key"] == "mallory" && e["rule"] == "builtin:other-key-job"));

    // An admin key (all_jobs) and the owner may.
    assert_eq!(
        signal(&mut c, job.pid, Signal::Cont, key("root-ops", true)),
        Response::Ok
    );
    assert_eq!(
        signal(&mut c, job.pid, Signal::Kill, test_caller()),
        Response::Ok
    );
    wait_job(&mut c, 1, Duration::from_secs(10));
}

#[test]
fn a_job_uid_with_no_running_job_behind_it_is_no_job() {
    // The uid's cleaner runs as the job uid after the job ended, outside
    // any job cgroup: `@jobs` once matched it by the uid range, so a key
    // with `signal` could KILL or STOP a cleanup. Played here by a process
    // of a free job uid.
    if !root_or_skip("a_job_uid_with_no_running_job_behind_it_is_no_job") {
        return;
    }
    let h = Helper::start("ten-cleaner", &policy(60940, ""));
    let mut c = h.connect();
    let mut victim = sleep_as(60945);
    let pid = victim.id() as i32;
    for sig in [Signal::Stop, Signal::Kill] {
        for caller in [test_caller(), key("root-ops", true)] {
            match signal(&mut c, pid, sig, caller.clone()) {
                Response::Denied { rule, .. } => assert_eq!(rule, "signal.owners"),
                other => panic!("{sig:?} as {caller:?} on a free job uid: {other:?}"),
            }
        }
    }
    assert!(
        alive_and_running(pid),
        "a process of a free job uid was signalled"
    );
    let _ = victim.kill();
    let _ = victim.wait();
}
