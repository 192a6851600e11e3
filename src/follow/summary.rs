//! `--summary`: the compact per-server block printed every interval, from the same rolling
//! view `halyard listen --live` keeps ([`crate::report::rolling`]).

use std::fmt::Write;

use crate::report::rolling::RollingRow;

/// The block for `rows` over the last `window_secs`, one line per server under a header,
/// each cut to `width` characters when given (a status area must not wrap, or it would no
/// longer know how many lines to redraw).
pub fn summary_block(
    rows: &[RollingRow],
    window_secs: u64,
    color: bool,
    width: Option<usize>,
) -> Vec<String> {
    let name_width = rows
        .iter()
        .map(|r| r.backend.len() + r.server.len() + 1)
        .max()
        .unwrap_or(0)
        .max(14);
    let mut lines = vec![format!(
        "-- last {window_secs}s, {} --",
        chrono::Local::now().format("%H:%M:%S")
    )];
    lines.push(format!(
        "{:<name_width$}  {:>8}  {:>6}  {:>6}  {:>7}  {:>7}  events",
        "backend/server", "req/s", "4xx", "5xx", "p50 Ta", "p99 Ta"
    ));
    if rows.is_empty() {
        lines.push("(no requests yet)".to_owned());
    }
    let ms = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
    for row in rows {
        let mut line = format!(
            "{:<name_width$}  {:>8.1}  ",
            format!("{}/{}", row.backend, row.server),
            row.per_second
        );
        let paint = |n: u64, code: &str| match (color && n > 0, n) {
            (true, n) => format!("\x1b[{code}m{n:>6}\x1b[0m"),
            (false, n) => format!("{n:>6}"),
        };
        let _ = write!(
            line,
            "{}  {}  {:>7}  {:>7}  {}",
            paint(row.status_4xx, "33"),
            paint(row.status_5xx, "1;31"),
            ms(row.p50_ms),
            ms(row.p99_ms),
            row.events
        );
        if let Some((kind, ago)) = &row.last_change {
            let _ = write!(line, " ({kind} {ago}s ago)");
        }
        lines.push(line);
    }
    if let Some(width) = width {
        for line in &mut lines {
            cut_to_width(line, width);
        }
    }
    lines
}

/// Cuts `line` to `width` visible characters; ANSI sequences take no room.
fn cut_to_width(line: &mut String, width: usize) {
    let mut visible = 0;
    let mut in_escape = false;
    for (i, c) in line.char_indices() {
        match c {
            '\x1b' => in_escape = true,
            'm' if in_escape => in_escape = false,
            _ if in_escape => {}
            _ => {
                visible += 1;
                if visible > width {
                    line.truncate(i);
                    line.push_str("\x1b[0m");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(server: &str, requests: u64, status_5xx: u64) -> RollingRow {
        RollingRow {
            backend: "be_app".into(),
            server: server.into(),
            requests,
            per_second: requests as f64 / 10.0,
            status_4xx: 1,
            status_5xx,
            events: 2,
            p50_ms: Some(12),
            p99_ms: None,
            last_change: Some(("DOWN".into(), 3)),
        }
    }

    #[test]
    fn one_line_per_server_under_a_header_cut_to_the_width() {
        let lines = summary_block(&[row("a", 100, 0), row("b", 5, 5)], 10, false, None);
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("backend/server"));
        let fields: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            fields,
            ["be_app/a", "10.0", "1", "0", "12", "-", "2", "(DOWN", "3s", "ago)"]
        );
        let narrow = summary_block(&[row("a", 100, 3)], 10, true, Some(20));
        assert!(narrow
            .iter()
            .all(|l| l.chars().filter(|c| *c != '\x1b').count() <= 24));
        assert!(narrow[2].starts_with("be_app/a"));
    }
}
