//! The load balancer: frontends accepting clients, backends choosing servers, health checks,
//! and HAProxy's log lines for every request.
//!
//! Like HAProxy's threads and nginx's workers, halyard runs one single-threaded runtime per
//! worker thread (`nbthread`, default one per CPU), each accepting on its own SO_REUSEPORT
//! socket for every `bind` and keeping its own server connections: a request and the server
//! connection it uses are driven by the same thread, never handed across. Backends' state
//! (servers up or down, weights, counters, selection) is shared. [`Balancer::start`] binds
//! everything before it returns, so a bad address is an error at start, not a log line later.

mod acl;
mod backend;
mod client_io;
mod compress;
mod frontend;
mod health;
mod http;
mod httplog;
mod log;
mod persist;
mod pool;
mod queue;
pub mod select;
mod tcp;
mod tls;
mod upgrade;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;

use crate::config::{Mode, ProxyConfig};
use backend::BackendState;
use frontend::FrontendState;
pub use log::LogSender;
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
    /// The log sockets or a thread could not be set up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running balancer.
#[derive(Debug)]
pub struct Balancer {
    stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    bound: Vec<(String, SocketAddr)>,
    log: Arc<LogSender>,
}

/// What one worker thread serves: every frontend, each with its own listening sockets.
type WorkerListeners = Vec<(Arc<FrontendState>, Vec<Listener>)>;

/// One listening socket of a worker, with its TLS side when the `bind` has `ssl`.
struct Listener {
    socket: std::net::TcpListener,
    tls: Option<TlsListener>,
}

/// Every socket bound at start.
struct Bound {
    /// Each frontend address, with its frontend's name.
    addrs: Vec<(String, SocketAddr)>,
    /// Per worker, its frontends and their sockets.
    per_worker: Vec<WorkerListeners>,
}

impl Balancer {
    /// Binds every frontend on every worker, then starts serving and health-checking.
    pub fn start(config: &ProxyConfig) -> Result<Balancer, StartError> {
        let workers = config
            .global
            .nbthread
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let log = LogSender::new()?;
        let backends: Vec<Arc<BackendState>> = config
            .backends
            .iter()
            .map(|b| Arc::new(BackendState::new(b.clone(), log.clone(), workers)))
            .collect();
        let process_connections = Arc::new(AtomicU32::new(0));
        let Bound { addrs, per_worker } = bind_all(config, workers, |fe, worker| {
            Arc::new(FrontendState {
                config: fe.clone(),
                worker,
                backends: backends.clone(),
                connections: AtomicU32::new(0),
                process_connections: process_connections.clone(),
                log: log.clone(),
                targets: fe.logs.clone().into(),
            })
        })?;
        let (stop, stopped) = watch::channel(false);
        let mut threads = Vec::new();
        for (worker, listeners) in per_worker.into_iter().enumerate() {
            let stopped = stopped.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("balancer-{worker}"))
                    .spawn(move || run_worker(listeners, stopped))?,
            );
        }
        let checked = backends.clone();
        threads.push(
            std::thread::Builder::new()
                .name("health-checks".into())
                .spawn(move || run_checks(checked, stopped))?,
        );
        for fe in &config.frontends {
            log.send_text(
                &fe.logs,
                log::severity::NOTICE,
                &format!("Proxy {} started.", fe.name),
            );
        }
        Ok(Balancer {
            stop,
            threads,
            bound: addrs,
            log,
        })
    }

    /// Every frontend address bound, with its frontend's name (the real port when 0 was
    /// asked for).
    pub fn bound(&self) -> &[(String, SocketAddr)] {
        &self.bound
    }

    /// Log datagrams sent and dropped (no room in the socket buffer).
    pub fn log_counts(&self) -> (u64, u64) {
        self.log.counts()
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

/// Binds every frontend address once per worker (SO_REUSEPORT shares the port; with port 0
/// the first socket picks it and the others join).
fn bind_all(
    config: &ProxyConfig,
    workers: usize,
    frontend: impl Fn(&crate::config::Frontend, usize) -> Arc<FrontendState>,
) -> Result<Bound, StartError> {
    let mut bound = Vec::new();
    let mut per_worker: Vec<WorkerListeners> = (0..workers).map(|_| Vec::new()).collect();
    for fe in &config.frontends {
        let mut sockets: Vec<Vec<Listener>> = (0..workers).map(|_| Vec::new()).collect();
        for (n, bind) in fe.binds.iter().enumerate() {
            let tls = bind
                .tls
                .as_ref()
                .map(|certificate| TlsListener::new(certificate, fe.mode, n + 1))
                .transpose()?;
            let mut addr = bind.addr;
            for worker_sockets in &mut sockets {
                let socket = bind_shared(addr).map_err(|error| StartError::Bind {
                    frontend: fe.name.clone(),
                    addr: bind.addr,
                    error,
                })?;
                addr = socket.local_addr()?;
                worker_sockets.push(Listener {
                    socket,
                    tls: tls.clone(),
                });
            }
            bound.push((fe.name.clone(), addr));
        }
        for (worker, listeners) in sockets.into_iter().enumerate() {
            per_worker[worker].push((frontend(fe, worker), listeners));
        }
    }
    Ok(Bound {
        addrs: bound,
        per_worker,
    })
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

/// One worker: a single-threaded runtime serving its sockets until `stop`, then letting its
/// connections finish (the caller bounds how long it waits).
fn run_worker(listeners: WorkerListeners, stop: watch::Receiver<bool>) {
    let Some(runtime) = single_threaded("a worker") else {
        return;
    };
    runtime.block_on(async move {
        let mut frontends = Vec::new();
        for (frontend, sockets) in listeners {
            for Listener { socket, tls } in sockets {
                match tokio::net::TcpListener::from_std(socket) {
                    Ok(listener) => {
                        let (frontend, stop) = (frontend.clone(), stop.clone());
                        let listener = (listener, tls);
                        match frontend.config.mode {
                            Mode::Http => tokio::spawn(frontend::accept(
                                listener,
                                frontend,
                                stop,
                                http::serve,
                            )),
                            Mode::Tcp => {
                                tokio::spawn(frontend::accept(listener, frontend, stop, tcp::serve))
                            }
                        };
                    }
                    Err(e) => eprintln!("halyard run: listener unusable: {e}"),
                }
            }
            frontends.push(frontend);
        }
        let mut stop = stop;
        let _ = stop.wait_for(|s| *s).await;
        // In-flight connections finish their request and close (see `http::serve`); TCP
        // sessions and WebSocket tunnels go on until they end or the caller's grace is over.
        while frontends.iter().any(|f| f.open_connections() > 0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

/// Health checks for every backend, on a runtime of their own.
fn run_checks(backends: Vec<Arc<BackendState>>, mut stop: watch::Receiver<bool>) {
    let Some(runtime) = single_threaded("the health checks") else {
        return;
    };
    runtime.block_on(async move {
        for backend in &backends {
            health::spawn(backend, &stop);
        }
        let _ = stop.wait_for(|s| *s).await;
    });
}

/// A runtime for the calling thread alone; `None` (said on stderr) if the system refuses one.
fn single_threaded(what: &str) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("halyard run: cannot start a runtime for {what}: {e}");
            None
        }
    }
}
