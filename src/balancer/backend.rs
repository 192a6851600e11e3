//! A backend at run time: its servers' state (up, active requests, weight, counters), its
//! selection state, and the log lines a state change produces.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::log::{severity, LogSender};
use super::pool::{ConnectError, Pool};
use super::select::{RequestKey, Selector, ServerView};
use crate::config::{Backend, Server};

/// One server at run time.
#[derive(Debug)]
pub(super) struct ServerState {
    pub config: Server,
    /// Passing health checks (servers start up, as in HAProxy).
    pub up: AtomicBool,
    /// In maintenance (`disabled`).
    pub maintenance: AtomicBool,
    /// Requests being served now.
    pub active: AtomicU32,
    /// Requests served since start.
    pub total: AtomicU64,
    /// Current weight.
    pub weight: AtomicU32,
    /// Idle connections, one pool per worker thread: a connection is only used on the thread
    /// whose runtime drives it.
    pub pools: Vec<Pool>,
}

impl ServerState {
    fn new(config: Server, workers: usize) -> Self {
        ServerState {
            up: AtomicBool::new(true),
            maintenance: AtomicBool::new(config.disabled),
            active: AtomicU32::new(0),
            total: AtomicU64::new(0),
            weight: AtomicU32::new(config.weight),
            pools: (0..workers).map(|_| Pool::default()).collect(),
            config,
        }
    }

    /// Up and not in maintenance.
    pub(super) fn usable(&self) -> bool {
        self.up.load(Ordering::Relaxed) && !self.maintenance.load(Ordering::Relaxed)
    }
}

/// One backend at run time.
#[derive(Debug)]
pub(super) struct BackendState {
    pub config: Backend,
    pub servers: Vec<ServerState>,
    selector: Mutex<Selector>,
    /// Requests being served now.
    pub active: AtomicU32,
    log: Arc<LogSender>,
}

/// A server's requests in flight, counted down when dropped.
#[derive(Debug)]
pub(super) struct ActiveGuard {
    backend: Arc<BackendState>,
    server: usize,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.backend.servers[self.server]
            .active
            .fetch_sub(1, Ordering::Relaxed);
        self.backend.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A server chosen and connected to.
pub(super) struct Connected<C> {
    /// The server's index in the backend.
    pub server: usize,
    /// Counts the session as active on the server.
    pub guard: ActiveGuard,
    pub conn: C,
    /// Tc: the successful attempt's connect time, in ms.
    pub connect_ms: u64,
}

/// How choosing and connecting went: `rc` and `+` in the log come from here.
pub(super) struct Attempts<C> {
    /// `None` when no server could be chosen, or every attempt failed.
    pub connected: Option<Connected<C>>,
    /// Servers that refused or timed out, in order.
    pub failed: Vec<usize>,
    /// Retries made after the first attempt.
    pub retries: u32,
}

impl<C> Attempts<C> {
    /// Another server was tried after one failed (`option redispatch`).
    pub(super) fn redispatched(&self) -> bool {
        let last = self.connected.as_ref().map(|c| c.server);
        let mut servers = self.failed.iter().copied().chain(last);
        let first = servers.next();
        servers.any(|s| Some(s) != first)
    }
}

impl BackendState {
    pub(super) fn new(config: Backend, log: Arc<LogSender>, workers: usize) -> Self {
        let weights: Vec<u32> = config.servers.iter().map(|s| s.weight).collect();
        BackendState {
            selector: Mutex::new(Selector::new(&config.balance, config.hash_type, &weights)),
            servers: config
                .servers
                .iter()
                .map(|s| ServerState::new(s.clone(), workers))
                .collect(),
            active: AtomicU32::new(0),
            config,
            log,
        }
    }

    /// Chooses a server for a request, skipping `tried` (servers a retry must avoid), and
    /// counts the request as active on it until the guard is dropped.
    pub(super) fn pick(
        self: &Arc<Self>,
        request: &RequestKey<'_>,
        tried: &[usize],
    ) -> Option<(usize, ActiveGuard)> {
        let views: Vec<ServerView> = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| ServerView {
                weight: s.weight.load(Ordering::Relaxed),
                usable: s.usable() && !tried.contains(&i),
                backup: s.config.backup,
                active: s.active.load(Ordering::Relaxed),
                maxconn: s.config.maxconn,
            })
            .collect();
        let chosen = self
            .selector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pick(&views, request)?;
        let server = &self.servers[chosen];
        server.active.fetch_add(1, Ordering::Relaxed);
        server.total.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        let guard = ActiveGuard {
            backend: self.clone(),
            server: chosen,
        };
        Some((chosen, guard))
    }

    /// Chooses a server with `pick` and connects with `open`, as HAProxy does on failure: up
    /// to `retries` more attempts on the same server, or with `option redispatch` on another
    /// one each time. `pick` is given the servers to avoid.
    pub(super) async fn connect<C, Fut>(
        &self,
        mut pick: impl FnMut(&[usize]) -> Option<(usize, ActiveGuard)>,
        mut open: impl FnMut(usize) -> Fut,
    ) -> Attempts<C>
    where
        Fut: Future<Output = Result<C, ConnectError>>,
    {
        let redispatch = self.config.options.redispatch;
        let mut attempts = Attempts {
            connected: None,
            failed: Vec::new(),
            retries: 0,
        };
        let mut next = pick(&[]);
        while let Some((server, guard)) = next.take() {
            let started = Instant::now();
            if let Ok(conn) = open(server).await {
                attempts.connected = Some(Connected {
                    server,
                    guard,
                    conn,
                    connect_ms: started.elapsed().as_millis() as u64,
                });
                break;
            }
            attempts.failed.push(server);
            if attempts.retries >= self.config.retries {
                break;
            }
            attempts.retries += 1;
            next = if redispatch {
                drop(guard);
                pick(&attempts.failed)
            } else {
                Some((server, guard))
            };
        }
        attempts
    }

    /// Usable active and backup servers.
    pub(super) fn usable_counts(&self) -> (usize, usize) {
        let usable = |backup: bool| {
            self.servers
                .iter()
                .filter(|s| s.config.backup == backup && s.usable())
                .count()
        };
        (usable(false), usable(true))
    }

    /// Marks server `i` up or down after a check, logging the change as HAProxy does;
    /// `detail` is what follows `is DOWN` / `is UP` up to the server counts (`, reason: ...,
    /// check duration: 0ms`).
    pub(super) fn set_up(&self, i: usize, up: bool, detail: &str) {
        let server = &self.servers[i];
        if server.up.swap(up, Ordering::Relaxed) == up {
            return;
        }
        let (active, backup) = self.usable_counts();
        let who = if server.config.backup {
            "Backup Server"
        } else {
            "Server"
        };
        let (name, backend) = (&server.config.name, &self.config.name);
        let sessions = server.active.load(Ordering::Relaxed);
        let text = if up {
            format!(
                "{who} {backend}/{name} is UP{detail}. {active} active and {backup} backup \
                 servers online. 0 sessions requeued, 0 total in queue."
            )
        } else {
            server.pools.iter().for_each(Pool::clear);
            format!(
                "{who} {backend}/{name} is DOWN{detail}. {active} active and {backup} backup \
                 servers left. {sessions} sessions active, 0 requeued, 0 remaining in queue."
            )
        };
        let level = if up {
            severity::NOTICE
        } else {
            severity::ALERT
        };
        self.log.send_text(&self.config.logs, level, &text);
        if !up && active == 0 && backup == 0 {
            let text = format!("backend {backend} has no server available!");
            self.log
                .send_text(&self.config.logs, severity::EMERG, &text);
        }
    }

    /// Logs one health check result (`option log-health-checks`).
    pub(super) fn log_check(&self, i: usize, passed: bool, detail: &str, status: &str) {
        let server = &self.servers[i];
        let outcome = if passed { "succeeded" } else { "failed" };
        let text = format!(
            "Health check for {}server {}/{} {outcome}{detail}, status: {status}.",
            if server.config.backup { "backup " } else { "" },
            self.config.name,
            server.config.name
        );
        self.log
            .send_text(&self.config.logs, severity::NOTICE, &text);
    }
}
