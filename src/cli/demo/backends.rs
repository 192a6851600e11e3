//! The demo's web servers: hyper servers on 127.0.0.1 that answer every path with their name,
//! as the classic lab's `index.html` does, one of them slow and failing now and then. A server
//! can be stopped (its port then refuses connections, as a crashed server's does) and started
//! again on the same port.
//!
//! The health-checked page never fails: a server that fails a few requests in a row would
//! otherwise go DOWN now and then, and the demo's only outage is the one it makes on purpose.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// The page the balancer's health checks ask for (`option httpchk GET /index.html`).
pub(super) const CHECKED_PATH: &str = "/index.html";

/// How a demo server answers.
#[derive(Debug, Clone)]
pub(super) struct Behaviour {
    /// Milliseconds each answer waits, drawn uniformly from the range.
    pub delay_ms: RangeInclusive<u64>,
    /// Percentage of answers that are `500 Internal Server Error`, except on [`CHECKED_PATH`].
    pub error_percent: u64,
}

impl Behaviour {
    /// How long the answer drawn as `draw` waits.
    fn delay(&self, draw: u64) -> Duration {
        let (low, high) = (*self.delay_ms.start(), *self.delay_ms.end());
        // The high bits pick the delay, the low ones the status: the two stay independent.
        Duration::from_millis(low + (draw >> 32) % (high.saturating_sub(low) + 1))
    }

    /// The status of the answer to `path` drawn as `draw`.
    fn status(&self, path: &str, draw: u64) -> StatusCode {
        if path != CHECKED_PATH && draw % 100 < self.error_percent {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }
}

/// One demo web server.
#[derive(Debug)]
pub(super) struct DemoBackend {
    /// Its name, the body of every answer and its `server` name in the config.
    pub name: &'static str,
    /// Where it listens (the same port across a stop and a start).
    pub addr: SocketAddr,
    behaviour: Arc<Behaviour>,
    /// The accept loop, owning every connection; `None` while stopped.
    serving: Option<JoinHandle<()>>,
    /// Answers so far, the seed of each answer's draw.
    answered: Arc<AtomicU64>,
}

impl DemoBackend {
    /// Starts serving on a free port of 127.0.0.1 (inside a tokio runtime).
    pub async fn start(name: &'static str, behaviour: Behaviour) -> std::io::Result<Self> {
        let listener = bind("127.0.0.1:0".parse().map_err(std::io::Error::other)?)?;
        let mut backend = DemoBackend {
            name,
            addr: listener.local_addr()?,
            behaviour: Arc::new(behaviour),
            serving: None,
            answered: Arc::new(AtomicU64::new(seed())),
        };
        backend.serve(listener);
        Ok(backend)
    }

    /// Closes the listening socket and every connection, and returns once they are closed.
    pub async fn stop(&mut self) {
        if let Some(serving) = self.serving.take() {
            serving.abort();
            // Aborting drops the accept loop's JoinSet, which aborts every connection task.
            let _ = serving.await;
        }
    }

    /// Serves again on the same port.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        let listener = bind(self.addr)?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&mut self, listener: TcpListener) {
        let (name, behaviour, answered) =
            (self.name, self.behaviour.clone(), self.answered.clone());
        self.serving = Some(tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let (behaviour, answered) = (behaviour.clone(), answered.clone());
                        connections.spawn(async move {
                            let service = service_fn(move |request| {
                                let draw = mix(answered.fetch_add(1, Ordering::Relaxed));
                                answer(name, behaviour.clone(), draw, request)
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    // Reaps finished connections so the set holds only open ones.
                    Some(_) = connections.join_next() => {}
                }
            }
        }));
    }
}

/// A listening socket with SO_REUSEADDR, so that a restart can take the port back while the
/// connections of the stopped server are still in TIME_WAIT.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn answer(
    name: &'static str,
    behaviour: Arc<Behaviour>,
    draw: u64,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let delay = behaviour.delay(draw);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::new(Full::new(Bytes::from(format!("{name}\n"))));
    *response.status_mut() = behaviour.status(request.uri().path(), draw);
    Ok(response)
}

/// A start for the draws that differs between runs.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// SplitMix64's finaliser: a counter in, evenly spread bits out (the demo needs variety, not
/// cryptography, and no dependency for it).
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_spread_over_delays_and_errors() {
        let slow = Behaviour {
            delay_ms: 20..=80,
            error_percent: 5,
        };
        let draws: Vec<u64> = (0..10_000).map(mix).collect();
        let errors = draws
            .iter()
            .filter(|&&d| slow.status("/login", d) == StatusCode::INTERNAL_SERVER_ERROR)
            .count();
        assert!((400..600).contains(&errors), "{errors} of 10000 at 5%");
        assert!(
            draws
                .iter()
                .all(|&d| slow.status(CHECKED_PATH, d) == StatusCode::OK),
            "the checked page never fails"
        );
        let delays: Vec<Duration> = draws.iter().map(|&d| slow.delay(d)).collect();
        assert_eq!(delays.iter().min(), Some(&Duration::from_millis(20)));
        assert_eq!(delays.iter().max(), Some(&Duration::from_millis(80)));
        let fast = Behaviour {
            delay_ms: 0..=0,
            error_percent: 0,
        };
        assert!(draws.iter().all(|&d| fast.delay(d).is_zero()));
        assert!(draws
            .iter()
            .all(|&d| fast.status("/login", d) == StatusCode::OK));
    }

    #[tokio::test]
    async fn a_stopped_server_refuses_connections_and_a_restarted_one_answers() {
        let fast = Behaviour {
            delay_ms: 0..=0,
            error_percent: 0,
        };
        let mut backend = DemoBackend::start("inst1", fast).await.unwrap();
        let get = |addr| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream
                .write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await?;
            let mut text = String::new();
            stream.read_to_string(&mut text).await?;
            Ok::<_, std::io::Error>(text)
        };
        let answer = get(backend.addr).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("\r\n\r\ninst1\n"), "{answer}");
        backend.stop().await;
        let refused = get(backend.addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        backend.restart().await.unwrap();
        assert!(get(backend.addr).await.unwrap().ends_with("inst1\n"));
    }
}
