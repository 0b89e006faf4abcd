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

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tower::ServiceExt;

/// Serve `app` on `listener` until `shutdown` resolves, then let open connections finish.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
        let service = app
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
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

/// The default of [`ApiConfig::header_read_timeout`](crate::ApiConfig): hyper's own.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`ApiConfig::body_read_timeout`](crate::ApiConfig).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

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
