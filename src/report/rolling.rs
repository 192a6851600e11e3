//! A rolling per-server summary of the last minute (or any window), updated line by line as
//! lines arrive: what `halyard listen --live` shows.
//!
//! Lines are placed by the second they arrived, not by their own timestamps: the view answers
//! "what is happening now". Percentiles are exact nearest-rank over the window, as in the
//! report.

use std::collections::{HashMap, VecDeque};

use comfy_table::{Cell, Color};
use serde::Serialize;

use crate::logline::{lossy, Body, LogLine, ServerEventKind};

/// Requests per server per second of arrival, and each server's last state change.
#[derive(Debug)]
pub struct Rolling {
    window_secs: i64,
    /// `(second, per server id)`, oldest first, at most `window_secs` of them.
    seconds: VecDeque<(i64, HashMap<u32, SecondStats>)>,
    servers: Vec<(String, String)>,
    /// Server id by `backend\nserver`.
    ids: HashMap<Vec<u8>, u32>,
    /// Scratch space for building a key without allocating.
    key: Vec<u8>,
    last_change: HashMap<u32, (ServerEventKind, i64)>,
}

#[derive(Debug, Default)]
struct SecondStats {
    requests: u64,
    status_4xx: u64,
    status_5xx: u64,
    /// DOWN, UP, maintenance and drain events.
    events: u64,
    /// `Ta` (HTTP) or `Tt` (TCP) of each request that completed, in ms.
    times: Vec<u32>,
}

/// One server's line in the rolling view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollingRow {
    /// Backend name.
    pub backend: String,
    /// Server name.
    pub server: String,
    /// Requests or sessions in the window.
    pub requests: u64,
    /// Requests per second over the window.
    pub per_second: f64,
    /// 4xx responses in the window.
    pub status_4xx: u64,
    /// 5xx responses in the window.
    pub status_5xx: u64,
    /// DOWN, UP, maintenance and drain events in the window.
    pub events: u64,
    /// Median `Ta` (HTTP) / `Tt` (TCP) in ms, nearest rank.
    pub p50_ms: Option<u32>,
    /// 99th percentile of the same.
    pub p99_ms: Option<u32>,
    /// The last DOWN, UP, maintenance or drain seen, and how many seconds ago.
    pub last_change: Option<(String, i64)>,
}

impl Rolling {
    /// An empty view over the last `window_secs` seconds.
    pub fn new(window_secs: u32) -> Self {
        Rolling {
            window_secs: i64::from(window_secs.max(1)),
            seconds: VecDeque::new(),
            servers: Vec::new(),
            ids: HashMap::new(),
            key: Vec::new(),
            last_change: HashMap::new(),
        }
    }

    /// Counts one line that arrived at `now` (Unix seconds).
    pub fn add(&mut self, line: &LogLine<'_>, now: i64) {
        match &line.body {
            Body::Http(h) => {
                let id = self.server_id(h.session.backend, h.session.server);
                let stats = self.second(now, id);
                stats.requests += 1;
                stats.status_4xx += u64::from(h.status.is_some_and(|s| (400..500).contains(&s)));
                stats.status_5xx += u64::from(h.status.is_some_and(|s| (500..600).contains(&s)));
                stats.times.extend(h.timers.active.map(clamp_ms));
            }
            Body::Tcp(t) => {
                let id = self.server_id(t.session.backend, t.session.server);
                let stats = self.second(now, id);
                stats.requests += 1;
                stats.times.extend(t.timers.total.map(clamp_ms));
            }
            Body::ServerEvent(e)
                if matches!(
                    e.kind,
                    ServerEventKind::Down
                        | ServerEventKind::Up
                        | ServerEventKind::Maintenance
                        | ServerEventKind::Drain
                ) =>
            {
                let id = self.server_id(e.backend, e.server);
                self.second(now, id).events += 1;
                self.last_change.insert(id, (e.kind, now));
            }
            _ => {}
        }
    }

    /// Every server seen (in order of first appearance) with its figures for the window
    /// ending at `now`.
    pub fn rows(&mut self, now: i64) -> Vec<RollingRow> {
        self.expire(now);
        let mut rows = Vec::with_capacity(self.servers.len());
        for (id, (backend, server)) in self.servers.iter().enumerate() {
            let id = id as u32;
            let mut total = SecondStats::default();
            for (_, per_server) in &self.seconds {
                if let Some(s) = per_server.get(&id) {
                    total.requests += s.requests;
                    total.status_4xx += s.status_4xx;
                    total.status_5xx += s.status_5xx;
                    total.events += s.events;
                    total.times.extend_from_slice(&s.times);
                }
            }
            let SecondStats {
                requests,
                status_4xx,
                status_5xx,
                events,
                mut times,
            } = total;
            rows.push(RollingRow {
                backend: backend.clone(),
                server: server.clone(),
                requests,
                per_second: requests as f64 / self.window_secs as f64,
                status_4xx,
                status_5xx,
                events,
                p50_ms: nearest_rank(&mut times, 50),
                p99_ms: nearest_rank(&mut times, 99),
                last_change: self
                    .last_change
                    .get(&id)
                    .map(|(kind, at)| (kind.as_str().to_uppercase(), now - at)),
            });
        }
        rows
    }

    fn server_id(&mut self, backend: &[u8], server: &[u8]) -> u32 {
        self.key.clear();
        self.key.extend_from_slice(backend);
        self.key.push(b'\n');
        self.key.extend_from_slice(server);
        if let Some(&id) = self.ids.get(self.key.as_slice()) {
            return id;
        }
        let id = self.servers.len() as u32;
        self.servers
            .push((lossy(backend).into_owned(), lossy(server).into_owned()));
        self.ids.insert(self.key.clone(), id);
        id
    }

    fn second(&mut self, now: i64, id: u32) -> &mut SecondStats {
        if self.seconds.back().is_none_or(|(s, _)| *s < now) {
            self.seconds.push_back((now, HashMap::new()));
            self.expire(now);
        }
        // A line stamped earlier than the newest second (clock step) joins the newest second.
        let newest = self.seconds.len() - 1;
        self.seconds[newest].1.entry(id).or_default()
    }

    fn expire(&mut self, now: i64) {
        while self
            .seconds
            .front()
            .is_some_and(|(s, _)| *s <= now - self.window_secs)
        {
            self.seconds.pop_front();
        }
    }
}

fn clamp_ms(ms: u64) -> u32 {
    u32::try_from(ms).unwrap_or(u32::MAX)
}

/// The `p`th percentile by nearest rank: the value at rank ⌈p·n/100⌉.
fn nearest_rank(values: &mut [u32], p: usize) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    let rank = (p * values.len()).div_ceil(100).max(1);
    let (_, value, _) = values.select_nth_unstable(rank - 1);
    Some(*value)
}

/// The rolling view as a terminal table.
pub fn render(rows: &[RollingRow], width: Option<u16>, color: bool) -> String {
    let mut table = super::table::styled_table(
        &[
            "backend/server",
            "req/s",
            "requests",
            "5xx",
            "p50 ms",
            "p99 ms",
            "last change",
        ],
        width,
        color,
    );
    let ms = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
    for row in rows {
        let errors = Cell::new(row.status_5xx);
        let change = match &row.last_change {
            Some((kind, ago)) => {
                let cell = Cell::new(format!("{kind} {ago}s ago"));
                match kind.as_str() {
                    "DOWN" | "MAINTENANCE" if color => cell.fg(Color::Red),
                    "UP" if color => cell.fg(Color::Green),
                    _ => cell,
                }
            }
            None => Cell::new("-"),
        };
        table.add_row(vec![
            Cell::new(format!("{}/{}", row.backend, row.server)),
            Cell::new(format!("{:.1}", row.per_second)),
            Cell::new(row.requests),
            if color && row.status_5xx > 0 {
                errors.fg(Color::Red)
            } else {
                errors
            },
            Cell::new(ms(row.p50_ms)),
            Cell::new(ms(row.p99_ms)),
            change,
        ]);
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logline::parse_line;

    fn http(server: &str, ta: i64, status: u16) -> Vec<u8> {
        format!(
            "<158>Nov 25 01:50:00 haproxy[1]: 127.0.0.1:5 [25/Nov/2026:01:50:00.000] fe be/{server} 0/0/0/0/{ta} {status} 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
        )
        .into_bytes()
    }

    #[test]
    fn window_counts_percentiles_and_changes() {
        let mut view = Rolling::new(60);
        // 100 requests on a: Ta 1..=100, one per second from t=1000; 10 on b, 3 of them 5xx.
        for i in 1..=100 {
            view.add(&parse_line(&http("a", i, 200)), 1000 + i);
        }
        for i in 0..10 {
            view.add(
                &parse_line(&http("b", -1, if i < 3 { 503 } else { 200 })),
                1090,
            );
        }
        let down = b"<129>Nov 25 01:50:00 haproxy[1]: Server be/b is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        view.add(&parse_line(down), 1095);
        let rows = view.rows(1100);
        // The window (1040, 1100] holds a's requests 41..=100.
        assert_eq!(rows[0].server, "a");
        assert_eq!(rows[0].requests, 60);
        assert_eq!(rows[0].per_second, 1.0);
        assert_eq!(rows[0].p50_ms, Some(70));
        assert_eq!(rows[0].p99_ms, Some(100));
        assert_eq!(
            (rows[1].requests, rows[1].status_5xx, rows[1].p50_ms),
            (10, 3, None),
            "Ta -1 counts as a request but has no time"
        );
        assert_eq!(rows[1].last_change, Some(("DOWN".to_owned(), 5)));
        assert_eq!(
            (rows[1].events, rows[0].events, rows[0].status_4xx),
            (1, 0, 0)
        );
        // A minute later only the change remains.
        let later = view.rows(1200);
        assert_eq!((later[0].requests, later[1].requests), (0, 0));
        assert!(render(&later, None, false).contains("DOWN 105s ago"));
    }
}
