//! A frontend at run time, whatever its mode: its backends, its log targets, the connections
//! it holds open, and the accept loop that hands each client to the HTTP or TCP side.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::acl;
use super::backend::BackendState;
use super::log::LogSender;
use super::proxies::{FrontendTraffic, Proxies, Slots};
use super::stats::unix_now;
use super::tls::ClientStream;
use super::{http, tcp, Serving};
use crate::config::{Frontend, LogTarget, Mode};
use crate::logline::Connections;

/// A frontend at run time (one copy per worker thread).
#[derive(Debug)]
pub(super) struct FrontendState {
    pub config: Frontend,
    /// The worker thread this copy of the frontend runs on (its server connection pools).
    pub worker: usize,
    /// Every proxy of the configuration this copy belongs to: the backends for the rules and
    /// the default, everything for the stats page.
    pub proxies: Arc<Proxies>,
    /// Connections open and counters, shared by every worker's copy and kept by reloads.
    pub traffic: Arc<FrontendTraffic>,
    /// Client connections open now in the whole process, against the global `maxconn`.
    pub process_connections: Arc<Slots>,
    pub log: Arc<LogSender>,
    pub targets: Arc<[LogTarget]>,
}

/// A client connection counted as open on its frontend and the process until dropped.
pub(super) struct OpenConnection(Arc<FrontendState>);

impl OpenConnection {
    /// The frontend the connection was accepted by.
    pub(super) fn frontend(&self) -> &Arc<FrontendState> {
        &self.0
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.traffic.connections.give_back();
        self.0.process_connections.give_back();
    }
}

impl FrontendState {
    /// Client connections open now on the frontend.
    pub(super) fn open_connections(&self) -> u32 {
        self.traffic.connections.open()
    }

    /// Counts one more connection (a WebSocket tunnel keeping its request's) as open until
    /// the guard is dropped, whatever the limits.
    pub(super) fn open(self: &Arc<Self>) -> OpenConnection {
        self.traffic.connections.force_take();
        self.process_connections.force_take();
        OpenConnection(self.clone())
    }

    /// Waits until the frontend's and the process's `maxconn` let one more client in, and
    /// holds that place until the guard drops.
    async fn room(self: &Arc<Self>) -> OpenConnection {
        let (frontend, process) = (&self.traffic.connections, &self.process_connections);
        loop {
            frontend.take().await;
            if process.try_take() {
                return OpenConnection(self.clone());
            }
            // The process is full: give the frontend's place back while waiting for it.
            frontend.give_back();
            process.take().await;
            if frontend.try_take() {
                return OpenConnection(self.clone());
            }
            process.give_back();
        }
    }

    /// Counts a new client session (`stot`, `rate`) in a place taken by `room`.
    fn session(&self, place: OpenConnection) -> OpenConnection {
        self.traffic
            .counters
            .session_started(self.open_connections(), unix_now());
        place
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
        self.proxies.backend(name).cloned()
    }

    /// `ac` and `fc` now; the backend and server counts are filled in once they are known.
    pub(super) fn connection_counts(&self) -> Connections {
        Connections {
            active: self.process_connections.open(),
            frontend: self.open_connections(),
            ..Connections::default()
        }
    }
}

/// Accepts clients on `socket` until `stop`, or until a reload removes its address, each
/// served on a task of its own (after the TLS handshake, when the address has `ssl`) by the
/// frontend the configuration has on the address at the time, in its mode.
pub(super) async fn accept(
    socket: std::net::TcpListener,
    mut serving: Serving,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(socket) {
        Ok(listener) => listener,
        Err(e) => return eprintln!("halyard run: listener unusable: {e}"),
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
            _ = serving.wait_for(Option::is_none) => return,
        };
        let Some(served) = serving.borrow().clone() else {
            return;
        };
        match accepted {
            // `tcp-request connection reject`: closed before anything is read, unlogged, as
            // in HAProxy.
            Ok((_, peer)) if served.frontend.rejects(peer.ip().to_canonical()) => {}
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                // At `maxconn` the client waits, unread, until a connection closes: this
                // loop holds it and stops accepting, so the next ones wait in the kernel's
                // backlog, as with HAProxy.
                let place = tokio::select! {
                    place = served.frontend.room() => place,
                    _ = stop.wait_for(|s| *s) => return,
                    _ = serving.wait_for(Option::is_none) => return,
                };
                let open = served.frontend.session(place);
                let (serving, stop) = (serving.clone(), stop.clone());
                tokio::spawn(async move {
                    // The TLS handshake runs on the connection's own task.
                    let stream = match &served.tls {
                        None => ClientStream::Plain(stream),
                        Some(tls) => match tls.handshake(stream, peer, &served.frontend).await {
                            Some(stream) => stream,
                            None => return,
                        },
                    };
                    match open.frontend().config.mode {
                        Mode::Http => http::serve(stream, peer, open, serving, stop).await,
                        Mode::Tcp => tcp::serve(stream, peer, open).await,
                    }
                });
            }
            // Out of file descriptors and the like: wait instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
