//! TLS: rustls with the ring provider, HTTP/2 and HTTP/1.1 offered by
//! ALPN, optional client certificates.
//!
//! The certificate, key and client CA files are read at start (an error
//! stops the gateway with a message naming the file) and again on SIGHUP
//! or when one of them changes (their mtime, size or inode, looked at
//! every [`CHECK_EVERY`]). A reload builds a whole new `ServerConfig`;
//! connections hold the one they were accepted with, so a reload drops
//! nothing, and new connections get the new certificate. A reload that
//! fails keeps the previous configuration and says why on stderr.
//!
//! With `tls_client_ca`, clients are asked for a certificate but not
//! required to send one (bearer keys keep working); a certificate that is
//! sent must chain to that CA or the handshake fails. Its subject is then
//! available to authentication ([`client_subject`]).

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::config::TlsFiles;
use crate::x509::{subject_of, Subject};

/// How often the files are looked at for a change.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// What identifies one version of a file.
type Stamp = Option<(SystemTime, u64, u64)>;

/// The TLS configuration in force, and what it was built from.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    stamps: Mutex<Vec<Stamp>>,
}

impl Tls {
    /// Reads the files and builds the first configuration.
    pub fn load(files: &TlsFiles) -> Result<Tls, String> {
        let stamps = stamps(files);
        let config = build(files)?;
        Ok(Tls {
            files: files.clone(),
            current: RwLock::new(Arc::new(config)),
            stamps: Mutex::new(stamps),
        })
    }

    /// The configuration a new connection is accepted with.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Rebuilds from the files; on failure the previous configuration
    /// stays.
    pub fn reload(&self) -> Result<(), String> {
        let now = stamps(&self.files);
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = now;
        let config = build(&self.files)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(())
    }

    /// Reloads if a file changed since the last load; `None` when none did.
    pub fn reload_if_changed(&self) -> Option<Result<(), String>> {
        let now = stamps(&self.files);
        if *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) == now {
            return None;
        }
        Some(self.reload())
    }

    /// The files, for messages.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

fn stamp(p: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

fn stamps(f: &TlsFiles) -> Vec<Stamp> {
    let mut v = vec![stamp(&f.cert), stamp(&f.key)];
    if let Some(ca) = &f.client_ca {
        v.push(stamp(ca));
    }
    v
}

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// A server configuration from the files.
fn build(f: &TlsFiles) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&f.cert, "tls_cert")?;
    let key = PrivateKeyDer::from_pem_file(&f.key)
        .map_err(|e| format!("tls_key {}: {e}", f.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &f.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca, "tls_client_ca")? {
                roots
                    .add(c)
                    .map_err(|e| format!("tls_client_ca {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("tls_client_ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "tls_cert {} and tls_key {}: {e}",
            f.cert.display(),
            f.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The subject of the verified client certificate, if one was sent.
pub fn client_subject(conn: &ServerConnection) -> Option<Subject> {
    conn.peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| subject_of(leaf.as_ref()))
}

/// Whether the first bytes a client sent look like plain HTTP (a method
/// in capitals and a space) rather than a TLS record (which starts with
/// 0x16, a handshake).
pub fn looks_like_plain_http(first: &[u8]) -> bool {
    let method_len = first.iter().take_while(|b| b.is_ascii_uppercase()).count();
    method_len > 0 && (first.len() == method_len || first.get(method_len) == Some(&b' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_told_from_a_tls_hello() {
        assert!(looks_like_plain_http(b"GET / HTTP/1.1"));
        assert!(looks_like_plain_http(b"PATCH"));
        assert!(!looks_like_plain_http(&[0x16, 0x03, 0x01]));
        assert!(!looks_like_plain_http(b""));
        assert!(!looks_like_plain_http(b"get / "));
    }

    #[test]
    fn bad_files_are_errors_naming_the_key_and_file() {
        let d = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: d.path().join("missing.pem"),
            key: d.path().join("key.pem"),
            client_ca: None,
        };
        let e = Tls::load(&files).err().expect("missing cert");
        assert!(
            e.starts_with("tls_cert ") && e.contains("missing.pem"),
            "{e}"
        );
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, "not a key").unwrap();
        let e = Tls::load(&files).err().expect("bad key");
        assert!(e.starts_with("tls_key "), "{e}");
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        let tls = Tls::load(&files).expect("loads");
        assert!(tls.reload_if_changed().is_none());
        assert_eq!(tls.config().alpn_protocols[0], b"h2");
    }
}
