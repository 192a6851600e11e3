//! The load balancer: frontends accepting clients, backends choosing servers, health checks,
//! and HAProxy's log lines for every request.
//!
//! Like HAProxy's threads and nginx's workers, halyard runs one single-threaded runtime per
//! worker thread (`nbthread`, default one per CPU), each accepting on its own SO_REUSEPORT
//! socket for every `bind` and keeping its own server connections: a request and the server
//! connection it uses are driven by the same thread, never handed across. Backends' state
//! (servers up or down, weights, counters, selection) is shared. [`Balancer::start`] binds
//! everything before it returns, so a bad address is an error at start, not a log line later.
//!
//! A reload ([`Balancer::reload`]) builds the new configuration's proxies beside the old
//! ones (`proxies.rs`), hands the addresses both have to the new frontends without closing
//! them (each accept loop follows a `watch` of what it serves), and lets requests in flight
//! finish on the old ones. The control socket (`control.rs`) and the stats page (`stats/`)
//! read the current configuration's proxies.

mod acl;
mod backend;
mod client_io;
mod compress;
mod control;
mod frontend;
mod health;
mod http;
mod httplog;
mod log;
mod persist;
mod pool;
mod proxies;
mod queue;
mod route;
pub mod select;
mod stats;
mod tcp;
mod tls;
mod upgrade;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::config::ProxyConfig;
pub use control::is_error_answer;
use frontend::FrontendState;
pub use log::LogSender;
use proxies::{Proxies, Slots};
use tls::TlsListener;

/// Why the balancer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A frontend address could not be bound.
    #[error("frontend '{frontend}': cannot bind {addr}: {error}")]
    Bind {
        /// The frontend.
        frontend: String,
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// Something halyard does not do yet.
    #[error("{0}")]
    Unsupported(String),
    /// A `stats socket` could not be set up.
    #[error("stats socket {path}: {error}")]
    Control {
        /// The socket's path.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The log sockets or a thread could not be set up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A reload asked for on the control socket; the outcome goes back on `reply`.
#[derive(Debug)]
pub struct ReloadRequest {
    /// What the control socket's client is told.
    pub reply: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// A running balancer.
#[derive(Debug)]
pub struct Balancer {
    stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    live: Arc<Live>,
    reloads: Option<tokio::sync::mpsc::UnboundedReceiver<ReloadRequest>>,
}

/// What a reload replaces and the control socket reads: the current configuration's
/// proxies, its listening sockets and health checks, and the runtimes they run on.
#[derive(Debug)]
struct Live {
    /// Each worker's runtime, to start accept loops on.
    workers: Vec<Handle>,
    /// The runtime of the health checks and control sockets.
    control: Handle,
    current: RwLock<Arc<Proxies>>,
    /// The listening sockets and checks of the current configuration; held while a reload
    /// runs, so two never interleave.
    generation: Mutex<Generation>,
    process_connections: Arc<Slots>,
    log: Arc<LogSender>,
    stop: watch::Receiver<bool>,
}

/// The sockets and health checks of one configuration.
#[derive(Debug, Default)]
struct Generation {
    listeners: Vec<Listening>,
    /// Stops this configuration's health checks.
    checks: Option<watch::Sender<bool>>,
}

/// One `bind` address, accepted on by every worker.
#[derive(Debug)]
struct Listening {
    frontend: String,
    /// The address as configured, and as bound (the real port when 0 was asked for).
    asked: SocketAddr,
    bound: SocketAddr,
    /// Per worker, what its accept loop hands clients to (`None` closes it).
    serving: Vec<watch::Sender<Option<Served>>>,
}

/// What an address's accept loop hands clients to under the current configuration: the
/// frontend, and the TLS side when its `bind` has `ssl`.
#[derive(Clone)]
struct Served {
    frontend: Arc<FrontendState>,
    tls: Option<TlsListener>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("frontend", &self.frontend.config.name)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// What a worker's accept loop and its connections follow (`None` once a reload removed the
/// address).
type Serving = watch::Receiver<Option<Served>>;

impl Balancer {
    /// Binds every frontend on every worker, then starts serving and health-checking.
    pub fn start(config: &ProxyConfig) -> Result<Balancer, StartError> {
        let workers = config
            .global
            .nbthread
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let log = LogSender::new()?;
        let process_connections = Arc::new(Slots::default());
        let (stop, stopped) = watch::channel(false);
        let mut threads = Vec::new();
        let mut handles = Vec::new();
        for worker in 0..workers {
            let (stopped, connections) = (stopped.clone(), process_connections.clone());
            let (thread, handle) = runtime_thread(&format!("balancer-{worker}"), move |r| {
                r.block_on(drain_worker(stopped, connections))
            })?;
            threads.push(thread);
            handles.push(handle);
        }
        let stopped_control = stopped.clone();
        let (thread, control) = runtime_thread("control", move |r| {
            r.block_on(async move {
                let mut stopped = stopped_control;
                let _ = stopped.wait_for(|s| *s).await;
            })
        })?;
        threads.push(thread);
        let live = Arc::new(Live {
            workers: handles,
            control,
            current: RwLock::new(Arc::new(Proxies::new(config, &log, workers, None))),
            generation: Mutex::new(Generation::default()),
            process_connections,
            log,
            stop: stopped,
        });
        let balancer = |reloads| Balancer {
            stop,
            threads,
            live: live.clone(),
            reloads,
        };
        let first = live
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Err(e) = live.apply(config, first) {
            balancer(None).stop(Duration::ZERO);
            return Err(e);
        }
        let (requests, reloads) = tokio::sync::mpsc::unbounded_channel();
        for socket in &config.global.stats_sockets {
            if let Err(error) = control::listen(socket, &live, requests.clone()) {
                balancer(None).stop(Duration::ZERO);
                return Err(StartError::Control {
                    path: socket.path.display().to_string(),
                    error,
                });
            }
        }
        Ok(balancer(Some(reloads)))
    }

    /// Every frontend address bound, with its frontend's name (the real port when 0 was
    /// asked for).
    pub fn bound(&self) -> Vec<(String, SocketAddr)> {
        let generation = self
            .live
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        generation
            .listeners
            .iter()
            .map(|l| (l.frontend.clone(), l.bound))
            .collect()
    }

    /// Reloads asked for on the control sockets (`halyard ctl SOCKET reload`); the caller,
    /// who knows where the config comes from, reads it and calls [`Balancer::reload`]. Given
    /// once.
    pub fn reload_requests(
        &mut self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<ReloadRequest>> {
        self.reloads.take()
    }

    /// Switches to a new configuration: new connections, and new requests on open
    /// keep-alive connections, use it; requests and TCP sessions in flight finish on the old
    /// one. Addresses bound before stay bound (no connection is refused meanwhile), new ones
    /// are bound, removed ones closed. Counters and servers' state carry over by name. On an
    /// error (an address that cannot be bound) nothing changes.
    pub fn reload(&self, config: &ProxyConfig) -> Result<(), StartError> {
        let previous = self
            .live
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let workers = self.live.workers.len();
        let proxies = Arc::new(Proxies::new(
            config,
            &self.live.log,
            workers,
            Some(&previous),
        ));
        self.live.apply(config, proxies)
    }

    /// Log datagrams sent and dropped (no room in the socket buffer).
    pub fn log_counts(&self) -> (u64, u64) {
        self.live.log.counts()
    }

    /// Stops accepting, lets requests in flight finish for up to `grace`, and returns.
    pub fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + grace;
        for thread in self.threads {
            // A worker past the deadline is left to the process exit.
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

impl Live {
    /// The current configuration's proxies.
    fn proxies(&self) -> Arc<Proxies> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes `proxies` (from `config`) the running configuration: binds what is new first
    /// (an error leaves everything as it was), then hands the kept addresses to the new
    /// frontends, closes the removed ones and swaps the health checks.
    fn apply(&self, config: &ProxyConfig, proxies: Arc<Proxies>) -> Result<(), StartError> {
        let mut generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        let workers = self.workers.len();
        let frontend = |fe: &crate::config::Frontend, worker: usize| {
            let traffic = proxies
                .frontends
                .iter()
                .find(|(f, _)| f.name == fe.name)
                .map_or_else(Arc::default, |(_, t)| t.clone());
            Arc::new(FrontendState {
                config: fe.clone(),
                worker,
                proxies: proxies.clone(),
                traffic,
                process_connections: self.process_connections.clone(),
                log: self.log.clone(),
                targets: fe.logs.clone().into(),
            })
        };
        // Every `bind` with its TLS side, and the listener it keeps (the same address, taken
        // in order when several binds share one).
        let mut wanted = Vec::new();
        let mut kept = vec![false; generation.listeners.len()];
        for fe in &config.frontends {
            for (n, bind) in fe.binds.iter().enumerate() {
                let tls = bind.tls.as_ref();
                let tls = tls
                    .map(|c| TlsListener::new(c, fe.mode, n + 1))
                    .transpose()?;
                let old = (0..kept.len())
                    .find(|&i| !kept[i] && generation.listeners[i].asked == bind.addr);
                if let Some(i) = old {
                    kept[i] = true;
                }
                wanted.push((fe, bind.addr, tls, old));
            }
        }
        // Every new address bound before anything changes: a failure leaves all as it was.
        let mut fresh = Vec::new();
        for (fe, asked, _, old) in &wanted {
            let sockets = match old {
                Some(_) => None,
                None => Some(
                    bind_workers(*asked, workers).map_err(|error| StartError::Bind {
                        frontend: fe.name.clone(),
                        addr: *asked,
                        error,
                    })?,
                ),
            };
            fresh.push(sockets);
        }
        self.process_connections.set_limit(config.global.maxconn);
        for (fe, traffic) in &proxies.frontends {
            traffic.connections.set_limit(fe.maxconn);
        }
        let mut previous: Vec<Option<Listening>> = std::mem::take(&mut generation.listeners)
            .into_iter()
            .map(Some)
            .collect();
        let mut listeners = Vec::new();
        for ((fe, asked, tls, old), sockets) in wanted.into_iter().zip(fresh) {
            let served = |worker| {
                Some(Served {
                    frontend: frontend(fe, worker),
                    tls: tls.clone(),
                })
            };
            if let Some(mut listening) = old.and_then(|i| previous[i].take()) {
                for (worker, serving) in listening.serving.iter().enumerate() {
                    serving.send_replace(served(worker));
                }
                listening.frontend = fe.name.clone();
                listeners.push(listening);
                continue;
            }
            let sockets = sockets.unwrap_or_default();
            let bound = sockets
                .first()
                .and_then(|s| s.local_addr().ok())
                .unwrap_or(asked);
            let mut serving = Vec::new();
            for (worker, socket) in sockets.into_iter().enumerate() {
                let (sender, receiver) = watch::channel(served(worker));
                self.workers[worker].spawn(frontend::accept(socket, receiver, self.stop.clone()));
                serving.push(sender);
            }
            listeners.push(Listening {
                frontend: fe.name.clone(),
                asked,
                bound,
                serving,
            });
        }
        // What is left was removed from the configuration: its accept loops end.
        for removed in previous.into_iter().flatten() {
            for serving in &removed.serving {
                serving.send_replace(None);
            }
        }
        generation.listeners = listeners;
        let (checks, checks_stop) = watch::channel(false);
        let (stop, checked) = (self.stop.clone(), proxies.backends.clone());
        self.control.spawn(async move {
            for backend in &checked {
                health::spawn(backend, &checks_stop, &stop);
            }
        });
        if let Some(old) = generation.checks.replace(checks) {
            let _ = old.send(true);
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = proxies;
        for fe in &config.frontends {
            self.log.send_text(
                &fe.logs,
                log::severity::NOTICE,
                &format!("Proxy {} started.", fe.name),
            );
        }
        Ok(())
    }
}

/// Binds `addr` once per worker (SO_REUSEPORT shares the port; with port 0 the first socket
/// picks it and the others join).
fn bind_workers(asked: SocketAddr, workers: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut addr = asked;
    let mut sockets = Vec::with_capacity(workers);
    for _ in 0..workers {
        let listener = bind_shared(addr)?;
        addr = listener.local_addr()?;
        sockets.push(listener);
    }
    Ok(sockets)
}

/// A listening TCP socket that other workers may bind too.
fn bind_shared(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A worker's life after its accept loops are spawned on it: serve until `stop`, then let
/// the connections finish (the caller bounds how long it waits).
async fn drain_worker(mut stop: watch::Receiver<bool>, connections: Arc<Slots>) {
    let _ = stop.wait_for(|s| *s).await;
    // In-flight connections finish their request and close (see `http::serve`); TCP
    // sessions and WebSocket tunnels go on until they end or the caller's grace is over.
    while connections.open() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A thread running `body` on a single-threaded runtime of its own, and that runtime's
/// handle, for spawning on it from elsewhere.
fn runtime_thread(
    name: &str,
    body: impl FnOnce(&tokio::runtime::Runtime) + Send + 'static,
) -> std::io::Result<(JoinHandle<()>, Handle)> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => {
                    let _ = sender.send(Ok(runtime.handle().clone()));
                    body(&runtime);
                }
                Err(e) => {
                    let _ = sender.send(Err(e));
                }
            }
        })?;
    let handle = receiver
        .recv()
        .map_err(|_| std::io::Error::other("a runtime thread ended at start"))??;
    Ok((thread, handle))
}
