//! One admitted connection, from its (plain or TLS) stream to its close:
//! HTTP/1.1, or HTTP/2 when TLS negotiated `h2`, served by hyper-util's
//! `auto` builder with the hyper timer (without a timer the HTTP/1
//! header-read timeout silently does nothing).
//!
//! Time limits, so a slow or idle client holds its slot only so long:
//! - the request head: `header_timeout_s` (hyper's HTTP/1 timer); then a
//!   408 envelope, or a silent close if no byte of a new request came;
//! - the body: `body_timeout_s` in total and `body_min_rate` (the
//!   router's [`super::router::read_body`]), 408;
//! - idle: no request in flight and nothing written for
//!   `keepalive_timeout_s`: closed (HTTP/2: GOAWAY);
//! - sending: a response the client does not read for `send_timeout_s`
//!   is abandoned and the connection closed.
//!
//! hyper answers the requests it cannot parse itself, with an empty body
//! (400, 414, 431) or, at the header timeout, with nothing at all. So that
//! those too get the JSON envelope with a specific code, hyper's writes go
//! through [`ConnIo`], which holds back hyper's own answer; the envelope is
//! written on the same stream (shared, see [`Shared`]) once hyper has said
//! why it gave up.
//!
//! **Lingering close.** A client may still be sending a body when it is
//! answered early (413, 401, 408). Closing a socket with unread data makes
//! the kernel send a reset, and the client, still writing, never reads the
//! answer. So after such an answer the gateway shuts its sending side
//! down and reads and discards what still comes, for at most
//! [`LINGER_TIME`], [`LINGER_BYTES`] and [`LINGER_GAP`] between reads,
//! before closing (nginx's lingering close).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::compress::{self, BoxBody, BoxError};
use super::connstate::ConnInfo;
use super::router::Router;
use crate::budget;
use crate::error::ApiError;
use crate::reply::DEFAULT_HEADERS;

/// Largest request head (hyper's read buffer); beyond it → 431.
pub const MAX_HEADER_BYTES: usize = budget::MAX_HEAD;
/// Longest lingering close.
pub const LINGER_TIME: Duration = Duration::from_secs(5);
/// Most bytes read and discarded in a lingering close.
pub const LINGER_BYTES: u64 = 16 << 20;
/// A lingering close ends when nothing arrives for this long.
pub const LINGER_GAP: Duration = Duration::from_secs(1);

/// A connection's time limits (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `header_timeout_s`: the request head (and the TLS handshake).
    pub header: Duration,
    /// `keepalive_timeout_s`: an idle connection.
    pub keepalive: Duration,
    /// `send_timeout_s`: a response the client does not read.
    pub send: Duration,
}

/// The socket, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Counts a request as in flight while its handler runs.
struct InFlight(Arc<ConnInfo>);

impl InFlight {
    fn new(info: &Arc<ConnInfo>) -> InFlight {
        info.in_flight.fetch_add(1, Ordering::Relaxed);
        info.mark();
        InFlight(info.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.mark();
    }
}

/// A response body being sent; while one is, the send timeout applies.
struct Sending {
    inner: BoxBody,
    info: Arc<ConnInfo>,
}

impl Sending {
    fn new(inner: BoxBody, info: Arc<ConnInfo>) -> Sending {
        info.writing.fetch_add(1, Ordering::Relaxed);
        info.last_write_ms.store(info.age_ms(), Ordering::Relaxed);
        Sending { inner, info }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        let i = &self.info;
        i.idle_mark
            .store(i.bytes_read.load(Ordering::Relaxed), Ordering::Relaxed);
        i.mark();
        i.writing.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Body for Sending {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The stream, shared between hyper (through [`ConnIo`]) and the code
/// that writes an envelope or lingers after hyper is done with it.
#[derive(Clone)]
pub struct Shared(Arc<Mutex<Stream>>);

impl Shared {
    pub fn new(s: Stream) -> Shared {
        Shared(Arc::new(Mutex::new(s)))
    }

    fn with<T>(&self, f: impl FnOnce(Pin<&mut Stream>) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(Pin::new(&mut *g))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for Shared {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Shared {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.with(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_shutdown(cx))
    }
}

/// What hyper reads from and writes to: the shared stream, counting
/// bytes and times for the timers, and holding back hyper's own bodiless
/// answer to a request it could not parse (and the shutdown after it), so
/// that the envelope can be written instead. Our own responses always
/// carry a JSON body, so a 400, 414 or 431 head with `content-length: 0`
/// can only be hyper's.
struct ConnIo {
    stream: Shared,
    info: Arc<ConnInfo>,
    quiet: bool,
}

impl ConnIo {
    /// Notes the time of a write that moved bytes (for the send timeout).
    fn wrote(&self, r: &Poll<io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) {
            self.info
                .last_write_ms
                .store(self.info.age_ms(), Ordering::Relaxed);
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

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = self.stream.with(|s| s.poll_read(cx, buf));
        let n = buf.filled().len() - before;
        if n > 0 {
            self.info.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.quiet || (!self.info.h2 && is_hyper_parse_answer(buf)) {
            self.quiet = true;
            return Poll::Ready(Ok(buf.len()));
        }
        let r = self.stream.with(|s| s.poll_write(cx, buf));
        self.wrote(&r);
        r
    }

    /// Passed through, so hyper writes a shared body from its own buffer
    /// (`writev`) instead of copying it into this connection's write
    /// buffer: 16 clients of one 5 MB listing would otherwise hold 16
    /// copies. hyper writes a head as one buffer, so its canned answer is
    /// recognised in the first one.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty());
        if self.quiet || (!self.info.h2 && first.is_some_and(|b| is_hyper_parse_answer(b))) {
            self.quiet = true;
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let r = self.stream.with(|s| s.poll_write_vectored(cx, bufs));
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.with(|s| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.quiet {
            return Poll::Ready(Ok(()));
        }
        self.stream.with(|s| s.poll_shutdown(cx))
    }
}

/// Why the watchdog ended a connection.
enum Ending {
    /// Nothing in flight for the keep-alive timeout: close gracefully.
    Idle,
    /// A response not taken for the send timeout: abandon it.
    Stalled,
}

/// Waits until the connection is idle past `keepalive` or stalled past
/// `send` (see the module doc).
async fn watchdog(info: &ConnInfo, keepalive: Duration, send: Duration) -> Ending {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    loop {
        let now = info.age_ms();
        let wait = if info.writing.load(Ordering::Relaxed) > 0 {
            let due = info
                .last_write_ms
                .load(Ordering::Relaxed)
                .saturating_add(ms(send));
            if now >= due {
                return Ending::Stalled;
            }
            due - now
        } else if info.in_flight.load(Ordering::Relaxed) > 0
            || (!info.h2 && info.head_in_progress())
        {
            // A handler at work (it has its own body timeouts), or a
            // request head arriving (hyper's header timeout).
            1000
        } else {
            let last = info
                .last_mark_ms
                .load(Ordering::Relaxed)
                .max(info.last_write_ms.load(Ordering::Relaxed));
            let due = last.saturating_add(ms(keepalive));
            if now >= due {
                return Ending::Idle;
            }
            due - now
        };
        tokio::time::sleep(Duration::from_millis(wait.clamp(10, 1000))).await;
    }
}

/// Serves `stream` until the client closes, a timer ends it, or `stop`.
pub async fn serve<C: Send + Sync + 'static>(
    stream: Stream,
    info: Arc<ConnInfo>,
    timeouts: Timeouts,
    router: Arc<Router<C>>,
    mut stop: watch::Receiver<bool>,
) {
    // Counted in `monitoreo_open_connections` until this returns.
    let _open = router.meter().connection();
    let Timeouts {
        header: header_timeout,
        keepalive,
        send,
    } = timeouts;
    let shared = Shared::new(stream);
    let io = ConnIo {
        stream: shared.clone(),
        info: info.clone(),
        quiet: false,
    };
    let svc = {
        let info = info.clone();
        service_fn(move |req: Request<Incoming>| {
            let (router, info) = (router.clone(), info.clone());
            async move {
                let busy = InFlight::new(&info);
                let coding = compress::negotiate(req.method(), req.headers());
                let resp = router.handle(info.clone(), req).await;
                let resp = compress::apply(coding, resp);
                drop(busy);
                Ok::<_, Infallible>(resp.map(|b| Sending::new(b, info)))
            }
        })
    };
    let builder = builder(info.h2, header_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        why = watchdog(&info, keepalive, send) => match why {
            Ending::Idle => {
                conn.as_mut().graceful_shutdown();
                tokio::time::timeout(send, conn.as_mut()).await.unwrap_or(Ok(()))
            }
            Ending::Stalled => Ok(()),
        },
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    let answer = result
        .err()
        .and_then(|e| answer_for(&e, &info, header_timeout));
    let mut shared = shared;
    if let Some(answer) = answer {
        farewell(&mut shared, answer).await;
        linger(&mut shared).await;
    } else if info.linger.load(Ordering::Relaxed) {
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.shutdown()).await;
        linger(&mut shared).await;
    }
}

/// hyper's connection builder as the gateway configures it: HTTP/1 with
/// the hyper timer, the header timeout and the head cap, or HTTP/2 with
/// the streams, windows and send buffer of [`budget`] (what a connection
/// may hold for a client that reads nothing).
fn builder(h2: bool, header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(budget::H2_STREAMS)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_send_buf_size(budget::H2_SEND_BUF)
        .initial_stream_window_size(budget::H2_WINDOW)
        .initial_connection_window_size(budget::H2_WINDOW);
    if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    }
}

/// The envelope for an error hyper ended the connection with, if the
/// client should get one. hyper names no URI-too-long case of its own (its
/// `is_parse_too_large` counts it with a head too large), so it is told
/// by hyper's message, first; the tests below pin every case to hyper's
/// behaviour, so an upgrade that changes one fails there.
fn answer_for(e: &BoxError, info: &ConnInfo, header_timeout: Duration) -> Option<ApiError> {
    let e = e.downcast_ref::<hyper::Error>()?;
    if e.is_parse() && e.to_string().contains("too long") {
        Some(ApiError::UriTooLong)
    } else if e.is_parse_too_large() {
        Some(ApiError::HeadersTooLarge(MAX_HEADER_BYTES))
    } else if e.is_parse() {
        Some(ApiError::MalformedHttp(e.to_string()))
    } else if e.is_timeout() && info.head_in_progress() {
        Some(ApiError::RequestTimeout(header_timeout.as_secs()))
    } else {
        None
    }
}

/// Writes `answer` as a complete HTTP/1.1 response and shuts the sending
/// side down.
pub async fn farewell<S: AsyncWrite + Unpin>(out: &mut S, answer: ApiError) {
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
    // The headers every routed answer carries (`Reply::into_response`).
    for (k, v) in DEFAULT_HEADERS {
        if !reply.headers.iter().any(|(name, _)| *name == k) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    let write = async {
        out.write_all(head.as_bytes()).await?;
        out.write_all(&reply.body).await?;
        out.flush().await?;
        out.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// Reads and discards what the client still sends, within the linger
/// bounds, so that closing does not reset the connection before the
/// client has read its answer.
pub async fn linger<S: AsyncRead + Unpin>(input: &mut S) {
    let end = tokio::time::Instant::now() + LINGER_TIME;
    let mut buf = vec![0u8; 16 * 1024];
    let mut total: u64 = 0;
    while total < LINGER_BYTES {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left.min(LINGER_GAP), input.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => total += n as u64,
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without vectored writes hyper copies every body into the
    /// connection's own write buffer: a shared listing would be held once
    /// per client (an 84 MB peak with 16 clients of 5,000 processes).
    #[tokio::test]
    async fn the_connection_passes_vectored_writes_through() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (server, peer) = l.accept().await.expect("accept");
        let io = ConnIo {
            stream: Shared::new(Stream::Plain(server)),
            info: ConnInfo::new(peer, None, false),
            quiet: false,
        };
        assert!(io.is_write_vectored());
        let mut io = io;
        let bufs = [
            io::IoSlice::new(b"HTTP/1.1 200 OK\r\n"),
            io::IoSlice::new(b"body"),
        ];
        let n = std::future::poll_fn(|cx| Pin::new(&mut io).poll_write_vectored(cx, &bufs))
            .await
            .expect("write");
        assert!(n > 0);
        drop(client);
    }

    /// The stream hyper writes to, recording what it writes (the
    /// answer [`ConnIo`] may then hold back).
    struct Tap {
        inner: ConnIo,
        wrote: Arc<Mutex<Vec<u8>>>,
    }

    impl Tap {
        fn record(&self, bufs: &[&[u8]], mut n: usize) {
            let mut w = self.wrote.lock().unwrap_or_else(|p| p.into_inner());
            for b in bufs {
                let k = n.min(b.len());
                w.extend_from_slice(&b[..k]);
                n -= k;
            }
        }
    }

    impl AsyncRead for Tap {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Tap {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = r {
                self.record(&[buf], n);
            }
            r
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
            if let Poll::Ready(Ok(n)) = r {
                let slices: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
                self.record(&slices, n);
            }
            r
        }

        fn is_write_vectored(&self) -> bool {
            self.inner.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// What one HTTP/1 connection made of `request`.
    struct Outcome {
        /// What hyper wrote on its own.
        hyper_wrote: Vec<u8>,
        /// What of it reached the client.
        client_got: Vec<u8>,
        /// The envelope the gateway writes instead.
        answer: Option<ApiError>,
    }

    /// Serves `request` as [`serve`] does (the gateway's builder, hyper
    /// writing through [`ConnIo`], [`answer_for`] on its error), with a
    /// head buffer of `max_buf` bytes instead of [`MAX_HEADER_BYTES`]
    /// if given, and the client sending nothing more.
    async fn drive(request: &[u8], header_timeout: Duration, max_buf: Option<usize>) -> Outcome {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let (server, peer) = l.accept().await.expect("accept");
        let info = ConnInfo::new(peer, None, false);
        let wrote = Arc::new(Mutex::new(Vec::new()));
        let io = Tap {
            inner: ConnIo {
                stream: Shared::new(Stream::Plain(server)),
                info: info.clone(),
                quiet: false,
            },
            wrote: wrote.clone(),
        };
        let mut b = builder(false, header_timeout);
        if let Some(n) = max_buf {
            b.http1().max_buf_size(n);
        }
        let svc = service_fn(|_: Request<Incoming>| async {
            Ok::<_, Infallible>(hyper::Response::new(http_body_util::Empty::<Bytes>::new()))
        });
        let served = tokio::spawn(async move {
            let r = b.serve_connection(TokioIo::new(io), svc).await;
            r.err().and_then(|e| answer_for(&e, &info, header_timeout))
        });
        // A request hyper stops reading may be cut by a reset: what it
        // read is what counts.
        let _ = client.write_all(request).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("the connection ended")
            .expect("the connection task");
        let mut client_got = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(2), client.read_to_end(&mut client_got)).await;
        let hyper_wrote = wrote.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Outcome {
            hyper_wrote,
            client_got,
            answer,
        }
    }

    /// hyper answers `request` itself with `status` and no body, the sniff
    /// holds it back so that nothing of it reaches the client, and the
    /// gateway's envelope for it has `code`.
    async fn canned(request: &[u8], max_buf: Option<usize>, status: &str, code: &str) {
        let o = drive(request, Duration::from_secs(5), max_buf).await;
        let wrote = String::from_utf8_lossy(&o.hyper_wrote);
        assert!(
            wrote.starts_with(&format!("HTTP/1.1 {status} ")),
            "hyper no longer answers {status} itself: {wrote:?}"
        );
        assert!(
            is_hyper_parse_answer(&o.hyper_wrote),
            "the sniff no longer recognises hyper's {status}: {wrote:?}"
        );
        assert!(
            o.client_got.is_empty(),
            "hyper's {status} reached the client: {:?}",
            String::from_utf8_lossy(&o.client_got)
        );
        assert_eq!(
            o.answer.as_ref().map(ApiError::code),
            Some(code),
            "{status}"
        );
    }

    #[tokio::test]
    async fn hypers_400_for_a_malformed_head_is_recognised() {
        let code = ApiError::MalformedHttp(String::new()).code();
        canned(
            b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
            None,
            "400",
            code,
        )
        .await;
    }

    #[tokio::test]
    async fn hypers_431_for_a_head_past_the_cap_is_recognised() {
        let code = ApiError::HeadersTooLarge(0).code();
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
            "a".repeat(MAX_HEADER_BYTES + 1024)
        );
        canned(big.as_bytes(), None, "431", code).await;
        // A URI past hyper's own URI limit (64 KiB) is past the head cap
        // first: with this cap, that is hyper's 431 too.
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
        canned(long.as_bytes(), None, "431", code).await;
    }

    #[tokio::test]
    async fn hypers_414_for_a_uri_past_its_limit_is_recognised() {
        // Only reachable with a head buffer larger than hyper's URI limit;
        // pinned so that the sniff and the envelope stay right for it.
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
        canned(
            long.as_bytes(),
            Some(128 * 1024),
            "414",
            ApiError::UriTooLong.code(),
        )
        .await;
    }

    #[tokio::test]
    async fn at_the_header_timeout_hyper_writes_nothing_and_the_answer_is_408() {
        let o = drive(
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            Duration::from_millis(300),
            None,
        )
        .await;
        assert!(
            o.hyper_wrote.is_empty() && o.client_got.is_empty(),
            "hyper now answers a header timeout itself: {:?}",
            String::from_utf8_lossy(&o.hyper_wrote)
        );
        assert_eq!(
            o.answer.as_ref().map(ApiError::code),
            Some(ApiError::RequestTimeout(0).code())
        );
    }

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
