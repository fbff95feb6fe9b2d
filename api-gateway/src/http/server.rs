//! The accept loop: admission (the connection caps, [`super::admission`]),
//! the TLS handshake when configured (bounded by the header timeout; plain
//! HTTP on the TLS port gets a plain 400 saying so), then one task per
//! connection ([`super::conn::serve`]). Also here: SIGHUP and the file
//! check that reload the TLS configuration, the periodic audit summary of
//! refused authentications, and graceful shutdown on SIGTERM/SIGINT
//! (in-flight requests finish, then exit).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::admission::{Admission, Refusal};
use super::conn::{self, Stream, Timeouts};
use super::connstate::ConnInfo;
use super::router::Router;
use super::tls::{self, Tls};
use crate::config::Config;
use crate::error::ApiError;

/// How often ended windows of refused authentications are summarised.
const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// The signals the gateway answers. Installed before the port is bound:
/// once a client can connect, a SIGHUP must reload and a SIGTERM must stop
/// gracefully, never end the process by their default action.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Must run inside the runtime.
    pub fn install() -> io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Runs until SIGTERM/SIGINT. Returns after in-flight connections finished
/// (or after a 30 s grace period).
pub async fn serve<C: Send + Sync + 'static>(
    cfg: &Config,
    router: Arc<Router<C>>,
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    signals: Signals,
) -> io::Result<()> {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    let timeouts = Timeouts {
        header: cfg.header_timeout,
        keepalive: cfg.keepalive_timeout,
        send: cfg.send_timeout,
    };
    let admission = Admission::new(cfg.max_connections, cfg.max_connections_per_client);
    let (stop_tx, stop_rx) = watch::channel(false);
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "monitoreo-gateway: listening on {scheme}://{local} (at most {} connections, {} per client address)",
        cfg.max_connections, cfg.max_connections_per_client
    );
    if tls.is_none() && !local.ip().is_loopback() {
        eprintln!(
            "monitoreo-gateway: WARNING: plain HTTP on {local}, beyond loopback \
             (allow_plaintext = true): API keys cross the network in clear text"
        );
    }
    tokio::spawn(summarise_forever(router.clone()));
    if let Some(t) = &tls {
        tokio::spawn(watch_tls_files(t.clone()));
    }
    crate::notify::notify("READY=1");
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors, most likely: give closing
                    // connections a moment rather than spin.
                    eprintln!("monitoreo-gateway: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = hup.recv() => {
                match &tls {
                    Some(t) => report_reload(t, t.reload()),
                    None => eprintln!("monitoreo-gateway: SIGHUP: no TLS configuration to reload (keys reload by themselves)"),
                }
                continue;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        match admission.admit(peer.ip()) {
            Ok(slot) => {
                let (router, tls, stop) = (router.clone(), tls.clone(), stop_rx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    connection(stream, peer, tls, timeouts, router, stop).await;
                });
            }
            Err(why) => {
                let Some(refusing) = admission.refusing() else {
                    continue;
                };
                let plain = tls.is_none();
                let per_client = cfg.max_connections_per_client;
                tokio::spawn(async move {
                    let _refusing = refusing;
                    refuse(stream, why, plain, per_client).await;
                });
            }
        }
    }
    eprintln!("monitoreo-gateway: shutting down, finishing in-flight requests");
    crate::notify::notify("STOPPING=1");
    drop(listener);
    let _ = stop_tx.send(true);
    let grace = tokio::time::Instant::now() + Duration::from_secs(30);
    while admission.open() > 0 && tokio::time::Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    router.summarise_refusals(true);
    Ok(())
}

/// One admitted connection: the TLS handshake if any, then HTTP.
async fn connection<C: Send + Sync + 'static>(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<Tls>>,
    timeouts: Timeouts,
    router: Arc<Router<C>>,
    stop: watch::Receiver<bool>,
) {
    let header_timeout = timeouts.header;
    let (stream, info) = match tls {
        None => (Stream::Plain(stream), ConnInfo::new(peer, None, false)),
        Some(tls) => {
            let mut first = [0u8; 8];
            match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {
                    if tls::looks_like_plain_http(&first[..n]) {
                        let mut plain = stream;
                        conn::farewell(&mut plain, ApiError::TlsRequired).await;
                        conn::linger(&mut plain).await;
                        return;
                    }
                }
                _ => return,
            }
            let accept = TlsAcceptor::from(tls.config()).accept(stream);
            let Ok(Ok(s)) = tokio::time::timeout(header_timeout, accept).await else {
                // rustls has sent its alert; a failed handshake is the
                // client's to report.
                return;
            };
            let c = s.get_ref().1;
            let h2 = c.alpn_protocol() == Some(b"h2");
            let info = ConnInfo::new(peer, tls::client_subject(c), h2);
            (Stream::Tls(Box::new(s)), info)
        }
    };
    conn::serve(stream, info, timeouts, router, stop).await;
}

/// Answers a connection past a cap and closes it. Over TLS no answer is
/// possible without a handshake, which is not spent on a refusal: the
/// connection is just closed.
async fn refuse(mut stream: TcpStream, why: Refusal, plain: bool, per_client: usize) {
    if !plain {
        return;
    }
    let answer = match why {
        Refusal::Full => ApiError::ServerFull,
        Refusal::PerClient => ApiError::ClientConnections(per_client),
    };
    conn::farewell(&mut stream, answer).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), conn::linger(&mut stream)).await;
}

/// Writes the audit summaries of refused authentications.
async fn summarise_forever<C: Send + Sync + 'static>(router: Arc<Router<C>>) {
    loop {
        tokio::time::sleep(SUMMARY_EVERY).await;
        router.summarise_refusals(false);
    }
}

/// Reloads the TLS configuration when one of its files changes.
async fn watch_tls_files(tls: Arc<Tls>) {
    loop {
        tokio::time::sleep(tls::CHECK_EVERY).await;
        let t = tls.clone();
        if let Ok(Some(r)) = tokio::task::spawn_blocking(move || t.reload_if_changed()).await {
            report_reload(&tls, r);
        }
    }
}

fn report_reload(tls: &Tls, r: Result<(), String>) {
    match r {
        Ok(()) => eprintln!(
            "monitoreo-gateway: TLS configuration reloaded from {}",
            tls.files().cert.display()
        ),
        Err(e) => eprintln!(
            "monitoreo-gateway: TLS reload failed, keeping the previous configuration: {e}"
        ),
    }
}
