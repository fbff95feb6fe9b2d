//! `GET /api/host` against psutil (Debian's python3-psutil, run by the
//! system's python3): the same names and units, and the same values,
//! exactly where they do not move (hostname, kernel, CPU counts, boot time
//! within a second, totals, mount points, disks and interfaces by name)
//! and within a tolerance where they do (memory, load, CPU over windows
//! that overlap, counters). The gateway runs alone, as the test's user,
//! as psutil does.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::Gateway;

/// psutil's view, the CPU figures over one second that starts when the
/// script prints `go`.
const PSUTIL: &str = r#"
import json, os, platform, socket, sys, time
import psutil
psutil.cpu_percent(None); psutil.cpu_percent(None, percpu=True); psutil.cpu_times_percent(None)
print("go", flush=True)
time.sleep(1)
out = {
    "cpu_percent": psutil.cpu_percent(None),
    "per_cpu": psutil.cpu_percent(None, percpu=True),
    "cpu_times_percent": psutil.cpu_times_percent(None)._asdict(),
    "hostname": socket.gethostname(),
    "kernel": platform.release(),
    "boot_time": psutil.boot_time(),
    "cpu_count": [psutil.cpu_count(), psutil.cpu_count(logical=False)],
    "virtual_memory": psutil.virtual_memory()._asdict(),
    "swap_memory": psutil.swap_memory()._asdict(),
    "getloadavg": os.getloadavg(),
    "pids": len(psutil.pids()),
    "disk_usage": [dict(device=p.device, mountpoint=p.mountpoint, fstype=p.fstype,
                        **psutil.disk_usage(p.mountpoint)._asdict())
                   for p in psutil.disk_partitions()],
    "disk_io_counters": {k: v._asdict() for k, v in psutil.disk_io_counters(perdisk=True).items()},
    "net_io_counters": {k: v._asdict() for k, v in psutil.net_io_counters(pernic=True).items()},
}
print(json.dumps(out))
"#;

fn close(what: &str, a: &Value, b: &Value, tolerance: f64) {
    let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!(
        (x - y).abs() <= tolerance,
        "{what}: gateway {x}, psutil {y} (tolerance {tolerance})"
    );
}

#[test]
#[ignore = "needs python3-psutil"]
fn the_host_matches_psutil() {
    let g = Gateway::start(std::path::Path::new("/nonexistent/helper.sock"));
    let t = g.key("r", "read", &[]);
    let mut py = Command::new("/usr/bin/python3")
        .args(["-c", PSUTIL])
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with python3-psutil (apt-get install python3-psutil)");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(
        line, "go\n",
        "psutil did not start (apt-get install python3-psutil)"
    );
    let r = g.get("/api/host?interval=1", Some(&t));
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(py.wait().unwrap().success());
    let p: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let h = r.json();

    // What does not move.
    assert_eq!(h["hostname"], p["hostname"]);
    assert_eq!(h["kernel"], p["kernel"]);
    close("boot_time", &h["boot_time"], &p["boot_time"], 1.0);
    assert_eq!(h["cpu_count"]["logical"], p["cpu_count"][0]);
    assert_eq!(h["cpu_count"]["physical"], p["cpu_count"][1]);
    assert_eq!(h["virtual_memory"]["total"], p["virtual_memory"]["total"]);
    assert_eq!(h["swap_memory"]["total"], p["swap_memory"]["total"]);
    let names = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(names(&h["disk_io_counters"]), names(&p["disk_io_counters"]));
    assert_eq!(names(&h["net_io_counters"]), names(&p["net_io_counters"]));
    let mounts = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let f = |k: &str| m[k].clone();
                (f("device"), f("mountpoint"), f("fstype"), f("total"))
            })
            .collect()
    };
    assert_eq!(mounts(&h["disk_usage"]), mounts(&p["disk_usage"]));
    assert!(!h["disk_usage"].as_array().unwrap().is_empty());

    // What moves: within a tolerance.
    let total = p["virtual_memory"]["total"].as_f64().unwrap();
    for k in [
        "available",
        "used",
        "free",
        "active",
        "inactive",
        "buffers",
        "cached",
        "shared",
        "slab",
    ] {
        close(
            k,
            &h["virtual_memory"][k],
            &p["virtual_memory"][k],
            total * 0.05,
        );
    }
    close(
        "percent",
        &h["virtual_memory"]["percent"],
        &p["virtual_memory"]["percent"],
        5.0,
    );
    let swap = p["swap_memory"]["total"].as_f64().unwrap();
    for k in ["used", "free"] {
        close(k, &h["swap_memory"][k], &p["swap_memory"][k], swap * 0.05);
    }
    for k in ["sin", "sout"] {
        let b = p["swap_memory"][k].as_f64().unwrap();
        close(
            k,
            &h["swap_memory"][k],
            &p["swap_memory"][k],
            b * 0.1 + 64e6,
        );
    }
    for i in 0..3 {
        close("getloadavg", &h["getloadavg"][i], &p["getloadavg"][i], 1.5);
    }
    for (g, p) in h["disk_usage"]
        .as_array()
        .unwrap()
        .iter()
        .zip(p["disk_usage"].as_array().unwrap())
    {
        let size = p["total"].as_f64().unwrap();
        close("disk used", &g["used"], &p["used"], size * 0.02);
        close("disk free", &g["free"], &p["free"], size * 0.02);
        close("disk percent", &g["percent"], &p["percent"], 2.0);
    }
    for (section, keys) in [
        (
            "disk_io_counters",
            &[
                "read_count",
                "write_count",
                "read_bytes",
                "write_bytes",
                "read_time",
                "write_time",
                "busy_time",
            ][..],
        ),
        (
            "net_io_counters",
            &[
                "bytes_sent",
                "bytes_recv",
                "packets_sent",
                "packets_recv",
                "errin",
                "errout",
                "dropin",
                "dropout",
            ][..],
        ),
    ] {
        for (name, c) in p[section].as_object().unwrap() {
            for k in keys {
                let b = c[k].as_f64().unwrap();
                close(
                    &format!("{section} {name} {k}"),
                    &h[section][name][k],
                    &c[*k],
                    b * 0.1 + 1e4,
                );
            }
        }
    }
    let pids = p["pids"].as_f64().unwrap();
    close(
        "processes",
        &h["processes"]["total"],
        &p["pids"],
        (pids * 0.1).max(50.0),
    );
    let states = [
        "running",
        "sleeping",
        "disk_sleep",
        "stopped",
        "zombie",
        "idle",
        "other",
    ];
    let sum: u64 = states
        .iter()
        .map(|s| h["processes"][s].as_u64().unwrap())
        .sum();
    assert_eq!(Some(sum), h["processes"]["total"].as_u64());
    assert!(h["processes"]["threads"].as_u64() >= h["processes"]["total"].as_u64());

    // The CPU over one second each, the windows overlapping.
    // At least the second asked for (the rest is read meanwhile).
    let window = h["cpu_percent"]["window"].as_f64().unwrap();
    assert!((1.0..5.0).contains(&window), "{window}");
    close(
        "cpu_percent",
        &h["cpu_percent"]["total"],
        &p["cpu_percent"],
        25.0,
    );
    let per = h["cpu_percent"]["per_cpu"].as_array().unwrap();
    assert_eq!(per.len(), p["per_cpu"].as_array().unwrap().len());
    for k in ["user", "system", "idle", "iowait"] {
        close(
            k,
            &h["cpu_times_percent"][k],
            &p["cpu_times_percent"][k],
            25.0,
        );
    }
    let shares: f64 = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ]
    .iter()
    .map(|k| h["cpu_times_percent"][k].as_f64().unwrap())
    .sum();
    close("cpu_times_percent sum", &shares.into(), &100.0.into(), 1.0);
}

#[test]
fn host_needs_read_and_a_bounded_interval_and_states_its_window() {
    let g = Gateway::start(std::path::Path::new("/nonexistent/helper.sock"));
    let t = g.key("r", "read", &[]);
    let none = g.key("m", "metrics", &[]);
    assert_eq!(g.get("/api/host", None).status, 401);
    let r = g.get("/api/host", Some(&none));
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (403, "missing_scope".into())
    );
    for bad in ["0", "-1", "10.5", "abc", "nan", "inf"] {
        let r = g.get(&format!("/api/host?interval={bad}"), Some(&t));
        assert_eq!(r.status, 400, "{bad}");
        let v = r.json();
        assert_eq!(v["code"], "invalid_parameter", "{bad}: {v}");
        assert!(v["message"].as_str().unwrap().contains("interval"), "{v}");
    }
    assert_eq!(
        g.get("/api/host?period=1", Some(&t)).json()["code"],
        "unknown_parameter"
    );
    // Without an interval: since the latest read, at least a quarter of
    // cpu_window_s (1 s by default) after it, and stated.
    for _ in 0..2 {
        let r = g.get("/api/host", Some(&t));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert!(v["cpu_percent"]["window"].as_f64().unwrap() >= 0.25, "{v}");
        assert_eq!(v["getloadavg"].as_array().unwrap().len(), 3);
    }
    let r = g.get("/api/host?interval=0.5", Some(&t));
    let w = r.json()["cpu_percent"]["window"].as_f64().unwrap();
    assert!(w >= 0.5, "{w}");
}
