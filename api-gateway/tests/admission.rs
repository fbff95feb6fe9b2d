//! Admission under hostile clients, against the real gateway over real
//! sockets (no helper needed): hundreds of half-open and slow-body
//! connections do not lock another client out, one address cannot take
//! every slot, slow bodies and idle connections are cut off, and a client
//! that sends a whole 8 MiB body reads its 413.
//!
//! The attackers connect from other loopback addresses (127.0.1.x,
//! 127.0.2.x) than the client that must be served (127.0.0.1), as they
//! would from other hosts.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use support::{connect_from, raise_nofile, Gateway};

fn gateway(extra: &str) -> Gateway {
    Gateway::start_with(Path::new("/nonexistent/helper.sock"), extra)
}

/// Reads one response (or what comes before the peer closes) within
/// `limit`; the status, or 0 when none came.
fn status_within(s: &mut TcpStream, limit: Duration) -> u16 {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// How long a test gives an answer that must come "at once": far more
/// than a loaded machine needs, far less than the head timeout (60 s and
/// more in these tests) a client left waiting for a slot would sit out.
const AT_ONCE: Duration = Duration::from_secs(10);

/// GET /healthz from 127.0.0.1: how long until the whole answer came.
fn served_in(g: &Gateway) -> (u16, Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect(g.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let status = status_within(&mut s, Duration::from_secs(30));
    (status, t.elapsed())
}

#[test]
fn a_client_is_served_at_once_while_300_half_open_and_256_slow_body_connections_are_held() {
    raise_nofile();
    // The head and body timeouts are long, longer than a server's: the
    // attackers are not simply timed out during the measurement, however
    // slowly a loaded machine opens them, and a client that waits for
    // them to be would wait minutes, not the seconds it is given. The
    // global cap is raised past the 556 held here (its default is what
    // fits in the unit's MemoryMax, see budget.rs); this is about being
    // served while they are held, not about that cap.
    let g = gateway("header_timeout_s = 120\nbody_timeout_s = 120\nmax_connections = 1024\n");
    let t = g.key("ops", "signal", &[]);
    let mut held = Vec::new();
    // 300 connections that send a request line and never finish the head,
    // from ten addresses (30 each, under the per-client cap).
    for i in 0..300u32 {
        let from = Ipv4Addr::new(127, 0, 1, 1 + (i % 10) as u8);
        let mut s = connect_from(from, g.addr).unwrap();
        s.write_all(b"GET /api/ps HTTP/1.1\r\nHost: t\r\n").unwrap();
        held.push(s);
    }
    // 256 authenticated DELETEs announcing 1000 bytes of body and sending
    // one, from eight addresses.
    let head = format!(
        "DELETE /api/ps HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    for i in 0..256u32 {
        let from = Ipv4Addr::new(127, 0, 2, 1 + (i % 8) as u8);
        let mut s = connect_from(from, g.addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        held.push(s);
    }
    // While they are held, another client is served, again and again.
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let (status, took) = served_in(&g);
        assert_eq!(
            status, 503,
            "no answer (the helper is absent: 503 is the answer)"
        );
        worst = worst.max(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("served within {worst:?} while 556 hostile connections were held");
    assert!(worst < AT_ONCE, "{worst:?}");
    // The half-open ones were still open all along: none was answered yet.
    let mut probe = [0u8; 1];
    held[0].set_nonblocking(true).unwrap();
    assert!(
        matches!(held[0].read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the first half-open connection was answered or closed already"
    );
    drop(held);
}

#[test]
fn one_address_cannot_take_every_slot_and_others_are_still_served() {
    // A fifth left waiting for a slot would wait out the 60 s head
    // timeout of one of the four.
    let g = gateway("max_connections_per_client = 4\nheader_timeout_s = 60\n");
    let from = Ipv4Addr::new(127, 0, 3, 1);
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect_from(from, g.addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // The fifth from that address is answered at once and closed.
    let t0 = Instant::now();
    let mut fifth = connect_from(from, g.addr).unwrap();
    let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut text = String::new();
    fifth
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = fifth.read_to_string(&mut text);
    assert!(t0.elapsed() < AT_ONCE, "{:?}", t0.elapsed());
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(
        text.contains("\"code\":\"too_many_client_connections\""),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    // Another address is served meanwhile.
    let (status, took) = served_in(&g);
    assert_eq!(status, 503);
    assert!(took < AT_ONCE, "{took:?}");
    held.clear();
}

#[test]
fn a_slow_body_is_cut_off_with_408_body_timeout() {
    let g = gateway("body_min_rate = 1024\nbody_timeout_s = 30\n");
    let t = g.key("ops", "signal", &[]);
    let mut s = TcpStream::connect(g.addr).unwrap();
    let head = format!(
        "DELETE /api/ps HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {t}\r\nContent-Length: 1000\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).unwrap();
    let t0 = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(25))).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let took = t0.elapsed();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"body_timeout\""), "{text}");
    assert!(text.contains("body_min_rate"), "{text}");
    // Cut by the rate (about a second), not by the 30 s timeout: the
    // margin is for a loaded machine.
    assert!(took < Duration::from_secs(15), "{took:?}");
    // The refused body is in the audit trail, with the key's name.
    let line = g
        .audit()
        .into_iter()
        .find(|l| l["status"] == 408)
        .expect("an audit line for the 408");
    assert_eq!(line["key"], "ops");
    assert_eq!(line["route"], "DELETE /api/ps");
}

#[test]
fn a_body_that_never_completes_is_cut_off_at_body_timeout_s() {
    let g = gateway("body_min_rate = 0\nbody_timeout_s = 2\n");
    let t = g.key("ops", "signal", &[]);
    let mut s = TcpStream::connect(g.addr).unwrap();
    let head = format!(
        "DELETE /api/ps HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {t}\r\nContent-Length: 100\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("body_timeout_s (2 s): 1 of 100 bytes came"),
        "{text}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_keepalive_timeout() {
    let g = gateway("keepalive_timeout_s = 1\nheader_timeout_s = 10\n");
    let mut s = TcpStream::connect(g.addr).unwrap();
    s.write_all(b"GET /api/openapi.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t0 = Instant::now();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let took = t0.elapsed();
    assert!(all.starts_with(b"HTTP/1.1 200"));
    // Closed after about a second of idleness, silently (no 408), not at
    // the 10 s header timeout.
    assert!(took < Duration::from_secs(7), "{took:?}");
    assert!(!String::from_utf8_lossy(&all).contains("HTTP/1.1 408"));
}

#[test]
fn urllib_reads_the_413_of_an_8_mib_body() {
    let g = gateway("");
    let t = g.key("ops", "exec", &[]);
    let script = r#"
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], data=b" " * (8 << 20), method="POST",
    headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
try:
    urllib.request.urlopen(req, timeout=30)
    print("no error")
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except Exception as e:
    print("failed:", repr(e))
"#;
    for _ in 0..3 {
        let out = std::process::Command::new("python3")
            .args(["-c", script, &format!("http://{}/api/ps", g.addr), &t])
            .output()
            .expect("python3 runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("413 "),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("\"code\":\"payload_too_large\""), "{text}");
    }
}
