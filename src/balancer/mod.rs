//! The load balancer: frontends accepting clients, backends choosing servers, health checks,
//! and HAProxy's log lines for every request.
//!
//! [`Balancer::start`] binds every frontend before it returns, so a bad address is an error
//! at start, not a log line later; everything then runs on the caller's tokio runtime until
//! [`Balancer::stop`].

mod backend;
mod health;
mod http;
mod httplog;
mod log;
mod pool;
pub mod select;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Mode, ProxyConfig};
use backend::BackendState;
use http::FrontendState;
pub use log::LogSender;

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
    /// The log sockets could not be opened.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running balancer.
#[derive(Debug)]
pub struct Balancer {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    bound: Vec<(String, SocketAddr)>,
    log: Arc<LogSender>,
}

impl Balancer {
    /// Binds every frontend and starts serving and health-checking; must be called on a tokio
    /// runtime.
    pub async fn start(config: &ProxyConfig) -> Result<Balancer, StartError> {
        let log = LogSender::new()?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let backends: Vec<Arc<BackendState>> = config
            .backends
            .iter()
            .map(|b| Arc::new(BackendState::new(b.clone(), log.clone())))
            .collect();
        let process_connections = Arc::new(AtomicU32::new(0));
        let mut bound = Vec::new();
        for fe in &config.frontends {
            if fe.mode == Mode::Tcp {
                return Err(StartError::Unsupported(format!(
                    "frontend '{}': mode tcp is not supported yet",
                    fe.name
                )));
            }
            let state = Arc::new(FrontendState {
                config: fe.clone(),
                backends: backends.clone(),
                connections: AtomicU32::new(0),
                process_connections: process_connections.clone(),
                log: log.clone(),
                targets: fe.logs.clone().into(),
            });
            for &addr in &fe.binds {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|error| StartError::Bind {
                        frontend: fe.name.clone(),
                        addr,
                        error,
                    })?;
                bound.push((fe.name.clone(), listener.local_addr()?));
                tasks.spawn(http::serve(listener, state.clone(), stopped.clone()));
            }
        }
        for backend in &backends {
            health::spawn(backend, &stopped);
        }
        for fe in &config.frontends {
            log.send_text(
                &fe.logs,
                log::severity::NOTICE,
                &format!("Proxy {} started.", fe.name),
            );
        }
        Ok(Balancer {
            stop,
            tasks,
            bound,
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
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(grace, drain).await;
    }
}
