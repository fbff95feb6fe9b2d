//! The API contract without the helper: strict bodies, the field table,
//! users that round-trip, query parameter rules, HTTP conventions and the
//! OpenAPI document, over real HTTP against the real binary. Each test
//! names a defect the old gateway had.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{raw, request, Gateway, Reply};

fn gateway() -> Gateway {
    Gateway::start(Path::new("/nonexistent/helper.sock"))
}

fn all_scopes(g: &Gateway) -> String {
    g.key("all", "read,signal,renice,exec", &[])
}

fn text(r: &support::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn a_misspelled_or_null_member_is_a_400_naming_it_on_every_body_route() {
    let g = gateway();
    let t = all_scopes(&g);
    for (method, body, name, code) in [
        (
            "DELETE",
            r#"{"pid": 4242, "singal": "TERM"}"#,
            "singal",
            "unknown_field",
        ),
        (
            "DELETE",
            r#"{"pid": 4242, "signal": null}"#,
            "signal",
            "invalid_field",
        ),
        (
            "DELETE",
            r#"{"pid": 4242, "start_time": null}"#,
            "start_time",
            "invalid_field",
        ),
        (
            "PATCH",
            r#"{"pid": 4242, "priority": 5, "prio": 1}"#,
            "prio",
            "unknown_field",
        ),
        (
            "PATCH",
            r#"{"pid": 4242, "priority": null}"#,
            "priority",
            "invalid_field",
        ),
        (
            "POST",
            r#"{"cmd": "true", "timeout": 5}"#,
            "timeout",
            "unknown_field",
        ),
        (
            "POST",
            r#"{"cmd": "true", "timeout_s": null}"#,
            "timeout_s",
            "invalid_field",
        ),
        ("POST", r#"{"cmd": 5}"#, "cmd", "invalid_field"),
        (
            "POST",
            r#"{"cmd": "true", "timeout_s": "x"}"#,
            "timeout_s",
            "invalid_field",
        ),
    ] {
        let r = g.send(method, "/api/ps", Some(&t), body);
        assert_eq!(r.status, 400, "{method} {body}: {}", text(&r));
        let v = r.json();
        assert_eq!(v["code"], code, "{method} {body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(name),
            "{method} {body}: the message names {name}: {v}"
        );
    }
}

#[test]
fn a_repeated_member_is_a_400_naming_it_on_every_body_route() {
    // Without a helper: the refusal comes before any helper call (which
    // would be a 503 here).
    let g = gateway();
    let t = all_scopes(&g);
    for (method, path, body, name) in [
        ("DELETE", "/api/ps", r#"{"pid": 4242, "pid": 1}"#, "pid"),
        (
            "PATCH",
            "/api/ps",
            r#"{"pid": 4242, "priority": 5, "priority": 0}"#,
            "priority",
        ),
        ("POST", "/api/ps", r#"{"cmd": "true", "cmd": "id"}"#, "cmd"),
        (
            "POST",
            "/api/jobs",
            r#"{"cmd": "true", "timeout_s": {"s": 1, "s": 2}}"#,
            "s",
        ),
    ] {
        let r = g.send(method, path, Some(&t), body);
        assert_eq!(r.status, 400, "{method} {path} {body}: {}", text(&r));
        let v = r.json();
        assert_eq!(v["code"], "duplicate_field", "{method} {body}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("{name:?}")),
            "{method} {body}: the message names {name}: {v}"
        );
    }
}

#[test]
fn the_old_services_request_shapes_still_parse() {
    // Without a helper, a body that parses reaches the helper call (503);
    // one that does not would be a 400.
    let g = gateway();
    let t = all_scopes(&g);
    let me = std::process::id();
    for (method, body) in [
        ("DELETE", format!(r#"{{"pid": "{me}", "start_time": 1}}"#)),
        (
            "PATCH",
            format!(r#"{{"pid": "{me}", "priority": 10, "start_time": 1}}"#),
        ),
        (
            "POST",
            r#"{"cmd": "ls | grep Procfile | wc | awk '{print $3}'"}"#.to_string(),
        ),
    ] {
        let r = g.send(method, "/api/ps", Some(&t), &body);
        assert!(
            r.status == 503 || r.status == 502,
            "{method} {body}: {} {}",
            r.status,
            text(&r)
        );
    }
}

#[test]
fn memory_info_ex_and_every_schema_field_are_accepted_and_listed() {
    let g = gateway();
    let t = g.key("r", "read", &[]);
    let doc = g.get("/api/openapi.json", None).json();
    // Every member of a process is a field, but for the marker of the
    // fields withheld from another key (never asked for by name).
    let names: Vec<String> = doc["components"]["schemas"]["Process"]["properties"]
        .as_object()
        .expect("Process properties")
        .keys()
        .filter(|n| *n != "withheld")
        .cloned()
        .collect();
    let fields: Vec<&str> = doc["components"]["schemas"]["FieldName"]["enum"]
        .as_array()
        .expect("field names")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert_eq!(names.len(), fields.len());
    assert!(names.iter().all(|n| fields.contains(&n.as_str())));
    assert!(names.iter().any(|n| n == "memory_info_ex"));
    let r = g.get(
        &format!("/api/ps?fields={}&limit=3", names.join(",")),
        Some(&t),
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    let procs = r.json()["processes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!procs.is_empty());
    for p in &procs {
        for n in &names {
            assert!(p.get(n).is_some(), "{n} missing from {p}");
        }
    }
    let r = g.get("/api/ps/1?fields=memory_info_ex", Some(&t));
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(r.json()["process"]["memory_info_ex"]["rss"].is_u64());
    // The default set is described as what it is.
    let params = doc["paths"]["/api/ps"]["get"]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let fields = params
        .iter()
        .find(|p| p["name"] == "fields")
        .expect("fields");
    let desc = fields["description"].as_str().unwrap_or_default();
    let listing = g.get("/api/ps?limit=1", Some(&t)).json();
    let default: Vec<&str> = listing["processes"][0]
        .as_object()
        .expect("a process")
        .keys()
        .map(String::as_str)
        .collect();
    for n in &names {
        if !default.contains(&n.as_str()) {
            assert!(desc.contains(n.as_str()), "{n} is left out but {desc:?}");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn every_user_listed_is_accepted_back_even_a_uid_without_a_passwd_entry() {
    support::require_root();
    let uid = 40001;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    assert!(
        !passwd.lines().any(|l| l.split(':').nth(2) == Some("40001")),
        "uid {uid} has a passwd entry on this machine"
    );
    let mut child = support::Proc(
        support::as_user("40001", "40001", "sleep")
            .arg("30")
            .spawn()
            .expect("setpriv"),
    );
    // Listed under 40001 only once setpriv has switched to it.
    support::wait_runs_as(child.id(), uid, "sleep");
    let g = gateway();
    let t = g.key("r", "read", &[]);
    let users = g.get("/api/users", Some(&t)).json();
    let listed = users["users"].as_array().cloned().unwrap_or_default();
    assert!(
        listed
            .iter()
            .any(|u| u["username"] == "40001" && u["uid"] == uid),
        "{users}"
    );
    for u in &listed {
        let name = u["username"].as_str().unwrap_or_default();
        for path in [
            format!("/api/users/{name}/ps?fields=pid"),
            format!("/api/ps?user={name}&fields=pid"),
        ] {
            let r = g.get(&path, Some(&t));
            assert_eq!(r.status, 200, "{path}: {}", text(&r));
        }
    }
    for path in [
        "/api/users/40001/ps?fields=uids",
        "/api/ps?user=40001&fields=uids",
    ] {
        let v = g.get(path, Some(&t)).json();
        let procs = v["processes"].as_array().cloned().unwrap_or_default();
        assert!(procs.iter().any(|p| p["pid"] == child.id()), "{path}: {v}");
        assert!(
            procs.iter().all(|p| p["uids"]["real"] == uid),
            "{path}: {v}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn empty_repeated_and_unknown_query_parameters_are_refused_on_every_route() {
    let g = gateway();
    let t = all_scopes(&g);
    for (path, code) in [
        ("/api/ps?user=root&user=nobody", "invalid_parameter"),
        ("/api/ps?user=", "invalid_parameter"),
        ("/api/ps?fields=", "invalid_parameter"),
        ("/api/ps?sort=", "invalid_parameter"),
        ("/api/ps?limit=", "invalid_parameter"),
        ("/api/ps?sort=pid&sort=-pid", "invalid_parameter"),
        ("/api/ps?bogus=1", "unknown_parameter"),
        ("/api/ps/1?user=root", "unknown_parameter"),
        ("/api/users?bogus=1", "unknown_parameter"),
        ("/api/users/root/ps?user=root", "unknown_parameter"),
        (
            "/api/ps/output/0123456789abcdef0123456789abcdef?bogus=1",
            "unknown_parameter",
        ),
        ("/healthz?bogus=1", "unknown_parameter"),
        ("/api/openapi.json?bogus=1", "unknown_parameter"),
    ] {
        let r = g.get(path, Some(&t));
        assert_eq!(r.status, 400, "{path}: {}", text(&r));
        assert_eq!(r.json()["code"], code, "{path}");
    }
    // A list parameter may repeat; its names add up.
    let r = g.get("/api/ps?fields=name&fields=status&limit=1", Some(&t));
    assert_eq!(r.status, 200, "{}", text(&r));
    let p = &r.json()["processes"][0];
    assert!(p["name"].is_string() && p["status"].is_string(), "{p}");
}

#[test]
fn head_is_served_on_every_get_route_without_a_body() {
    let g = gateway();
    let t = all_scopes(&g);
    for path in [
        "/api/ps?limit=1",
        "/api/ps/1",
        "/api/users",
        "/api/users/root/ps?limit=1",
        "/api/openapi.json",
    ] {
        let r = request(g.addr, "HEAD", path, Some(&t), None);
        assert_eq!(r.status, 200, "HEAD {path}");
        assert!(r.body.is_empty(), "HEAD {path} has a body");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let r = request(g.addr, "HEAD", "/healthz", None, None);
    assert_eq!(r.status, 503);
    assert!(r.body.is_empty());
}

#[test]
fn errors_hyper_raises_itself_are_envelopes_too() {
    let g = gateway();
    // 20 KiB of header: 431 with the envelope.
    let req = format!(
        "GET /api/ps HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let r = raw(g.addr, req.as_bytes());
    assert_eq!(r.status, 431);
    assert_eq!(r.json()["code"], "headers_too_large");
    // They carry the headers every routed answer carries, too.
    let secure = |r: &Reply| {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            r.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    };
    secure(&r);
    // A request line that is not HTTP: 400 with the envelope.
    let r = raw(g.addr, b"NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "malformed_request");
    secure(&r);
    // A head that never ends: 408 with the envelope (header_timeout_s = 2).
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(g.addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /api/ps HTTP/1.1\r\nHost: t\r\n")
        .expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(head.contains("\"code\":\"request_timeout\""), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-content-type-options: nosniff"),
        "{head}"
    );
}

#[test]
fn output_without_an_id_is_not_taken_for_a_pid() {
    let g = gateway();
    let t = all_scopes(&g);
    for path in ["/api/ps/output", "/api/ps/output/"] {
        let r = g.get(path, Some(&t));
        assert_eq!(r.status, 404, "{path}: {}", text(&r));
        let v = r.json();
        assert_eq!(v["code"], "route_not_found");
        assert!(
            !v["message"].as_str().unwrap_or_default().contains("pid"),
            "{v}"
        );
        assert!(
            v["message"].as_str().unwrap_or_default().contains("{id}"),
            "{v}"
        );
    }
    let r = g.get("/api/ps/abc", Some(&t));
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, "invalid_parameter".into())
    );
}

#[test]
fn a_missing_scope_has_its_own_code_apart_from_policy_refusals() {
    let g = gateway();
    let t = g.key("reader", "read", &[]);
    let r = g.send("PATCH", "/api/ps", Some(&t), r#"{"pid": 1, "priority": 1}"#);
    assert_eq!(r.status, 403);
    let v = r.json();
    assert_eq!(v["code"], "missing_scope");
    assert!(
        v["message"].as_str().unwrap_or_default().contains("renice"),
        "{v}"
    );
}

#[test]
fn without_start_time_a_delete_or_patch_is_refused_when_the_config_requires_it() {
    let g = Gateway::start_with(
        Path::new("/nonexistent/helper.sock"),
        "require_start_time = true\n",
    );
    let t = all_scopes(&g);
    for (method, body) in [
        ("DELETE", r#"{"pid": 1}"#),
        ("PATCH", r#"{"pid": "1", "priority": 5}"#),
    ] {
        let r = g.send(method, "/api/ps", Some(&t), body);
        assert_eq!(r.status, 400, "{method}: {}", text(&r));
        assert_eq!(r.json()["code"], "start_time_required");
    }
    // With it, the request goes on to the helper (absent here: 503).
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        r#"{"pid": 1, "start_time": 5}"#,
    );
    assert_eq!(r.status, 503, "{}", text(&r));
    // The default stays off for the old clients.
    let g = gateway();
    let t = all_scopes(&g);
    let me = std::process::id();
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {me}}}"#),
    );
    assert_eq!(r.status, 503, "{}", text(&r));
}

#[test]
fn the_openapi_document_is_one_clients_can_generate_from() {
    let g = gateway();
    let d: Value = g.get("/api/openapi.json", None).json();
    assert_eq!(d["openapi"], "3.1.0");
    assert!(d["servers"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(d["info"]["license"]["name"].is_string());
    let mut ids = Vec::new();
    for (path, item) in d["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(!ids.contains(&id.to_string()), "duplicate {id}");
            ids.push(id.to_string());
            assert!(op["tags"][0].is_string(), "{id} has no tag");
            if let Some(body) = op.get("requestBody") {
                let r = &body["content"]["application/json"]["schema"]["$ref"];
                assert!(r.is_string(), "{id}'s body is anonymous");
            }
            for (status, resp) in op["responses"].as_object().expect("responses") {
                // Only Not Modified has no body to describe.
                let Some(content) = resp.get("content").and_then(Value::as_object) else {
                    assert_eq!(status, "304", "{id} {status} has no content");
                    continue;
                };
                for (media, c) in content {
                    let r = &c["schema"]["$ref"];
                    assert!(r.is_string(), "{id} {status} {media} is anonymous");
                }
            }
        }
    }
    let schemas = &d["components"]["schemas"];
    assert!(schemas["SignalName"]["enum"].is_array());
    assert!(schemas["FieldName"]["enum"].is_array());
    assert!(schemas["SortKey"]["enum"].is_array());
    for s in [
        "SignalResponse",
        "ProcessList",
        "JobOutput",
        "UserList",
        "Error",
    ] {
        assert!(
            schemas[s]["required"]
                .as_array()
                .is_some_and(|r| r.len() > 1),
            "{s} marks nothing required"
        );
    }
}
