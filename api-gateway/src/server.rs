//! Accept loop: hyper http1 over tokio with a header read timeout
//! (slowloris), a header size cap (hyper answers 431), a cap on concurrent
//! connections (a semaphore: beyond it, accepting waits), and graceful
//! shutdown on SIGTERM/SIGINT (in-flight requests finish, then exit).

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Semaphore};

use crate::App;

/// Largest header block (hyper's read buffer); beyond it → 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Runs until SIGTERM/SIGINT. Returns after in-flight connections finished
/// (or after a 30 s grace period).
pub async fn serve(app: Arc<App>, listener: TcpListener) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let max = app.cfg.max_connections;
    let sem = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    eprintln!("monitoreo-gateway: listening on {}", listener.local_addr()?);
    crate::notify::notify("READY=1");
    loop {
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("monitoreo-gateway: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let header_timeout = app.cfg.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req| crate::routes::handle(app.clone(), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    eprintln!("monitoreo-gateway: shutting down, finishing in-flight requests");
    crate::notify::notify("STOPPING=1");
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(30), sem.acquire_many(all)).await;
    Ok(())
}
