//! The HTTPS listener: the same router as the plain listener, over TLS with the self-signed
//! certificate of [`crate::tls`]. Browsers give the microphone only to secure contexts, so
//! visitors on other devices need these links for voice.
//!
//! A thin driver: accept, hand the TLS handshake and the connection to a task of their own
//! (a stalled or failed handshake delays nobody else), stop accepting on shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::tls::{self, SubjectNames, TlsError};

/// A client gets this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why the HTTPS listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpsError {
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The certificate could not be loaded or made.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A bound HTTPS listener with its certificate, not serving yet.
pub struct HttpsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for HttpsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsListener")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl HttpsListener {
    /// Binds `addr`, then loads (or makes) the certificate in `data_dir` for `names`.
    pub async fn bind(
        addr: SocketAddr,
        data_dir: &Path,
        names: &SubjectNames,
    ) -> Result<Self, HttpsError> {
        let bind_error = |source| HttpsError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let config = tls::load_or_create(data_dir, names)?.server_config()?;
        Ok(HttpsListener {
            listener,
            acceptor: TlsAcceptor::from(config),
            local_addr,
        })
    }

    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `app` on every connection until `shutdown` is cancelled, then stops accepting,
    /// lets open requests finish and returns once every connection has closed. WebSocket
    /// sessions upgraded from here end through the peer's own shutdown path.
    pub async fn serve(self, app: Router, shutdown: CancellationToken) {
        let connections = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let (tcp, remote) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!("https accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            // Small frames (chat, cursors) must leave at once, as on the plain listener.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
            let (acceptor, app) = (self.acceptor.clone(), app.clone());
            connections.spawn(serve_connection(
                acceptor,
                tcp,
                remote,
                app,
                shutdown.clone(),
            ));
        }
        drop(self.listener);
        connections.close();
        connections.wait().await;
    }
}

/// Binds the HTTPS listener for `addr` with this host's names, or logs why there is none:
/// the peer then runs on plain HTTP only.
pub async fn bind_or_warn(addr: SocketAddr, data_dir: &Path) -> Option<HttpsListener> {
    match HttpsListener::bind(addr, data_dir, &SubjectNames::of_this_host(addr.ip())).await {
        Ok(listener) => {
            tracing::info!("HTTPS on {}", listener.local_addr());
            Some(listener)
        }
        Err(e) => {
            tracing::warn!(
                "HTTPS is off ({e}): visitors on other devices will not get the microphone"
            );
            None
        }
    }
}

/// Runs the TLS handshake, then HTTP/1.1 (with upgrades, for `/ws`) until the client leaves
/// or shutdown asks the connection to finish its current request and close.
async fn serve_connection(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    app: Router,
    shutdown: CancellationToken,
) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let tls = tokio::select! {
        _ = shutdown.cancelled() => return,
        done = handshake => match done {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!("TLS handshake with {remote} failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake with {remote} timed out");
                return;
            }
        },
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    let service = TowerToHyperService::new(app);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("https connection with {remote} ended: {e}");
    }
}
