//! The events section: server state transitions and the downtime they add up to.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use crate::logline::ServerEventKind;

use super::frame::Frame;
use super::{show_time, Downtime, Events, Filter, Transition};

/// Transitions inside the filter's window, and per server the outages and their length. An
/// outage runs from DOWN (or maintenance) to the next UP; one still open at the end runs to
/// the last time in the input.
/// Lists at most `max_listed` transitions; all count towards downtime.
pub(super) fn events(frame: &Frame, filter: &Filter, max_listed: usize) -> Events {
    let mut transitions = Vec::new();
    let mut total = 0u64;
    let mut outages: BTreeMap<(&str, &str), Outages> = BTreeMap::new();
    for change in &frame.events {
        if change.time.is_some_and(|t| !filter.accepts_time(t)) {
            continue;
        }
        total += 1;
        if transitions.len() < max_listed {
            transitions.push(Transition {
                time: change.time.map(show_time),
                backend: change.backend.clone(),
                server: change.server.clone(),
                state: change.kind.as_str().to_owned(),
                reason: change.reason.clone(),
            });
        }
        let entry = outages
            .entry((&change.backend, &change.server))
            .or_default();
        match change.kind {
            ServerEventKind::Down | ServerEventKind::Maintenance if entry.open.is_none() => {
                entry.count += 1;
                entry.open = Some(change.time);
            }
            ServerEventKind::Up => {
                if let Some(since) = entry.open.take() {
                    entry.seconds += seconds_between(since, change.time);
                }
            }
            _ => {}
        }
    }
    let downtime = outages
        .into_iter()
        .filter(|(_, o)| o.count > 0)
        .map(|((backend, server), o)| Downtime {
            backend: backend.to_owned(),
            server: server.to_owned(),
            outages: o.count,
            seconds: o.seconds
                + o.open
                    .map_or(0.0, |since| seconds_between(since, frame.end)),
            still_down: o.open.is_some(),
        })
        .collect();
    Events {
        transitions,
        transitions_total: total,
        downtime,
    }
}

/// One server's outages so far.
#[derive(Default)]
struct Outages {
    count: u64,
    seconds: f64,
    /// Set while out of service: since when (`None` inside when that line had no time).
    open: Option<Option<NaiveDateTime>>,
}

fn seconds_between(from: Option<NaiveDateTime>, to: Option<NaiveDateTime>) -> f64 {
    match (from, to) {
        (Some(a), Some(b)) if b > a => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    }
}
