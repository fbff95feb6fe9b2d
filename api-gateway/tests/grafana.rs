//! The shipped Grafana dashboard (`packaging/grafana/monitoreo.json`)
//! against real data: two real gateways over TLS on one real helper, a
//! real node_exporter, a real Prometheus scraping them; every panel's
//! query, with the dashboard's variables filled in as Grafana would, must
//! run and return something. A query that errors or finds no series
//! fails the test, naming the panel.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::pki::{curl, Pki};
use support::prom::Prometheus;
use support::{free_port, Gateway, Helper};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

fn dashboard() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/grafana/monitoreo.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("dashboard")).expect("dashboard JSON")
}

/// Every (panel title, query) of the dashboard.
fn queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            out.push((title, t["expr"].as_str().expect("expr").to_string()));
        }
    }
    out
}

#[test]
fn the_dashboard_is_well_formed_and_covers_what_it_promises() {
    let d = dashboard();
    assert_eq!(d["uid"], "monitoreo-fleet");
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(vars, ["datasource", "job", "instance", "node"]);
    let mut ids = std::collections::BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id: {p}"
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().expect("x"), g["w"].as_u64().expect("w"));
        assert!(x + w <= 24, "{} is wider than the grid", p["title"]);
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
    }
    let all: String = queries(&d).into_iter().map(|(_, q)| q + "\n").collect();
    for series in [
        "up{",
        "monitoreo_http_requests_total",
        "monitoreo_http_request_duration_seconds_bucket",
        "monitoreo_helper_decisions_total",
        "monitoreo_auth_failures_total",
        "monitoreo_jobs{",
        "monitoreo_jobs_finished_total",
        "monitoreo_host_user_cpu_seconds",
        "monitoreo_host_user_resident_memory_bytes",
        "monitoreo_host_processes",
        "node_cpu_seconds_total",
    ] {
        assert!(all.contains(series), "no panel shows {series}");
    }
    for (title, q) in queries(&d) {
        if !q.starts_with("up{") && !q.contains("(up{") && !q.contains("node_") {
            assert!(q.contains("instance=~\"$instance\""), "{title}: {q}");
        }
    }
}

/// A node_exporter with the collectors the dashboard reads, on `port`.
fn node_exporter(port: u16) -> Child {
    assert!(
        Path::new(NODE_EXPORTER).exists(),
        "{NODE_EXPORTER} is missing: install Debian's prometheus-node-exporter (.ci/run does)"
    );
    Command::new(NODE_EXPORTER)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args([
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.meminfo",
            "--collector.loadavg",
            "--collector.uname",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node_exporter starts")
}

/// A TLS gateway on the helper; its address as Prometheus names it.
fn gateway(h: &Helper, pki: &Pki) -> (Gateway, String) {
    let g = Gateway::start_with(&h.socket, &pki.gateway_config());
    let name = format!("localhost:{}", g.addr.port());
    (g, name)
}

/// What a dashboard shows something of: answers, a refusal for a bad key
/// and one for a scope, a job run to its end, a signal the policy refuses.
fn traffic(ca: &Path, url: &str, ops: &str, victim: u32) {
    assert_eq!(
        curl(ca, "GET", &format!("{url}/api/users"), Some(ops), None).0,
        200
    );
    assert_eq!(
        curl(
            ca,
            "GET",
            &format!("{url}/api/users"),
            Some("mon_wrong"),
            None
        )
        .0,
        401
    );
    let (s, body) = curl(
        ca,
        "POST",
        &format!("{url}/api/ps"),
        Some(ops),
        Some(r#"{"cmd": "echo dashboard", "timeout_s": 5}"#),
    );
    assert_eq!(s, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("JSON")["output"]
        .as_str()
        .expect("output id")
        .to_string();
    let (s, body) = curl(
        ca,
        "GET",
        &format!("{url}/api/jobs/{id}?wait=10"),
        Some(ops),
        None,
    );
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"state\":\"exited\""), "{body}");
    let refused = format!(r#"{{"pid": {victim}, "signal": "TERM"}}"#);
    let (s, body) = curl(
        ca,
        "DELETE",
        &format!("{url}/api/ps"),
        Some(ops),
        Some(&refused),
    );
    assert_eq!(s, 403, "{body}");
}

#[test]
#[ignore = "needs root, Debian's prometheus and prometheus-node-exporter"]
fn every_panel_of_the_dashboard_finds_data_from_two_real_gateways() {
    support::require_root();
    let h = Helper::start(&support::helper_bin());
    let pki = Pki::new();
    let (g1, name1) = gateway(&h, &pki);
    let (g2, name2) = gateway(&h, &pki);
    // One metrics key for both, its record copied as the README says.
    let scrape = g1.key("prometheus", "metrics", &[]);
    let keys2: PathBuf = g2.dir.path().join("state/keys.json");
    std::fs::copy(g1.dir.path().join("state/keys.json"), &keys2).expect("copy the key record");
    let mut victim = Command::new("sleep").arg("120").spawn().expect("sleep");
    for (g, name) in [(&g1, &name1), (&g2, &name2)] {
        let ops = g.key("ops", "read,signal,exec", &[]);
        traffic(&pki.ca, &format!("https://{name}"), &ops, victim.id());
    }
    let _ = victim.kill();
    let _ = victim.wait();

    let node_port = free_port();
    let mut node = node_exporter(node_port);
    let node_name = format!("127.0.0.1:{node_port}");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&pki.ca, dir.path().join("monitoreo-ca.pem")).expect("CA");
    std::fs::write(dir.path().join("monitoreo.key"), format!("{scrape}\n")).expect("key");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: monitoreo\n    scheme: https\n    tls_config:\n      ca_file: monitoreo-ca.pem\n    authorization:\n      credentials_file: monitoreo.key\n    static_configs:\n      - targets: ['{name1}', '{name2}']\n  - job_name: node\n    static_configs:\n      - targets: ['{node_name}']\n"
        ),
    )
    .expect("config");
    let server = Prometheus::start(&dir.path().join("prometheus.yml"));

    let d = dashboard();
    let fill = |q: &str| {
        q.replace("$job", "monitoreo")
            .replace("$instance", &format!("{name1}|{name2}"))
            .replace("$node", &node_name)
            .replace("$__rate_interval", "15s")
            .replace("$__range", "1h")
    };
    let mut missing: Vec<String> = Vec::new();
    let done = server.wait_for(|p| {
        missing = queries(&d)
            .into_iter()
            .filter_map(|(title, q)| match p.query(&fill(&q)) {
                Ok(r) if !r.is_empty() => None,
                Ok(_) => Some(format!("{title}: nothing for {q}")),
                Err(e) => Some(format!("{title}: {e}")),
            })
            .collect();
        missing.is_empty()
    });
    // The variables' own queries find both gateways and the node.
    let instances = server
        .api("/api/v1/label/instance/values?match[]=monitoreo_build_info")
        .unwrap_or_default()
        .to_string();
    let nodes = server
        .api("/api/v1/label/instance/values?match[]=node_uname_info")
        .unwrap_or_default()
        .to_string();
    let log = server.log();
    drop(server);
    let _ = node.kill();
    let _ = node.wait();
    assert!(
        done,
        "panels without data after 90 s:\n{}\nprometheus said:\n{log}",
        missing.join("\n")
    );
    for name in [&name1, &name2] {
        assert!(
            instances.contains(name.as_str()),
            "{name} not in {instances}"
        );
    }
    assert!(nodes.contains(&node_name), "{nodes}");
}
