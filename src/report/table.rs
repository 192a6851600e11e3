//! The report as terminal tables (comfy-table), one per section.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, ContentArrangement, Table};

use super::{Report, TimerStats};

/// A table in the report's style: condensed UTF-8 borders, fitted to `width` when known,
/// styled only when `color`.
pub(super) fn styled_table(header: &[&str], width: Option<u16>, color: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    if let Some(w) = width {
        t.set_width(w)
            .set_content_arrangement(ContentArrangement::Dynamic);
    }
    if !color {
        t.force_no_tty();
    } else {
        t.enforce_styling();
    }
    if !header.is_empty() {
        t.set_header(header.iter().copied());
    }
    t
}

/// Renders every section present in `report`; `width` is the terminal's (tables are not
/// wrapped when `None`), `color` colours status classes and errors.
pub fn render(report: &Report, width: Option<u16>, color: bool) -> String {
    let mut out = String::new();
    let mut section = |title: &str, table: Table| {
        out.push_str(title);
        out.push('\n');
        out.push_str(&table.to_string());
        out.push_str("\n\n");
    };
    let new_table = |header: &[&str]| styled_table(header, width, color);
    let class_color = |class: &str| -> Cell {
        let cell = Cell::new(class);
        if !color {
            return cell;
        }
        match class {
            "2xx" => cell.fg(Color::Green),
            "3xx" => cell.fg(Color::Cyan),
            "4xx" => cell.fg(Color::Yellow),
            "5xx" => cell.fg(Color::Red),
            _ => cell.fg(Color::DarkGrey),
        }
    };
    if let Some(s) = &report.summary {
        let mut t = new_table(&[]);
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        t.add_row(vec!["lines read".into(), s.lines_read.to_string()]);
        t.add_row(vec!["http requests".into(), s.http_requests.to_string()]);
        t.add_row(vec!["tcp sessions".into(), s.tcp_sessions.to_string()]);
        t.add_row(vec!["events".into(), s.events.to_string()]);
        t.add_row(vec!["malformed".into(), s.malformed.to_string()]);
        if s.filtered_out > 0 {
            t.add_row(vec![
                "left out by filters".into(),
                s.filtered_out.to_string(),
            ]);
        }
        t.add_row(vec!["first".into(), opt(&s.first)]);
        t.add_row(vec!["last".into(), opt(&s.last)]);
        t.add_row(vec![
            "mean requests/s".into(),
            s.mean_rps.map_or("-".into(), |r| {
                // Sparse logs have rates under one per second; keep them visible.
                if r < 10.0 {
                    format!("{r:.3}")
                } else {
                    format!("{r:.1}")
                }
            }),
        ]);
        t.add_row(vec![
            "peak requests/s".into(),
            match (s.peak_rps, &s.peak_second) {
                (Some(n), Some(at)) => format!("{n} at {at}"),
                _ => "-".into(),
            },
        ]);
        for m in &s.malformed_lines {
            t.add_row(vec!["not understood".into(), m.to_string()]);
        }
        section("Summary", t);
    }
    if let Some(rows) = &report.status {
        let mut t = new_table(&["status", "class", "count", "share"]);
        for r in rows {
            t.add_row(vec![
                Cell::new(r.status),
                class_color(&r.class),
                Cell::new(r.count),
                Cell::new(percent(r.share)),
            ]);
        }
        for r in report.status_classes.iter().flatten() {
            t.add_row(vec![
                Cell::new("all"),
                class_color(&r.class),
                Cell::new(r.count),
                Cell::new(percent(r.share)),
            ]);
        }
        section("Status codes", t);
    }
    if let Some(rows) = &report.status_by_backend {
        let mut t = new_table(&["backend", "status", "class", "count", "share of backend"]);
        for r in rows {
            t.add_row(vec![
                Cell::new(&r.backend),
                Cell::new(r.status),
                class_color(&r.class),
                Cell::new(r.count),
                Cell::new(percent(r.share)),
            ]);
        }
        section("Status codes per backend", t);
    }
    if let Some(rows) = &report.termination {
        let mut t = new_table(&["state", "count", "share", "meaning"]);
        for r in rows {
            t.add_row(vec![
                r.code.clone(),
                r.count.to_string(),
                percent(r.share),
                r.meaning.clone(),
            ]);
        }
        section("Termination states", t);
    }
    if let Some(rows) = &report.servers {
        let mut t = new_table(&[
            "backend/server",
            "requests",
            "share",
            "expected",
            "2xx",
            "3xx",
            "4xx",
            "5xx",
            "errors",
            "Ta p50/p90/p99/max",
            "Ta mean",
            "Tr p50/p99",
            "Tc p99",
            "Tw p99",
            "TR p99",
        ]);
        for r in rows {
            let errors = Cell::new(format!("{} ({})", r.errors, percent(r.error_rate)));
            let errors = if color && r.error_rate >= 0.05 {
                errors.fg(Color::Red)
            } else {
                errors
            };
            t.add_row(vec![
                Cell::new(format!("{}/{}", r.backend, r.server)),
                Cell::new(r.requests),
                Cell::new(percent(r.share)),
                Cell::new(r.expected_share.map_or("-".into(), percent)),
                Cell::new(r.status_2xx),
                Cell::new(r.status_3xx),
                Cell::new(r.status_4xx),
                Cell::new(r.status_5xx),
                errors,
                Cell::new(format!(
                    "{}/{}/{}/{}",
                    ms(r.ta.p50),
                    ms(r.ta.p90),
                    ms(r.ta.p99),
                    ms(r.ta.max)
                )),
                Cell::new(ms(r.ta.mean)),
                Cell::new(format!("{}/{}", ms(r.tr.p50), ms(r.tr.p99))),
                Cell::new(ms(r.tc.p99)),
                Cell::new(ms(r.tw.p99)),
                Cell::new(ms(r.treq.p99)),
            ]);
        }
        section("Servers (times in ms, nearest-rank percentiles)", t);
        let mut t = new_table(&["backend/server", "Ta", "Tr", "Tc", "Tw", "TR"]);
        let mut any = false;
        for r in rows {
            let timers: [&TimerStats; 5] = [&r.ta, &r.tr, &r.tc, &r.tw, &r.treq];
            if timers.iter().all(|t| t.aborted == 0) {
                continue;
            }
            any = true;
            let mut row = vec![format!("{}/{}", r.backend, r.server)];
            row.extend(timers.iter().map(|t| t.aborted.to_string()));
            t.add_row(row);
        }
        if any {
            section("Timers logged as -1 (phase not reached: aborted)", t);
        }
    }
    if let Some(rows) = &report.fairness {
        let mut t = new_table(&[
            "backend",
            "servers",
            "Jain index",
            "max/min",
            "CV",
            "worst interval",
            "idle servers",
            "idle intervals",
        ]);
        for r in rows {
            t.add_row(vec![
                r.backend.clone(),
                r.servers.to_string(),
                fixed(r.jain_index),
                r.max_min_ratio.map_or("inf".into(), |v| format!("{v:.2}")),
                fixed(r.cv),
                match (&r.worst_interval_jain, &r.worst_interval_start) {
                    (Some(j), Some(at)) => format!("{j:.3} at {at}"),
                    _ => "-".into(),
                },
                r.idle_servers.join(", "),
                r.idle_intervals
                    .iter()
                    .map(|i| format!("{} ({})", i.server, i.intervals))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
        }
        section(
            &format!(
                "Fairness (weight-normalised load; intervals of {}s)",
                report.interval_seconds
            ),
            t,
        );
    }
    if let Some(rows) = &report.timeline {
        let mut t = new_table(&["interval", "backend/server", "requests", "errors", "Ta p99"]);
        for r in rows {
            t.add_row(vec![
                r.start.clone(),
                format!("{}/{}", r.backend, r.server),
                r.requests.to_string(),
                r.errors.to_string(),
                ms(r.ta_p99),
            ]);
        }
        section("Timeline", t);
    }
    if let Some(top) = &report.top {
        for (title, rows) in [
            ("Top URLs by requests", &top.urls_by_count),
            ("Top URLs by total time", &top.urls_by_time),
            ("Top URLs by errors", &top.urls_by_errors),
        ] {
            let mut t = new_table(&["url", "requests", "total Ta (ms)", "errors"]);
            for r in rows {
                t.add_row(vec![
                    r.url.clone(),
                    r.requests.to_string(),
                    r.total_time_ms.to_string(),
                    r.errors.to_string(),
                ]);
            }
            section(title, t);
        }
        let mut t = new_table(&["client", "requests"]);
        for r in &top.clients {
            t.add_row(vec![r.client.clone(), r.requests.to_string()]);
        }
        section("Top clients", t);
    }
    if let Some(events) = &report.events {
        let mut t = new_table(&["time", "backend/server", "state", "reason"]);
        for e in &events.transitions {
            let state = Cell::new(&e.state);
            let state = match (color, e.state.as_str()) {
                (true, "down" | "maintenance") => state.fg(Color::Red),
                (true, "up") => state.fg(Color::Green),
                _ => state,
            };
            t.add_row(vec![
                Cell::new(e.time.as_deref().unwrap_or("-")),
                Cell::new(format!("{}/{}", e.backend, e.server)),
                state,
                Cell::new(&e.reason),
            ]);
        }
        let hidden = events.transitions_total - events.transitions.len() as u64;
        if hidden > 0 {
            t.add_row(vec![
                Cell::new("..."),
                Cell::new(format!("{hidden} more (--transitions N lists more)")),
            ]);
        }
        section("Server events", t);
        let mut t = new_table(&["backend/server", "outages", "downtime (s)", "still down"]);
        for d in &events.downtime {
            t.add_row(vec![
                format!("{}/{}", d.backend, d.server),
                d.outages.to_string(),
                format!("{:.1}", d.seconds),
                if d.still_down { "yes" } else { "no" }.to_owned(),
            ]);
        }
        section("Downtime", t);
    }
    out
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn fixed(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

/// Milliseconds: whole numbers as such, means with one decimal.
fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}
