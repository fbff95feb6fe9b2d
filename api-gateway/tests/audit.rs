//! The audit trail says what happened, and joins the helper's log: one
//! JSON line per authenticated request and per refused authentication,
//! with the request id the client got in `X-Request-Id` and the helper's
//! decision line carries; wrong-key floods get 429 with `Retry-After`
//! while a real key from the same address is served, and the flood is
//! not written line by line.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{helper_bin, require_root, Gateway, Helper};

fn line_for<'a>(lines: &'a [Value], request_id: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no audit line with request_id {request_id}: {lines:?}"))
}

#[test]
fn every_line_names_the_request_the_client_the_key_and_what_was_asked() {
    let g = Gateway::start(Path::new("/nonexistent/helper.sock"));
    let t = g.key("ops", "signal,renice,exec", &[]);
    let reader = g.key("reader", "read", &[]);
    let id = |r: &support::Reply| r.header("x-request-id").expect("X-Request-Id").to_string();

    // A DELETE whose body names a signal (the helper is absent: 503).
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        r#"{"pid": 4242, "signal": "TERM", "start_time": 7}"#,
    );
    assert_eq!(r.status, 503);
    let del = id(&r);
    assert_eq!(del.len(), 16);
    assert!(del
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // A PATCH with a priority, refused on its body (400).
    let r = g.send(
        "PATCH",
        "/api/ps",
        Some(&t),
        r#"{"pid": 4242, "priority": 99}"#,
    );
    assert_eq!(r.status, 400);
    let patch = id(&r);
    // A POST with a command, refused on its body (400: unknown member).
    let r = g.send(
        "POST",
        "/api/ps",
        Some(&t),
        r#"{"cmd": "id -u", "nope": 1}"#,
    );
    assert_eq!(r.status, 400);
    let post = id(&r);
    // A scope refusal, with the key's name.
    let r = g.send("DELETE", "/api/ps", Some(&reader), r#"{"pid": 4242}"#);
    assert_eq!(r.status, 403);
    let scope = id(&r);
    // A refused authentication.
    let r = g.get("/api/users", Some("mon_wrong"));
    assert_eq!(r.status, 401);
    let refused = id(&r);
    // A read, authenticated: also a line.
    let r = g.get("/api/users", Some(&reader));
    assert_eq!(r.status, 200);
    let read = id(&r);
    // No key on a route that needs none: no line.
    let r = g.get("/api/openapi.json", None);
    let unaudited = id(&r);

    let lines = g.audit();
    let l = line_for(&lines, &del);
    assert_eq!(l["event"], "request");
    assert_eq!(l["key"], "ops");
    assert_eq!(l["auth"], "bearer");
    assert_eq!(l["client"], "127.0.0.1");
    assert_eq!(l["route"], "DELETE /api/ps");
    assert_eq!(l["pid"], 4242);
    assert_eq!(l["start_time"], 7);
    assert_eq!(l["signal"], "TERM");
    assert_eq!(l["status"], 503);
    assert!(l["time"].is_string() && l["outcome"].is_string());
    let l = line_for(&lines, &patch);
    assert_eq!(
        (l["priority"].clone(), l["status"].clone()),
        (99.into(), 400.into())
    );
    let l = line_for(&lines, &post);
    assert_eq!(l["command"], "id -u");
    assert_eq!(l["status"], 400);
    let l = line_for(&lines, &scope);
    assert_eq!(l["key"], "reader");
    assert_eq!(l["status"], 403);
    let l = line_for(&lines, &refused);
    assert_eq!(l["key"], Value::Null);
    assert_eq!(l["status"], 401);
    assert_eq!(l["client"], "127.0.0.1");
    assert_eq!(line_for(&lines, &read)["route"], "GET /api/users");
    assert!(!lines.iter().any(|l| l["request_id"] == unaudited.as_str()));
}

#[test]
fn a_body_too_large_after_authentication_gets_a_line() {
    let g = Gateway::start(Path::new("/nonexistent/helper.sock"));
    let t = g.key("ops", "exec", &[]);
    let big = format!(r#"{{"cmd": "{}"}}"#, "x".repeat(70 * 1024));
    let r = g.send("POST", "/api/ps", Some(&t), &big);
    assert_eq!(r.status, 413);
    let id = r.header("x-request-id").unwrap().to_string();
    let lines = g.audit();
    let l = line_for(&lines, &id);
    assert_eq!(
        (l["key"].clone(), l["status"].clone()),
        ("ops".into(), 413.into())
    );
}

#[test]
fn a_wrong_key_flood_gets_429_a_real_key_is_still_served_and_lines_are_bounded() {
    let g = Gateway::start_with(
        Path::new("/nonexistent/helper.sock"),
        "auth_failures_per_minute = 5\n",
    );
    let t = g.key("reader", "read", &[]);
    for i in 0..5 {
        let r = g.get("/api/users", Some("mon_wrong"));
        assert_eq!(r.status, 401, "failure {i}");
    }
    for _ in 0..25 {
        let r = g.get("/api/users", Some("mon_wrong"));
        assert_eq!(r.status, 429);
        assert_eq!(r.json()["code"], "too_many_auth_failures");
        let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&after), "{after}");
    }
    // A real key from the same address: served (not 429), and not held
    // back for the minute the failures are counted over (10 s is far
    // more than a loaded machine needs).
    let t0 = std::time::Instant::now();
    let r = g.get("/api/users", Some(&t));
    assert_eq!(r.status, 200);
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t0.elapsed()
    );
    // 30 refusals: the first ten written, the rest counted for the
    // minute's summary, written when the minute ends (here: at shutdown).
    let refused = |g: &Gateway| {
        g.audit()
            .iter()
            .filter(|l| l["event"] == "request" && l["key"].is_null())
            .count()
    };
    assert_eq!(refused(&g), 10);
    let mut g = g;
    g.stop();
    let summary = g
        .audit()
        .into_iter()
        .find(|l| l["event"] == "auth_failures")
        .expect("a summary line");
    assert_eq!(summary["client"], "127.0.0.1");
    assert_eq!(
        (summary["failures"].clone(), summary["not_written"].clone()),
        (30.into(), 20.into())
    );
    assert_eq!(refused(&g), 10);
}

#[test]
#[ignore = "needs root"]
fn the_helpers_decision_line_carries_the_request_id_of_the_audit_line() {
    require_root();
    let bin = helper_bin();
    let h = Helper::start(&bin);
    let g = Gateway::start(&h.socket);
    let t = g.key("ops", "signal", &[]);
    let mut victim = support::nobody_sleep(60);
    let body = format!(r#"{{"pid": {}, "signal": "CONT"}}"#, victim.id());
    let r = g.send("DELETE", "/api/ps", Some(&t), &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let id = r.header("x-request-id").unwrap().to_string();
    let _ = victim.kill();
    let _ = victim.wait();
    let audit = g.audit();
    let a = line_for(&audit, &id);
    assert_eq!(a["signal"], "CONT");
    assert_eq!(a["outcome"], "ok");
    let decision: Value = h
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["event"] == "decision" && l["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no decision line with request_id {id}:\n{}", h.log()));
    assert_eq!(decision["outcome"], "ok");
    assert_eq!(decision["pid"], a["pid"]);
}

/// The mode bits of `p` below the file type.
fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_audit_file_is_created_readable_by_the_gateway_alone() {
    // The test's umask (022 for most shells) is what the gateway inherits,
    // as it did under scripts/quickstart: it must not make the trail of
    // keys, commands and clients world-readable. Set it here so that the
    // test does not pass by the runner's stricter one.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let g = Gateway::start(Path::new("/nonexistent/helper.sock"));
    let t = g.key("ops", "read", &[]);
    assert_eq!(g.get("/api/users", Some(&t)).status, 200);
    let path = g.dir.path().join("audit.log");
    assert_eq!(mode_of(&path), 0o600, "mode of {}", path.display());
    assert!(!g.audit().is_empty(), "the line was written");
}

#[test]
fn an_audit_file_others_may_read_stops_the_start_with_one_line_naming_it() {
    for mode in [0o644, 0o640, 0o604, 0o620] {
        let g = Gateway::configure(Path::new("/nonexistent/helper.sock"), "");
        let path = g.dir.path().join("audit.log");
        std::fs::write(&path, "{\"event\":\"request\"}\n").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap();
        let out = g.serve_refused();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        let found = format!("{mode:04o}");
        for part in [path.display().to_string(), found, "0600".to_string()] {
            assert!(err.contains(&part), "{part:?} not in: {err}");
        }
        // Refused, not repaired behind the operator's back.
        assert_eq!(mode_of(&path), mode);
    }
}

#[test]
#[ignore = "needs root"]
fn an_audit_file_of_another_user_stops_the_start_with_one_line_naming_it() {
    require_root();
    let g = Gateway::configure(Path::new("/nonexistent/helper.sock"), "");
    let path = g.dir.path().join("audit.log");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // nobody: someone else, who could rewrite or truncate the trail.
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let out = g.serve_refused();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for part in [&path.display().to_string(), "uid 65534", "uid 0"] {
        assert!(err.contains(part), "{part:?} not in: {err}");
    }
}
