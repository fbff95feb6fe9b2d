//! Key → key through the process routes: a job's processes belong to the
//! key that started it. Another key with the `signal` or `renice` scope is
//! refused (403 `other_key_job`) and the job runs on untouched; the owner
//! and an `admin` key may act. Real helper, real gateway, real jobs (root).

mod support;

use std::time::{Duration, Instant};

use support::{helper_bin, require_root, Gateway, Helper};

fn setup() -> (Helper, Gateway) {
    require_root();
    let h = Helper::start(&helper_bin());
    let g = Gateway::start(&h.socket);
    (h, g)
}

/// Starts `sleep` as a job of `token`; returns the shell's pid and start
/// time once its command runs.
fn sleeping_job(g: &Gateway, token: &str) -> (i64, u64) {
    let body = serde_json::json!({ "cmd": "exec sleep 60", "timeout_s": 30 }).to_string();
    let r = g.send("POST", "/api/jobs", Some(token), &body);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let pid = r.json()["job"]["pid"].as_i64().expect("pid");
    let t0 = Instant::now();
    // `exec sleep` replaces the shell: wait until the pid is the sleep,
    // asleep (just after the exec it may still be loading, state R), so
    // that a later state other than S is what a request did to it.
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "sleep" && state(pid) == Some('S') {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "job never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let start: u64 = after
        .split(' ')
        .nth(19)
        .and_then(|s| s.parse().ok())
        .expect("start time");
    (pid, start)
}

/// The process's state letter, if it still exists.
fn state(pid: i64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

#[test]
#[ignore = "needs root"]
fn another_keys_job_is_refused_to_signal_and_renice_and_runs_on() {
    let (_h, g) = setup();
    let alice = g.key("alice", "read,exec,signal,renice", &[]);
    let mallory = g.key("mallory", "read,signal,renice", &[]);
    let (pid, start) = sleeping_job(&g, &alice);

    for (method, body) in [
        (
            "DELETE",
            serde_json::json!({ "pid": pid, "signal": "KILL" }),
        ),
        (
            "DELETE",
            serde_json::json!({ "pid": pid, "signal": "STOP" }),
        ),
        (
            "DELETE",
            serde_json::json!({ "pid": pid, "start_time": start, "signal": "TERM" }),
        ),
        ("PATCH", serde_json::json!({ "pid": pid, "priority": 19 })),
    ] {
        let r = g.send(method, "/api/ps", Some(&mallory), &body.to_string());
        assert_eq!(
            r.status,
            403,
            "{method} {body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        assert_eq!(v["code"], "other_key_job", "{v}");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|e| e.contains("another key")),
            "{v}"
        );
    }
    // Nothing reached the job: it runs, not stopped, at nice 0.
    assert_eq!(state(pid), Some('S'), "the job was signalled");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let nice = stat[stat.rfind(')').expect("comm") + 2..]
        .split(' ')
        .nth(16);
    assert_eq!(nice, Some("0"), "the job was reniced");

    // Its own key may act on it.
    let r = g.send(
        "PATCH",
        "/api/ps",
        Some(&alice),
        &serde_json::json!({ "pid": pid, "priority": 5 }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&alice),
        &serde_json::json!({ "pid": pid, "signal": "KILL" }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
#[ignore = "needs root"]
fn an_admin_key_may_act_on_every_keys_job() {
    let (_h, g) = setup();
    let alice = g.key("alice", "read,exec", &[]);
    let admin = g.key("root-ops", "read,signal,exec,admin", &[]);
    let (pid, start) = sleeping_job(&g, &alice);
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&admin),
        &serde_json::json!({ "pid": pid, "start_time": start, "signal": "KILL" }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let t0 = Instant::now();
    while state(pid).is_some_and(|s| s != 'Z') {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "admin's kill missed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
