//! A backend at run time: its servers' state (up, active requests, weight, counters), its
//! selection state, and the log lines a state change produces.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::log::{severity, LogSender};
use super::pool::{ConnectError, Pool};
use super::queue::Queue;
use super::select::{RequestKey, Selector, ServerView};
use crate::config::{Backend, Balance, Server};
use crate::logline::Queues;

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
    /// Requests waiting for a server at its `maxconn`.
    queue: Queue,
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
        let backend = &self.backend;
        let server = &backend.servers[self.server];
        let free = || {
            server.active.fetch_sub(1, Ordering::Relaxed);
            backend.active.fetch_sub(1, Ordering::Relaxed);
        };
        if server.config.maxconn == 0 {
            // Nobody ever waits for a server without a limit.
            return free();
        }
        backend.queue.release(self.server, server.usable(), free);
    }
}

/// A request's place in the queue. If the request goes away while it waits (hyper drops it
/// when its client leaves), a slot already handed to it is released, not lost.
struct Waiting {
    backend: Arc<BackendState>,
    slot: tokio::sync::oneshot::Receiver<usize>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.slot.close();
        if let Ok(server) = self.slot.try_recv() {
            drop(ActiveGuard {
                backend: self.backend.clone(),
                server,
            });
        }
    }
}

/// What choosing a server found.
pub(super) enum Choice {
    /// A server with a slot, now counted as active for the request.
    Slot(usize, ActiveGuard),
    /// Every server that could take the request is at its `maxconn`: the request waits for
    /// this server (a hash tied it to it) or for any.
    Full(Option<usize>),
    /// No server may take it.
    Nothing,
}

/// What the queue meant for a request: Tw, `sq/bq`, and whether it gave up.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Waited {
    /// Tw in ms (0 when it did not wait).
    pub ms: u64,
    /// Requests ahead of it when it joined the queue.
    pub ahead: Queues,
    /// `timeout queue` passed; the server it waited for, if one.
    pub timed_out: Option<Option<usize>>,
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
    /// Time in the queue, if the request waited.
    pub waited: Waited,
}

/// Why no server connection came of the attempts, as the log says it.
pub(super) struct Failure {
    /// `sQ` (`timeout queue`) or `SC` (no server, or every connect failed).
    pub termination: [u8; 2],
    /// The server to name in the log (`<NOSRV>` when none).
    pub server: Option<usize>,
    /// The request never got as far as a queue or a server: Tw is -1.
    pub no_server: bool,
}

impl<C> Attempts<C> {
    /// Why nothing connected (meaningful when `connected` is `None`).
    pub(super) fn failure(&self) -> Failure {
        match (self.waited.timed_out, self.failed.last()) {
            (Some(waited_for), _) => Failure {
                termination: *b"sQ",
                server: waited_for,
                no_server: false,
            },
            (None, Some(&last)) => Failure {
                termination: *b"SC",
                server: Some(last),
                no_server: false,
            },
            (None, None) => Failure {
                termination: *b"SC",
                server: None,
                no_server: true,
            },
        }
    }

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
            queue: Queue::default(),
            config,
            log,
        }
    }

    /// Counts a new request as active on server `i` if it is below its `maxconn`.
    fn claim(self: &Arc<Self>, i: usize) -> Option<ActiveGuard> {
        let server = &self.servers[i];
        let limit = server.config.maxconn;
        let claimed = server
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                (limit == 0 || (a as usize) < limit).then_some(a + 1)
            })
            .is_ok();
        claimed.then(|| {
            server.total.fetch_add(1, Ordering::Relaxed);
            self.active.fetch_add(1, Ordering::Relaxed);
            ActiveGuard {
                backend: self.clone(),
                server: i,
            }
        })
    }

    /// A slot on any active server that may take traffic, in server order.
    fn claim_any(self: &Arc<Self>) -> Option<ActiveGuard> {
        self.servers
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.config.backup && s.usable() && s.weight.load(Ordering::Relaxed) > 0)
            .find_map(|(i, _)| self.claim(i))
    }

    /// Waits in the queue for a slot (on `server`, or on any) for up to `limit`.
    async fn wait_for_slot(
        self: &Arc<Self>,
        server: Option<usize>,
        limit: Duration,
        waited: &mut Waited,
    ) -> Option<(usize, ActiveGuard)> {
        let started = Instant::now();
        let mut kept = None;
        let joined = self.queue.claim_or_join(server, || {
            kept = match server {
                Some(i) => self.claim(i),
                None => self.claim_any(),
            };
            kept.as_ref().map(|g| g.server)
        });
        let ticket = match joined {
            Ok(i) => return kept.map(|guard| (i, guard)),
            Err(ticket) => ticket,
        };
        waited.ahead = ticket.ahead;
        let mut waiting = Waiting {
            backend: self.clone(),
            slot: ticket.slot,
        };
        let slot = match tokio::time::timeout(limit, &mut waiting.slot).await {
            Ok(slot) => slot.ok(),
            Err(_) => {
                // A slot handed over at the last moment is taken all the same.
                waiting.slot.close();
                waiting.slot.try_recv().ok()
            }
        };
        waited.ms = started.elapsed().as_millis() as u64;
        let Some(i) = slot else {
            waited.timed_out = Some(server);
            return None;
        };
        // The slot came counted as active: it is this request's now.
        self.servers[i].total.fetch_add(1, Ordering::Relaxed);
        let guard = ActiveGuard {
            backend: self.clone(),
            server: i,
        };
        Some((i, guard))
    }

    /// Chooses a server for a request, skipping `tried` (servers a retry must avoid), and
    /// counts the request as active on it until the guard is dropped.
    pub(super) fn pick(self: &Arc<Self>, request: &RequestKey<'_>, tried: &[usize]) -> Choice {
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
            .pick(&views, request);
        let hashed = matches!(
            self.config.balance,
            Balance::Source | Balance::Uri | Balance::UrlParam(_) | Balance::Hdr(_)
        );
        match chosen {
            Some(i) => match self.claim(i) {
                Some(guard) => Choice::Slot(i, guard),
                // A hash keeps its server even when it is full; the others only pick servers
                // with room, so this one filled up meanwhile: any server will do.
                None => Choice::Full(hashed.then_some(i)),
            },
            None if views.iter().any(|v| v.usable && v.maxconn > 0) => Choice::Full(None),
            None => Choice::Nothing,
        }
    }

    /// Server `i` for a request that must go there (its persistence cookie named it): a slot,
    /// or its queue when it is full.
    pub(super) fn pick_server(self: &Arc<Self>, i: usize) -> Choice {
        match self.claim(i) {
            Some(guard) => Choice::Slot(i, guard),
            None => Choice::Full(Some(i)),
        }
    }

    /// Chooses a server with `pick` and connects with `open`, as HAProxy does on failure: up
    /// to `retries` more attempts on the same server, or with `option redispatch` on another
    /// one each time. `pick` is given the servers to avoid.
    pub(super) async fn connect<C, Fut>(
        self: &Arc<Self>,
        mut pick: impl FnMut(&[usize]) -> Choice,
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
            waited: Waited::default(),
        };
        let mut next = match pick(&[]) {
            Choice::Slot(i, guard) => Some((i, guard)),
            Choice::Full(server) => {
                self.wait_for_slot(server, self.queue_timeout(), &mut attempts.waited)
                    .await
            }
            Choice::Nothing => None,
        };
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
                match pick(&attempts.failed) {
                    Choice::Slot(i, guard) => Some((i, guard)),
                    Choice::Full(_) | Choice::Nothing => None,
                }
            } else {
                Some((server, guard))
            };
        }
        attempts
    }

    /// `timeout queue`, or `timeout connect` when it is not set (HAProxy's rule).
    fn queue_timeout(&self) -> Duration {
        let timeouts = &self.config.timeouts;
        timeouts
            .queue
            .or(timeouts.connect)
            .unwrap_or(Duration::from_secs(5))
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
