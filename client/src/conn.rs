//! One gateway: a blocking HTTP client (ureq, rustls with ring) with the
//! context's key, CA and client certificate. Every answer is read as the
//! API's envelope: an error status becomes [`Failure::Api`] with the
//! gateway's own message and code.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::config::Context;
use crate::error::Failure;

/// The most of one JSON answer read (a full listing of a large host is
/// tens of MiB); more is an error, not an allocation without end.
const MAX_ANSWER: u64 = 512 << 20;

/// A connected context.
pub struct Conn {
    /// The context's name, the HOST column.
    pub name: String,
    agent: ureq::Agent,
    base: String,
    key: Option<String>,
}

impl Conn {
    pub fn new(name: &str, ctx: &Context) -> Result<Conn, Failure> {
        let base = ctx.url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure::Local(format!(
                "context {name}: url {:?} is not http:// or https://",
                ctx.url
            )));
        }
        let key = ctx.key()?;
        if key.is_none() && ctx.client_cert.is_none() {
            return Err(Failure::Local(format!(
                "context {name} has no key: give it --key-file, --key-env or a client certificate"
            )));
        }
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(90))
            .redirects(0);
        if ctx.ca_file.is_some() || ctx.client_cert.is_some() {
            builder = builder.tls_config(Arc::new(tls(ctx)?));
        }
        Ok(Conn {
            name: name.to_string(),
            agent: builder.build(),
            base,
            key,
        })
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let r = self.agent.request(method, &format!("{}{path}", self.base));
        match &self.key {
            Some(k) => r.set("Authorization", &format!("Bearer {k}")),
            None => r,
        }
    }

    /// GET `path`, the JSON answer.
    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        json(self.request("GET", path).call())
    }

    /// `method` with a JSON body, the JSON answer.
    pub fn send(&self, method: &str, path: &str, body: &Value) -> Result<Value, Failure> {
        json(
            self.request(method, path)
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
        )
    }

    /// DELETE without a body.
    pub fn delete(&self, path: &str) -> Result<Value, Failure> {
        json(self.request("DELETE", path).call())
    }

    /// GET `path` as a byte stream (raw output, events), with extra headers.
    pub fn stream(&self, path: &str, headers: &[(&str, &str)]) -> Result<impl Read, Failure> {
        let mut r = self.request("GET", path);
        for (k, v) in headers {
            r = r.set(k, v);
        }
        match r.call() {
            Ok(resp) => Ok(resp.into_reader()),
            Err(e) => Err(failure(e)),
        }
    }
}

fn json(r: Result<ureq::Response, ureq::Error>) -> Result<Value, Failure> {
    let resp = r.map_err(failure)?;
    let mut buf = Vec::new();
    resp.into_reader()
        .take(MAX_ANSWER)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::Transport(format!("reading the answer: {e}")))?;
    serde_json::from_slice(&buf)
        .map_err(|e| Failure::Transport(format!("the answer is not JSON: {e}")))
}

/// An error answer as the gateway's envelope, or what kept it from coming.
fn failure(e: ureq::Error) -> Failure {
    match e {
        ureq::Error::Status(status, resp) => {
            let mut buf = Vec::new();
            let _ = resp.into_reader().take(1 << 20).read_to_end(&mut buf);
            let body: Value = serde_json::from_slice(&buf).unwrap_or(Value::Null);
            let text = |k: &str| body[k].as_str().map(str::to_string);
            Failure::Api {
                status,
                code: text("code").unwrap_or_else(|| "http_error".into()),
                message: text("message")
                    .unwrap_or_else(|| String::from_utf8_lossy(&buf).trim().to_string()),
                body,
            }
        }
        ureq::Error::Transport(t) => Failure::Transport(t.to_string()),
    }
}

/// rustls with the context's CA (else the system's) and client certificate.
fn tls(ctx: &Context) -> Result<rustls::ClientConfig, Failure> {
    let bad = |what: &str, e: String| Failure::Local(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    match &ctx.ca_file {
        Some(ca) => {
            let shown = ca.display().to_string();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(&shown, e.to_string()))? {
                let cert = cert.map_err(|e| bad(&shown, e.to_string()))?;
                roots.add(cert).map_err(|e| bad(&shown, e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad(&shown, "no certificate in it".into()));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs()
                .map_err(|e| bad("the system's CA certificates", e.to_string()))?;
            roots.add_parsable_certificates(native);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", e.to_string()))?
        .with_root_certificates(roots);
    match (&ctx.client_cert, &ctx.client_key) {
        (Some(cert), Some(key)) => {
            let shown = cert.display().to_string();
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad(&shown, e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(&shown, e.to_string()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| bad(&key.display().to_string(), e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(&shown, e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
