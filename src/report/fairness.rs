//! How evenly a backend's load followed its weights.
//!
//! Each server's load is normalised by its weight (`requests / weight`), so a perfectly
//! weighted round robin gives every server the same figure. Over those figures:
//! - Jain's index `(Σx)² / (n·Σx²)`: 1 when all are equal, `1/n` when one server takes all;
//! - max/min ratio: how many times more the busiest server got than the idlest;
//! - coefficient of variation `σ/μ`: 0 when all are equal.
//!
//! The same index per interval finds the moment the spread was worst. Intervals in which the
//! backend had fewer requests than servers are skipped: there, an uneven spread is forced.

use std::collections::BTreeMap;

use crate::config::ServerWeight;

use super::analysis::{is_pseudo_server, local_time, Intervals};
use super::frame::Frame;
use super::{show_time, FairnessRow, IdleIntervals, IntervalJain, Weights};

/// A function giving a server's weight in `backend`: `Some(0)` for backup and disabled
/// servers, `None` for a server the config does not know; every server weighs 1 without a
/// config (or when the config does not have the backend).
pub(super) fn weight_lookup<'a>(
    weights: Option<&'a Weights>,
    backend: &str,
) -> impl Fn(&str) -> Option<u32> + 'a {
    let configured = weights.and_then(|w| w.get(backend));
    move |server: &str| match configured {
        None => Some(1),
        Some(servers) => servers
            .iter()
            .find(|s| s.name == server)
            .map(ServerWeight::balanced_weight),
    }
}

/// Jain's fairness index of `loads`; `None` when there is no load at all.
pub fn jain_index(loads: &[f64]) -> Option<f64> {
    let sum: f64 = loads.iter().sum();
    let squares: f64 = loads.iter().map(|x| x * x).sum();
    (squares > 0.0).then(|| sum * sum / (loads.len() as f64 * squares))
}

/// Coefficient of variation (population standard deviation over mean).
fn coefficient_of_variation(loads: &[f64]) -> Option<f64> {
    let n = loads.len() as f64;
    let mean = loads.iter().sum::<f64>() / n;
    if loads.is_empty() || mean <= 0.0 {
        return None;
    }
    let variance = loads.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    Some(variance.sqrt() / mean)
}

/// The fairness section: one row per backend with traffic.
pub(super) fn fairness(
    frame: &Frame,
    intervals: &Intervals,
    weights: Option<&Weights>,
) -> Vec<FairnessRow> {
    // Per backend: member servers (name -> weight) and their request totals.
    let mut backends: BTreeMap<&str, BTreeMap<&str, (u32, u64)>> = BTreeMap::new();
    for (i, &server) in intervals.server.iter().enumerate() {
        let (backend, name) = &frame.servers[server as usize];
        let members = backends.entry(backend).or_default();
        if let Some(weight) = weight_lookup(weights, backend)(name) {
            members.entry(name).or_insert((weight, 0)).1 += intervals.requests[i];
        }
    }
    for (backend, members) in &mut backends {
        if let Some(configured) = weights.and_then(|w| w.get(*backend)) {
            for s in configured {
                members.entry(&s.name).or_insert((s.balanced_weight(), 0));
            }
        }
        members.retain(|name, (weight, _)| *weight > 0 && !is_pseudo_server(name));
    }
    backends
        .into_iter()
        .filter(|(_, members)| !members.is_empty())
        .map(|(backend, members)| backend_fairness(frame, intervals, backend, &members))
        .collect()
}

fn backend_fairness(
    frame: &Frame,
    intervals: &Intervals,
    backend: &str,
    members: &BTreeMap<&str, (u32, u64)>,
) -> FairnessRow {
    let names: Vec<&str> = members.keys().copied().collect();
    let loads: Vec<f64> = members
        .values()
        .map(|&(w, n)| n as f64 / f64::from(w))
        .collect();
    let (min, max) = loads.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    });
    let total: u64 = members.values().map(|m| m.1).sum();
    // Requests per interval start, per member index.
    let mut per_interval: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    for (i, &server) in intervals.server.iter().enumerate() {
        let (b, name) = &frame.servers[server as usize];
        if b != backend {
            continue;
        }
        if let Some(at) = names.iter().position(|n| n == name) {
            per_interval
                .entry(intervals.start[i])
                .or_insert_with(|| vec![0; names.len()])[at] += intervals.requests[i];
        }
    }
    let mut idle = vec![0u64; names.len()];
    let mut jain_by_interval = Vec::new();
    let mut worst: Option<(f64, i64)> = None;
    for (&start, counts) in &per_interval {
        if counts.iter().sum::<u64>() < names.len() as u64 {
            continue;
        }
        for (i, &n) in counts.iter().enumerate() {
            idle[i] += u64::from(n == 0);
        }
        let loads: Vec<f64> = counts
            .iter()
            .zip(members.values())
            .map(|(&n, &(w, _))| n as f64 / f64::from(w))
            .collect();
        let Some(jain) = jain_index(&loads) else {
            continue;
        };
        if worst.is_none_or(|(j, _)| jain < j) {
            worst = Some((jain, start));
        }
        jain_by_interval.push(IntervalJain {
            start: local_time(start).map(show_time).unwrap_or_default(),
            jain,
        });
    }
    FairnessRow {
        backend: backend.to_owned(),
        servers: names.len(),
        jain_index: jain_index(&loads),
        max_min_ratio: (min > 0.0).then(|| max / min),
        cv: coefficient_of_variation(&loads),
        worst_interval_jain: worst.map(|w| w.0),
        worst_interval_start: worst.and_then(|w| local_time(w.1)).map(show_time),
        idle_servers: members
            .iter()
            .filter(|(_, &(_, n))| n == 0 && total > 0)
            .map(|(name, _)| (*name).to_owned())
            .collect(),
        idle_intervals: names
            .iter()
            .zip(idle)
            .filter(|&(_, n)| n > 0)
            .map(|(name, intervals)| IdleIntervals {
                server: (*name).to_owned(),
                intervals,
            })
            .collect(),
        jain_by_interval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_is_one_when_even_and_one_over_n_when_one_server_takes_all() {
        assert_eq!(jain_index(&[5.0, 5.0, 5.0]), Some(1.0));
        assert_eq!(jain_index(&[9.0, 0.0, 0.0]), Some(1.0 / 3.0));
        assert_eq!(jain_index(&[0.0, 0.0]), None);
        // (1+3)^2 / (2 * (1+9)) = 0.8
        assert_eq!(jain_index(&[1.0, 3.0]), Some(0.8));
    }

    #[test]
    fn cv_is_zero_when_even() {
        assert_eq!(coefficient_of_variation(&[2.0, 2.0]), Some(0.0));
        // mean 2, population sd 1
        assert_eq!(coefficient_of_variation(&[1.0, 3.0]), Some(0.5));
        assert_eq!(coefficient_of_variation(&[]), None);
    }
}
