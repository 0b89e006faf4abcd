//! The HTTP/1.1 server under [`crate::launch`]: hyper's connection builder over a Tokio
//! listener, in place of `axum::serve`, for what that does not set — a deadline on reading
//! a request's head ([`ApiConfig::header_read_timeout`](crate::ApiConfig)), so a client that
//! opens connections and sends a request's head byte by byte, or never finishes it
//! (slowloris), holds each connection and its file descriptor for that long at most; the
//! same deadline closes a keep-alive connection idle between requests. Each request carries
//! its peer's address (axum's [`ConnectInfo`]). On shutdown the listener closes, every
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
