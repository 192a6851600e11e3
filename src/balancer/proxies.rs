//! Everything one reading of the configuration made: the frontends' shared traffic state and
//! the backends. A reload makes a new one, handing down what must outlive it (counters,
//! servers' health, open-connection counts) by proxy and server name.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Instant;

use super::backend::BackendState;
use super::log::LogSender;
use super::stats::Counters;
use crate::config::{Frontend, ProxyConfig};

/// A frontend's open connections and counters, shared by its copies on every worker.
#[derive(Debug, Default)]
pub(super) struct FrontendTraffic {
    /// Client connections open now.
    pub connections: AtomicU32,
    pub counters: Arc<Counters>,
}

/// The proxies of one configuration.
#[derive(Debug)]
pub(super) struct Proxies {
    pub frontends: Vec<(Frontend, Arc<FrontendTraffic>)>,
    pub backends: Vec<Arc<BackendState>>,
    /// When the balancer started (the first configuration's time, kept by reloads).
    pub started: Instant,
}

impl Proxies {
    /// The proxies of `config`; `previous` is the configuration a reload replaces.
    pub(super) fn new(
        config: &ProxyConfig,
        log: &Arc<LogSender>,
        workers: usize,
        previous: Option<&Proxies>,
    ) -> Proxies {
        let backends = config
            .backends
            .iter()
            .map(|b| {
                let before = previous.and_then(|p| p.backend(&b.name));
                Arc::new(BackendState::new(
                    b.clone(),
                    log.clone(),
                    workers,
                    before.map(|b| &**b),
                ))
            })
            .collect();
        let frontends = config
            .frontends
            .iter()
            .map(|f| {
                let before =
                    previous.and_then(|p| p.frontends.iter().find(|(c, _)| c.name == f.name));
                let traffic = before.map_or_else(Arc::default, |(_, t)| t.clone());
                (f.clone(), traffic)
            })
            .collect();
        Proxies {
            frontends,
            backends,
            started: previous.map_or_else(Instant::now, |p| p.started),
        }
    }

    /// The backend called `name`.
    pub(super) fn backend(&self, name: &str) -> Option<&Arc<BackendState>> {
        self.backends.iter().find(|b| b.config.name == name)
    }
}
