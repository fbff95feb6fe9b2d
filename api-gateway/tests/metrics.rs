//! `GET /metrics`: who may read it, that the exposition is clean for
//! `promtool check metrics`, and that a real Prometheus server scrapes the
//! real gateway and can query its series. promtool and prometheus come
//! from Debian's `prometheus` package (`.ci/run` installs it); the tests
//! that need them are ignored unless asked for (`--include-ignored`, as
//! `scripts/test` does as root), and fail without them when asked for.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::pki::{curl, Pki};
use support::prom::{promtool, tool, Prometheus};
use support::Gateway;

fn gateway(extra: &str) -> Gateway {
    Gateway::start_with(Path::new("/nonexistent/helper.sock"), extra)
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

/// Rules putting `sleep {base}1` in `a`, `sleep {base}1`/`{base}2` by
/// name in `b` (after `a`, so `{base}1` stays in `a`), `sleep {base}3` in
/// `c`. Each test has its own `base`, so tests running at once do not
/// count each other's processes.
fn group_rules(base: u32) -> String {
    format!(
        r#"
[[metrics.groups.rule]]
group = "a"
cmdline = "^sleep {base}1$"
[[metrics.groups.rule]]
group = "b"
name = "sleep"
cmdline = "^sleep {base}[12]$"
[[metrics.groups.rule]]
group = "c"
cmdline = "^sleep {base}3$"
"#
    )
}

/// Two `sleep {base}1`, one `sleep {base}2`, one `sleep {base}3`; killed
/// on drop.
struct Sleepers(Vec<std::process::Child>);

impl Sleepers {
    fn start(base: u32) -> Sleepers {
        Sleepers(
            [1, 1, 2, 3]
                .iter()
                .map(|i| {
                    Command::new("sleep")
                        .arg(format!("{base}{i}"))
                        .spawn()
                        .expect("sleep")
                })
                .collect(),
        )
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The value of the series line starting with `series` (labels included).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn process_groups_are_exported_under_process_exporter_names() {
    let kids = Sleepers::start(301);
    let g = gateway(&format!(
        "metrics_public = true\n[metrics.groups]\n{}",
        group_rules(301)
    ));
    let text = String::from_utf8(g.get("/metrics", None).body).expect("UTF-8");
    let n = |s: &str| value(&text, s).unwrap_or_else(|| panic!("{s} missing:\n{text}"));
    assert_eq!(
        n("namedprocess_namegroup_num_procs{groupname=\"a\"}"),
        2.0,
        "the first rule wins"
    );
    assert_eq!(n("namedprocess_namegroup_num_procs{groupname=\"b\"}"), 1.0);
    assert_eq!(n("namedprocess_namegroup_num_procs{groupname=\"c\"}"), 1.0);
    assert_eq!(
        n("namedprocess_namegroup_num_threads{groupname=\"a\"}"),
        2.0
    );
    assert_eq!(
        n("namedprocess_namegroup_states{groupname=\"a\",state=\"Sleeping\"}"),
        2.0
    );
    assert!(n("namedprocess_namegroup_memory_bytes{groupname=\"a\",memtype=\"resident\"}") > 0.0);
    assert!(n("namedprocess_namegroup_memory_bytes{groupname=\"a\",memtype=\"virtual\"}") > 0.0);
    // The test's own processes: their descriptors are countable.
    assert!(n("namedprocess_namegroup_open_filedesc{groupname=\"a\"}") >= 6.0);
    assert!(n("namedprocess_namegroup_oldest_start_time_seconds{groupname=\"a\"}") > 1.0e9);
    for series in [
        "namedprocess_namegroup_cpu_seconds_total{groupname=\"a\",mode=\"user\"}",
        "namedprocess_namegroup_cpu_seconds_total{groupname=\"a\",mode=\"system\"}",
        "namedprocess_namegroup_read_bytes_total{groupname=\"a\"}",
        "namedprocess_namegroup_write_bytes_total{groupname=\"a\"}",
        "namedprocess_namegroup_major_page_faults_total{groupname=\"a\"}",
        "namedprocess_namegroup_context_switches_total{ctxswitchtype=\"voluntary\",groupname=\"a\"}",
    ] {
        n(series);
    }
    assert_eq!(n("monitoreo_process_groups_overflow_processes"), 0.0);
    for l in text.lines().filter(|l| l.starts_with("namedprocess_")) {
        assert!(
            !l.contains("pid=") && !l.contains("sleep"),
            "a pid or command in a label: {l}"
        );
    }
    // Once the processes are gone the group stays, at 0, and its CPU
    // counter keeps what they used.
    let cpu = n("namedprocess_namegroup_cpu_seconds_total{groupname=\"a\",mode=\"user\"}");
    drop(kids);
    let text = String::from_utf8(g.get("/metrics", None).body).expect("UTF-8");
    assert_eq!(
        value(&text, "namedprocess_namegroup_num_procs{groupname=\"a\"}"),
        Some(0.0),
        "{text}"
    );
    let after = value(
        &text,
        "namedprocess_namegroup_cpu_seconds_total{groupname=\"a\",mode=\"user\"}",
    );
    assert!(after.is_some_and(|v| v >= cpu), "{after:?} < {cpu}");

    // Without [metrics.groups], no such series.
    let plain = gateway("metrics_public = true\n");
    let text = String::from_utf8(plain.get("/metrics", None).body).expect("UTF-8");
    assert!(
        !text.contains("namedprocess_") && !text.contains("overflow"),
        "{text}"
    );
}

#[test]
fn groups_past_max_groups_are_counted_as_overflow() {
    let _kids = Sleepers::start(302);
    let g = gateway(&format!(
        "metrics_public = true\n[metrics.groups]\nmax_groups = 2\n{}",
        group_rules(302)
    ));
    let text = String::from_utf8(g.get("/metrics", None).body).expect("UTF-8");
    let counted: Vec<f64> = ["a", "b", "c"]
        .iter()
        .filter_map(|grp| {
            value(
                &text,
                &format!("namedprocess_namegroup_num_procs{{groupname=\"{grp}\"}}"),
            )
        })
        .collect();
    assert_eq!(counted.len(), 2, "two groups at most:\n{text}");
    let overflow = value(&text, "monitoreo_process_groups_overflow_processes").expect("overflow");
    assert_eq!(counted.iter().sum::<f64>() + overflow, 4.0, "{text}");
    assert!(overflow >= 1.0, "{text}");
}

#[test]
fn a_bad_group_rule_stops_the_gateway_naming_it() {
    let g = support::Gateway::configure(
        Path::new("/nonexistent/helper.sock"),
        "[[metrics.groups.rule]]\ngroup = \"a\"\ncmdline = \"(\"\n",
    );
    let out = g.serve_refused();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("metrics.groups.rule #1: cmdline \"(\""),
        "{err}"
    );
}

#[test]
#[ignore = "needs promtool (Debian's prometheus package)"]
fn the_exposition_passes_promtool_check_metrics() {
    let promtool = tool("promtool");
    let _kids = Sleepers::start(303);
    let g = gateway(&format!(
        "metrics_public = true\n[metrics.groups]\n{}",
        group_rules(303)
    ));
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
        "namedprocess_namegroup_num_procs{groupname=\"a\"} 2",
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

fn shipped() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/prometheus")
}

/// The shipped example (`packaging/prometheus/`) copied into `dir`, with
/// `targets` as its only targets, `key` in its credentials file and `ca`
/// as the CA it trusts.
fn shipped_config(
    dir: &Path,
    targets: &str,
    key: &str,
    ca: &Path,
    interval: &str,
) -> std::path::PathBuf {
    let config = std::fs::read_to_string(shipped().join("prometheus.yml")).expect("shipped config");
    assert!(config.contains("scrape_interval: 15s"), "{config}");
    let config = config.replace("15s", interval);
    std::fs::write(dir.join("prometheus.yml"), config).expect("config");
    for f in ["monitoreo-alerts.yml", "monitoreo-alerts.test.yml"] {
        std::fs::copy(shipped().join(f), dir.join(f)).expect("alerts");
    }
    std::fs::copy(ca, dir.join("monitoreo-ca.pem")).expect("CA");
    std::fs::write(dir.join("monitoreo-targets.yml"), targets).expect("targets");
    std::fs::write(dir.join("monitoreo.key"), format!("{key}\n")).expect("key");
    dir.join("prometheus.yml")
}

#[test]
#[ignore = "needs promtool (Debian's prometheus package)"]
fn the_shipped_prometheus_example_passes_promtool_and_its_rule_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let targets =
        std::fs::read_to_string(shipped().join("monitoreo-targets.yml")).expect("targets");
    let pki = Pki::new();
    shipped_config(dir.path(), &targets, "mon_example", &pki.ca, "15s");
    promtool(&["check", "config", "prometheus.yml"], dir.path());
    promtool(&["check", "rules", "monitoreo-alerts.yml"], dir.path());
    // Each alert fires on the series it is meant for, and only then.
    promtool(&["test", "rules", "monitoreo-alerts.test.yml"], dir.path());
}

/// Every series the alert rules' tests feed promtool, as (name, label
/// names other than those Prometheus adds).
fn series_in_rule_tests() -> Vec<(String, Vec<String>)> {
    let tests =
        std::fs::read_to_string(shipped().join("monitoreo-alerts.test.yml")).expect("tests");
    tests
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- series: '"))
        .map(|s| {
            let (name, labels) = s.split_once('{').expect("labels");
            let labels = labels
                .split(',')
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
                .filter(|k| k != "job" && k != "instance")
                .collect();
            (name.to_string(), labels)
        })
        .collect()
}

#[test]
fn the_alert_rule_tests_use_series_a_real_gateway_exports() {
    let g = gateway("metrics_public = true\n");
    // Fill the request and authentication series.
    assert_eq!(g.get("/api/users", Some("mon_wrong")).status, 401);
    let text = String::from_utf8(g.get("/metrics", None).body).expect("UTF-8");
    let series = series_in_rule_tests();
    assert!(series.len() >= 4, "{series:?}");
    for (name, labels) in series {
        if name == "up" {
            continue; // Prometheus's own
        }
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} is not exported:\n{text}"));
        for l in labels {
            assert!(
                line.contains(&format!("{l}=\"")),
                "{name} has no label {l}: {line}"
            );
        }
    }
}

#[test]
#[ignore = "needs promtool and prometheus (Debian's prometheus package)"]
fn a_real_prometheus_scrapes_a_tls_gateway_with_the_shipped_config() {
    let pki = Pki::new();
    let g = gateway(&pki.gateway_config());
    let key = g.key("prometheus", "metrics", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let instance = format!("localhost:{}", g.addr.port());
    let targets = format!("- targets: ['{instance}']\n  labels:\n    role: test\n");
    shipped_config(dir.path(), &targets, &key, &pki.ca, "1s");
    promtool(&["check", "config", "prometheus.yml"], dir.path());
    let server = Prometheus::start(&dir.path().join("prometheus.yml"));
    let mut found = (None, None);
    server.wait_for(|p| {
        found = (
            p.first("up{job=\"monitoreo\"}"),
            p.first("monitoreo_build_info{job=\"monitoreo\"}"),
        );
        found.0.as_ref().is_some_and(|u| u["value"][1] == "1") && found.1.is_some()
    });
    let rules = server.api("/api/v1/rules");
    let targets = server
        .api("/api/v1/targets")
        .unwrap_or_default()
        .to_string();
    let log = server.log();
    drop(server);
    let (up, build) = found;
    let up = up.unwrap_or_else(|| panic!("no up series after 90 s; prometheus said:\n{log}"));
    assert_eq!(up["value"][1], "1", "{up}\n{targets}\n{log}");
    let build = build.unwrap_or_else(|| panic!("no monitoreo series; prometheus said:\n{log}"));
    let labels = &build["metric"];
    assert_eq!(labels["__name__"], "monitoreo_build_info");
    assert_eq!(labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        labels["protocol_version"],
        protocol::PROTOCOL_VERSION.to_string()
    );
    assert_eq!(labels["instance"], instance);
    assert_eq!(labels["role"], "test", "the file-based discovery's label");
    let rules = rules.expect("the rules API answers").to_string();
    for alert in [
        "MonitoreoGatewayDown",
        "MonitoreoAuthFailures",
        "MonitoreoServerErrors",
        "MonitoreoQuarantinedUids",
    ] {
        assert!(rules.contains(alert), "{alert} not loaded: {rules}");
    }
    // The gateway counted Prometheus's scrapes, over TLS, as authorised.
    let (status, text) = curl(
        &pki.ca,
        "GET",
        &format!("https://{instance}/metrics"),
        Some(&key),
        None,
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(
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
