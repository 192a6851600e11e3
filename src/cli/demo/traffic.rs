//! The demo's clients: a few keep-alive HTTP/1.1 connections to the balancer sending requests
//! at a fixed rate, counting what comes back.
//!
//! Request `k` is due at `start + k / rate`, whichever connection takes it: a connection held
//! up by a slow answer leaves its next requests to the others, so the rate holds as long as
//! some connection is free (a late request is sent at once, not dropped).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::time::Instant;

use super::backends::CHECKED_PATH;

/// The paths requested, in turn: the health-checked page most often, so the report's top URLs
/// have something to rank (and the slow server's errors, which spare that page, show on the
/// others).
const PATHS: [&str; 5] = [
    CHECKED_PATH,
    "/api/orders",
    CHECKED_PATH,
    "/static/app.css",
    "/login",
];

/// A request taking longer than this counts as failed (the slowest demo server answers in
/// 80 ms; `timeout server` would answer a stuck one with a 504 only after a minute).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the clients have seen so far.
#[derive(Debug, Default)]
pub(super) struct Counts {
    /// Requests sent.
    pub sent: AtomicU64,
    /// Answered 1xx to 3xx.
    pub ok: AtomicU64,
    /// Answered 4xx.
    pub status_4xx: AtomicU64,
    /// Answered 5xx.
    pub status_5xx: AtomicU64,
    /// No answer (connection refused or closed, timeout).
    pub failed: AtomicU64,
}

impl Counts {
    fn record(&self, status: Option<u16>) {
        let counter = match status {
            Some(500..) => &self.status_5xx,
            Some(400..500) => &self.status_4xx,
            Some(_) => &self.ok,
            None => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `N sent: N ok, N 5xx, ...`, leaving out the zeros after `ok`.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut text = format!("{} sent: {} ok", get(&self.sent), get(&self.ok));
        for (n, what) in [
            (get(&self.status_4xx), "4xx"),
            (get(&self.status_5xx), "5xx"),
            (get(&self.failed), "failed"),
        ] {
            if n > 0 {
                text.push_str(&format!(", {n} {what}"));
            }
        }
        text
    }
}

/// When each request is due.
#[derive(Debug)]
struct Schedule {
    start: Instant,
    rate: f64,
    total: u64,
    next: AtomicU64,
}

impl Schedule {
    /// The next request's number and when it is due; `None` once all are taken.
    fn take(&self) -> Option<(u64, Instant)> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        (k < self.total).then(|| {
            (
                k,
                self.start + Duration::from_secs_f64(k as f64 / self.rate),
            )
        })
    }
}

/// Sends `total` requests to `target`, `rate` a second from now, over `connections`
/// connections; returns when all are answered or `stop` turns true.
pub(super) async fn drive(
    target: SocketAddr,
    rate: u32,
    total: u64,
    connections: usize,
    counts: Arc<Counts>,
    stop: watch::Receiver<bool>,
) {
    let schedule = Arc::new(Schedule {
        start: Instant::now(),
        rate: f64::from(rate.max(1)),
        total,
        next: AtomicU64::new(0),
    });
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        clients.spawn(client(
            target,
            schedule.clone(),
            counts.clone(),
            stop.clone(),
        ));
    }
    while clients.join_next().await.is_some() {}
}

/// Number of client connections for a rate: enough that the slow server's answers do not
/// hold the rate back.
pub(super) fn connections_for(rate: u32) -> usize {
    (rate / 20).clamp(4, 64) as usize
}

/// One client connection taking requests off the schedule until it is done.
async fn client(
    target: SocketAddr,
    schedule: Arc<Schedule>,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = None;
    while let Some((k, due)) = schedule.take() {
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        counts.sent.fetch_add(1, Ordering::Relaxed);
        // `k` cycles through the paths, independent of which connection sends it.
        let path = PATHS[(k % PATHS.len() as u64) as usize];
        let status = tokio::time::timeout(REQUEST_TIMEOUT, get(&mut conn, target, path))
            .await
            .ok()
            .flatten();
        if status.is_none() {
            conn = None;
        }
        counts.record(status);
    }
}

/// `GET path` on the kept-alive connection (opening one when there is none, or again when the
/// balancer closed it between two requests); the status received.
async fn get(
    conn: &mut Option<SendRequest<Empty<Bytes>>>,
    target: SocketAddr,
    path: &str,
) -> Option<u16> {
    let reused = conn.as_ref().is_some_and(|c| !c.is_closed());
    if !reused {
        *conn = Some(connect(target).await?);
    }
    match send(conn.as_mut()?, target, path).await {
        Some(status) => Some(status),
        // A kept-alive connection may close just as the request goes out: one more try on a
        // new one, as browsers do.
        None if reused => {
            *conn = Some(connect(target).await?);
            send(conn.as_mut()?, target, path).await
        }
        None => None,
    }
}

async fn connect(target: SocketAddr) -> Option<SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(target).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(send)
}

/// Sends one request and reads the whole answer; `None` when there was no complete answer.
async fn send(conn: &mut SendRequest<Empty<Bytes>>, target: SocketAddr, path: &str) -> Option<u16> {
    conn.ready().await.ok()?;
    let request = Request::get(path)
        .header(hyper::header::HOST, target.to_string())
        .header(hyper::header::USER_AGENT, "halyard-demo")
        .body(Empty::new())
        .ok()?;
    let response = conn.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spreads_requests_evenly_and_ends() {
        let start = Instant::now();
        let schedule = Schedule {
            start,
            rate: 200.0,
            total: 3,
            next: AtomicU64::new(0),
        };
        let due: Vec<Duration> = std::iter::from_fn(|| schedule.take())
            .map(|(_, at)| at - start)
            .collect();
        assert_eq!(
            due,
            [0, 5, 10].map(Duration::from_millis),
            "200 req/s is one every 5 ms"
        );
        assert_eq!(schedule.take(), None);
    }

    #[test]
    fn counts_sort_answers_by_class() {
        let counts = Counts::default();
        counts.sent.store(5, Ordering::Relaxed);
        for status in [Some(200), Some(304), Some(500), Some(503), None] {
            counts.record(status);
        }
        assert_eq!(counts.summary(), "5 sent: 2 ok, 2 5xx, 1 failed");
    }
}
