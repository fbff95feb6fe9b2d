//! A real Prometheus server (Debian's `prometheus` package) on a free
//! loopback port, and its HTTP query API. The tests that use it are
//! ignored unless asked for; asked for without the tool, they fail
//! rather than pass unrun.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's `promtool` or `prometheus`; missing, the test fails.
pub fn tool(name: &str) -> &'static str {
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

/// `promtool ARGS` succeeds, or the test fails with what it said.
pub fn promtool(args: &[&str], dir: &Path) {
    let out = Command::new(tool("promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Prometheus server on `config`, its data and log beside it; killed
/// when dropped.
pub struct Prometheus {
    pub web: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Prometheus {
    pub fn start(config: &Path) -> Prometheus {
        let dir = config.parent().expect("config in a directory");
        let web: SocketAddr = format!("127.0.0.1:{}", super::free_port())
            .parse()
            .expect("addr");
        let log = dir.join("prometheus.log");
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("prometheus starts");
        Prometheus { web, child, log }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every result of an instant query; `Err` with Prometheus's error
    /// when the query fails.
    pub fn query(&self, q: &str) -> Result<Vec<serde_json::Value>, String> {
        let v = get(self.web, &format!("/api/v1/query?query={}", encode(q)))
            .ok_or_else(|| format!("no answer to {q}"))?;
        if v["status"] != "success" {
            return Err(format!("{q}: {v}"));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// The first result of `q`, once there is one.
    pub fn first(&self, q: &str) -> Option<serde_json::Value> {
        self.query(q).ok()?.into_iter().next()
    }

    /// Waits up to 90 s for `done`; false if it never held.
    pub fn wait_for(&self, mut done: impl FnMut(&Prometheus) -> bool) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(90) {
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        false
    }

    /// GET on the server's HTTP API.
    pub fn api(&self, path: &str) -> Option<serde_json::Value> {
        get(self.web, path)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET on Prometheus's HTTP API: the JSON body of a 200 or 400/422 (a
/// query error), `None` otherwise. Its own client: these are not the
/// gateway's answers, so they are not recorded for the OpenAPI check.
fn get(addr: SocketAddr, path: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?;
    if !matches!(status, "200" | "400" | "422") {
        return None;
    }
    let body = &buf[end + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        super::dechunk(body)
    } else {
        body.to_vec()
    };
    serde_json::from_slice(&body).ok()
}
