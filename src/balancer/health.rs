//! Health checks: a task per checked server, TCP connect for `check`, an HTTP request with
//! `option httpchk`, counted against `rise`/`fall` so that only a state flip is logged (or
//! every result with `option log-health-checks`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, Version};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::backend::{BackendState, ServerState};
use crate::config::{HttpCheck, Server};

/// Starts a check task for every server of `backend` that has `check`, until `retired` (a
/// reload replaced the backend) or `stop`.
pub(super) fn spawn(
    backend: &Arc<BackendState>,
    retired: &watch::Receiver<bool>,
    stop: &watch::Receiver<bool>,
) {
    for (i, server) in backend.servers.iter().enumerate() {
        if server.config.check {
            let (retired, stop) = (retired.clone(), stop.clone());
            let checks = check_loop(backend.clone(), i);
            tokio::spawn(async move {
                let ended = |mut flag: watch::Receiver<bool>| async move {
                    let _ = flag.wait_for(|s| *s).await;
                };
                tokio::select! {
                    _ = checks => {}
                    _ = ended(retired) => {}
                    _ = ended(stop) => {}
                }
            });
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    passed: bool,
    /// `Layer4 connection problem`, `Layer7 check passed`, ...
    reason: &'static str,
    /// The HTTP status received.
    code: Option<u16>,
    /// `info: "..."`.
    info: Option<String>,
}

async fn check_loop(backend: Arc<BackendState>, i: usize) {
    let server = backend.servers[i].config.clone();
    let http = backend.config.http_check.clone();
    let read_timeout = backend.config.timeouts.check.unwrap_or(server.inter);
    let connect_timeout = backend
        .config
        .timeouts
        .connect
        .map_or(server.inter, |c| c.min(server.inter));
    // Consecutive results against the current state: failures while up, successes while down.
    let mut streak = 0u32;
    let mut first = true;
    loop {
        let up = backend.servers[i]
            .up
            .load(std::sync::atomic::Ordering::Relaxed);
        let wait = if first {
            // Spread the first checks a little, as HAProxy does, but start quickly.
            Duration::from_millis(10 * (i as u64 % 10))
        } else if streak > 0 {
            server.fastinter
        } else if up {
            server.inter
        } else {
            server.downinter
        };
        first = false;
        tokio::time::sleep(wait).await;
        let started = Instant::now();
        let outcome = run_check(&server, http.as_ref(), connect_timeout, read_timeout).await;
        let took = started.elapsed();
        record(&backend.servers[i], &outcome, took);
        let detail = describe(&outcome, took);
        let needed = if up { server.fall } else { server.rise };
        streak = if outcome.passed == up { 0 } else { streak + 1 };
        let flips = streak >= needed.max(1);
        if backend.config.options.log_health_checks {
            let state = if flips != up { "UP" } else { "DOWN" };
            let health = if up {
                needed - streak.min(needed)
            } else {
                streak
            };
            let status = format!("{health}/{needed} {state}");
            backend.log_check(i, outcome.passed, &detail, &status);
        }
        if flips {
            backend.set_up(i, !up, &detail);
            streak = 0;
        }
    }
}

/// Keeps the check's result for the stats (`check_status`, `chkfail`, ...).
fn record(server: &ServerState, outcome: &Outcome, took: Duration) {
    let mut health = server.health.lock().unwrap_or_else(|e| e.into_inner());
    health.status = short_status(outcome.reason);
    health.description = outcome.reason;
    health.code = outcome.code;
    health.duration = Some(took);
    if !outcome.passed {
        health.failed += 1;
    }
}

/// HAProxy's short name of a check result, as in the stats' `check_status` column.
fn short_status(reason: &str) -> &'static str {
    match reason {
        "Layer4 check passed" => "L4OK",
        "Layer4 timeout" => "L4TOUT",
        "Layer4 connection problem" => "L4CON",
        "Layer7 check passed" => "L7OK",
        "Layer7 timeout" => "L7TOUT",
        "Layer7 wrong status" => "L7STS",
        _ => "L7RSP",
    }
}

/// `, reason: ..., code: ..., info: "...", check duration: Nms`, as HAProxy writes it.
fn describe(outcome: &Outcome, took: Duration) -> String {
    let mut text = format!(", reason: {}", outcome.reason);
    if let Some(code) = outcome.code {
        text.push_str(&format!(", code: {code}"));
    }
    if let Some(info) = &outcome.info {
        text.push_str(&format!(", info: \"{info}\""));
    }
    text.push_str(&format!(", check duration: {}ms", took.as_millis()));
    text
}

async fn run_check(
    server: &Server,
    http: Option<&HttpCheck>,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Outcome {
    let fail = |reason, info: Option<String>| Outcome {
        passed: false,
        reason,
        code: None,
        info,
    };
    let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(server.addr)).await
    {
        Err(_) => return fail("Layer4 timeout", None),
        Ok(Err(e)) => return fail("Layer4 connection problem", Some(os_message(&e))),
        Ok(Ok(stream)) => stream,
    };
    let Some(http) = http else {
        return Outcome {
            passed: true,
            reason: "Layer4 check passed",
            code: None,
            info: None,
        };
    };
    match tokio::time::timeout(read_timeout, http_status(stream, http)).await {
        Err(_) => fail("Layer7 timeout", None),
        Ok(None) => fail("Layer7 invalid response", None),
        Ok(Some((status, reason))) => {
            let passed = match &http.expect {
                Some(expect) => (status == expect.status) != expect.negate,
                None => (200..400).contains(&status),
            };
            Outcome {
                passed,
                reason: if passed {
                    "Layer7 check passed"
                } else {
                    "Layer7 wrong status"
                },
                code: Some(status),
                info: (!passed).then_some(reason),
            }
        }
    }
}

/// Sends the check request and returns the response status and its reason phrase.
async fn http_status(stream: TcpStream, check: &HttpCheck) -> Option<(u16, String)> {
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    let driver = tokio::spawn(conn);
    let version = if check.version.eq_ignore_ascii_case("HTTP/1.1") {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let request = Request::builder()
        .method(check.method.as_str())
        .uri(check.uri.as_str())
        .version(version)
        .body(Empty::<Bytes>::new())
        .ok()?;
    let response = send.send_request(request).await.ok();
    driver.abort();
    let status = response?.status();
    let reason = status.canonical_reason().unwrap_or("").to_owned();
    Some((status.as_u16(), reason))
}

/// The system's error text without Rust's `(os error N)` suffix, as HAProxy's `info`.
fn os_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}
