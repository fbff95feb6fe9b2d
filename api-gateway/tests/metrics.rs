//! `GET /metrics`: who may read it, that the exposition is clean for
//! `promtool check metrics`, and that a real Prometheus server scrapes the
//! real gateway and can query its series. promtool and prometheus come
//! from Debian's `prometheus` package (`.ci/run` installs it); the tests
//! that need them are ignored unless asked for (`--include-ignored`, as
//! `scripts/test` does as root), and fail without them when asked for.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, request, Gateway};

fn gateway(extra: &str) -> Gateway {
    Gateway::start_with(Path::new("/nonexistent/helper.sock"), extra)
}

/// Debian's `promtool` or `prometheus`. The tests that use them are
/// ignored unless asked for, and asked for without the tool they fail
/// rather than pass unrun.
fn tool(name: &str) -> &'static str {
    let path = match name {
        "promtool" => "/usr/bin/promtool",
        _ => "/usr/bin/prometheus",
    };
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install Debian's prometheus package (.ci/run does)"
    );
    path
}

#[test]
fn metrics_need_the_metrics_scope_unless_metrics_public() {
    let g = gateway("");
    let r = g.get("/metrics", None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let reader = g.key("reader", "read", &[]);
    let r = g.get("/metrics", Some(&reader));
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "missing_scope");
    let scraper = g.key("scraper", "metrics", &[]);
    let r = g.get("/metrics", Some(&scraper));
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.header("content-type")
    );
    let text = String::from_utf8(r.body).expect("UTF-8");
    // The refusals above were counted, by reason.
    assert!(
        text.contains("monitoreo_auth_failures_total{reason=\"missing_key\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("monitoreo_auth_failures_total{reason=\"missing_scope\"} 1"),
        "{text}"
    );
    assert!(text.contains("monitoreo_build_info{"), "{text}");
    // A metrics key reads nothing else.
    assert_eq!(g.get("/api/ps", Some(&scraper)).status, 403);

    let open = gateway("metrics_public = true\n");
    let r = open.get("/metrics", None);
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("monitoreo_host_processes{state="));
}

#[test]
#[ignore = "needs promtool (Debian's prometheus package)"]
fn the_exposition_passes_promtool_check_metrics() {
    let promtool = tool("promtool");
    let g = gateway("metrics_public = true\n");
    let t = g.key("ops", "read", &[]);
    // Fill the request, duration and auth series first.
    assert_eq!(g.get("/api/users", Some(&t)).status, 200);
    assert_eq!(g.get("/api/ps/1?fields=pid,name", Some(&t)).status, 200);
    assert_eq!(g.get("/api/users", Some("mon_wrong")).status, 401);
    assert_eq!(g.get("/no/such/route", None).status, 404);
    let r = g.get("/metrics", None);
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body.clone()).expect("UTF-8");
    for want in [
        "monitoreo_http_requests_total{method=\"GET\",route=\"/api/users\",status=\"200\"} 1",
        "monitoreo_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "monitoreo_http_request_duration_seconds_bucket{route=\"/api/ps/{pid}\"",
        "monitoreo_http_open_connections 1",
        "monitoreo_jobs{state=\"running\"} 0",
        "monitoreo_job_output_bytes 0",
        "monitoreo_helper_quarantined_uids 0",
        "monitoreo_helper_policy_reload_failed 0",
        "monitoreo_host_user_processes{user=\"root\"}",
        "monitoreo_host_user_resident_memory_bytes{user=",
        "monitoreo_host_user_cpu_seconds{user=",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), &r.body).expect("write");
    let out = child.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

/// GET on Prometheus's HTTP API; the body as JSON (status checked).
fn prom_get(addr: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut s, req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut buf).ok()?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let body = &buf[end + 4..];
    // Prometheus may answer chunked; its JSON then sits between sizes.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..nl]).ok()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(nl + 2..nl + 2 + size)?);
            rest = rest.get(nl + 4 + size..)?;
        }
        out
    } else {
        body.to_vec()
    };
    serde_json::from_slice(&body).ok()
}

/// The first result of an instant query, once Prometheus has one.
fn query(addr: SocketAddr, q: &str) -> Option<serde_json::Value> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let v = prom_get(addr, &format!("/api/v1/query?query={enc}"))?;
    v["data"]["result"].as_array()?.first().cloned()
}

/// The shipped example (`packaging/prometheus/`) copied into `dir`, with
/// `targets` as its only target and `key` in its credentials file.
fn shipped_config(dir: &Path, targets: &str, key: &str, interval: &str) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/prometheus");
    let config = std::fs::read_to_string(src.join("prometheus.yml")).expect("shipped config");
    assert!(config.contains("scrape_interval: 15s"), "{config}");
    let config = config.replace("15s", interval);
    std::fs::write(dir.join("prometheus.yml"), config).expect("config");
    std::fs::copy(
        src.join("monitoreo-alerts.yml"),
        dir.join("monitoreo-alerts.yml"),
    )
    .expect("alerts");
    std::fs::write(dir.join("monitoreo-targets.yml"), targets).expect("targets");
    std::fs::write(dir.join("monitoreo.key"), format!("{key}\n")).expect("key");
    dir.join("prometheus.yml")
}

#[test]
#[ignore = "needs promtool (Debian's prometheus package)"]
fn the_shipped_prometheus_example_passes_promtool() {
    let promtool = tool("promtool");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/prometheus");
    let targets = std::fs::read_to_string(src.join("monitoreo-targets.yml")).expect("targets");
    let config = shipped_config(dir.path(), &targets, "mon_example", "15s");
    for args in [
        vec![
            "check".into(),
            "config".into(),
            config.display().to_string(),
        ],
        vec![
            "check".into(),
            "rules".into(),
            src.join("monitoreo-alerts.yml").display().to_string(),
        ],
    ] {
        let out = Command::new(promtool)
            .args(&args)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
#[ignore = "needs promtool and prometheus (Debian's prometheus package)"]
fn a_real_prometheus_scrapes_the_gateway_with_the_shipped_config() {
    let (prometheus, promtool) = (tool("prometheus"), tool("promtool"));
    let g = gateway("");
    let key = g.key("prometheus", "metrics", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let targets = format!("- targets: ['{}']\n  labels:\n    role: test\n", g.addr);
    let config = shipped_config(dir.path(), &targets, &key, "1s");
    let check = Command::new(promtool)
        .args(["check", "config"])
        .arg(&config)
        .output()
        .expect("promtool");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut server = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).expect("log"))
        .spawn()
        .expect("prometheus starts");
    let t = Instant::now();
    let mut found = (None, None);
    while t.elapsed() < Duration::from_secs(90) {
        found = (
            query(web, "up{job=\"monitoreo\"}"),
            query(web, "monitoreo_build_info{job=\"monitoreo\"}"),
        );
        if found.0.as_ref().is_some_and(|u| u["value"][1] == "1") && found.1.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let rules = prom_get(web, "/api/v1/rules");
    let _ = server.kill();
    let _ = server.wait();
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    let (up, build) = found;
    let up = up.unwrap_or_else(|| panic!("no up series after 90 s; prometheus said:\n{log}"));
    assert_eq!(up["value"][1], "1", "{up}\n{log}");
    let build = build.unwrap_or_else(|| panic!("no monitoreo series; prometheus said:\n{log}"));
    let labels = &build["metric"];
    assert_eq!(labels["__name__"], "monitoreo_build_info");
    assert_eq!(labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        labels["protocol_version"],
        protocol::PROTOCOL_VERSION.to_string()
    );
    assert_eq!(labels["instance"], g.addr.to_string());
    assert_eq!(labels["role"], "test", "the file-based discovery's label");
    let rules = rules.expect("the rules API answers").to_string();
    for alert in ["MonitoreoGatewayDown", "MonitoreoAuthFailures"] {
        assert!(rules.contains(alert), "{alert} not loaded: {rules}");
    }
    // The gateway counted Prometheus's scrapes as authorised requests.
    let r = request(g.addr, "GET", "/metrics", Some(&key), None);
    assert!(String::from_utf8_lossy(&r.body).contains(
        "monitoreo_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"}"
    ));
}

#[test]
#[ignore = "needs root"]
fn helper_round_trips_decisions_and_jobs_are_counted() {
    support::require_root();
    let h = support::Helper::start(&support::helper_bin());
    let g = Gateway::start_with(&h.socket, "metrics_public = true\n");
    let t = g.key("all", "read,signal,exec", &[]);
    // Root's process: the test policy lets only nobody's be signalled.
    let mut victim = Command::new("sleep").arg("60").spawn().expect("sleep");
    let body = format!(r#"{{"pid": {}, "signal": "TERM"}}"#, victim.id());
    let r = g.send("DELETE", "/api/ps", Some(&t), &body);
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let rule = r.json()["message"].to_string();
    let r = g.send(
        "POST",
        "/api/ps",
        Some(&t),
        r#"{"cmd": "echo counted", "timeout_s": 5}"#,
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["output"].as_str().expect("output id").to_string();
    let done = support::wait_job(&g, &t, &id);
    assert_eq!(done["state"], "exited", "{done}");
    let text = String::from_utf8(g.get("/metrics", None).body).expect("UTF-8");
    let _ = victim.kill();
    let _ = victim.wait();
    let denied = text
        .lines()
        .find(|l| {
            l.starts_with("monitoreo_helper_decisions_total{") && l.contains("outcome=\"denied\"")
        })
        .unwrap_or_else(|| panic!("no denied decision ({rule}) in:\n{text}"));
    assert!(
        denied.contains("request=\"signal\"") && denied.contains("rule=\"signal."),
        "{denied}"
    );
    for want in [
        "monitoreo_helper_decisions_total{outcome=\"ok\",request=\"spawn\",rule=\"\"} 1",
        "monitoreo_helper_round_trip_seconds_count{request=\"signal\"} 1",
        "monitoreo_helper_round_trip_seconds_count{request=\"spawn\"} 1",
        "monitoreo_jobs{state=\"exited\"} 1",
        "monitoreo_jobs_finished_total{outcome=\"success\"} 1",
        "monitoreo_job_output_bytes 8",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
}
