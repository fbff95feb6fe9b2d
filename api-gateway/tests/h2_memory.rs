//! HTTP/2 followers that never read: one client address opens every
//! connection the per-address cap allows, every stream the gateway
//! advertises on each, with a zero receive window, and follows a finished
//! job with large output on each stream (its events, or its raw stdout).
//! The gateway cannot send a byte of any of them; what it holds meanwhile
//! must stay inside the bound that ARCHITECTURE.md derives
//! (`budget.rs`), which is itself inside the unit's `MemoryMax`.
//! Real gateway, real helper, TLS with `h2` by ALPN, the `h2` crate as
//! the client (it lets the window be zero).
//!
//! The margin: about 89 MiB is measured against a bound of 171 MiB. The
//! bound counts, on every stream, the larger of a full request (head and
//! body caps) and a full answer with an open window and an unread socket,
//! which this flood does not reach; what it does reach (three pieces per
//! stream) was 1.2 MiB per stream before the bound. Memory is what is
//! asserted, not time, so the number moves little between runs (within
//! 0.2 MiB in three), and the gateway runs without the unit's malloc
//! settings here, which only makes it larger.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_gateway::budget;
use api_gateway::config::DEFAULT_MAX_CONNECTIONS_PER_CLIENT;
use bytes::Bytes;
use h2::client::SendRequest;
use hyper::{Request, StatusCode};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use support::{connect_from, Gateway, Helper};

/// The follower flood comes from here, the setup from another address
/// (so it takes none of the flood's slots).
const FLOOD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const SETUP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Output of the followed job: larger than everything the gateway could
/// queue for one stream before the fix, so every stream's pipeline is
/// full. Control characters are the worst case of the events' JSON
/// escaping (six bytes each); under the test policy's output cap.
const OUTPUT: usize = 1_000_000;

/// A fresh CA and a server certificate for localhost; the PEM files are
/// written to `dir`. Returns the TLS connector trusting that CA.
fn certificates(dir: &Path) -> TlsConnector {
    let ca_key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "Monitoreo test CA");
    let ca = p.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("leaf");
    std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("write");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write");
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    TlsConnector::from(Arc::new(cfg))
}

/// An HTTP/2 connection from `from` whose streams get `window` bytes of
/// receive window; `None` when the gateway refused it (past a cap, over
/// TLS it just closes).
async fn h2_connect(
    from: Ipv4Addr,
    to: SocketAddr,
    tls: &TlsConnector,
    window: u32,
) -> Option<SendRequest<Bytes>> {
    let tcp = connect_from(from, to).ok()?;
    tcp.set_nonblocking(true).ok()?;
    let tcp = tokio::net::TcpStream::from_std(tcp).ok()?;
    let name = ServerName::try_from("localhost").ok()?;
    let stream = tls.connect(name, tcp).await.ok()?;
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(window)
        .handshake(stream)
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(send)
}

fn request(method: &str, path: &str, token: &str) -> Request<()> {
    Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(())
        .expect("request")
}

/// One whole request and answer on a connection with open windows.
async fn call(
    send: &mut SendRequest<Bytes>,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut s = send.clone().ready().await.expect("ready");
    let (resp, mut out) = s
        .send_request(request(method, path, token), body.is_none())
        .expect("send");
    if let Some(b) = body {
        out.send_data(Bytes::copy_from_slice(b.as_bytes()), true)
            .expect("body");
    }
    let resp = resp.await.expect("response");
    let status = resp.status();
    let mut recv = resp.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.expect("data");
        let _ = recv.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

/// The gateway's resident and peak resident memory, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("a memory line")
            * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

const MIB: f64 = 1024.0 * 1024.0;

#[test]
#[ignore = "needs root"]
fn zero_window_followers_from_one_address_stay_inside_the_bound() {
    support::require_root();
    support::raise_nofile();
    let h = Helper::start(&support::helper_bin());
    let files = tempfile::tempdir().expect("tempdir");
    let tls = certificates(files.path());
    // The streams are held for as long as the test measures: no timer
    // may end them first.
    let g = Gateway::start_with(
        &h.socket,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\nsend_timeout_s = 300\nkeepalive_timeout_s = 300\n",
            files.path().join("cert.pem").display(),
            files.path().join("key.pem").display(),
        ),
    );
    let token = g.key("flood", "read,exec", &[]);
    let pid = g.child.as_ref().expect("running").id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut setup = h2_connect(SETUP, g.addr, &tls, 1 << 20)
            .await
            .expect("a setup connection");
        let cmd = format!("head -c {OUTPUT} /dev/zero | tr '\\0' '\\001'");
        let body = serde_json::json!({ "cmd": cmd, "timeout_s": 30 }).to_string();
        let (status, v) = call(&mut setup, "POST", "/api/jobs", &token, Some(&body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        let id = v["job"]["id"].as_str().expect("id").to_string();
        let t0 = Instant::now();
        loop {
            let (status, v) =
                call(&mut setup, "GET", &format!("/api/jobs/{id}?wait=10"), &token, None).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            if !matches!(v["job"]["state"].as_str(), Some("running" | "starting")) {
                assert_eq!(v["job"]["stdout_bytes"], OUTPUT, "{v}");
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(40), "the job never ended");
        }
        drop(setup);
        let (before, _) = rss(pid);
        let per_client = DEFAULT_MAX_CONNECTIONS_PER_CLIENT;
        let bound = budget::connections_bound(per_client as u64);
        assert!(bound <= budget::MEMORY_MAX);
        eprintln!(
            "gateway before the flood: {:.1} MiB; bound: {:.1} MiB (MemoryMax {:.0} MiB)",
            before as f64 / MIB,
            bound as f64 / MIB,
            budget::MEMORY_MAX as f64 / MIB
        );
        let over = |what: &str| {
            let (now, peak) = rss(pid);
            assert!(
                peak <= bound,
                "{what}: the gateway's peak RSS {:.1} MiB is over the bound {:.1} MiB (now {:.1} MiB)",
                peak as f64 / MIB,
                bound as f64 / MIB,
                now as f64 / MIB
            );
            now
        };
        // Every connection the address may hold, every stream each may
        // carry; all answered with their head before the next connection.
        let routes = [
            format!("/api/jobs/{id}/events"),
            format!("/api/jobs/{id}/stdout"),
        ];
        let mut held = Vec::new();
        let mut senders = Vec::new();
        let mut conns = 0;
        let mut streams = 0;
        let mut per_conn = 0;
        while let Some(send) = h2_connect(FLOOD, g.addr, &tls, 0).await {
            conns += 1;
            let mut send = send.ready().await.expect("ready");
            let (first, _) = send
                .send_request(request("GET", &routes[0], &token), true)
                .expect("send");
            // The gateway's SETTINGS have arrived once it answered.
            let resp = first.await.expect("answer");
            assert_eq!(resp.status(), StatusCode::OK);
            held.push(resp);
            per_conn = send.current_max_send_streams();
            let mut pending = Vec::new();
            for i in 1..per_conn {
                send = send.ready().await.expect("ready");
                let (resp, _) = send
                    .send_request(request("GET", &routes[i % 2], &token), true)
                    .expect("send");
                pending.push(resp);
            }
            for resp in pending {
                let resp = resp.await.expect("answer");
                assert_eq!(resp.status(), StatusCode::OK);
                held.push(resp);
            }
            streams = held.len();
            over(&format!("{conns} connections, {streams} streams"));
            // Past the per-address cap the gateway closes at once; that
            // ends the loop. A cap the test never meets is a failure.
            assert!(conns <= 4096, "no per-address cap met");
            senders.push(send);
        }
        eprintln!("held {conns} connections x {per_conn} streams = {streams} streams");
        // The caps the bound was derived for, all used.
        assert_eq!(conns, per_client, "the per-address cap");
        assert_eq!(per_conn, budget::H2_STREAMS as usize, "the streams per connection");
        // The producers fill whatever they may queue; wait until the
        // resident size stops growing.
        let t0 = Instant::now();
        let mut last = over("the streams held");
        let mut still = Instant::now();
        while still.elapsed() < Duration::from_secs(2) && t0.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = over("the streams held");
            if now > last + (1 << 20) {
                still = Instant::now();
            }
            last = last.max(now);
        }
        let (now, peak) = rss(pid);
        eprintln!(
            "gateway holding {streams} zero-window followers: RSS {:.1} MiB, peak (VmHWM) {:.1} MiB, bound {:.1} MiB",
            now as f64 / MIB,
            peak as f64 / MIB,
            bound as f64 / MIB
        );
        over("at the end");
        drop(held);
        drop(senders);
    });
}
