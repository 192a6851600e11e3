//! Where a request or a TCP session went: its frontend, backend and server, which give the
//! names its log line writes and the counters it adds to when it ends. Held by reference
//! (the worker's frontend copy, the backend and a server index), so a request copies no name
//! and takes no reference on counters the workers share.

use std::borrow::Cow;
use std::sync::Arc;

use super::backend::BackendState;
use super::frontend::FrontendState;
use super::stats::{record, Outcome};

/// A request's or session's way through the proxy.
#[derive(Debug)]
pub(super) struct Route {
    /// The frontend copy it came in on: its name, counters, log targets and sender.
    pub frontend: Arc<FrontendState>,
    /// The client came over TLS (`~` after the frontend's name).
    pub tls: bool,
    pub backend: Option<Arc<BackendState>>,
    pub server: ServedBy,
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
    /// A client on `frontend`, not routed yet.
    pub(super) fn new(frontend: Arc<FrontendState>, tls: bool) -> Route {
        Route {
            frontend,
            tls,
            backend: None,
            server: ServedBy::Nobody,
        }
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
