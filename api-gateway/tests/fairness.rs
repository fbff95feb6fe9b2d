//! Every key is a tenant: one key playing the attacker against the real
//! gateway and helper (root) must not starve another. Its output quota,
//! its running jobs and its job records are its own; what it deletes is
//! its own; the listing comes from the index kept in memory, not from a
//! walk of every job directory per request.

mod support;

use support::{ended, helper_bin, require_root, Gateway, Helper};

fn setup(extra: &str) -> (Helper, Gateway, String, String) {
    require_root();
    let h = Helper::start(&helper_bin());
    let g = Gateway::start_with(&h.socket, extra);
    let a = g.key("alice", "read,exec", &[]);
    let b = g.key("mallory", "read,exec", &[]);
    (h, g, a, b)
}

fn post(g: &Gateway, t: &str, cmd: &str, timeout_s: u64) -> support::Reply {
    let body = serde_json::json!({ "cmd": cmd, "timeout_s": timeout_s }).to_string();
    g.send("POST", "/api/jobs", Some(t), &body)
}

/// Starts `cmd`; returns its id.
fn start(g: &Gateway, t: &str, cmd: &str, timeout_s: u64) -> String {
    let r = post(g, t, cmd, timeout_s);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    r.json()["job"]["id"].as_str().expect("id").to_string()
}

fn ids(listing: &serde_json::Value) -> Vec<String> {
    listing["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect()
}

fn message(r: &support::Reply) -> String {
    r.json()["message"].as_str().unwrap_or_default().to_string()
}

fn job_dir(g: &Gateway, id: &str) -> std::path::PathBuf {
    g.dir.path().join("state").join("jobs").join(id)
}

#[test]
#[ignore = "needs root"]
fn a_key_that_fills_its_output_quota_leaves_the_others_room() {
    // The test policy's ceiling is 1 MiB per stream: a job reserves 2 MiB
    // while it runs. Mallory may hold 3 MiB, the store 64 MiB.
    let (_h, g, a, b) = setup("output_quota = \"64M\"\nkey_output_quota = \"3M\"\n");
    let full = start(
        &g,
        &b,
        "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2",
        10,
    );
    let j = ended(&g, &b, &full);
    assert_eq!(
        (j["stdout_bytes"].as_u64(), j["stderr_bytes"].as_u64()),
        (Some(1 << 20), Some(1 << 20))
    );
    // 2 MiB stored + 2 MiB the next job may write > 3 MiB.
    let r = post(&g, &b, "echo more", 10);
    assert_eq!(r.status, 507, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], "key_output_quota_full");
    let m = message(&r);
    for fact in ["\"mallory\"", "2097152", "3145728"] {
        assert!(m.contains(fact), "{fact} missing from: {m}");
    }
    // The other key is not affected.
    let mine = start(&g, &a, "echo fine", 10);
    assert_eq!(ended(&g, &a, &mine)["state"], "exited");
    // Deleting its finished job gives mallory its room back.
    let del = g.send("DELETE", &format!("/api/jobs/{full}"), Some(&b), "");
    assert_eq!(del.status, 200, "{}", String::from_utf8_lossy(&del.body));
    let again = start(&g, &b, "echo room again", 10);
    assert_eq!(ended(&g, &b, &again)["state"], "exited");
}

#[test]
#[ignore = "needs root"]
fn a_key_cannot_hold_every_job_slot() {
    // The helper runs at most 4 jobs; by default a key runs at most half.
    let (_h, g, a, b) = setup("");
    let mut held = Vec::new();
    let refused = loop {
        let r = post(&g, &b, "sleep 25", 30);
        if r.status != 202 {
            break r;
        }
        held.push(r.json()["job"]["id"].as_str().expect("id").to_string());
        assert!(held.len() <= 4, "mallory holds every slot");
    };
    assert_eq!(held.len(), 2, "{}", String::from_utf8_lossy(&refused.body));
    assert_eq!(
        refused.status,
        429,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(refused.json()["code"], "key_busy");
    assert!(refused.header("retry-after").is_some());
    let m = message(&refused);
    assert!(
        m.contains("\"mallory\"") && m.contains("runs 2 jobs"),
        "{m}"
    );
    assert!(m.contains("key_max_running_jobs is 2"), "{m}");
    // Alice still gets a slot.
    let mine = start(&g, &a, "echo served", 10);
    assert_eq!(ended(&g, &a, &mine)["state"], "exited");
    // Once one of mallory's jobs is cancelled, mallory may start another.
    let c = g.send("DELETE", &format!("/api/jobs/{}", held[0]), Some(&b), "");
    assert_eq!(c.json()["job"]["state"], "cancelled");
    held.push(start(&g, &b, "sleep 25", 30));
    for id in &held[1..] {
        let c = g.send("DELETE", &format!("/api/jobs/{id}"), Some(&b), "");
        assert_eq!(c.status, 200);
    }
}

#[test]
#[ignore = "needs root"]
fn a_key_over_its_record_limit_loses_its_oldest_finished_jobs_first() {
    let (_h, g, a, b) = setup("key_max_job_records = 3\n");
    let alices = start(&g, &a, "echo alice", 10);
    ended(&g, &a, &alices);
    // The oldest of mallory's records is a job still running: it stays.
    let running = start(&g, &b, "sleep 25", 30);
    let mut finished = Vec::new();
    for i in 0..4 {
        let id = start(&g, &b, &format!("echo {i}"), 10);
        ended(&g, &b, &id);
        finished.push(id);
    }
    // Four finished and one running made five records; three are kept:
    // the running one and the two newest finished.
    let listed = g.get("/api/jobs", Some(&b)).json();
    assert_eq!(
        ids(&listed),
        [finished[3].clone(), finished[2].clone(), running.clone()]
    );
    for gone in &finished[..2] {
        let r = g.get(&format!("/api/jobs/{gone}"), Some(&b));
        assert_eq!(r.status, 404);
        assert!(!job_dir(&g, gone).exists(), "its output went with it");
    }
    // The other key's record is untouched.
    assert_eq!(ids(&g.get("/api/jobs", Some(&a)).json()), [alices.as_str()]);
    assert_eq!(
        g.get(&format!("/api/jobs/{alices}/stdout"), Some(&a)).body,
        b"alice\n"
    );
    let c = g.send("DELETE", &format!("/api/jobs/{running}"), Some(&b), "");
    assert_eq!(c.status, 200);
}

#[test]
#[ignore = "needs root"]
fn delete_removes_a_finished_job_and_cancels_a_running_one() {
    let (_h, g, a, b) = setup("");
    let done = start(&g, &a, "echo bye", 10);
    ended(&g, &a, &done);
    let path = format!("/api/jobs/{done}");
    // Another key: the same 404 as for no job at all, and nothing removed.
    let r = g.send("DELETE", &path, Some(&b), "");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "no_such_job");
    assert!(job_dir(&g, &done).exists());
    let r = g.send("DELETE", &path, Some(&a), "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["deleted"], true);
    assert_eq!(v["job"]["state"], "exited");
    assert_eq!(v["job"]["stdout_bytes"], 4);
    assert!(!job_dir(&g, &done).exists(), "record and output removed");
    assert_eq!(g.get(&path, Some(&a)).status, 404);
    assert!(ids(&g.get("/api/jobs", Some(&a)).json()).is_empty());
    let second = g.send("DELETE", &path, Some(&a), "");
    assert_eq!(second.status, 404);
    assert_eq!(second.json()["code"], "no_such_job");

    // A running job is cancelled and kept; a second DELETE removes it.
    let live = start(&g, &a, "sleep 25", 30);
    let path = format!("/api/jobs/{live}");
    let r = g.send("DELETE", &path, Some(&a), "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["deleted"], false);
    assert_eq!(r.json()["job"]["state"], "cancelled");
    assert_eq!(g.get(&path, Some(&a)).json()["job"]["state"], "cancelled");
    let r = g.send("DELETE", &path, Some(&a), "");
    assert_eq!(r.json()["deleted"], true);
    assert_eq!(g.get(&path, Some(&a)).status, 404);
}

/// A finished record as the gateway writes it, placed by hand.
fn plant(g: &Gateway, id: &str, owner: &str) {
    let dir = job_dir(g, id);
    std::fs::create_dir(&dir).expect("job dir");
    std::fs::write(dir.join("out"), b"planted\n").expect("out");
    std::fs::write(dir.join("err"), b"").expect("err");
    // Older than any job of this test, yet within the retention.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let created = now - 60_000;
    let meta = serde_json::json!({
        "owner": owner, "cmd": "echo planted", "pid": null, "start_time": null,
        "created_ms": created, "state": "exited", "exit_code": 0, "signal": null,
        "timed_out": false, "started_ms": created, "ended_ms": created + 1,
        "output_limit": 1_048_576,
    });
    std::fs::write(dir.join("meta.json"), meta.to_string()).expect("meta");
}

fn jobs_gauge(g: &Gateway, t: &str, state: &str) -> u64 {
    let text = String::from_utf8(g.get("/metrics", Some(t)).body).expect("text");
    let series = format!("monitoreo_jobs{{state=\"{state}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series}in {text}"))
}

#[test]
#[ignore = "needs root"]
fn listing_quota_and_metrics_come_from_the_index_loaded_at_start() {
    let (_h, mut g, a, _b) = setup("");
    let m = g.key("prom", "metrics", &[]);
    let mine = start(&g, &a, "echo indexed", 10);
    ended(&g, &a, &mine);
    assert_eq!(jobs_gauge(&g, &m, "exited"), 1);
    // A record that appears on disk behind the running gateway's back is
    // not seen: no request walks the job directories.
    let planted = "00000000000000000000000000000001";
    plant(&g, planted, "alice");
    assert_eq!(ids(&g.get("/api/jobs", Some(&a)).json()), [mine.as_str()]);
    assert_eq!(jobs_gauge(&g, &m, "exited"), 1);
    // A restart loads it, once.
    g.stop();
    g.spawn();
    assert_eq!(
        ids(&g.get("/api/jobs", Some(&a)).json()),
        [mine.clone(), planted.to_string()]
    );
    assert_eq!(jobs_gauge(&g, &m, "exited"), 2);
    let out = g.get(&format!("/api/jobs/{planted}/stdout"), Some(&a));
    assert_eq!(out.body, b"planted\n");
    // Deleting it through the API updates the index as well as the disk.
    let r = g.send("DELETE", &format!("/api/jobs/{planted}"), Some(&a), "");
    assert_eq!(r.json()["deleted"], true);
    assert_eq!(ids(&g.get("/api/jobs", Some(&a)).json()), [mine]);
    assert_eq!(jobs_gauge(&g, &m, "exited"), 1);
}
