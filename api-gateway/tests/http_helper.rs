//! The gateway with the real helper (root): every acting route end to end,
//! job output, containment, ownership, helper restart.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{helper_bin, require_root, wait_job, Gateway, Helper};

fn setup() -> (Helper, Gateway, String) {
    require_root();
    let h = Helper::start(&helper_bin());
    let g = Gateway::start(&h.socket);
    let t = g.key("all", "read,signal,renice,exec", &[]);
    (h, g, t)
}

/// A `sleep` running as nobody, for signal/renice targets; returned once
/// setpriv has switched to nobody and exec'd it.
fn nobody_sleep() -> support::Proc {
    let p = support::Proc(
        support::as_user("nobody", "nogroup", "sleep")
            .arg("60")
            .spawn()
            .unwrap(),
    );
    support::wait_runs_as(p.id(), 65534, "sleep");
    p
}

#[test]
#[ignore = "needs root"]
fn healthz_reports_the_helper_and_its_containment() {
    let (_h, g, t) = setup();
    let r = g.get("/healthz", None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "ok");
    assert!(r.json().get("helper").is_none());
    let r = g.get("/healthz", Some(&t));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["helper"]["reachable"], true);
    assert!(v["helper"]["containment"].is_string());
}

#[test]
#[ignore = "needs root"]
fn get_ps_1_returns_pid_1_and_read_routes_answer() {
    let (_h, g, t) = setup();
    let r = g.get("/api/ps/1", Some(&t));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["process"]["pid"], 1);
    let r = g.get("/api/ps", Some(&t));
    assert_eq!(r.status, 200);
    assert!(!r.json()["processes"].as_array().unwrap().is_empty());
    assert!(!String::from_utf8_lossy(&r.body).contains("\"environ\""));
    let r = g.get("/api/users", Some(&t));
    assert_eq!(r.status, 200);
    assert!(r.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == "root"));
    assert_eq!(g.get("/api/users/root/ps", Some(&t)).status, 200);
    assert_eq!(
        g.get("/api/users/no-such-user-xyz/ps", Some(&t)).status,
        404
    );
    assert_eq!(g.get("/api/ps/999999999", Some(&t)).status, 404);
}

#[test]
#[ignore = "needs root"]
fn a_command_output_is_verbatim_and_runs_as_non_root() {
    let (_h, g, t) = setup();
    let r = g.send(
        "POST",
        "/api/ps",
        Some(&t),
        r#"{"cmd": "printf 'a\n  b\n'; id -u; echo oops >&2; exit 3"}"#,
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let id = v["output"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert!(v["pid"].as_i64().unwrap() > 1);
    assert_eq!(v["process"]["pid"], v["pid"]);
    let o = wait_job(&g, &t, &id);
    let out = o["out"].as_str().unwrap();
    let uid: u32 = out
        .strip_prefix("a\n  b\n")
        .and_then(|rest| rest.strip_suffix('\n'))
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("output kept verbatim, then the uid: {out:?}"));
    assert!((60700..=60799).contains(&uid), "a per-job uid: {out:?}");
    assert_eq!(o["err"], "oops\n");
    assert_eq!(o["state"], "exited");
    assert_eq!(o["exit_code"], 3);
    assert_eq!(o["timed_out"], false);
    assert_eq!(o["truncated"], false);
    assert!(o["started_at"].is_string() && o["ended_at"].is_string());
    // The output files belong to the gateway, mode 0600.
    use std::os::unix::fs::PermissionsExt;
    let p = g.dir.path().join("state/jobs").join(&id).join("out");
    assert_eq!(
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Audit line.
    let audit = std::fs::read_to_string(g.dir.path().join("audit.log")).unwrap();
    assert!(
        audit.contains("POST /api/ps") && audit.contains(&id),
        "{audit}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_timed_out_job_with_a_setsid_child_leaves_no_process() {
    let (_h, g, t) = setup();
    let marker = format!("sleep 1000{}", std::process::id() % 1000);
    let cmd = format!(r#"{{"cmd": "setsid sh -c 'exec {marker}' & sleep 1000", "timeout_s": 2}}"#);
    let r = g.send("POST", "/api/ps", Some(&t), &cmd);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["output"].as_str().unwrap().to_string();
    let o = wait_job(&g, &t, &id);
    assert_eq!(o["state"], "timed_out", "{o}");
    assert_eq!(o["timed_out"], true);
    let left = || {
        let ps = Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .unwrap();
        String::from_utf8_lossy(&ps.stdout).trim().to_string()
    };
    let health = g.get("/healthz", Some(&t)).json();
    if health["helper"]["containment"] == "cgroup" {
        // The kill is sent by the time the job reads timed out; the
        // processes may take a moment to die. One left behind lives for
        // 1000 s, far past this deadline.
        let t0 = std::time::Instant::now();
        while !left().is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "left behind: {}",
                left()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    } else {
        let left = left();
        eprintln!("containment is pgid: a setsid child may escape (documented); left: {left}");
        let _ = Command::new("pkill").args(["-f", &marker]).status();
    }
}

#[test]
#[ignore = "needs root"]
fn another_key_cannot_read_a_jobs_output() {
    let (_h, g, t) = setup();
    let other = g.key("other", "exec", &[]);
    let r = g.send("POST", "/api/ps", Some(&t), r#"{"cmd": "echo secret"}"#);
    assert_eq!(r.status, 202);
    let id = r.json()["output"].as_str().unwrap().to_string();
    let r = g.get(&format!("/api/ps/output/{id}"), Some(&other));
    assert_eq!(r.status, 404);
    assert!(!String::from_utf8_lossy(&r.body).contains("secret"));
    wait_job(&g, &t, &id);
}

#[test]
#[ignore = "needs root"]
fn signal_and_renice_act_on_nobodys_process_and_refuse_others() {
    let (_h, g, t) = setup();
    let mut child = nobody_sleep();
    let pid = child.id();
    let r = g.send(
        "PATCH",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": "{pid}", "priority": 20}}"#),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["priority"], 19);
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {pid}, "start_time": 1}}"#),
    );
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], "identity_changed");
    assert!(
        message(&r).contains(&format!("pid {pid}")),
        "the message names the pid"
    );
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {pid}, "signal": "TERM"}}"#),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let st = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(15));
    // A root process is refused by policy: 403 naming the rule.
    let mut mine = Command::new("sleep").arg("60").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {}}}"#, mine.id()),
    );
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let _ = mine.kill();
    let _ = mine.wait();
    let r = g.send("DELETE", "/api/ps", Some(&t), r#"{"pid": 999999999}"#);
    assert_eq!(r.status, 404);
    let audit = std::fs::read_to_string(g.dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("DELETE /api/ps") && audit.contains("PATCH /api/ps"));
}

#[test]
#[ignore = "needs root"]
fn the_gateway_survives_a_helper_restart_and_output_survives_a_gateway_restart() {
    let (mut h, mut g, t) = setup();
    let r = g.send("POST", "/api/ps", Some(&t), r#"{"cmd": "echo before"}"#);
    assert_eq!(r.status, 202);
    let id = r.json()["output"].as_str().unwrap().to_string();
    wait_job(&g, &t, &id);
    h.stop();
    let r = g.send("POST", "/api/ps", Some(&t), r#"{"cmd": "true"}"#);
    assert!(r.status == 502 || r.status == 503, "{}", r.status);
    h.spawn(&helper_bin());
    let mut ok = false;
    for _ in 0..100 {
        let r = g.send("POST", "/api/ps", Some(&t), r#"{"cmd": "echo after"}"#);
        if r.status == 202 {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "gateway never reconnected");
    g.stop();
    g.spawn();
    let o = wait_job(&g, &t, &id);
    assert_eq!(o["out"], "before\n");
    assert_eq!(o["state"], "exited");
}

#[test]
#[ignore = "needs root"]
fn a_job_the_stopping_helper_kills_is_recorded_with_its_real_end_while_the_helper_is_away() {
    let (mut h, g, t) = setup();
    let r = g.send("POST", "/api/jobs", Some(&t), r#"{"cmd": "sleep 60"}"#);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["job"]["id"].as_str().unwrap().to_string();
    h.stop();
    let ended = h
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["event"] == "job_ended" && l["job"] == id.as_str())
        .unwrap_or_else(|| panic!("no job_ended line: {}", h.log()));
    assert_eq!(ended["job_state"], "killed", "{ended}");
    // The helper stays away: what the gateway records is what it heard.
    let mut job = serde_json::Value::Null;
    for _ in 0..100 {
        job = g.get(&format!("/api/jobs/{id}"), Some(&t)).json()["job"].clone();
        if job["state"] != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(job["state"], "killed", "{job}");
    assert_eq!(job["signal"], 9, "{job}");
    assert_eq!(job["signal"], ended["signal"], "{job} {ended}");
    // Its end as the helper saw it (the helper's line is written after
    // the reap that timed it), not when the gateway learnt of it.
    let at = job["ended_at"].as_str().unwrap();
    assert!(at <= ended["time"].as_str().unwrap(), "{job} {ended}");
}

#[test]
#[ignore = "needs root"]
fn whoami_tells_each_key_what_the_policy_lets_it_do_and_the_helper_holds_to_it() {
    let (_h, g, t) = setup();
    let p = g.get("/api/whoami", Some(&t)).json()["policy"].clone();
    let p0 = p.clone();
    // The test policy (support::POLICY), cut to the key's scopes.
    assert_eq!(
        p["signals"],
        serde_json::json!(["SIGHUP", "SIGINT", "SIGKILL", "SIGTERM", "SIGCONT", "SIGSTOP"]),
        "{p}"
    );
    assert_eq!(
        p["signal_rules"],
        serde_json::json!(["owners = [\"nobody\", \"@jobs\"]"])
    );
    assert_eq!(
        p["renice_rules"],
        serde_json::json!(["owners = [\"nobody\", \"@jobs\"]"])
    );
    assert_eq!(p["nice_range"], serde_json::json!([0, 19]));
    let run = &p["run"];
    assert_eq!(
        (&run["max_timeout_s"], &run["max_jobs"]),
        (&30.into(), &4.into()),
        "{run}"
    );
    assert_eq!(run["max_output_bytes"], 1_048_576);
    assert_eq!(run["key_max_running_jobs"], 2);
    assert_eq!(run["default_timeout_s"], 10);
    assert_eq!(run["limits"]["rlimit"]["fsize"], 1_048_576);
    let l = &run["limits"];
    let memory = [&l["cgroup"]["memory_max"], &l["rlimit"]["as"]];
    assert_eq!(
        &run["memory_max"],
        *memory.iter().find(|v| !v.is_null()).unwrap(),
        "{run}"
    );
    // A gateway that may read every process itself (root here) needs no
    // reader: every owner, every private field.
    assert_eq!(
        p["read"],
        serde_json::json!({"owners": ["*"], "fields": ["exe", "cwd", "num_fds", "open_files", "connections", "io_counters", "memory_maps"]}),
        "{p}"
    );
    assert!(p["read_reason"].is_null(), "{p}");
    // What it says is what the helper does: a signal it does not list
    // is refused, and a nice value below the range.
    let mut child = nobody_sleep();
    let pid = child.id();
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {pid}, "signal": "USR1"}}"#),
    );
    assert_eq!(
        (r.status, r.json()["rule"].clone()),
        (403, "signal.signals".into())
    );
    let r = g.send(
        "PATCH",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {pid}, "priority": -1}}"#),
    );
    assert_eq!(
        (r.status, r.json()["rule"].clone()),
        (403, "renice.min_nice".into())
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the target was signalled"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // A key without the scopes is told nothing it may not do.
    let r = g.key("reader", "read", &[]);
    let p = g.get("/api/whoami", Some(&r)).json()["policy"].clone();
    assert_eq!(
        p,
        serde_json::json!({"signals": [], "nice_range": null, "signal_rules": [],
            "renice_rules": [], "run": null, "read": p0["read"], "read_reason": null})
    );
    let r = g.key("signaller", "signal", &[]);
    let p = g.get("/api/whoami", Some(&r)).json()["policy"].clone();
    assert_eq!(
        (&p["read"], &p["read_reason"]),
        (&serde_json::Value::Null, &"no_read_scope".into()),
        "{p}"
    );
}

/// `/healthz` (key with read) and `/metrics` until `done` says so, or 15 s.
fn until(g: &Gateway, t: &str, m: &str, done: impl Fn(&serde_json::Value, &str) -> bool) {
    let t0 = std::time::Instant::now();
    loop {
        let h = g.get("/healthz", Some(t)).json();
        let metrics = String::from_utf8_lossy(&g.get("/metrics", Some(m)).body).to_string();
        if done(&h, &metrics) {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "{h}\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs root"]
fn a_failed_policy_reload_shows_in_healthz_and_metrics_until_a_good_one_loads() {
    let (h, g, t) = setup();
    let m = g.key("prom", "metrics", &[]);
    let good = std::fs::read_to_string(&h.policy).unwrap();
    let hup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(h.pid().unwrap() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    until(&g, &t, &m, |h, metrics| {
        h["helper"]["policy_reload_error"].is_null()
            && metrics.contains("\nmonitoreo_helper_policy_reload_failed 0\n")
    });
    std::fs::write(
        &h.policy,
        good.replace("\"nobody\", ", "\"no-such-user-xyz\", "),
    )
    .unwrap();
    hup();
    until(&g, &t, &m, |h, metrics| {
        h["helper"]["policy_reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("no-such-user-xyz") && e.contains("keeping the old policy"))
            && metrics.contains("\nmonitoreo_helper_policy_reload_failed 1\n")
    });
    // The old policy is still the one in force, and shown.
    let p = g.get("/api/whoami", Some(&t)).json()["policy"].clone();
    assert_eq!(
        p["signal_rules"],
        serde_json::json!(["owners = [\"nobody\", \"@jobs\"]"])
    );
    std::fs::write(&h.policy, good.replace("\"nobody\", ", "")).unwrap();
    hup();
    until(&g, &t, &m, |h, metrics| {
        h["helper"]["policy_reload_error"].is_null()
            && metrics.contains("\nmonitoreo_helper_policy_reload_failed 0\n")
    });
    let p = g.get("/api/whoami", Some(&t)).json()["policy"].clone();
    assert_eq!(
        p["signal_rules"],
        serde_json::json!(["owners = [\"@jobs\"]"])
    );
}

fn message(r: &support::Reply) -> String {
    r.json()["message"].as_str().unwrap_or_default().to_string()
}

#[test]
#[ignore = "needs root"]
fn a_misspelled_signal_member_is_refused_and_the_process_survives() {
    let (_h, g, t) = setup();
    let mut child = nobody_sleep();
    let pid = child.id();
    for body in [
        format!(r#"{{"pid": {pid}, "singal": "TERM"}}"#),
        format!(r#"{{"pid": {pid}, "signal": null}}"#),
    ] {
        let r = g.send("DELETE", "/api/ps", Some(&t), &body);
        assert_eq!(
            r.status,
            400,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the process was signalled"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
#[ignore = "needs root"]
fn a_policy_refusal_gives_the_rule_and_its_value_and_its_own_code() {
    let (_h, g, t) = setup();
    let mut child = nobody_sleep();
    let r = g.send(
        "PATCH",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {}, "priority": -5}}"#, child.id()),
    );
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["code"], "policy_denied");
    assert_eq!(v["rule"], "renice.min_nice");
    assert!(message(&r).contains("min_nice is 0"), "{v}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
#[ignore = "needs root"]
fn acting_on_an_exited_or_zombie_process_names_its_pid() {
    let (_h, g, t) = setup();
    let mut child = nobody_sleep();
    let pid = child.id();
    let listed = g
        .get(&format!("/api/ps/{pid}?fields=start_time"), Some(&t))
        .json();
    let start_time = listed["process"]["start_time"]
        .as_u64()
        .expect("start_time");
    let _ = child.kill();
    // A zombie (killed, not yet reaped), then gone.
    std::thread::sleep(Duration::from_millis(200));
    for phase in ["zombie", "reaped"] {
        for (method, body) in [
            ("DELETE", format!(r#"{{"pid": {pid}}}"#)),
            (
                "DELETE",
                format!(r#"{{"pid": {pid}, "start_time": {start_time}}}"#),
            ),
            ("PATCH", format!(r#"{{"pid": {pid}, "priority": 5}}"#)),
            (
                "PATCH",
                format!(r#"{{"pid": {pid}, "priority": 5, "start_time": {start_time}}}"#),
            ),
        ] {
            let r = g.send(method, "/api/ps", Some(&t), &body);
            let text = String::from_utf8_lossy(&r.body).into_owned();
            assert!(
                r.status == 404 || (phase == "zombie" && r.status == 200),
                "{phase} {method} {body}: {} {text}",
                r.status
            );
            if r.status == 404 {
                assert_eq!(r.json()["code"], "no_such_process", "{text}");
                assert!(
                    message(&r).contains(&format!("pid {pid}")),
                    "{phase}: {text}"
                );
            }
        }
        let _ = child.wait();
    }
}

#[test]
#[ignore = "needs root"]
fn a_timeout_over_the_ceiling_is_refused_in_seconds_naming_the_limit() {
    let (_h, g, t) = setup();
    let r = g.send(
        "POST",
        "/api/ps",
        Some(&t),
        r#"{"cmd": "true", "timeout_s": 500}"#,
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], "invalid_request");
    let m = message(&r);
    assert!(m.contains("timeout_s") && m.contains("30 s"), "{m}");
    assert!(!m.contains(" ms"), "{m}");
}

#[test]
#[ignore = "needs root"]
fn at_the_job_limit_the_answer_is_429_with_retry_after() {
    let (_h, g, t) = setup();
    // One key runs at most half the helper's 4 slots: two keys fill them.
    let second = g.key("second", "exec", &[]);
    let mut ids = Vec::new();
    for key in [&t, &t, &second, &second] {
        let r = g.send(
            "POST",
            "/api/ps",
            Some(key),
            r#"{"cmd": "sleep 60", "timeout_s": 30}"#,
        );
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        ids.push((
            key.clone(),
            r.json()["output"].as_str().unwrap_or_default().to_string(),
        ));
    }
    let third = g.key("third", "exec", &[]);
    let r = g.send("POST", "/api/ps", Some(&third), r#"{"cmd": "true"}"#);
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], "busy");
    let after: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(after >= 1);
    // The four outlive the test (30 s timeout): cancelled, not waited out.
    for (key, id) in ids {
        let r = g.send("DELETE", &format!("/api/jobs/{id}"), Some(&key), "");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(wait_job(&g, &key, &id)["state"], "cancelled");
    }
}

/// The nice value of `pid`, from its stat line.
fn nice_of(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(16).unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs root"]
fn a_repeated_member_is_refused_on_every_body_route_and_nothing_is_done() {
    let (_h, g, t) = setup();
    let mut child = nobody_sleep();
    let pid = child.id();
    let nice = nice_of(pid);
    // Each body reads one way to a parser that keeps the first member and
    // another to one that keeps the last (this gateway's did, and acted on
    // the last): the target here is always the later one.
    for (method, path, body, name) in [
        (
            "DELETE",
            "/api/ps",
            format!(r#"{{"pid": 1, "pid": {pid}, "signal": "TERM"}}"#),
            "pid",
        ),
        (
            "DELETE",
            "/api/ps",
            format!(r#"{{"pid": {pid}, "signal": "CONT", "signal": "KILL"}}"#),
            "signal",
        ),
        (
            "DELETE",
            "/api/ps",
            format!(r#"{{"pid": {pid}, "signal": "TERM", "x": {{"a": 1, "a": 2}}}}"#),
            "a",
        ),
        (
            "PATCH",
            "/api/ps",
            format!(r#"{{"pid": 1, "pid": {pid}, "priority": 19}}"#),
            "pid",
        ),
        (
            "PATCH",
            "/api/ps",
            format!(r#"{{"pid": {pid}, "priority": 0, "priority": 19}}"#),
            "priority",
        ),
        (
            "POST",
            "/api/ps",
            r#"{"cmd": "true", "cmd": "echo ran"}"#.to_string(),
            "cmd",
        ),
        (
            "POST",
            "/api/jobs",
            r#"{"cmd": "true", "timeout_s": 5, "timeout_s": 6}"#.to_string(),
            "timeout_s",
        ),
        (
            "POST",
            "/api/jobs",
            r#"{"cmd": "true", "cmd": "echo ran"}"#.to_string(),
            "cmd",
        ),
    ] {
        let r = g.send(method, path, Some(&t), &body);
        let what = format!("{method} {path} {body}");
        assert_eq!(
            r.status,
            400,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["code"], "duplicate_field", "{what}");
        assert!(
            message(&r).contains(&format!("{name:?}")),
            "{what}: the message names {name}: {}",
            message(&r)
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the process was signalled"
    );
    assert_eq!(nice_of(pid), nice, "the process was reniced");
    let r = g.get("/api/jobs", Some(&t));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["jobs"], serde_json::json!([]), "a job was started");
    // The same bodies without the repetition act, so the refusals above
    // were the repetition's and not something else's.
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {pid}, "signal": "TERM"}}"#),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(15));
}
