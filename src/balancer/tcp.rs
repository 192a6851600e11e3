//! TCP frontends (`mode tcp`): each client connection is relayed byte for byte to one server
//! of the default backend, and logged as one tcplog line when the session ends, as HAProxy
//! does for L4 services (databases, SMTP, TLS passed through).
//!
//! Termination states (two characters): `--` both sides closed; `SC` no server or every
//! connect failed (the client is closed at once); `sQ` `timeout queue` passed while every
//! server was at its `maxconn`; `cD`/`sD` the session sat idle past
//! `timeout client`/`timeout server`; `CD`/`SD` the client's/server's side broke.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Local};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::backend::Connected;
use super::frontend::OpenConnection;
use super::log::severity;
use super::pool;
use super::route::Route;
use super::select::RequestKey;
use super::stats::{Ended, Outcome};
use super::tls::ClientStream;
use crate::logline::{Body, Session, TcpLog, TcpTimers, TerminationState};

/// Relays one client connection until both sides are done, then logs it.
pub(super) async fn serve(client: ClientStream, peer: SocketAddr, open: OpenConnection) {
    let frontend = open.frontend().clone();
    let mut log = SessionLog {
        peer,
        route: Route::new(frontend.clone(), client.is_tls()),
        accept_date: Local::now(),
        started: Instant::now(),
        to_client: 0,
        from_client: 0,
        termination: *b"SC",
    };
    let backend = frontend
        .config
        .default_backend
        .as_deref()
        .and_then(|name| frontend.backend(name));
    let Some(backend) = backend else {
        return log.send();
    };
    log.route.backend = Some(backend.clone());
    let connect_timeout = backend
        .config
        .timeouts
        .connect
        .unwrap_or(Duration::from_secs(5));
    // Only the client's address is known (`balance source`); built inside the closure, as
    // the key is not `Send`.
    let pick = |avoid: &[usize]| {
        let no_header = |_: &str| None;
        let key = RequestKey {
            client: peer.ip().to_canonical(),
            uri: "",
            header: &no_header,
        };
        backend.pick(&key, avoid)
    };
    let attempts = backend
        .connect(pick, |i| {
            pool::open_tcp(backend.servers[i].config.addr, connect_timeout)
        })
        .await;
    let failed = log.route.note_attempts(&attempts);
    let Some(Connected { guard, conn, .. }) = attempts.connected else {
        log.termination = failed.unwrap_or(*b"SC");
        return log.send();
    };
    let timeouts = (
        frontend.config.timeouts.client,
        backend.config.timeouts.server,
    );
    relay(client, conn, timeouts, &mut log).await;
    drop(guard);
    log.send();
}

/// Copies both ways until both sides have closed, one side breaks, or the session is idle
/// past its timeouts; fills in the log's bytes and termination state.
async fn relay(
    client: ClientStream,
    server: TcpStream,
    (client_timeout, server_timeout): (Option<Duration>, Option<Duration>),
    log: &mut SessionLog,
) {
    let activity = Arc::new(Activity::new());
    let mut client = Tracked::new(client, activity.clone());
    let mut server = Tracked::new(server, activity.clone());
    // The first timeout to pass ends an idle session; with equal ones, HAProxy names the
    // client's.
    let idle = match (client_timeout, server_timeout) {
        (Some(c), Some(s)) if s < c => Some((s, *b"sD")),
        (Some(c), _) => Some((c, *b"cD")),
        (None, Some(s)) => Some((s, *b"sD")),
        (None, None) => None,
    };
    let copied = tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut server) => Some(copied),
        _ = activity.idle_for(idle.map(|(limit, _)| limit)) => None,
    };
    log.termination = match copied {
        Some(Ok(_)) => *b"--",
        Some(Err(_)) if server.failed => *b"SD",
        Some(Err(_)) => *b"CD",
        None => idle.map_or(*b"--", |(_, state)| state),
    };
    log.to_client = client.written;
    log.from_client = server.written;
}

/// When a session last moved a byte, either way.
struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Returns once nothing has moved for `limit` (never without one).
    async fn idle_for(&self, limit: Option<Duration>) {
        let Some(limit) = limit else {
            return std::future::pending().await;
        };
        loop {
            let last = self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            if last + limit <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(last + limit).await;
        }
    }
}

/// One side of a relayed session: notes activity, the bytes written to it and whether it
/// broke.
struct Tracked<S> {
    stream: S,
    activity: Arc<Activity>,
    written: u64,
    failed: bool,
}

impl<S> Tracked<S> {
    fn new(stream: S, activity: Arc<Activity>) -> Tracked<S> {
        Tracked {
            stream,
            activity,
            written: 0,
            failed: false,
        }
    }

    fn note<T>(&mut self, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match &polled {
            Poll::Ready(Ok(_)) => self.activity.touch(),
            Poll::Ready(Err(_)) => self.failed = true,
            Poll::Pending => {}
        }
        polled
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.note(polled)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.written += n as u64;
        }
        self.note(polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.note(polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.note(polled)
    }
}

/// What the tcplog line of one session says.
struct SessionLog {
    peer: SocketAddr,
    /// Frontend, backend and server: the names and the counters.
    route: Route,
    accept_date: DateTime<Local>,
    started: Instant,
    to_client: u64,
    from_client: u64,
    termination: [u8; 2],
}

impl SessionLog {
    /// Adds the session to its counters and sends the line (not for a client that sent
    /// nothing under `option dontlognull`).
    fn send(&self) {
        self.route.record(&Outcome {
            ended: Ended::Session,
            status: None,
            bytes_in: self.from_client,
            bytes_out: self.to_client,
            termination: self.termination,
            response_ms: None,
        });
        let frontend = &self.route.frontend;
        if frontend.targets.is_empty()
            || (frontend.config.options.dontlognull && self.from_client == 0)
        {
            return;
        }
        let ip = self.peer.ip().to_canonical().to_string();
        let (frontend_name, backend, server) = self.route.names();
        let body = Body::Tcp(TcpLog {
            session: Session {
                client_ip: ip.as_bytes(),
                client_port: self.peer.port(),
                accept_date: self.accept_date.naive_local(),
                frontend: frontend_name.as_bytes(),
                backend: backend.as_bytes(),
                server: server.as_bytes(),
            },
            timers: TcpTimers {
                queue: self.route.queue_ms,
                connect: self.route.connect_ms,
                total: Some(self.started.elapsed().as_millis() as u64),
                total_partial: false,
            },
            bytes_read: self.to_client,
            bytes_partial: false,
            termination_state: TerminationState::new(&self.termination)
                .unwrap_or_else(|| TerminationState::new(b"--").expect("valid codes")),
            connections: self.route.connections,
            queues: self.route.queues,
        });
        frontend
            .log
            .send_body(&frontend.targets, severity::INFO, body);
    }
}
