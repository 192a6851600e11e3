//! The report as CSV: one file per table, named after it, in one directory.

use std::path::Path;

use super::{Report, TimerStats};

/// Writes one CSV file per table of `report` into `dir` (created if missing).
pub fn write_dir(report: &Report, dir: &Path) -> Result<(), csv::Error> {
    std::fs::create_dir_all(dir)?;
    let file = |name: &str, header: &[&str], rows: Vec<Vec<String>>| -> Result<(), csv::Error> {
        let mut w = csv::Writer::from_path(dir.join(format!("{name}.csv")))?;
        w.write_record(header)?;
        for row in rows {
            w.write_record(row)?;
        }
        w.flush()?;
        Ok(())
    };
    if let Some(s) = &report.summary {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let rows = [
            ("lines_read", s.lines_read.to_string()),
            ("http_requests", s.http_requests.to_string()),
            ("tcp_sessions", s.tcp_sessions.to_string()),
            ("events", s.events.to_string()),
            ("malformed", s.malformed.to_string()),
            ("filtered_out", s.filtered_out.to_string()),
            ("first", o(&s.first)),
            ("last", o(&s.last)),
            ("mean_rps", opt(s.mean_rps)),
            (
                "peak_rps",
                s.peak_rps.map_or(String::new(), |n| n.to_string()),
            ),
            ("peak_second", o(&s.peak_second)),
        ];
        file(
            "summary",
            &["key", "value"],
            rows.into_iter()
                .map(|(k, v)| vec![k.to_owned(), v])
                .collect(),
        )?;
        file(
            "malformed",
            &["file", "line", "reason", "text"],
            s.malformed_lines
                .iter()
                .map(|m| {
                    vec![
                        m.file.clone(),
                        m.line.to_string(),
                        m.reason.clone(),
                        m.text.clone(),
                    ]
                })
                .collect(),
        )?;
    }
    let status_header = ["status", "class", "count", "share"];
    for (name, rows) in [
        ("status", &report.status),
        ("status_classes", &report.status_classes),
    ] {
        if let Some(rows) = rows {
            let rows = rows
                .iter()
                .map(|r| {
                    vec![
                        r.status.to_string(),
                        r.class.clone(),
                        r.count.to_string(),
                        r.share.to_string(),
                    ]
                })
                .collect();
            file(name, &status_header, rows)?;
        }
    }
    if let Some(rows) = &report.status_by_backend {
        let rows = rows
            .iter()
            .map(|r| {
                vec![
                    r.backend.clone(),
                    r.status.to_string(),
                    r.class.clone(),
                    r.count.to_string(),
                    r.share.to_string(),
                ]
            })
            .collect();
        file(
            "status_by_backend",
            &["backend", "status", "class", "count", "share"],
            rows,
        )?;
    }
    if let Some(rows) = &report.termination {
        let rows = rows
            .iter()
            .map(|r| {
                vec![
                    r.code.clone(),
                    r.count.to_string(),
                    r.share.to_string(),
                    r.meaning.clone(),
                ]
            })
            .collect();
        file("termination", &["code", "count", "share", "meaning"], rows)?;
    }
    if let Some(rows) = &report.servers {
        let mut header: Vec<String> = [
            "backend",
            "server",
            "requests",
            "share",
            "expected_share",
            "status_2xx",
            "status_3xx",
            "status_4xx",
            "status_5xx",
            "errors",
            "error_rate",
        ]
        .map(String::from)
        .to_vec();
        for timer in ["Ta", "Tr", "Tc", "Tw", "TR"] {
            for figure in ["p50", "p90", "p99", "max", "mean", "count", "aborted"] {
                header.push(format!("{timer}_{figure}"));
            }
        }
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let rows = rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    r.backend.clone(),
                    r.server.clone(),
                    r.requests.to_string(),
                    r.share.to_string(),
                    opt(r.expected_share),
                    r.status_2xx.to_string(),
                    r.status_3xx.to_string(),
                    r.status_4xx.to_string(),
                    r.status_5xx.to_string(),
                    r.errors.to_string(),
                    r.error_rate.to_string(),
                ];
                for t in [&r.ta, &r.tr, &r.tc, &r.tw, &r.treq] {
                    row.extend(timer_cells(t));
                }
                row
            })
            .collect();
        file("servers", &header, rows)?;
    }
    if let Some(rows) = &report.fairness {
        let list = |v: Vec<String>| v.join(" ");
        let summary = rows
            .iter()
            .map(|r| {
                vec![
                    r.backend.clone(),
                    r.servers.to_string(),
                    opt(r.jain_index),
                    opt(r.max_min_ratio),
                    opt(r.cv),
                    opt(r.worst_interval_jain),
                    r.worst_interval_start.clone().unwrap_or_default(),
                    list(r.idle_servers.clone()),
                    list(
                        r.idle_intervals
                            .iter()
                            .map(|i| format!("{}:{}", i.server, i.intervals))
                            .collect(),
                    ),
                ]
            })
            .collect();
        file(
            "fairness",
            &[
                "backend",
                "servers",
                "jain_index",
                "max_min_ratio",
                "cv",
                "worst_interval_jain",
                "worst_interval_start",
                "idle_servers",
                "idle_intervals",
            ],
            summary,
        )?;
        let per_interval = rows
            .iter()
            .flat_map(|r| {
                r.jain_by_interval
                    .iter()
                    .map(|i| vec![r.backend.clone(), i.start.clone(), i.jain.to_string()])
            })
            .collect();
        file(
            "fairness_by_interval",
            &["backend", "start", "jain"],
            per_interval,
        )?;
    }
    if let Some(rows) = &report.timeline {
        let rows = rows
            .iter()
            .map(|r| {
                vec![
                    r.start.clone(),
                    r.backend.clone(),
                    r.server.clone(),
                    r.requests.to_string(),
                    r.errors.to_string(),
                    opt(r.ta_p99),
                ]
            })
            .collect();
        file(
            "timeline",
            &["start", "backend", "server", "requests", "errors", "Ta_p99"],
            rows,
        )?;
    }
    if let Some(top) = &report.top {
        for (name, rows) in [
            ("top_urls_by_count", &top.urls_by_count),
            ("top_urls_by_time", &top.urls_by_time),
            ("top_urls_by_errors", &top.urls_by_errors),
        ] {
            let rows = rows
                .iter()
                .map(|r| {
                    vec![
                        r.url.clone(),
                        r.requests.to_string(),
                        r.total_time_ms.to_string(),
                        r.errors.to_string(),
                    ]
                })
                .collect();
            file(name, &["url", "requests", "total_time_ms", "errors"], rows)?;
        }
        let rows = top
            .clients
            .iter()
            .map(|r| vec![r.client.clone(), r.requests.to_string()])
            .collect();
        file("top_clients", &["client", "requests"], rows)?;
    }
    if let Some(events) = &report.events {
        let rows = events
            .transitions
            .iter()
            .map(|e| {
                vec![
                    e.time.clone().unwrap_or_default(),
                    e.backend.clone(),
                    e.server.clone(),
                    e.state.clone(),
                    e.reason.clone(),
                ]
            })
            .collect();
        file(
            "events",
            &["time", "backend", "server", "state", "reason"],
            rows,
        )?;
        let rows = events
            .downtime
            .iter()
            .map(|d| {
                vec![
                    d.backend.clone(),
                    d.server.clone(),
                    d.outages.to_string(),
                    d.seconds.to_string(),
                    d.still_down.to_string(),
                ]
            })
            .collect();
        file(
            "downtime",
            &["backend", "server", "outages", "seconds", "still_down"],
            rows,
        )?;
    }
    Ok(())
}

/// A figure, or an empty cell when there is none.
fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

fn timer_cells(t: &TimerStats) -> [String; 7] {
    [
        opt(t.p50),
        opt(t.p90),
        opt(t.p99),
        opt(t.max),
        opt(t.mean),
        t.count.to_string(),
        t.aborted.to_string(),
    ]
}
