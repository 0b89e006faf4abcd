//! The HTTP/1.1 server under [`crate::launch`]: hyper's connection builder over a Tokio
//! listener, in place of `axum::serve`, for what that does not set — a deadline on reading
//! a request's head ([`ApiConfig::header_read_timeout`](crate::ApiConfig)), so a client that
//! opens connections and sends a request's head byte by byte, or never finishes it
//! (slowloris), holds each connection and its file descriptor for that long at most; the
//! same deadline closes a keep-alive connection idle between requests. Each request carries
//! its peer's address (axum's [`ConnectInfo`]), and its body a deadline of its own
//! ([`body_deadline`]): a client that sends a head and then the body slowly, or never, loses
//! the request at it. On shutdown the listener closes, every
//! connection finishes the request it is serving and closes, and [`serve`] returns when the
//! last one has.
//!
//! **Connection limits** ([`ConnectionLimits`]): at most `total` connections are open at
//! once — at the limit the listener stops accepting, and new connections wait in the
//! kernel's backlog until one closes, so connections can never use up the file descriptors
//! that the store and the sandbox need. One client address (an IPv4 address, an IPv6 /64)
//! may hold at most `per_address`: its next connection gets a 429 in the shape of the API it
//! asked (native, Judge0, Piston, MCP) and is closed, so one client cannot take the whole
//! budget from the others.
//!
//! **Write stalls** ([`ApiConfig::write_stall_timeout`](crate::ApiConfig)): a connection
//! whose client reads nothing of an answer for that long is closed ([`StallGuard`]), so a
//! client that asks for a large answer and never reads it cannot hold the answer's memory
//! (and the connection) for as long as it likes. A slow reader that makes progress is not
//! cut; an idle connection (nothing to write) is the head deadline's business.

use crate::compat::CompatConfig;
use crate::ratelimit::Limited;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// How many connections may be open at once (`LIVEXEC_MAX_CONNECTIONS`,
/// `LIVEXEC_MAX_CONNECTIONS_PER_ADDRESS`); see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections in all (at least 1). At the limit new ones wait in the listen
    /// backlog. Default 4096, lowered at start to half the process's file-descriptor limit.
    pub total: usize,
    /// Open connections of one client address (an IPv4 address, an IPv6 /64); the next gets
    /// a 429 and is closed. 0: no per-address limit (behind a proxy every client has the
    /// proxy's address). Default 256.
    pub per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            total: 4096,
            per_address: 256,
        }
    }
}

/// How long a connection over its address's limit may take to send the request that gets
/// the 429 (shorter than the usual head deadline: it holds a file descriptor meanwhile).
const REFUSED_HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// How much of a refused connection's request body is read before the 429 (bytes).
const REFUSED_BODY_BYTES: usize = 64 * 1024;

/// What [`serve`] needs besides the app.
pub(crate) struct ServeConfig {
    /// [`ApiConfig::header_read_timeout`](crate::ApiConfig).
    pub header_read_timeout: Duration,
    /// The connection limits.
    pub limits: ConnectionLimits,
    /// The drop-in APIs served, for the shape of a refusal.
    pub compat: CompatConfig,
    /// [`ApiConfig::write_stall_timeout`](crate::ApiConfig).
    pub write_stall_timeout: Duration,
}

/// Serve `app` on `listener` until `shutdown` resolves, then let open connections finish.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let mut refusing = hyper::server::conn::http1::Builder::new();
    refusing
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSED_HEAD_TIMEOUT.min(config.header_read_timeout))
        .keep_alive(false);
    let open = Arc::new(tokio::sync::Semaphore::new(config.limits.total.max(1)));
    let per_address = PerAddress::new(config.limits.per_address);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // At the limit nothing is accepted until a connection closes.
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers and event-stream frames leave at once, not after the peer's ACK.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(StallGuard::new(stream, config.write_stall_timeout));
        let counted = livexec_telemetry::ConnectionGuard::open();
        let Some(slot) = per_address.enter(peer.ip()) else {
            tracing::debug!(%peer, "connection over its address's limit refused");
            livexec_telemetry::connection_refused();
            let limited = per_address.refusal(peer.ip());
            let compat = config.compat;
            let refuse = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let mut response = limited.clone().response_for(request.uri().path(), &compat);
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
                async move {
                    // A small body is read first (briefly): closing with it unread would
                    // reset the connection, and the client could lose the 429.
                    let body = axum::body::Body::new(request.into_body());
                    let drain = axum::body::to_bytes(body, REFUSED_BODY_BYTES);
                    let _ = tokio::time::timeout(REFUSED_HEAD_TIMEOUT, drain).await;
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let connection = graceful.watch(refusing.serve_connection(io, refuse));
            tokio::spawn(async move {
                let _ = connection.await;
                drop((counted, permit));
            });
            continue;
        };
        let service = app
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder.serve_connection(io, TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop((slot, counted, permit));
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The open connections of each client address, against a limit (0: none).
#[derive(Clone)]
struct PerAddress {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection of an address, counted until dropped.
struct AddressSlot {
    of: PerAddress,
    /// The address counted (`None` when there is no limit: nothing is counted).
    key: Option<IpAddr>,
}

impl PerAddress {
    fn new(limit: usize) -> Self {
        PerAddress {
            limit,
            open: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip`, or `None` when its address is at the limit.
    fn enter(&self, ip: IpAddr) -> Option<AddressSlot> {
        if self.limit == 0 {
            return Some(AddressSlot {
                of: self.clone(),
                key: None,
            });
        }
        let key = address_key(ip);
        let mut open = self.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            of: self.clone(),
            key: Some(key),
        })
    }

    /// The 429 of a connection from `ip` over the limit.
    fn refusal(&self, ip: IpAddr) -> Limited {
        let limit = self.limit;
        Limited {
            message: format!(
                "too many open connections from {}: {limit} at most per client address \
                 (LIVEXEC_MAX_CONNECTIONS_PER_ADDRESS); close one, or reuse one (keep-alive), \
                 and retry",
                address_key(ip)
            ),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            remaining: 0,
            reset_secs: 1,
            retry_after_secs: 1,
        }
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self.of.lock();
        if let Some(count) = open.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

/// What one client is counted as: an IPv4 address (also when it reaches an IPv6 listener as
/// `::ffff:a.b.c.d`), or the /64 an IPv6 address is in (one host's allotment; it can pick
/// any address in it).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// An `accept` that failed: a connection's own failure (reset before it was taken) is
/// skipped; anything else (out of file descriptors) is logged and waited out for a moment,
/// rather than spun on.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_ipv4_address_and_ipv6_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
    }

    #[test]
    fn an_address_at_its_limit_gets_no_slot_until_one_closes() {
        let per = PerAddress::new(2);
        let a = per.enter(ip4(1)).unwrap();
        let _b = per.enter(ip4(1)).unwrap();
        assert!(per.enter(ip4(1)).is_none());
        assert!(
            per.enter(ip4(2)).is_some(),
            "another address is not held back"
        );
        drop(a);
        assert!(per.enter(ip4(1)).is_some());
        assert!(PerAddress::new(0).enter(ip4(1)).is_some(), "0 is no limit");
    }

    fn ip4(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }
}

/// The default of [`ApiConfig::header_read_timeout`](crate::ApiConfig): hyper's own.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`ApiConfig::body_read_timeout`](crate::ApiConfig).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The default of [`ApiConfig::write_stall_timeout`](crate::ApiConfig).
pub const DEFAULT_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection's socket whose writes fail with `TimedOut` once the client has taken nothing
/// for `limit`: the clock starts when a write finds the socket's send buffer full and is
/// reset by every write that gets through. hyper then drops the connection and, with it, the
/// rest of the answer it was sending. Reads pass through untouched.
pub(crate) struct StallGuard {
    io: tokio::net::TcpStream,
    limit: Duration,
    /// Set while writes wait for the client.
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl StallGuard {
    pub(crate) fn new(io: tokio::net::TcpStream, limit: Duration) -> Self {
        StallGuard {
            io,
            limit,
            stalled: None,
        }
    }

    /// What a write that returned `written` means: progress resets the clock; `Pending` starts
    /// it (or keeps it running) and becomes `TimedOut` when it runs out.
    fn watch<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        written: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        if written.is_ready() {
            self.stalled = None;
            return written;
        }
        let limit = self.limit;
        let clock = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match clock.as_mut().poll(cx) {
            Poll::Ready(()) => {
                livexec_telemetry::write_stalled();
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the client read nothing for {} ms", limit.as_millis()),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncRead for StallGuard {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StallGuard {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let written = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, written)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let written = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, written)
    }

    /// True, as the socket's: hyper then queues a large body's chunks instead of copying
    /// them into its own buffer.
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let flushed = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, flushed)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Middleware: a request that may carry a body (a `Content-Length` above 0, or
/// `Transfer-Encoding`) gets it wrapped in [`Deadline`], `timeout` from now; a handler reading
/// it past then gets an error, answers as for an unreadable body, and the connection closes
/// (the body was not read to its end).
pub(crate) async fn body_deadline(
    timeout: Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let headers = request.headers();
    let has_body = headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return next.run(request).await;
    }
    let at = tokio::time::Instant::now() + timeout;
    let request = request.map(|body| {
        axum::body::Body::new(Deadline {
            inner: body,
            at,
            sleep: None,
        })
    });
    next.run(request).await
}

/// A request body that must have arrived whole by `at`.
struct Deadline {
    inner: axum::body::Body,
    at: tokio::time::Instant,
    /// Made the first time the body has nothing ready.
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

/// The error of a body still arriving at its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTooSlow;

impl http_body::Body for Deadline {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let at = this.at;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
