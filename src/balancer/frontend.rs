//! A frontend at run time, whatever its mode: its backends, its log targets, the connections
//! it holds open, and the accept loop that hands each client to the HTTP or TCP side.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::acl;
use super::backend::BackendState;
use super::log::LogSender;
use super::tls::{ClientStream, TlsListener};
use crate::config::{Frontend, LogTarget};
use crate::logline::Connections;

/// A frontend at run time (one copy per worker thread).
#[derive(Debug)]
pub(super) struct FrontendState {
    pub config: Frontend,
    /// The worker thread this copy of the frontend runs on (its server connection pools).
    pub worker: usize,
    /// Backends by name, for the rules and the default.
    pub backends: Vec<Arc<BackendState>>,
    /// Client connections open now, on this frontend and in the whole process.
    pub connections: AtomicU32,
    pub process_connections: Arc<AtomicU32>,
    pub log: Arc<LogSender>,
    pub targets: Arc<[LogTarget]>,
}

/// A client connection counted as open on its frontend and the process until dropped.
pub(super) struct OpenConnection(Arc<FrontendState>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
        self.0.process_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl FrontendState {
    /// Client connections open now on this worker's copy of the frontend.
    pub(super) fn open_connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts a client connection as open until the guard is dropped.
    pub(super) fn open(self: &Arc<Self>) -> OpenConnection {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.process_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// Whether a `tcp-request connection reject` rule turns this client away.
    fn rejects(&self, client: IpAddr) -> bool {
        self.config
            .reject
            .iter()
            .any(|rule| acl::applies(rule.when.as_ref(), client, None))
    }

    /// The backend called `name`.
    pub(super) fn backend(&self, name: &str) -> Option<Arc<BackendState>> {
        self.backends
            .iter()
            .find(|b| b.config.name == name)
            .cloned()
    }

    /// `ac` and `fc` now; the backend and server counts are filled in once they are known.
    pub(super) fn connection_counts(&self) -> Connections {
        Connections {
            active: self.process_connections.load(Ordering::Relaxed),
            frontend: self.connections.load(Ordering::Relaxed),
            ..Connections::default()
        }
    }
}

/// Accepts clients on `listener` until `stop`, each served by `serve` on a task of its own
/// (after the TLS handshake, on that task, when the listener has a TLS side).
pub(super) async fn accept<F, Fut>(
    (listener, tls): (TcpListener, Option<TlsListener>),
    frontend: Arc<FrontendState>,
    mut stop: watch::Receiver<bool>,
    serve: F,
) where
    F: Fn(ClientStream, SocketAddr, Arc<FrontendState>, watch::Receiver<bool>) -> Fut
        + Clone
        + Send
        + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            // `tcp-request connection reject`: closed before anything is read, unlogged, as
            // in HAProxy.
            Ok((_, peer)) if frontend.rejects(peer.ip().to_canonical()) => {}
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let (frontend, stop) = (frontend.clone(), stop.clone());
                match &tls {
                    None => tokio::spawn(serve(ClientStream::Plain(stream), peer, frontend, stop)),
                    Some(tls) => {
                        let (tls, serve) = (tls.clone(), serve.clone());
                        tokio::spawn(async move {
                            if let Some(stream) = tls.handshake(stream, peer, &frontend).await {
                                serve(stream, peer, frontend, stop).await;
                            }
                        })
                    }
                };
            }
            // Out of file descriptors and the like: wait instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
