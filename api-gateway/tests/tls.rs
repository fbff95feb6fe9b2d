//! TLS end to end with real TLS clients (rustls here, curl for HTTP/2):
//! handshake and request, refusal of an untrusted CA either way, client
//! certificates mapped to keys, a certificate reloaded for new connections
//! while an open one keeps working, a clear error for plain HTTP on the
//! TLS port, and the refusal of a plaintext listener beyond loopback.
//! Certificates are made here with rcgen, and with the openssl command
//! line where rcgen cannot (multi-valued RDNs). No helper needed.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use support::{free_port, Gateway};

/// A CA that signs server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf with `cn`; a server certificate for localhost and
    /// 127.0.0.1, or a client one.
    fn leaf(&self, cn: &str, server: bool) -> (String, String, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let names = if server {
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        } else {
            Vec::new()
        };
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }
}

struct Setup {
    g: Gateway,
    ca: Ca,
    client_ca: Ca,
    cert_path: PathBuf,
    key_path: PathBuf,
}

fn setup(extra: &str) -> Setup {
    let files = tempfile::tempdir().unwrap().keep();
    let ca = Ca::new("Monitoreo test server CA");
    let client_ca = Ca::new("Monitoreo test client CA");
    let (cert, key, _) = ca.leaf("localhost", true);
    let cert_path = files.join("cert.pem");
    let key_path = files.join("key.pem");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    std::fs::write(files.join("client-ca.pem"), client_ca.cert.pem()).unwrap();
    let g = Gateway::start_with(
        Path::new("/nonexistent/helper.sock"),
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n{extra}",
            cert_path.display(),
            key_path.display(),
            files.join("client-ca.pem").display()
        ),
    );
    Setup {
        g,
        ca,
        client_ca,
        cert_path,
        key_path,
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection trusting `ca`, with a client certificate if given.
fn connect(
    addr: SocketAddr,
    ca: &Ca,
    client: Option<(CertificateDer<'static>, String)>,
) -> std::io::Result<Tls> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match client {
        Some((cert, key_pem)) => {
            let key = rustls::pki_types::pem::PemObject::from_pem_slice(key_pem.as_bytes())
                .map(|k: PrivatePkcs8KeyDer<'static>| PrivateKeyDer::Pkcs8(k))
                .unwrap();
            b.with_client_auth_cert(vec![cert], key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(Arc::new(cfg), name).unwrap();
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = StreamOwned::new(conn, sock);
    // Drive the handshake now, so its failure shows here.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// One request on `tls` (keep-alive); the status and body.
fn get(tls: &mut Tls, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(tls, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n")?;
    tls.flush()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, len) = loop {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before a response"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            break (end + 4, len);
        }
    };
    while buf.len() < head_end + len {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, text[head_end..].to_string()))
}

fn served_cert(tls: &Tls) -> Vec<u8> {
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn a_tls_client_completes_the_handshake_and_a_request() {
    let s = setup("");
    let t = s.g.key("reader", "read", &[]);
    let mut tls = connect(s.g.addr, &s.ca, None).expect("handshake");
    let (status, body) = get(&mut tls, "/api/users", Some(&t)).unwrap();
    assert_eq!(status, 200, "{body}");
    // The same connection serves a second request.
    let (status, _) = get(&mut tls, "/healthz", None).unwrap();
    assert_eq!(status, 503);
    assert!(
        s.g.stderr().contains("listening on https://"),
        "{}",
        s.g.stderr()
    );
}

#[test]
fn an_untrusted_ca_is_refused_either_way() {
    let s = setup("");
    // A client that trusts another CA refuses the server's certificate.
    let stranger = Ca::new("Not the server's CA");
    let e = connect(s.g.addr, &stranger, None)
        .map(drop)
        .expect_err("refused");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    // A client certificate from a CA the gateway does not trust is refused
    // by the gateway.
    let (_, key, der) = stranger.leaf("ops", false);
    let refused = connect(s.g.addr, &s.ca, Some((der, key)))
        .and_then(|mut tls| get(&mut tls, "/healthz", None));
    assert!(refused.is_err(), "{refused:?}");
    // The gateway still serves others.
    let mut ok = connect(s.g.addr, &s.ca, None).unwrap();
    assert_eq!(get(&mut ok, "/healthz", None).unwrap().0, 503);
}

#[test]
fn a_client_certificate_authenticates_as_the_key_with_its_subject() {
    let s = setup("");
    let out = s.g.keys_cmd(&[
        "keys",
        "add",
        "ops",
        "--scopes",
        "read",
        "--cert-subject",
        "CN=ops",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "a certificate key prints no token");
    let (_, key, der) = s.client_ca.leaf("ops", false);
    let mut tls = connect(s.g.addr, &s.ca, Some((der, key))).unwrap();
    let (status, body) = get(&mut tls, "/api/users", None).unwrap();
    assert_eq!(status, 200, "{body}");
    let line = s.g.audit().pop().expect("an audit line");
    assert_eq!(line["key"], "ops");
    assert_eq!(line["auth"], "certificate");
    // Another subject from the same CA maps to no key.
    let (_, key, der) = s.client_ca.leaf("stranger", false);
    let mut tls = connect(s.g.addr, &s.ca, Some((der, key))).unwrap();
    let (status, body) = get(&mut tls, "/api/users", None).unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("stranger"), "the subject is echoed: {body}");
    // Without a certificate, bearer keys work as ever.
    let t = s.g.key("bearer", "read", &[]);
    let mut tls = connect(s.g.addr, &s.ca, None).unwrap();
    assert_eq!(get(&mut tls, "/api/users", Some(&t)).unwrap().0, 200);
}

/// A client certificate for `subject` (openssl's `-subj` syntax, where
/// `+` joins the attributes of one RDN and `/` starts the next), made and
/// signed by `ca` with the openssl command line, since rcgen writes one
/// attribute per RDN only.
fn openssl_client_cert(ca: &Ca, subject: &str) -> (CertificateDer<'static>, String) {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n);
    std::fs::write(p("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(p("ca.key"), ca.key.serialize_pem()).unwrap();
    std::fs::write(p("ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-multivalue-rdn",
        "-subj",
        subject,
        "-keyout",
        "key.pem",
        "-out",
        "csr.pem",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "csr.pem",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext",
        "-out",
        "cert.pem",
    ]);
    let pem = std::fs::read(p("cert.pem")).unwrap();
    let der: CertificateDer<'static> =
        rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    (der, std::fs::read_to_string(p("key.pem")).unwrap())
}

#[test]
fn a_multi_valued_rdn_matches_only_a_key_with_that_rdn() {
    let s = setup("");
    for (name, subject) in [("two", "CN=ops,O=Example"), ("one", "CN=dev+O=Example")] {
        let out = s.g.keys_cmd(&[
            "keys",
            "add",
            name,
            "--scopes",
            "read",
            "--cert-subject",
            subject,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let status = |subject: &str| {
        let (der, key) = openssl_client_cert(&s.client_ca, subject);
        let mut tls = connect(s.g.addr, &s.ca, Some((der, key))).unwrap();
        get(&mut tls, "/api/whoami", None).unwrap()
    };
    // One RDN holding CN and O is not the two RDNs CN and O.
    let (code, body) = status("/CN=ops+O=Example");
    assert_eq!(code, 401, "{body}");
    for echoed in ["ops", "Example"] {
        assert!(!body.contains(echoed), "the subject is echoed: {body}");
    }
    // The two RDNs themselves, in either order, are that key.
    for subject in ["/O=Example/CN=ops", "/CN=ops/O=Example"] {
        let (code, body) = status(subject);
        assert_eq!(code, 200, "{subject}: {body}");
        assert!(body.contains("\"two\""), "{subject}: {body}");
    }
    // And the other way round: a key bound to one multi-valued RDN is
    // not matched by its attributes in RDNs of their own.
    let (code, body) = status("/O=Example/CN=dev");
    assert_eq!(code, 401, "{body}");
    for subject in ["/CN=dev+O=Example", "/O=Example+CN=dev"] {
        let (code, body) = status(subject);
        assert_eq!(code, 200, "{subject}: {body}");
        assert!(body.contains("\"one\""), "{subject}: {body}");
    }
}

#[test]
fn a_reloaded_certificate_is_served_to_new_connections_and_open_ones_stay() {
    let s = setup("keepalive_timeout_s = 30\nheader_timeout_s = 30\n");
    let mut open = connect(s.g.addr, &s.ca, None).unwrap();
    let first = served_cert(&open);
    // A change to the files is picked up by itself.
    let (cert, key, _) = s.ca.leaf("localhost", true);
    std::fs::write(&s.key_path, key).unwrap();
    std::fs::write(&s.cert_path, cert).unwrap();
    let t0 = Instant::now();
    let second = loop {
        let c = served_cert(&connect(s.g.addr, &s.ca, None).unwrap());
        if c != first {
            break c;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never reloaded");
        std::thread::sleep(Duration::from_millis(200));
    };
    // So is SIGHUP.
    let (cert, key, third_der) = s.ca.leaf("localhost", true);
    std::fs::write(&s.key_path, key).unwrap();
    std::fs::write(&s.cert_path, cert).unwrap();
    let pid = s.g.child.as_ref().unwrap().id();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let t0 = Instant::now();
    while served_cert(&connect(s.g.addr, &s.ca, None).unwrap()) != third_der.to_vec() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(second, third_der.to_vec());
    // The connection opened before both reloads still serves.
    assert_eq!(get(&mut open, "/healthz", None).unwrap().0, 503);
    assert!(s.g.stderr().contains("TLS configuration reloaded"));
    // A broken file keeps the certificate in force: once the watch has
    // tried it (a new failure line; it looks every tls::CHECK_EVERY), the
    // certificate served is still the last good one.
    let failed = |g: &Gateway| {
        g.stderr()
            .matches("TLS reload failed, keeping the previous configuration")
            .count()
    };
    let before = failed(&s.g);
    std::fs::write(&s.cert_path, "not a certificate").unwrap();
    let t0 = Instant::now();
    while failed(&s.g) == before {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the broken file was never tried: {}",
            s.g.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        served_cert(&connect(s.g.addr, &s.ca, None).unwrap()),
        third_der.to_vec()
    );
}

#[test]
fn plain_http_on_the_tls_port_gets_a_clear_error() {
    let s = setup("");
    let mut sock = TcpStream::connect(s.g.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = sock.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("\"code\":\"tls_required\""), "{text}");
    assert!(text.contains("https://"), "{text}");
}

#[test]
fn http2_is_offered_by_alpn_and_answers() {
    let s = setup("");
    let ca = s.g.dir.path().join("ca.pem");
    std::fs::write(&ca, s.ca.cert.pem()).unwrap();
    let port = s.g.addr.port();
    let out = Command::new("curl")
        .args(["-s", "--http2", "--cacert"])
        .arg(&ca)
        .args([
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            &format!("https://localhost:{port}/api/openapi.json"),
        ])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");
}

#[test]
fn plain_http_beyond_loopback_is_refused_unless_allowed_with_a_warning() {
    let d = tempfile::tempdir().unwrap();
    let config = d.path().join("gateway.toml");
    let port = free_port();
    let base = format!(
        "listen = \"0.0.0.0:{port}\"\nhelper_socket = \"/nonexistent\"\nstate_dir = \"{}\"\n",
        d.path().join("state").display()
    );
    std::fs::write(&config, &base).unwrap();
    let out = Command::new(support::gateway_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("allow_plaintext = true") && err.contains("tls_cert"),
        "{err}"
    );
    std::fs::write(&config, format!("{base}allow_plaintext = true\n")).unwrap();
    let log = d.path().join("err");
    let mut child = Command::new(support::gateway_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    support::wait_listening(&mut child, addr, &log);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(err.contains("WARNING: plain HTTP"), "{err}");
}
