//! The polars side of the report: each section is one or two group-bys over the request frame;
//! what is left for Rust is turning the (small) results into rows and names.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime};
use polars::prelude::*;

use super::frame::{self, col, Frame, Tally};
use super::termination::meaning;
use super::{
    show_time, status_class, BackendStatusRow, ClientRow, ServerRow, StatusRow, Summary,
    TerminationRow, TimelineRow, TimerStats, Top, UrlRow, Weights,
};
use crate::logline::lossy;

/// Nearest rank: the value at rank ⌈q·n⌉, one that was actually logged.
const PERCENTILE: QuantileMethod = QuantileMethod::Equiprobable;

/// A millisecond timestamp of the frame as a local time.
pub(super) fn local_time(ms: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(ms).map(|t| t.naive_utc())
}

fn show_ms(ms: i64) -> Option<String> {
    local_time(ms).map(show_time)
}

/// A numeric column as u64 (nulls as 0).
fn u64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u64>> {
    let c = df.column(name)?.cast(&DataType::UInt64)?;
    Ok(c.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

/// A numeric column as i64 (nulls as -1).
fn i64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    let c = df.column(name)?.cast(&DataType::Int64)?;
    Ok(c.i64()?.iter().map(|v| v.unwrap_or(-1)).collect())
}

/// A numeric column as f64, nulls kept.
fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.iter().collect())
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The summary section.
pub(super) fn summary(frame: &Frame) -> PolarsResult<Summary> {
    let c = frame.counts;
    let mut summary = Summary {
        lines_read: c.lines,
        http_requests: c.http,
        tcp_sessions: c.tcp,
        events: c.events,
        malformed: c.malformed,
        malformed_lines: frame.malformed.clone(),
        filtered_out: c.filtered_out,
        ..Summary::default()
    };
    let Some((first, last)) = frame.span else {
        return Ok(summary);
    };
    summary.first = Some(show_time(first));
    summary.last = Some(show_time(last));
    if c.http > 0 {
        let seconds = (last - first).num_milliseconds() as f64 / 1000.0;
        summary.mean_rps = Some(if seconds > 0.0 {
            c.http as f64 / seconds
        } else {
            c.http as f64
        });
        let peak = frame
            .df
            .clone()
            .lazy()
            .select([col(col::SECOND), col(col::HTTP)])
            .filter(col(col::HTTP))
            .group_by([col(col::SECOND)])
            .agg([len().alias("requests")])
            .sort(
                ["requests"],
                SortMultipleOptions::default()
                    .with_order_descending(true)
                    .with_maintain_order(false),
            )
            .limit(1)
            .collect()?;
        summary.peak_rps = u64s(&peak, "requests")?.first().copied();
        summary.peak_second = i64s(&peak, col::SECOND)?
            .first()
            .and_then(|&s| show_ms(s * 1000));
    }
    Ok(summary)
}

/// The status section: per code, per class, and per code within each backend.
pub(super) fn status(
    frame: &Frame,
) -> PolarsResult<(Vec<StatusRow>, Vec<StatusRow>, Vec<BackendStatusRow>)> {
    // One integer key per (server, status), null for TCP sessions: a single-key group-by
    // needs neither a filtered copy nor row encoding. Statuses are 0..=65535, or -1.
    const STATUSES: i64 = 65_537;
    let (key, dtype) = composite_key(
        col(col::SERVER),
        col(col::STATUS) + lit(1i32),
        frame.servers.len() as u64,
        STATUSES as u64,
    );
    let counts = frame
        .df
        .clone()
        .lazy()
        .group_by([when(col(col::HTTP))
            .then(key)
            .otherwise(lit(NULL).cast(dtype))
            .alias("key")])
        .agg([len().alias("count")])
        .filter(col("key").is_not_null())
        .collect()?;
    let keys = i64s(&counts, "key")?;
    let servers: Vec<i64> = keys.iter().map(|k| k.div_euclid(STATUSES)).collect();
    let statuses: Vec<i64> = keys.iter().map(|k| k.rem_euclid(STATUSES) - 1).collect();
    let n = u64s(&counts, "count")?;
    let mut overall: BTreeMap<i32, u64> = BTreeMap::new();
    let mut classes: BTreeMap<&str, (i32, u64)> = BTreeMap::new();
    let mut by_backend: BTreeMap<(&str, i32), u64> = BTreeMap::new();
    for ((&server, &status), &count) in servers.iter().zip(&statuses).zip(&n) {
        let status = status as i32;
        *overall.entry(status).or_default() += count;
        let class_first = if status < 0 { -1 } else { status / 100 * 100 };
        classes
            .entry(status_class(status))
            .or_insert((class_first, 0))
            .1 += count;
        let backend = frame.servers[server as usize].0.as_str();
        *by_backend.entry((backend, status)).or_default() += count;
    }
    let total: u64 = n.iter().sum();
    let codes = overall
        .into_iter()
        .map(|(status, count)| StatusRow {
            status,
            class: status_class(status).to_owned(),
            count,
            share: share(count, total),
        })
        .collect();
    let classes = classes
        .into_iter()
        .map(|(class, (status, count))| StatusRow {
            status,
            class: class.to_owned(),
            count,
            share: share(count, total),
        })
        .collect();
    let mut backend_totals: BTreeMap<&str, u64> = BTreeMap::new();
    for (&(backend, _), &count) in &by_backend {
        *backend_totals.entry(backend).or_default() += count;
    }
    let by_backend = by_backend
        .into_iter()
        .map(|((backend, status), count)| BackendStatusRow {
            backend: backend.to_owned(),
            status,
            class: status_class(status).to_owned(),
            count,
            share: share(count, backend_totals[backend]),
        })
        .collect();
    Ok((codes, classes, by_backend))
}

/// The termination section, most frequent first.
pub(super) fn termination(frame: &Frame) -> PolarsResult<Vec<TerminationRow>> {
    let counts = frame
        .df
        .clone()
        .lazy()
        .group_by([col(col::TSC)])
        .agg([len().alias("count")])
        .collect()?;
    let codes = u64s(&counts, col::TSC)?;
    let n = u64s(&counts, "count")?;
    let total: u64 = n.iter().sum();
    let mut rows: Vec<TerminationRow> = codes
        .iter()
        .zip(&n)
        .map(|(&packed, &count)| {
            let code = [(packed >> 8) as u8, packed as u8];
            TerminationRow {
                code: String::from_utf8_lossy(&code).into_owned(),
                count,
                share: share(count, total),
                meaning: meaning(code),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    Ok(rows)
}

/// The timer columns and whether a -1 counts as aborted for TCP sessions too.
const TIMERS: [(&str, bool); 5] = [
    (col::TA, true),
    (col::TR, false),
    (col::TC, true),
    (col::TW, true),
    (col::TREQ, false),
];

fn timer_aggregations(name: &str, tcp_too: bool) -> Vec<Expr> {
    // Timers HAProxy logged as -1 are nulls in the frame: every aggregation skips them.
    let q = |p: f64, label: &str| {
        col(name)
            .quantile(lit(p), PERCENTILE)
            .alias(format!("{name}_{label}"))
    };
    let aborted = if tcp_too {
        col(name).null_count()
    } else {
        col(name).is_null().and(col(col::HTTP)).sum()
    };
    vec![
        q(0.5, "p50"),
        q(0.9, "p90"),
        q(0.99, "p99"),
        col(name).max().alias(format!("{name}_max")),
        col(name).mean().alias(format!("{name}_mean")),
        col(name).count().alias(format!("{name}_count")),
        aborted.alias(format!("{name}_aborted")),
    ]
}

fn timer_stats(df: &DataFrame, name: &str) -> PolarsResult<Vec<TimerStats>> {
    let get = |label: &str| f64s(df, &format!("{name}_{label}"));
    let (p50, p90, p99, max, mean) = (
        get("p50")?,
        get("p90")?,
        get("p99")?,
        get("max")?,
        get("mean")?,
    );
    let count = u64s(df, &format!("{name}_count"))?;
    let aborted = u64s(df, &format!("{name}_aborted"))?;
    Ok((0..df.height())
        .map(|i| {
            let has = count[i] > 0;
            let v = |c: &[Option<f64>]| if has { c[i] } else { None };
            TimerStats {
                p50: v(&p50),
                p90: v(&p90),
                p99: v(&p99),
                max: v(&max),
                mean: v(&mean),
                count: count[i],
                aborted: aborted[i],
            }
        })
        .collect())
}

/// The servers section: one row per backend/server seen (and per configured server), sorted
/// by backend then server with `<NOSRV>` and `<STATS>` last.
pub(super) fn servers(frame: &Frame, weights: Option<&Weights>) -> PolarsResult<Vec<ServerRow>> {
    let class = |lo: i32| {
        col(col::STATUS)
            .gt_eq(lit(lo))
            .and(col(col::STATUS).lt(lit(lo + 100)))
            .sum()
            .alias(format!("status_{}xx", lo / 100))
    };
    let mut aggs = vec![
        len().alias("requests"),
        class(200),
        class(300),
        class(400),
        class(500),
        col(col::ERROR).sum().alias("errors"),
    ];
    for (name, tcp_too) in TIMERS {
        aggs.extend(timer_aggregations(name, tcp_too));
    }
    let per_server = frame
        .df
        .clone()
        .lazy()
        .group_by([col(col::SERVER)])
        .agg(aggs)
        .collect()?;
    let ids = u64s(&per_server, col::SERVER)?;
    let requests = u64s(&per_server, "requests")?;
    let classes = [
        u64s(&per_server, "status_2xx")?,
        u64s(&per_server, "status_3xx")?,
        u64s(&per_server, "status_4xx")?,
        u64s(&per_server, "status_5xx")?,
    ];
    let errors = u64s(&per_server, "errors")?;
    let timers: Vec<Vec<TimerStats>> = TIMERS
        .iter()
        .map(|(name, _)| timer_stats(&per_server, name))
        .collect::<PolarsResult<_>>()?;
    let mut rows: Vec<ServerRow> = (0..per_server.height())
        .map(|i| {
            let (backend, server) = frame.servers[ids[i] as usize].clone();
            ServerRow {
                backend,
                server,
                requests: requests[i],
                share: 0.0,
                expected_share: None,
                status_2xx: classes[0][i],
                status_3xx: classes[1][i],
                status_4xx: classes[2][i],
                status_5xx: classes[3][i],
                errors: errors[i],
                error_rate: share(errors[i], requests[i]),
                ta: timers[0][i],
                tr: timers[1][i],
                tc: timers[2][i],
                tw: timers[3][i],
                treq: timers[4][i],
            }
        })
        .collect();
    add_configured_servers(&mut rows, weights);
    let mut backend_totals: BTreeMap<String, u64> = BTreeMap::new();
    for row in &rows {
        *backend_totals.entry(row.backend.clone()).or_default() += row.requests;
    }
    let expected: Vec<Option<f64>> = rows
        .iter()
        .map(|row| expected_share(&rows_of(&rows, &row.backend), row, weights))
        .collect();
    for (row, expected) in rows.iter_mut().zip(expected) {
        row.share = share(row.requests, backend_totals[&row.backend]);
        row.expected_share = expected;
    }
    rows.sort_by(|a, b| {
        let key = |r: &ServerRow| {
            (
                r.backend.clone(),
                is_pseudo_server(&r.server),
                r.server.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(rows)
}

/// `<NOSRV>` (no server took the request) and `<STATS>` (the stats page answered) are not
/// servers the balancer chose.
pub(super) fn is_pseudo_server(name: &str) -> bool {
    name.starts_with('<')
}

fn rows_of<'a>(rows: &'a [ServerRow], backend: &str) -> Vec<&'a str> {
    rows.iter()
        .filter(|r| r.backend == backend && !is_pseudo_server(&r.server))
        .map(|r| r.server.as_str())
        .collect()
}

/// Configured servers that logged nothing still get a row: "no traffic" is the finding.
fn add_configured_servers(rows: &mut Vec<ServerRow>, weights: Option<&Weights>) {
    let Some(weights) = weights else { return };
    let seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.backend.clone(), r.server.clone()))
        .collect();
    let logged_backends: Vec<&String> = seen.iter().map(|(b, _)| b).collect();
    for (backend, servers) in weights {
        if !logged_backends.contains(&backend) {
            continue;
        }
        for configured in servers {
            let server = &configured.name;
            if seen.iter().any(|(b, s)| b == backend && s == server) {
                continue;
            }
            rows.push(ServerRow {
                backend: backend.clone(),
                server: server.clone(),
                ..ServerRow::default()
            });
        }
    }
}

/// The share a server's weight entitles it to among the backend's active servers; equal
/// shares when the backend is not configured.
fn expected_share(
    backend_servers: &[&str],
    row: &ServerRow,
    weights: Option<&Weights>,
) -> Option<f64> {
    if is_pseudo_server(&row.server) {
        return None;
    }
    let weight_of = super::fairness::weight_lookup(weights, &row.backend);
    let total: u64 = backend_servers
        .iter()
        .filter_map(|s| weight_of(s))
        .map(u64::from)
        .sum();
    let own = weight_of(&row.server)?;
    (total > 0).then(|| f64::from(own) / total as f64)
}

/// Requests, errors and p99 of Ta per interval and server, sorted by interval then server.
pub(super) struct Intervals {
    /// Interval start, ms.
    pub start: Vec<i64>,
    /// Server id.
    pub server: Vec<u32>,
    /// Requests and sessions.
    pub requests: Vec<u64>,
    errors: Vec<u64>,
    ta_p99: Vec<Option<f64>>,
}

impl Intervals {
    /// Timeline rows with names.
    pub fn rows(&self, frame: &Frame) -> Vec<TimelineRow> {
        (0..self.start.len())
            .map(|i| {
                let (backend, server) = frame.servers[self.server[i] as usize].clone();
                TimelineRow {
                    start: show_ms(self.start[i]).unwrap_or_default(),
                    backend,
                    server,
                    requests: self.requests[i],
                    errors: self.errors[i],
                    ta_p99: self.ta_p99[i],
                }
            })
            .collect()
    }
}

/// Counts per interval of `interval_ms` and server; p99 of Ta only when `with_p99`.
pub(super) fn timeline(frame: &Frame, interval_ms: i64, with_p99: bool) -> PolarsResult<Intervals> {
    let mut aggs = vec![
        len().alias("requests"),
        col(col::ERROR).sum().alias("errors"),
    ];
    if with_p99 {
        aggs.push(col(col::TA).quantile(lit(0.99), PERCENTILE).alias("ta_p99"));
    }
    // One integer key (interval number, server) instead of two columns: a single-key
    // group-by needs neither row encoding nor its memory. Intervals are whole seconds (the CLI
    // insists), aligned to the clock (a 1m interval starts at :00), counted from the first.
    let servers = frame.servers.len().max(1) as i64;
    let interval_s = (interval_ms / 1000).max(1);
    let (first, last) = frame.span.unwrap_or_default();
    let first_second = frame::second_of(first);
    let first_second = first_second - (i64::from(first_second) % interval_s) as u32;
    let slots = (i64::from(frame::second_of(last)) - i64::from(first_second)) / interval_s + 1;
    let slot = (col(col::SECOND) - lit(first_second))
        .floor_div(lit(u32::try_from(interval_s).unwrap_or(u32::MAX)));
    let (key, _) = composite_key(slot, col(col::SERVER), slots as u64, servers as u64);
    let per_interval = frame
        .df
        .clone()
        .lazy()
        .group_by([key.alias("key")])
        .agg(aggs)
        .sort(["key"], SortMultipleOptions::default())
        .collect()?;
    let height = per_interval.height();
    let keys = i64s(&per_interval, "key")?;
    Ok(Intervals {
        start: keys
            .iter()
            .map(|k| (i64::from(first_second) + k.div_euclid(servers) * interval_s) * 1000)
            .collect(),
        server: keys.iter().map(|k| k.rem_euclid(servers) as u32).collect(),
        requests: u64s(&per_interval, "requests")?,
        errors: u64s(&per_interval, "errors")?,
        ta_p99: if with_p99 {
            f64s(&per_interval, "ta_p99")?
        } else {
            vec![None; height]
        },
    })
}

/// `major * minors + minor` as one group-by key, and its type: u32 arithmetic when every key
/// fits (its temporaries are half the size of i64 ones, small enough to be recycled by the
/// allocator instead of faulted in fresh), i64 otherwise. `major` and `minor` are
/// non-negative and below `majors` and `minors`.
fn composite_key(major: Expr, minor: Expr, majors: u64, minors: u64) -> (Expr, DataType) {
    let fits = majors
        .max(1)
        .checked_mul(minors)
        .is_some_and(|n| n <= u64::from(u32::MAX));
    let dtype = if fits {
        DataType::UInt32
    } else {
        DataType::Int64
    };
    let key =
        major.cast(dtype.clone()) * lit(minors).cast(dtype.clone()) + minor.cast(dtype.clone());
    (key, dtype)
}

/// The top section: the URL and client sums ranked by polars.
pub(super) fn top(frame: &Frame, n: usize) -> PolarsResult<Top> {
    let ranked = |tally: &Tally, by: &str| -> PolarsResult<Vec<(u32, [u64; 3])>> {
        let column = |k: usize| tally.totals.iter().map(|t| t[k]).collect::<Vec<u64>>();
        let sums = DataFrame::new(
            tally.totals.len(),
            vec![
                UInt32Chunked::from_vec("id".into(), (0..tally.totals.len() as u32).collect())
                    .into_column(),
                UInt64Chunked::from_vec("requests".into(), column(0)).into_column(),
                UInt64Chunked::from_vec("time".into(), column(1)).into_column(),
                UInt64Chunked::from_vec("errors".into(), column(2)).into_column(),
            ],
        )?;
        // Ties go to the name seen first.
        let best = sums
            .lazy()
            .filter(col(by).gt(lit(0u64)))
            .sort(
                [by, "id"],
                SortMultipleOptions::default().with_order_descending_multi([true, false]),
            )
            .limit(n as IdxSize)
            .collect()?;
        let ids = u64s(&best, "id")?;
        Ok(ids
            .iter()
            .map(|&id| (id as u32, tally.totals[id as usize]))
            .collect())
    };
    let urls = |by: &str| -> PolarsResult<Vec<UrlRow>> {
        Ok(ranked(&frame.urls, by)?
            .into_iter()
            .map(|(id, [requests, time, errors])| UrlRow {
                url: lossy(frame.urls.names.get(id)).into_owned(),
                requests,
                total_time_ms: time,
                errors,
            })
            .collect())
    };
    Ok(Top {
        urls_by_count: urls("requests")?,
        urls_by_time: urls("time")?,
        urls_by_errors: urls("errors")?,
        clients: ranked(&frame.clients, "requests")?
            .into_iter()
            .map(|(id, [requests, _, _])| ClientRow {
                client: lossy(frame.clients.names.get(id)).into_owned(),
                requests,
            })
            .collect(),
    })
}
