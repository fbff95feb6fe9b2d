//! Efficient transfer: large JSON answers are gzip-compressed when the
//! client accepts it (q-values honoured), small ones and refusals are not,
//! and every answer says `Vary: Accept-Encoding` where it could be
//! compressed. Driven with curl, which speaks chunked transfer and gzip.
//! No helper needed.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use support::Gateway;

/// GET `path` with `accept` as Accept-Encoding; (headers, raw body).
fn fetch(g: &Gateway, token: &str, path: &str, accept: &str) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", &format!("Accept-Encoding: {accept}")])
        .arg("-D")
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .arg(format!("http://{}{path}", g.addr))
        .status()
        .expect("curl runs");
    assert!(out.success());
    (
        std::fs::read_to_string(head).unwrap().to_ascii_lowercase(),
        std::fs::read(body).unwrap(),
    )
}

#[test]
fn a_large_listing_is_gzipped_when_accepted_and_sent_plain_otherwise() {
    let g = Gateway::start(Path::new("/nonexistent/helper.sock"));
    let t = g.key("reader", "read", &[]);
    let (head, gz) = fetch(&g, &t, "/api/ps", "br;q=1.0, gzip;q=0.8");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("vary: accept-encoding"), "{head}");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .expect("valid gzip");
    let v: serde_json::Value = serde_json::from_slice(&plain).expect("JSON inside");
    assert_eq!(v["result"], "ok");
    assert!(
        gz.len() * 4 < plain.len(),
        "{} -> {}",
        plain.len(),
        gz.len()
    );

    let (head, raw) = fetch(&g, &t, "/api/ps", "gzip;q=0, identity");
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(serde_json::from_slice::<serde_json::Value>(&raw).is_ok());

    // Small answers and errors go as they are.
    let (head, _) = fetch(&g, &t, "/api/ps/1?fields=pid", "gzip");
    assert!(!head.contains("content-encoding"), "{head}");
    let (head, _) = fetch(&g, "mon_wrong", "/api/ps", "gzip");
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(!head.contains("content-encoding"), "{head}");
}
