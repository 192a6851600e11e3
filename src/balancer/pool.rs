//! Connections to one server: HTTP/1 client connections halyard owns (not a generic client), so
//! that Tc is measured per connect, a connection goes back to the pool only once its response
//! is fully read, and a failed connect can be retried elsewhere.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections kept per server.
const MAX_IDLE: usize = 64;

/// A server's idle keep-alive connections.
#[derive(Debug, Default)]
pub(super) struct Pool {
    idle: Mutex<Vec<SendRequest<Incoming>>>,
}

/// Why a connection to a server could not be made.
#[derive(Debug)]
pub(super) enum ConnectError {
    /// `timeout connect` passed.
    Timeout,
    /// Refused, unreachable, reset during the handshake.
    Failed,
}

impl Pool {
    /// An idle connection still open, if one is left. It may still be finishing the exchange
    /// that freed it: the caller awaits `ready()` before sending.
    pub(super) fn take(&self) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(conn) = idle.pop() {
            if !conn.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps a connection whose last response was fully read, for the next request. (Right
    /// after the body's last frame its connection task may not have noticed the end yet, so
    /// `is_ready()` would still be false: only a closed connection is dropped here.)
    pub(super) fn give_back(&self, conn: SendRequest<Incoming>) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Closes every idle connection (the server went down).
    pub(super) fn clear(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Opens a TCP connection to `addr` within `timeout`.
pub(super) async fn open_tcp(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let attempt = async {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(stream)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(_)) => Err(ConnectError::Failed),
        Err(_) => Err(ConnectError::Timeout),
    }
}

/// Opens a new HTTP/1 connection to `addr` within `timeout`.
pub(super) async fn connect(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<SendRequest<Incoming>, ConnectError> {
    let started = tokio::time::Instant::now();
    let stream = open_tcp(addr, timeout).await?;
    let attempt = async {
        let (send, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        // The connection task ends when the server or the pool drops it; upgrades (WebSocket)
        // need it kept alive beyond the response.
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok::<_, std::io::Error>(send)
    };
    match tokio::time::timeout_at(started + timeout, attempt).await {
        Ok(Ok(send)) => Ok(send),
        Ok(Err(_)) => Err(ConnectError::Failed),
        Err(_) => Err(ConnectError::Timeout),
    }
}
