//! `halyard report --format html`: the report as one self-contained HTML page of tables and
//! charts, for reading in a browser, offline.
//!
//! Invariants: the page loads nothing (inline `<style>`, charts drawn here as inline SVG, no
//! script), and its Content-Security-Policy forbids loading anything, so a URL or server name
//! from a log can neither run code nor make the browser fetch it even if escaping were missed.
//! Every string that comes from the logs goes through [`escape`]. A section that was not computed
//! is left out; a computed section without rows says "no data". A chart is drawn only when its
//! section has data, with one `bar` or `point` element per datum.

use std::fmt::{self, Write};

use super::{
    Events, FairnessRow, Report, Section, ServerRow, StatusRow, Summary, TerminationRow,
    TimelineRow, Top, UrlRow,
};

/// `write!` into a `String`, which cannot fail.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

// After `w!`, which the charts use too.
mod chart;

use chart::{fairness_chart, latency_chart, requests_chart, status_chart};

/// Renders `report` as a complete HTML5 document.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out);
    header(&mut out, report);
    out.push_str("<main>\n");
    if let Some(summary) = &report.summary {
        summary_section(&mut out, summary);
    }
    if report.status.is_some() || report.status_classes.is_some() {
        status_section(&mut out, report);
    }
    if let Some(rows) = &report.termination {
        termination_section(&mut out, rows);
    }
    if let Some(rows) = &report.servers {
        servers_section(&mut out, rows);
    }
    if let Some(rows) = &report.fairness {
        fairness_section(&mut out, rows, report.interval_seconds);
    }
    if let Some(rows) = &report.timeline {
        timeline_section(&mut out, rows, report.interval_seconds);
    }
    if let Some(top) = &report.top {
        top_section(&mut out, top);
    }
    if let Some(events) = &report.events {
        events_section(&mut out, events);
    }
    w!(
        out,
        "</main>\n<footer>Made by halyard {}.</footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

const STYLE: &str = r#":root { --fg: #1d2430; --muted: #5b6675; --line: #d8dee6; --bg: #f4f6f8; --card: #fff; --accent: #2f6fd0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
header, main, footer { max-width: 1240px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 20px 0 8px; }
.span, .note { color: var(--muted); margin: 0 0 12px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin: 16px 0; }
.figures div { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.figures dt { color: var(--muted); font-size: 12px; }
.figures dd { margin: 2px 0 0; font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.figures .warn dd { color: #b3261e; }
nav { display: flex; flex-wrap: wrap; gap: 4px 16px; padding: 4px 0 12px; }
nav a { color: var(--accent); text-decoration: none; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
.scroll, .chart-box { overflow-x: auto; }
.tables { display: flex; flex-wrap: wrap; gap: 0 36px; align-items: flex-start; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #eef2f6; font-weight: 600; white-space: nowrap; }
th.num, td.num { text-align: right; white-space: nowrap; }
td.time { white-space: nowrap; }
svg.key { vertical-align: 0; margin-right: 6px; }
tbody tr:nth-child(even) { background: #f9fafb; }
td code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
.empty { color: var(--muted); font-style: italic; }
figure { margin: 0 0 8px; }
svg.chart { display: block; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #3a4350; }
svg.chart .axis-title { font-size: 12px; fill: var(--muted); }
svg.chart .grid { stroke: #e6eaef; }
svg.chart .baseline { stroke: #8a94a3; }
svg.chart .line { fill: none; stroke-width: 2; }
svg.chart .bar:hover, svg.chart .point:hover { opacity: .7; }
.legend { list-style: none; margin: 4px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 2px 18px; font-size: 12px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
details > summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
footer { color: var(--muted); font-size: 12px; padding-bottom: 24px; }
@media print { body { background: #fff; } section { break-inside: avoid; } }
"#;

fn head(out: &mut String) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>halyard report</title>\n<style>\n");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n");
}

fn header(out: &mut String, report: &Report) {
    out.push_str("<header>\n<h1>halyard report</h1>\n");
    if let Some(s) = &report.summary {
        if let (Some(first), Some(last)) = (&s.first, &s.last) {
            w!(
                out,
                "<p class=\"span\">{} to {}</p>\n",
                escape(first),
                escape(last)
            );
        }
        figures(out, s);
    }
    out.push_str("<nav>");
    let present = [
        report.summary.is_some(),
        report.status.is_some() || report.status_classes.is_some(),
        report.termination.is_some(),
        report.servers.is_some(),
        report.fairness.is_some(),
        report.timeline.is_some(),
        report.top.is_some(),
        report.events.is_some(),
    ];
    for (section, _) in Section::ALL.iter().zip(present).filter(|(_, p)| *p) {
        w!(out, "<a href=\"#{0}\">{0}</a>", section.name());
    }
    out.push_str("</nav>\n</header>\n");
}

fn figures(out: &mut String, s: &Summary) {
    let rate = |v: Option<u64>| v.map_or(DASH.to_owned(), int);
    let items = [
        ("HTTP requests", int(s.http_requests), false),
        ("TCP sessions", int(s.tcp_sessions), false),
        ("Mean requests/s", opt_number(s.mean_rps, 2), false),
        ("Peak requests/s", rate(s.peak_rps), false),
        ("Server events", int(s.events), false),
        ("Malformed lines", int(s.malformed), s.malformed > 0),
        ("Lines read", int(s.lines_read), false),
    ];
    out.push_str("<dl class=\"figures\">\n");
    for (label, value, warn) in items {
        let class = if warn { " class=\"warn\"" } else { "" };
        w!(
            out,
            "<div{class}><dt>{label}</dt><dd>{}</dd></div>\n",
            escape(&value)
        );
    }
    out.push_str("</dl>\n");
}

fn open_section(out: &mut String, section: Section, title: &str, note: &str) {
    w!(
        out,
        "<section id=\"{}\">\n<h2>{title}</h2>\n",
        section.name()
    );
    if !note.is_empty() {
        w!(out, "<p class=\"note\">{}</p>\n", escape(note));
    }
}

fn no_data(out: &mut String) {
    out.push_str("<p class=\"empty\">no data</p>\n");
}

fn summary_section(out: &mut String, s: &Summary) {
    open_section(out, Section::Summary, "Summary", "");
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| DASH.to_owned());
    let rows = [
        ("Lines read", int(s.lines_read)),
        ("HTTP requests", int(s.http_requests)),
        ("TCP sessions", int(s.tcp_sessions)),
        ("Server and proxy events", int(s.events)),
        ("Malformed lines", int(s.malformed)),
        ("Left out by filters", int(s.filtered_out)),
        ("First accepted", or_dash(&s.first)),
        ("Last accepted", or_dash(&s.last)),
        ("Mean HTTP requests/s", opt_number(s.mean_rps, 2)),
        (
            "Peak HTTP requests/s",
            s.peak_rps.map_or(DASH.to_owned(), int),
        ),
        ("Peak second", or_dash(&s.peak_second)),
    ];
    table(out, &["Figure", "Value"], &rows, |(k, v)| {
        vec![Cell::Text(k.to_string()), Cell::Text(v.clone())]
    });
    if s.malformed > 0 {
        out.push_str("<h3>Malformed lines</h3>\n");
        w!(
            out,
            "<p class=\"note\">{} lines not understood; the first {} are listed.</p>\n",
            int(s.malformed),
            s.malformed_lines.len()
        );
        if !s.malformed_lines.is_empty() {
            table(
                out,
                &["File", "Line", "Why", "Text"],
                &s.malformed_lines,
                |m| {
                    vec![
                        Cell::Text(m.file.clone()),
                        Cell::Num(int(m.line)),
                        Cell::Text(m.reason.clone()),
                        Cell::Code(m.text.clone()),
                    ]
                },
            );
        }
    }
    out.push_str("</section>\n");
}

fn status_section(out: &mut String, report: &Report) {
    open_section(out, Section::Status, "Status codes", "");
    let codes = report.status.as_deref().unwrap_or_default();
    let classes = report.status_classes.as_deref().unwrap_or_default();
    if codes.is_empty() && classes.is_empty() {
        no_data(out);
        out.push_str("</section>\n");
        return;
    }
    status_chart(out, &status_bars(codes, classes));
    out.push_str("<div class=\"tables\">\n<div>\n<h3>By code</h3>\n");
    table(out, &["Code", "Class", "Requests", "Share"], codes, |r| {
        vec![
            Cell::Text(status_label(r.status)),
            Cell::Text(r.class.clone()),
            Cell::Num(int(r.count)),
            Cell::Num(share(r.share)),
        ]
    });
    out.push_str("</div>\n");
    if let Some(classes) = &report.status_classes {
        out.push_str("<div>\n<h3>By class</h3>\n");
        table(out, &["Class", "Requests", "Share"], classes, |r| {
            vec![
                Cell::Text(r.class.clone()),
                Cell::Num(int(r.count)),
                Cell::Num(share(r.share)),
            ]
        });
        out.push_str("</div>\n");
    }
    if let Some(rows) = &report.status_by_backend {
        out.push_str("<div>\n<h3>By backend</h3>\n");
        let headers = ["Backend", "Code", "Class", "Requests", "Share of backend"];
        table(out, &headers, rows, |r| {
            vec![
                Cell::Text(r.backend.clone()),
                Cell::Text(status_label(r.status)),
                Cell::Text(r.class.clone()),
                Cell::Num(int(r.count)),
                Cell::Num(share(r.share)),
            ]
        });
        out.push_str("</div>\n");
    }
    out.push_str("</div>\n</section>\n");
}

/// The status chart's bars, (label, class, count, share): one per code, or per class when
/// codes are missing.
fn status_bars<'a>(
    codes: &'a [StatusRow],
    classes: &'a [StatusRow],
) -> Vec<(String, &'a str, u64, f64)> {
    if codes.is_empty() {
        let bar = |r: &'a StatusRow| (r.class.clone(), &*r.class, r.count, r.share);
        return classes.iter().map(bar).collect();
    }
    let mut sorted: Vec<&StatusRow> = codes.iter().collect();
    // -1 (no response) reads best after the real codes.
    sorted.sort_by_key(|r| (r.status < 0, r.status));
    let bar = |r: &'a StatusRow| (status_label(r.status), &*r.class, r.count, r.share);
    sorted.into_iter().map(bar).collect()
}

fn termination_section(out: &mut String, rows: &[TerminationRow]) {
    let note =
        "The first two characters of the termination state: who ended the session, and when.";
    open_section(out, Section::Termination, "Termination states", note);
    let headers = ["Code", "Count", "Share", "Meaning"];
    table(out, &headers, rows, |r| {
        vec![
            Cell::Code(r.code.clone()),
            Cell::Num(int(r.count)),
            Cell::Num(share(r.share)),
            Cell::Text(r.meaning.clone()),
        ]
    });
    out.push_str("</section>\n");
}

fn servers_section(out: &mut String, rows: &[ServerRow]) {
    let note = "Shares are of the backend's requests; the expected share follows the weights.";
    open_section(out, Section::Servers, "Servers", note);
    if rows.is_empty() {
        no_data(out);
        out.push_str("</section>\n");
        return;
    }
    latency_chart(out, rows);
    out.push_str("<h3>Traffic</h3>\n");
    let headers = [
        "Backend",
        "Server",
        "Requests",
        "Share",
        "Expected",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "Errors",
        "Error rate",
    ];
    table(out, &headers, rows, |r| {
        vec![
            Cell::Text(r.backend.clone()),
            Cell::Text(r.server.clone()),
            Cell::Num(int(r.requests)),
            Cell::Num(share(r.share)),
            Cell::Num(r.expected_share.map_or(DASH.to_owned(), share)),
            Cell::Num(int(r.status_2xx)),
            Cell::Num(int(r.status_3xx)),
            Cell::Num(int(r.status_4xx)),
            Cell::Num(int(r.status_5xx)),
            Cell::Num(int(r.errors)),
            Cell::Num(share(r.error_rate)),
        ]
    });
    timers_table(out, rows);
    out.push_str("</section>\n");
}

fn timers_table(out: &mut String, rows: &[ServerRow]) {
    out.push_str("<h3>Timers (ms)</h3>\n");
    let note = "Ta is the total time (Tt for TCP); Tr server response, Tc connect, Tw queue, \
                TR request. Aborted counts Ta logged as -1. The JSON and CSV have every figure.";
    w!(out, "<p class=\"note\">{note}</p>\n");
    let headers = [
        "Backend", "Server", "Ta p50", "Ta p90", "Ta p99", "Ta max", "Ta mean", "Tr p50", "Tr p99",
        "Tc p99", "Tw p99", "TR p99", "Aborted",
    ];
    table(out, &headers, rows, |r| {
        vec![
            Cell::Text(r.backend.clone()),
            Cell::Text(r.server.clone()),
            Cell::Num(ms(r.ta.p50)),
            Cell::Num(ms(r.ta.p90)),
            Cell::Num(ms(r.ta.p99)),
            Cell::Num(ms(r.ta.max)),
            Cell::Num(ms(r.ta.mean)),
            Cell::Num(ms(r.tr.p50)),
            Cell::Num(ms(r.tr.p99)),
            Cell::Num(ms(r.tc.p99)),
            Cell::Num(ms(r.tw.p99)),
            Cell::Num(ms(r.treq.p99)),
            Cell::Num(int(r.ta.aborted)),
        ]
    });
}

fn fairness_section(out: &mut String, rows: &[FairnessRow], interval: f64) {
    let note = "Jain's index of weight-normalised load: 1 is perfectly even, 1/n is one server \
                doing all the work.";
    open_section(out, Section::Fairness, "Fairness", note);
    if rows.is_empty() {
        no_data(out);
        out.push_str("</section>\n");
        return;
    }
    fairness_chart(out, rows, interval);
    let headers = [
        "Backend",
        "Servers",
        "Jain index",
        "Max/min",
        "CV",
        "Worst interval",
        "Worst at",
        "Idle servers",
        "Idle intervals",
    ];
    table(out, &headers, rows, |r| {
        let idle: Vec<String> = r
            .idle_intervals
            .iter()
            .map(|i| format!("{}: {}", i.server, i.intervals))
            .collect();
        vec![
            Cell::Text(r.backend.clone()),
            Cell::Num(r.servers.to_string()),
            Cell::Num(opt_number(r.jain_index, 3)),
            Cell::Num(opt_number(r.max_min_ratio, 2)),
            Cell::Num(opt_number(r.cv, 3)),
            Cell::Num(opt_number(r.worst_interval_jain, 3)),
            Cell::Time(
                r.worst_interval_start
                    .clone()
                    .unwrap_or_else(|| DASH.into()),
            ),
            Cell::Text(r.idle_servers.join(", ")),
            Cell::Text(idle.join(", ")),
        ]
    });
    out.push_str("</section>\n");
}

fn timeline_section(out: &mut String, rows: &[TimelineRow], interval: f64) {
    let note = format!("Per server, in intervals of {}.", duration(interval));
    open_section(out, Section::Timeline, "Timeline", &note);
    if rows.is_empty() {
        no_data(out);
        out.push_str("</section>\n");
        return;
    }
    requests_chart(out, rows);
    // Rows are intervals times servers: collapsed so the page stays short.
    w!(
        out,
        "<details>\n<summary>All {} rows</summary>\n",
        int(rows.len() as u64)
    );
    let headers = [
        "Start",
        "Backend",
        "Server",
        "Requests",
        "Errors",
        "Ta p99 (ms)",
    ];
    table(out, &headers, rows, |r| {
        vec![
            Cell::Time(r.start.clone()),
            Cell::Text(r.backend.clone()),
            Cell::Text(r.server.clone()),
            Cell::Num(int(r.requests)),
            Cell::Num(int(r.errors)),
            Cell::Num(ms(r.ta_p99)),
        ]
    });
    out.push_str("</details>\n</section>\n");
}

fn top_section(out: &mut String, top: &Top) {
    open_section(
        out,
        Section::Top,
        "Top URLs and clients",
        "URLs without query strings.",
    );
    let urls = [
        ("URLs by requests", &top.urls_by_count),
        ("URLs by total time", &top.urls_by_time),
        ("URLs by errors", &top.urls_by_errors),
    ];
    let headers = ["URL", "Requests", "Total Ta (ms)", "Errors"];
    out.push_str("<div class=\"tables\">\n");
    for (title, rows) in urls {
        w!(out, "<div>\n<h3>{title}</h3>\n");
        table(out, &headers, rows, |r: &UrlRow| {
            vec![
                Cell::Code(r.url.clone()),
                Cell::Num(int(r.requests)),
                Cell::Num(int(r.total_time_ms)),
                Cell::Num(int(r.errors)),
            ]
        });
        out.push_str("</div>\n");
    }
    out.push_str("<div>\n<h3>Clients</h3>\n");
    table(out, &["Client", "Requests"], &top.clients, |r| {
        vec![Cell::Text(r.client.clone()), Cell::Num(int(r.requests))]
    });
    out.push_str("</div>\n</div>\n</section>\n");
}

fn events_section(out: &mut String, events: &Events) {
    open_section(out, Section::Events, "Server events", "");
    out.push_str("<h3>Transitions</h3>\n");
    let headers = ["Time", "Backend", "Server", "State", "Reason"];
    table(out, &headers, &events.transitions, |t| {
        vec![
            Cell::Time(t.time.clone().unwrap_or_else(|| DASH.into())),
            Cell::Text(t.backend.clone()),
            Cell::Text(t.server.clone()),
            Cell::Text(t.state.clone()),
            Cell::Text(t.reason.clone()),
        ]
    });
    let hidden = events.transitions_total - events.transitions.len() as u64;
    if hidden > 0 {
        w!(
            out,
            "<p class=\"note\">… and {} more (<code>--transitions N</code> lists more).</p>\n",
            int(hidden)
        );
    }
    out.push_str("<h3>Downtime</h3>\n");
    let headers = [
        "Backend",
        "Server",
        "Outages",
        "Out of service",
        "Still down",
    ];
    table(out, &headers, &events.downtime, |d| {
        vec![
            Cell::Text(d.backend.clone()),
            Cell::Text(d.server.clone()),
            Cell::Num(int(d.outages)),
            Cell::Num(duration(d.seconds)),
            Cell::Text(if d.still_down { "yes" } else { "no" }.into()),
        ]
    });
    out.push_str("</section>\n");
}

/// A table cell; every kind is escaped when written.
enum Cell {
    /// Prose, left-aligned.
    Text(String),
    /// A figure, right-aligned.
    Num(String),
    /// A timestamp, kept on one line.
    Time(String),
    /// Log text shown verbatim (URLs, codes, line excerpts), allowed to wrap anywhere.
    Code(String),
}

/// A table of `rows`, or a "no data" note; numeric columns are known from the first row.
fn table<T>(out: &mut String, headers: &[&str], rows: &[T], cells: impl Fn(&T) -> Vec<Cell>) {
    let Some(first) = rows.first().map(&cells) else {
        no_data(out);
        return;
    };
    out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
    for (i, h) in headers.iter().enumerate() {
        let num = matches!(first.get(i), Some(Cell::Num(_)));
        let class = if num { " class=\"num\"" } else { "" };
        w!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in cells(row) {
            match cell {
                Cell::Text(s) => w!(out, "<td>{}</td>", escape(&s)),
                Cell::Num(s) => w!(out, "<td class=\"num\">{}</td>", escape(&s)),
                Cell::Code(s) => w!(out, "<td><code>{}</code></td>", escape(&s)),
                Cell::Time(s) => w!(out, "<td class=\"time\">{}</td>", escape(&s)),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
}

/// Text with `& < > " '` replaced by entities, safe in element content and quoted attributes.
struct Escaped<'a>(&'a str);

fn escape(s: &str) -> Escaped<'_> {
    Escaped(s)
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

const DASH: &str = "–";

/// `n` with thousands separated by narrow no-break spaces.
fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// A whole number without decimals, anything else with `decimals`.
fn number(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        DASH.to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.decimals$}")
    }
}

fn opt_number(v: Option<f64>, decimals: usize) -> String {
    v.map_or(DASH.to_owned(), |v| number(v, decimals))
}

fn ms(v: Option<f64>) -> String {
    opt_number(v, 1)
}

/// A fraction as a percentage with one decimal.
fn share(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.1}%", fraction * 100.0)
    } else {
        DASH.to_owned()
    }
}

fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return DASH.to_owned();
    }
    if seconds < 60.0 {
        return format!("{} s", number(seconds, 1));
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

fn status_label(status: i32) -> String {
    if status < 0 {
        "none".to_owned()
    } else {
        status.to_string()
    }
}

fn class_colour(class: &str) -> &'static str {
    match class {
        "1xx" => "#7e8fa3",
        "2xx" => "#3a9a4f",
        "3xx" => "#3b76c4",
        "4xx" => "#e6a118",
        "5xx" => "#d1382b",
        _ => "#9e9e9e",
    }
}

#[cfg(test)]
mod tests {
    use super::chart::{count_ticks, latency_ticks};
    use super::*;
    use crate::input::MalformedLine;
    use crate::report::{ClientRow, IntervalJain, TimerStats};

    fn timer(p: [Option<f64>; 3]) -> TimerStats {
        TimerStats {
            p50: p[0],
            p90: p[1],
            p99: p[2],
            max: p[2],
            mean: p[0],
            count: p.iter().flatten().count() as u64,
            aborted: 0,
        }
    }

    fn server(backend: &str, name: &str, ta: [Option<f64>; 3]) -> ServerRow {
        ServerRow {
            backend: backend.into(),
            server: name.into(),
            requests: 10,
            share: 0.5,
            expected_share: Some(0.5),
            status_2xx: 9,
            status_3xx: 0,
            status_4xx: 0,
            status_5xx: 1,
            errors: 1,
            error_rate: 0.1,
            ta: timer(ta),
            tr: timer(ta),
            tc: timer([Some(0.0); 3]),
            tw: timer([None; 3]),
            treq: timer([Some(1.0); 3]),
        }
    }

    fn status(code: i32, count: u64) -> StatusRow {
        StatusRow {
            status: code,
            class: crate::report::status_class(code).into(),
            count,
            share: count as f64 / 100.0,
        }
    }

    fn timeline(start: &str, server: &str, requests: u64) -> TimelineRow {
        TimelineRow {
            start: start.into(),
            backend: "be_app".into(),
            server: server.into(),
            requests,
            errors: 0,
            ta_p99: Some(12.0),
        }
    }

    fn fairness(backend: &str, jains: &[f64]) -> FairnessRow {
        let starts = [
            "2026-11-24T22:37:00.000",
            "2026-11-24T22:38:00.000",
            "2026-11-24T22:39:00.000",
        ];
        FairnessRow {
            backend: backend.into(),
            servers: 2,
            jain_index: Some(0.9),
            max_min_ratio: None,
            cv: Some(0.2),
            worst_interval_jain: jains.first().copied(),
            worst_interval_start: None,
            idle_servers: vec![],
            idle_intervals: vec![],
            jain_by_interval: starts
                .iter()
                .zip(jains)
                .map(|(s, j)| IntervalJain {
                    start: s.to_string(),
                    jain: *j,
                })
                .collect(),
        }
    }

    /// The markup of the chart with `id`, up to its closing tag.
    fn chart<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html
            .find(&format!("<svg class=\"chart\" id=\"{id}\""))
            .unwrap_or_else(|| panic!("no chart {id}"));
        let len = html[start..].find("</svg>").expect("an unclosed chart");
        &html[start..start + len]
    }

    #[test]
    fn escape_replaces_the_five_special_characters() {
        let s = escape(r#"a&b<c>"d'e"#).to_string();
        assert_eq!(s, "a&amp;b&lt;c&gt;&quot;d&#39;e");
        assert_eq!(escape("plain é").to_string(), "plain é");
    }

    #[test]
    fn hostile_names_and_urls_are_escaped_everywhere() {
        let evil = "<script>alert(\"x\")</script>";
        let mut srv = server("be'\"", evil, [Some(1.0), Some(2.0), Some(3.0)]);
        srv.requests = 3;
        let report = Report {
            summary: Some(Summary {
                malformed: 1,
                malformed_lines: vec![MalformedLine {
                    file: "a.log".into(),
                    line: 7,
                    reason: "expected <date>".into(),
                    text: evil.into(),
                }],
                ..Summary::default()
            }),
            servers: Some(vec![srv]),
            timeline: Some(vec![timeline("2026-11-24T22:37:00.000", evil, 3)]),
            top: Some(Top {
                urls_by_count: vec![UrlRow {
                    url: format!("/x{evil}"),
                    requests: 1,
                    total_time_ms: 2,
                    errors: 0,
                }],
                clients: vec![ClientRow {
                    client: evil.into(),
                    requests: 1,
                }],
                ..Top::default()
            }),
            ..Report::default()
        };
        let html = render(&report);
        assert!(!html.contains("<script"), "raw <script> in the page");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(html.contains("be&#39;&quot;"));
        assert!(html.contains("<title>halyard report</title>"));
    }

    #[test]
    fn a_summary_alone_has_no_chart_and_no_other_section() {
        let report = Report {
            summary: Some(Summary {
                lines_read: 1234,
                http_requests: 1000,
                ..Summary::default()
            }),
            ..Report::default()
        };
        let html = render(&report);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<section id=\"summary\">"));
        assert!(html.contains("1\u{202f}234"));
        assert!(!html.contains("<svg"));
        for other in &Section::ALL[1..] {
            assert!(!html.contains(&format!("<section id=\"{}\"", other.name())));
        }
    }

    #[test]
    fn empty_sections_say_no_data_and_draw_nothing() {
        let report = Report {
            status: Some(vec![]),
            status_classes: Some(vec![]),
            servers: Some(vec![]),
            fairness: Some(vec![fairness("be_app", &[])]),
            timeline: Some(vec![]),
            top: Some(Top::default()),
            events: Some(Events::default()),
            termination: Some(vec![]),
            ..Report::default()
        };
        let html = render(&report);
        assert!(!html.contains("<svg"));
        for s in &Section::ALL[1..] {
            assert!(
                html.contains(&format!("<section id=\"{}\">", s.name())),
                "{s:?}"
            );
        }
        assert!(html.matches("no data").count() >= 8);
    }

    #[test]
    fn each_chart_has_one_mark_per_datum_and_sections_keep_their_order() {
        let t = [
            "2026-11-24T22:37:00.000",
            "2026-11-24T22:38:00.000",
            "2026-11-24T22:39:00.000",
        ];
        let report = Report {
            summary: Some(Summary::default()),
            status: Some(vec![status(200, 80), status(404, 15), status(503, 5)]),
            status_classes: Some(vec![status(200, 80), status(400, 15), status(500, 5)]),
            servers: Some(vec![
                server("be_app", "app1", [Some(2.0), Some(10.0), Some(3000.0)]),
                server("be_app", "app2", [Some(0.0), Some(1.5), None]),
                server("be_app", "<NOSRV>", [None; 3]),
            ]),
            timeline: Some(
                t.iter()
                    .flat_map(|s| [timeline(s, "app1", 5), timeline(s, "app2", 7)])
                    .collect(),
            ),
            fairness: Some(vec![
                fairness("be_app", &[1.0, 0.8, 0.95]),
                fairness("be_x", &[]),
            ]),
            termination: Some(vec![TerminationRow {
                code: "sH".into(),
                count: 1,
                share: f64::NAN,
                meaning: "server timeout".into(),
            }]),
            interval_seconds: 60.0,
            ..Report::default()
        };
        let html = render(&report);
        let count = |id: &str, class: &str| chart(&html, id).matches(class).count();
        assert_eq!(count("chart-status", "class=\"bar\""), 3);
        assert_eq!(count("chart-latency", "class=\"bar\""), 5);
        assert_eq!(count("chart-requests-over-time", "class=\"point\""), 6);
        assert_eq!(count("chart-requests-over-time", "<polyline"), 2);
        assert_eq!(count("chart-fairness-over-time", "class=\"point\""), 3);
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 4);
        assert!(chart(&html, "chart-status").contains(">Requests per status code</title>"));
        assert!(!html.contains("NaN") && !html.contains("inf"));
        let at = |s: Section| html.find(&format!("<section id=\"{}\">", s.name()));
        let order: Vec<_> = Section::ALL.iter().filter_map(|s| at(*s)).collect();
        assert_eq!(order.len(), 6);
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn figures_read_as_promised() {
        assert_eq!(share(0.1234), "12.3%");
        assert_eq!(ms(Some(3000.0)), "3000");
        assert_eq!(ms(Some(12.34)), "12.3");
        assert_eq!(ms(None), DASH);
        assert_eq!(int(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(duration(90.0), "1 min 30 s");
        assert_eq!(duration(60.0), "1 min");
        assert_eq!(duration(7260.0), "2 h 1 min");
        assert_eq!(count_ticks(43.0).0, 50.0);
        assert_eq!(count_ticks(1.0).0, 1.0);
        assert_eq!(latency_ticks(3000.0).0, 10_000.0);
    }
}
