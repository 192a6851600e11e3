//! Where a request or a TCP session went and how it got there: its frontend, backend and
//! server, which give the names its log line writes and the counters it adds to when it ends,
//! and what choosing and connecting to the server took (Tw, Tc, `rc`, `sq/bq`, the
//! connection counts). Held by reference (the worker's frontend copy, the backend and a server
//! index), so a request copies no name and takes no reference on counters the workers share.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::backend::{Attempts, BackendState};
use super::frontend::FrontendState;
use super::stats::{record, Outcome};
use crate::logline::{Connections, Queues};

/// A request's or session's way through the proxy.
#[derive(Debug)]
pub(super) struct Route {
    /// The frontend copy it came in on: its name, counters, log targets and sender.
    pub frontend: Arc<FrontendState>,
    /// The client came over TLS (`~` after the frontend's name).
    pub tls: bool,
    pub backend: Option<Arc<BackendState>>,
    pub server: ServedBy,
    /// Tw and Tc in ms; `None` for a phase not reached (-1).
    pub queue_ms: Option<u64>,
    pub connect_ms: Option<u64>,
    /// `sq/bq`: requests ahead in the server's and the backend's queue.
    pub queues: Queues,
    /// `ac/fc/bc/sc/rc`.
    pub connections: Connections,
}

/// Who answered, as the log's server field says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServedBy {
    /// `<NOSRV>`: no server was reached.
    Nobody,
    /// `<STATS>`: the stats page.
    Stats,
    /// The backend's server with this index (or the last one tried).
    Server(usize),
}

impl Route {
    /// A client on `frontend`, not routed yet (`ac` and `fc` as of now).
    pub(super) fn new(frontend: Arc<FrontendState>, tls: bool) -> Route {
        Route {
            connections: frontend.connection_counts(),
            frontend,
            tls,
            backend: None,
            server: ServedBy::Nobody,
            queue_ms: None,
            connect_ms: None,
            queues: Queues::default(),
        }
    }

    /// Notes what choosing and connecting to a server of the route's backend did: counts
    /// its cost, and fills in the server, Tw, Tc, `rc`, `sq/bq` and `bc/sc`. The termination
    /// state (`SC`, `sQ`) when nothing connected.
    pub(super) fn note_attempts<C>(&mut self, attempts: &Attempts<C>) -> Option<[u8; 2]> {
        let Some(backend) = self.backend.as_deref() else {
            return Some(*b"SC");
        };
        backend.count_attempts(attempts);
        self.connections.retries = attempts.retries;
        self.connections.redispatched = attempts.redispatched();
        self.queue_ms = Some(attempts.waited.ms);
        self.queues = attempts.waited.ahead;
        let Some(connected) = &attempts.connected else {
            let failure = attempts.failure();
            if let Some(i) = failure.server {
                self.server = ServedBy::Server(i);
            }
            if failure.no_server {
                self.queue_ms = None;
            }
            return Some(failure.termination);
        };
        let i = connected.server;
        self.server = ServedBy::Server(i);
        self.connect_ms = Some(connected.connect_ms);
        self.connections.backend = backend.active.load(Ordering::Relaxed);
        self.connections.server = backend.servers[i].active.load(Ordering::Relaxed);
        None
    }

    /// The names the log line gives: frontend (`fe~` over TLS), backend (the frontend's
    /// own name before one is chosen) and server.
    pub(super) fn names(&self) -> (Cow<'_, str>, &str, &str) {
        let name = self.frontend.config.name.as_str();
        let frontend = if self.tls {
            Cow::Owned(format!("{name}~"))
        } else {
            Cow::Borrowed(name)
        };
        let backend = self.backend.as_deref();
        let server = match (self.server, backend) {
            (ServedBy::Stats, _) => "<STATS>",
            (ServedBy::Server(i), Some(b)) => b.servers[i].config.name.as_str(),
            _ => "<NOSRV>",
        };
        let backend = backend.map_or(name, |b| b.config.name.as_str());
        (frontend, backend, server)
    }

    /// Adds an ended request or session to its frontend's, backend's and server's counters.
    pub(super) fn record(&self, outcome: &Outcome) {
        let backend = self.backend.as_deref();
        let server = match (self.server, backend) {
            (ServedBy::Server(i), Some(b)) => Some(&*b.servers[i].counters),
            _ => None,
        };
        record(
            &self.frontend.traffic.counters,
            backend.map(|b| &*b.counters),
            server,
            outcome,
        );
    }
}
