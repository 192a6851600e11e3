//! Everything one reading of the configuration made: the frontends' shared traffic state and
//! the backends. A reload makes a new one, handing down what must outlive it (counters,
//! servers' health, open-connection counts) by proxy and server name.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use super::backend::BackendState;
use super::log::LogSender;
use super::stats::Counters;
use crate::config::{Frontend, ProxyConfig};

/// A frontend's open connections and counters, shared by its copies on every worker.
#[derive(Debug, Default)]
pub(super) struct FrontendTraffic {
    /// Client connections open now, against the frontend's `maxconn`.
    pub connections: Slots,
    pub counters: Arc<Counters>,
}

/// Open connections against a `maxconn`: at the limit, accepting stops and clients wait in
/// the kernel's backlog, as with HAProxy, until a connection closes.
#[derive(Debug, Default)]
pub(super) struct Slots {
    open: AtomicU32,
    /// 0 until a configuration sets it (no limit).
    limit: AtomicU32,
    freed: Notify,
}

impl Slots {
    /// Connections open now.
    pub(super) fn open(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }

    /// The limit (0: none).
    pub(super) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets the limit (a reload may change it).
    pub(super) fn set_limit(&self, limit: usize) {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        self.limit.store(limit, Ordering::Relaxed);
        self.freed.notify_waiters();
    }

    /// Takes a slot if one is free; `false` at the limit.
    pub(super) fn try_take(&self) -> bool {
        let limit = self.limit();
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (limit == 0 || open < limit).then_some(open + 1)
            })
            .is_ok()
    }

    /// Waits for a free slot and takes it.
    pub(super) async fn take(&self) {
        loop {
            // Registered before trying, so a connection closing in between still wakes.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_take() {
                return;
            }
            freed.await;
        }
    }

    /// Counts a connection opened past the limit (one that must be counted whatever the
    /// limit: a WebSocket tunnel outliving its request's connection).
    pub(super) fn force_take(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed.
    pub(super) fn give_back(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.freed.notify_waiters();
    }
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
