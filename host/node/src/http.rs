//! The HTTP server loop: hyper's HTTP/1.1 connections (no upgrades: no
//! route needs one) over the route table,
//! with the bounds no single client may exceed.
//!
//! - At most [`MAX_CONNECTIONS`] connections at once: beyond it the node
//!   stops accepting (new clients wait in the listen backlog) instead of
//!   running out of file descriptors, so the connections it has keep being
//!   served, `/health` included.
//! - A client has [`HEADER_TIMEOUT`] to send a request's headers, and an idle
//!   keep-alive connection is closed after the same time (hyper's header
//!   timer runs while a connection waits for its next request).
//! - A request body must arrive within [`BODY_TIMEOUT`] (`408`).
//! - On shutdown, connections finish their requests for up to 30 s.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Time to send a request's headers, and the longest idle keep-alive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(BODY_TIMEOUT));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Small responses go out at once, not held for the client's delayed ACK.
                    let _ = stream.set_nodelay(true);
                    stream
                }
                Err(e) => {
                    // Out of descriptors or a transient error: back off, keep serving.
                    warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = conn.await {
                debug!("connection ended: {e}");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => warn!("connections still open after 30 s; closing"),
    }
}
