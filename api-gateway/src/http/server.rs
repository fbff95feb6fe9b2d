//! Accept loop: hyper http1 over tokio with a header read timeout
//! (slowloris), a header size cap, a cap on concurrent connections (a
//! semaphore: beyond it, accepting waits), and graceful shutdown on
//! SIGTERM/SIGINT (in-flight requests finish, then exit).
//!
//! hyper answers the requests it cannot parse itself, with an empty body
//! (400, 414, 431) or, at the header timeout, with nothing at all. So that
//! those too get the JSON envelope with a specific code, each connection's
//! writes go through [`QuietIo`], which holds back hyper's own answer, and
//! the envelope is written on a duplicate of the socket once hyper has
//! said why it gave up.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Semaphore};

use super::error::ApiError;
use super::router::Router;
use crate::state::State;

/// Largest request head (hyper's read buffer); beyond it → 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Runs until SIGTERM/SIGINT. Returns after in-flight connections finished
/// (or after a 30 s grace period).
pub async fn serve(
    state: Arc<State>,
    router: Arc<Router>,
    listener: TcpListener,
) -> io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let max = state.cfg.max_connections;
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
        let (state, router) = (state.clone(), router.clone());
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            connection(state, router, stream, stop).await;
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

/// Serves one connection; per-connection errors end it, never the server.
async fn connection(
    state: Arc<State>,
    router: Arc<Router>,
    stream: TcpStream,
    mut stop: watch::Receiver<bool>,
) {
    let (stream, spare) = match duplicate(stream) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("monitoreo-gateway: connection setup: {e}");
            return;
        }
    };
    let _open = state.metrics.connection();
    let header_timeout = state.cfg.header_timeout;
    let svc = service_fn(move |req| router.clone().handle(state.clone(), req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(QuietIo::new(stream)), svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    let Err(e) = result else { return };
    let answer = if e.is_parse_too_large() {
        ApiError::HeadersTooLarge(MAX_HEADER_BYTES)
    } else if e.is_parse() {
        if e.to_string().contains("too long") {
            ApiError::UriTooLong
        } else {
            ApiError::MalformedHttp(e.to_string())
        }
    } else if e.is_timeout() {
        ApiError::RequestTimeout(header_timeout.as_secs())
    } else {
        return;
    };
    farewell(spare, answer).await;
}

/// Writes `answer` as a complete HTTP/1.1 response and closes.
async fn farewell(mut spare: TcpStream, answer: ApiError) {
    let reply = answer.into_reply();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status.as_u16(),
        reply.status.canonical_reason().unwrap_or(""),
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        if let Ok(v) = v.to_str() {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    let write = async {
        spare.write_all(head.as_bytes()).await?;
        spare.write_all(&reply.body).await?;
        spare.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// The socket plus a second descriptor of it for [`farewell`].
fn duplicate(stream: TcpStream) -> io::Result<(TcpStream, TcpStream)> {
    let std = stream.into_std()?;
    let spare = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, TcpStream::from_std(spare)?))
}

/// Passes reads and writes through, except hyper's own bodiless answer to
/// a request it could not parse: that one is dropped (reported written),
/// and so is the shutdown after it, so that [`farewell`] can answer with
/// the envelope instead. Our own responses always carry a JSON body, so a
/// 400, 414 or 431 head with `content-length: 0` can only be hyper's.
struct QuietIo {
    inner: TcpStream,
    quiet: bool,
}

impl QuietIo {
    fn new(inner: TcpStream) -> QuietIo {
        QuietIo {
            inner,
            quiet: false,
        }
    }
}

/// Whether `buf` is hyper's automatic answer to an unparsable request.
fn is_hyper_parse_answer(buf: &[u8]) -> bool {
    let canned = [&b"HTTP/1.1 400 "[..], b"HTTP/1.1 414 ", b"HTTP/1.1 431 "];
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = &buf[..(head_end + 2).min(buf.len())];
    canned.iter().any(|c| buf.starts_with(c))
        && head
            .windows(19)
            .any(|w| w.eq_ignore_ascii_case(b"content-length: 0\r\n"))
}

impl AsyncRead for QuietIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuietIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.quiet || is_hyper_parse_answer(buf) {
            self.quiet = true;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// Vectored writes pass through, so that hyper queues a response
    /// body (a shared listing) instead of copying it into each
    /// connection's write buffer.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        if self.quiet || is_hyper_parse_answer(first) {
            self.quiet = true;
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.quiet {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_bodiless_parse_answers_are_held_back() {
        assert!(is_hyper_parse_answer(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n"
        ));
        assert!(is_hyper_parse_answer(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!is_hyper_parse_answer(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n{}"
        ));
        assert!(!is_hyper_parse_answer(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        ));
    }
}
