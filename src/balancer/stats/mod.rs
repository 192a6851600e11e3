//! Statistics: what every frontend, backend and server has done since start, counted as
//! requests end, and shown as HAProxy shows it: the stats page (HTML, `;csv` with HAProxy's
//! columns, `;json`, `/metrics` for Prometheus) and `show stat` on the control socket.

mod counters;
mod html;
pub(super) mod page;
mod prometheus;
mod rows;

use std::time::{Duration, Instant};

pub(super) use counters::{unix_now, Counters};
pub(super) use rows::{csv, proxy_ids, rows, Kind};

/// A server's last health check and state changes, for `check_status`, `lastchg`, ...
#[derive(Debug, Clone)]
pub(super) struct HealthRecord {
    /// HAProxy's short check status (`L4OK`, `L4CON`, `L7STS`, ...); empty before a check.
    pub status: &'static str,
    /// The HTTP status of the last HTTP check.
    pub code: Option<u16>,
    /// How long the last check took.
    pub duration: Option<Duration>,
    /// `Layer4 check passed`, ...
    pub description: &'static str,
    /// `chkfail`: checks that failed.
    pub failed: u64,
    /// `chkdown`: times the server went from UP to DOWN.
    pub downs: u64,
    /// When the server last went up or down.
    pub changed: Instant,
    /// Time spent DOWN before the current DOWN period (or in all, when up).
    pub downtime: Duration,
}

impl Default for HealthRecord {
    fn default() -> Self {
        HealthRecord {
            status: "",
            code: None,
            duration: None,
            description: "",
            failed: 0,
            downs: 0,
            changed: Instant::now(),
            downtime: Duration::ZERO,
        }
    }
}

impl HealthRecord {
    /// The server went up (`true`) or down.
    pub(super) fn changed(&mut self, up: bool) {
        if up {
            self.downtime += self.changed.elapsed();
        } else {
            self.downs += 1;
        }
        self.changed = Instant::now();
    }

    /// Time spent DOWN in all, `down` telling whether it is down now.
    pub(super) fn total_downtime(&self, down: bool) -> Duration {
        if down {
            self.downtime + self.changed.elapsed()
        } else {
            self.downtime
        }
    }
}

/// What kind of thing ended, for the counters only it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// An HTTP request, answered by a server or by halyard.
    Request,
    /// An HTTP request refused by `http-request deny` (`dreq`).
    Denied,
    /// A request that could not be read: bad, too large or timed out (`ereq`).
    Unreadable,
    /// A TCP session.
    Session,
}

/// The facts of an ended request or session the counters need.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outcome {
    pub ended: Ended,
    pub status: Option<u16>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The first two termination-state characters.
    pub termination: [u8; 2],
    /// Tr in ms, when a response came.
    pub response_ms: Option<u64>,
}

/// Adds an ended request or session to every counter it belongs to: its frontend's, and its
/// backend's and server's when it got that far.
pub(super) fn record(
    frontend: &Counters,
    backend: Option<&Counters>,
    server: Option<&Counters>,
    outcome: &Outcome,
) {
    let Outcome {
        ended,
        status,
        bytes_in,
        bytes_out,
        termination,
        response_ms,
    } = *outcome;
    let everyone = [Some(frontend), backend, server];
    for counters in everyone.into_iter().flatten() {
        Counters::add(&counters.bytes_in, bytes_in);
        Counters::add(&counters.bytes_out, bytes_out);
        if let (Some(status), false) = (status, ended == Ended::Session) {
            counters.status(status);
        }
    }
    if ended != Ended::Session {
        Counters::add(&frontend.requests, 1);
        frontend.request_rate.hit(counters::unix_now());
    }
    match ended {
        Ended::Denied => Counters::add(&frontend.denied, 1),
        Ended::Unreadable => Counters::add(&frontend.request_errors, 1),
        Ended::Request | Ended::Session => {}
    }
    let [cause, phase] = termination;
    for counters in [backend, server].into_iter().flatten() {
        match (cause, phase) {
            (b'C', _) => Counters::add(&counters.client_aborts, 1),
            (b'S', b'H' | b'D') => {
                Counters::add(&counters.server_aborts, 1);
                Counters::add(&counters.response_errors, 1);
            }
            (b's', b'H' | b'D') => Counters::add(&counters.response_errors, 1),
            _ => {}
        }
        if let Some(ms) = response_ms {
            counters.response_ms.record(ms);
        }
    }
}
