//! A backend at run time: its servers' state (up, active requests, weight, counters), its
//! selection state, and the log lines a state change produces.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::log::{severity, LogSender};
use super::pool::{ConnectError, Pool};
use super::queue::Queue;
use super::select::{RequestKey, Selector, ServerView, FULL_RAMP};
use super::stats::{unix_now, Counters, HealthRecord};
use crate::config::{Backend, Balance, Server};
use crate::logline::Queues;

/// One server at run time.
#[derive(Debug)]
pub(super) struct ServerState {
    pub config: Server,
    /// Passing health checks (servers start up, as in HAProxy).
    pub up: AtomicBool,
    /// In maintenance (`disabled`, or set at run time): no traffic at all.
    pub maintenance: AtomicBool,
    /// Draining (set at run time): no new traffic, but persistent clients still come.
    pub drain: AtomicBool,
    /// Requests being served now (shared with the server it replaced at a reload: those
    /// still count).
    pub active: Arc<AtomicU32>,
    /// Current weight.
    pub weight: AtomicU32,
    /// Idle connections, one pool per worker thread: a connection is only used on the thread
    /// whose runtime drives it. Kept across reloads.
    pub pools: Arc<[Pool]>,
    /// Traffic counters, kept across reloads.
    pub counters: Arc<Counters>,
    /// The last health check and state change, kept across reloads.
    pub health: Arc<Mutex<HealthRecord>>,
    /// When `slowstart` began ramping its weight (ms on the process clock; 0: not ramping).
    ramping_since: AtomicU64,
}

impl ServerState {
    /// A server from its config; one of the same name and address in the configuration
    /// replaced by a reload hands down its counters, check history and up/down state.
    fn new(config: Server, workers: usize, previous: Option<&ServerState>) -> Self {
        let (up, active, pools, counters, health) = match previous {
            Some(p) => (
                p.up.load(Ordering::Relaxed),
                p.active.clone(),
                p.pools.clone(),
                p.counters.clone(),
                p.health.clone(),
            ),
            None => (
                true,
                Arc::default(),
                (0..workers).map(|_| Pool::default()).collect(),
                Arc::default(),
                Arc::default(),
            ),
        };
        ServerState {
            up: AtomicBool::new(up),
            maintenance: AtomicBool::new(config.disabled),
            drain: AtomicBool::new(false),
            active,
            weight: AtomicU32::new(config.weight),
            pools,
            counters,
            health,
            ramping_since: AtomicU64::new(0),
            config,
        }
    }

    /// Starts ramping the weight up, if the server has `slowstart` (it came back up or out
    /// of maintenance; never at start, as in HAProxy).
    fn start_slowly(&self) {
        if self.config.slowstart.is_some() {
            self.ramping_since
                .store(process_ms().max(1), Ordering::Relaxed);
        }
    }

    /// The share of its weight in effect now, in thousandths ([`FULL_RAMP`] when not
    /// ramping).
    pub(super) fn ramp(&self) -> u32 {
        let since = self.ramping_since.load(Ordering::Relaxed);
        let Some(total) = self.config.slowstart.filter(|_| since != 0) else {
            return FULL_RAMP;
        };
        let elapsed = process_ms().saturating_sub(since);
        let total = total.as_millis().max(1) as u64;
        if elapsed >= total {
            self.ramping_since.store(0, Ordering::Relaxed);
            return FULL_RAMP;
        }
        (elapsed * u64::from(FULL_RAMP) / total) as u32
    }

    /// Up, not in maintenance, not draining: may take new traffic.
    pub(super) fn usable(&self) -> bool {
        self.reachable() && !self.drain.load(Ordering::Relaxed)
    }

    /// Up and not in maintenance: clients a cookie ties to it still come, even draining.
    pub(super) fn reachable(&self) -> bool {
        self.up.load(Ordering::Relaxed) && !self.maintenance.load(Ordering::Relaxed)
    }
}

/// Milliseconds on a clock that starts with the process.
fn process_ms() -> u64 {
    static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64
}

/// One backend at run time.
#[derive(Debug)]
pub(super) struct BackendState {
    pub config: Backend,
    pub servers: Vec<ServerState>,
    selector: Mutex<Selector>,
    /// Requests being served now (kept across reloads, as its servers').
    pub active: Arc<AtomicU32>,
    /// Requests waiting for a server at its `maxconn`.
    queue: Queue,
    /// Traffic counters, kept across reloads.
    pub counters: Arc<Counters>,
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

/// What an operator sets a server to (`set server BE/SRV state ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AdminState {
    /// Takes traffic again.
    Ready,
    /// No new traffic; persistent clients still come.
    Drain,
    /// No traffic at all (still checked, so that its state is known when it comes back).
    Maint,
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
    /// A backend from its config; `previous` is the backend of the same name a reload
    /// replaces, whose counters and servers' state carry over.
    pub(super) fn new(
        config: Backend,
        log: Arc<LogSender>,
        workers: usize,
        previous: Option<&BackendState>,
    ) -> Self {
        let weights: Vec<u32> = config.servers.iter().map(|s| s.weight).collect();
        let same_server = |s: &Server| {
            previous?
                .servers
                .iter()
                .find(|p| p.config.name == s.name && p.config.addr == s.addr)
        };
        BackendState {
            selector: Mutex::new(Selector::new(&config.balance, config.hash_type, &weights)),
            servers: config
                .servers
                .iter()
                .map(|s| ServerState::new(s.clone(), workers, same_server(s)))
                .collect(),
            active: previous.map_or_else(Arc::default, |p| p.active.clone()),
            queue: Queue::default(),
            counters: previous.map_or_else(Arc::default, |p| p.counters.clone()),
            config,
            log,
        }
    }

    /// Counts a new request as active on server `i` if it is below its `maxconn`.
    fn claim(self: &Arc<Self>, i: usize) -> Option<ActiveGuard> {
        self.take_slot(i).then(|| {
            self.count_session(i, self.active.load(Ordering::Relaxed));
            ActiveGuard {
                backend: self.clone(),
                server: i,
            }
        })
    }

    /// Counts one more request active on server `i` (and the backend) if it is below its
    /// `maxconn`.
    fn take_slot(&self, i: usize) -> bool {
        let server = &self.servers[i];
        let limit = server.config.maxconn;
        let taken = server
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                (limit == 0 || (a as usize) < limit).then_some(a + 1)
            })
            .is_ok();
        if taken {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Hands requests waiting in the queues to server `i`, which may take traffic again (it
    /// came up, or out of maintenance or drain), as many as it has free slots; how many.
    fn serve_queue(&self, i: usize) -> u32 {
        let server = &self.servers[i];
        let mut handed = 0;
        while server.usable() && self.take_slot(i) {
            let free = || {
                server.active.fetch_sub(1, Ordering::Relaxed);
                self.active.fetch_sub(1, Ordering::Relaxed);
            };
            if !self.queue.release(i, true, free) {
                break;
            }
            handed += 1;
        }
        handed
    }

    /// Counts a session handed to server `i`, with `backend_active` sessions on the backend.
    fn count_session(&self, i: usize, backend_active: u32) {
        let server = &self.servers[i];
        let now = unix_now();
        let active = server.active.load(Ordering::Relaxed);
        server.counters.session_started(active, now);
        self.counters.session_started(backend_active, now);
    }

    /// Counts what the connection attempts of a request cost: each failed attempt (`econ`),
    /// the retries (`wretr`) and a redispatch (`wredis`).
    pub(super) fn count_attempts<C>(&self, attempts: &Attempts<C>) {
        for &i in &attempts.failed {
            Counters::add(&self.servers[i].counters.connect_errors, 1);
            Counters::add(&self.counters.connect_errors, 1);
        }
        let last = attempts
            .connected
            .as_ref()
            .map(|c| c.server)
            .or(attempts.failed.last().copied());
        let count = |pick: fn(&Counters) -> &std::sync::atomic::AtomicU64, n: u64| {
            if n == 0 {
                return;
            }
            Counters::add(pick(&self.counters), n);
            if let Some(i) = last {
                Counters::add(pick(&self.servers[i].counters), n);
            }
        };
        count(|c| &c.retries, u64::from(attempts.retries));
        count(|c| &c.redispatches, u64::from(attempts.redispatched()));
    }

    /// Requests waiting now: in the backend's queue (`None`) or in server `i`'s.
    pub(super) fn queued(&self, server: Option<usize>) -> u32 {
        self.queue.waiting_for(server)
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
        let (counters, ahead) = match server {
            Some(i) => (&self.servers[i].counters, ticket.ahead.server),
            None => (&self.counters, ticket.ahead.backend),
        };
        counters.max_queue.fetch_max(ahead + 1, Ordering::Relaxed);
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
        self.count_session(i, self.active.load(Ordering::Relaxed));
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
                ramp: s.ramp(),
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
                // A server whose queue is at its `maxqueue` sends the request to the
                // backend's queue, for any server (HAProxy redispatches it, persistence or
                // not).
                let server = server.filter(|&i| {
                    let limit = self.servers[i].config.maxqueue;
                    limit == 0 || (self.queued(Some(i)) as usize) < limit
                });
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
        server
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .changed(up);
        if server.maintenance.load(Ordering::Relaxed) {
            // A server in maintenance takes no traffic either way: nothing to announce.
            return;
        }
        if up {
            server.start_slowly();
            let requeued = self.serve_queue(i);
            self.announce_up(i, &format!("is UP{detail}"), requeued);
        } else {
            server.pools.iter().for_each(Pool::clear);
            self.announce_down(i, &format!("is DOWN{detail}"));
        }
    }

    /// Puts server `i` in `state` at an operator's request (`halyard ctl`), logging the
    /// change as HAProxy does; `false` if it was in that state already.
    pub(super) fn set_admin(&self, i: usize, state: AdminState) -> bool {
        let server = &self.servers[i];
        let was_maint = server.maintenance.load(Ordering::Relaxed);
        let was_drain = server.drain.load(Ordering::Relaxed);
        let (maint, drain) = match state {
            AdminState::Ready => (false, false),
            AdminState::Drain => (false, true),
            AdminState::Maint => (true, false),
        };
        if (maint, drain) == (was_maint, was_drain) {
            return false;
        }
        server.maintenance.store(maint, Ordering::Relaxed);
        server.drain.store(drain, Ordering::Relaxed);
        let up = server.up.load(Ordering::Relaxed);
        match state {
            AdminState::Maint if up => {
                server.pools.iter().for_each(Pool::clear);
                self.announce_down(i, "is going DOWN for maintenance");
            }
            AdminState::Maint => {
                server.pools.iter().for_each(Pool::clear);
                let text = format!("{} was DOWN and now enters maintenance.", self.who(i));
                self.log
                    .send_text(&self.config.logs, severity::NOTICE, &text);
            }
            AdminState::Drain => self.announce_drain(i, was_maint),
            AdminState::Ready => {
                if was_maint {
                    server.start_slowly();
                }
                self.serve_queue(i);
                let how = match (was_maint, up) {
                    (true, true) => "is UP/READY (leaving forced maintenance)",
                    (true, false) => "is DOWN (leaving forced maintenance)",
                    (false, _) => "is UP (leaving forced drain)",
                };
                let text = format!("{} {how}.", self.who(i));
                self.log
                    .send_text(&self.config.logs, severity::NOTICE, &text);
            }
        }
        true
    }

    /// `Server be/s1` (or `Backup Server ...`), as HAProxy starts its messages.
    fn who(&self, i: usize) -> String {
        let server = &self.servers[i].config;
        let who = if server.backup {
            "Backup Server"
        } else {
            "Server"
        };
        format!("{who} {}/{}", self.config.name, server.name)
    }

    /// `Server be/s1 <what>. N active and M backup servers online. ...`
    fn announce_up(&self, i: usize, what: &str, requeued: u32) {
        let (active, backup) = self.usable_counts();
        let queued = self.queued(None);
        let text = format!(
            "{} {what}. {active} active and {backup} backup servers online. {requeued} \
             sessions requeued, {queued} total in queue.",
            self.who(i)
        );
        self.log
            .send_text(&self.config.logs, severity::NOTICE, &text);
    }

    /// `Server be/s1 <what>. N active and M backup servers left. ...`, and HAProxy's
    /// emergency line when that was the last one.
    fn announce_down(&self, i: usize, what: &str) {
        let (active, backup) = self.usable_counts();
        let sessions = self.servers[i].active.load(Ordering::Relaxed);
        let queued = self.queued(Some(i));
        let text = format!(
            "{} {what}. {active} active and {backup} backup servers left. {sessions} sessions \
             active, 0 requeued, {queued} remaining in queue.",
            self.who(i)
        );
        self.log
            .send_text(&self.config.logs, severity::ALERT, &text);
        self.announce_if_empty(active + backup);
    }

    /// `Server be/s1 enters drain state. ...`
    fn announce_drain(&self, i: usize, was_maint: bool) {
        let (active, backup) = self.usable_counts();
        let queued = self.queued(None);
        let how = if was_maint {
            " (leaving forced maintenance)"
        } else {
            ""
        };
        let text = format!(
            "{} enters drain state{how}. {active} active and {backup} backup servers online. \
             0 sessions requeued, {queued} total in queue.",
            self.who(i)
        );
        self.log
            .send_text(&self.config.logs, severity::NOTICE, &text);
        self.announce_if_empty(active + backup);
    }

    fn announce_if_empty(&self, usable: usize) {
        if usable == 0 {
            let text = format!("backend {} has no server available!", self.config.name);
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
