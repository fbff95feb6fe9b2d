//! A test CA and a server certificate it signed for `localhost` and
//! `127.0.0.1`, as PEM files: a gateway serving TLS with them, and a
//! client (Prometheus, curl, Ansible) trusting only that CA.

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

pub struct Pki {
    pub dir: tempfile::TempDir,
    /// The CA's certificate, the one file a client needs.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "Monitoreo test CA");
        let ca_cert = p.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "localhost");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
        let pki = Pki {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            dir,
        };
        std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }

    /// The `gateway.toml` lines that serve TLS with this certificate.
    pub fn gateway_config(&self) -> String {
        format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            self.cert.display(),
            self.key.display()
        )
    }
}

/// One HTTPS request with curl, trusting only `ca`: the status and body.
pub fn curl(
    ca: &Path,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "-X", method, "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data", b]);
    }
    let out = c.arg(url).output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_string())
}
