//! The stats page in a browser: a table per proxy laid out like HAProxy's (queue, sessions,
//! bytes, denied, errors, warnings, server state), with the responses by class and the
//! response-time percentiles HAProxy's page does not have.

use std::fmt::Write as _;
use std::time::Duration;

use super::rows::{Kind, Row};

/// Column groups and their columns: (header, CSV field).
const GROUPS: &[(&str, &[(&str, &str)])] = &[
    ("Queue", &[("Cur", "qcur"), ("Max", "qmax")]),
    (
        "Sessions",
        &[
            ("Cur", "scur"),
            ("Max", "smax"),
            ("Limit", "slim"),
            ("Total", "stot"),
            ("Rate", "rate"),
        ],
    ),
    ("Bytes", &[("In", "bin"), ("Out", "bout")]),
    ("Denied", &[("Req", "dreq")]),
    (
        "Errors",
        &[("Req", "ereq"), ("Conn", "econ"), ("Resp", "eresp")],
    ),
    ("Warnings", &[("Retr", "wretr"), ("Redis", "wredis")]),
    (
        "Responses",
        &[
            ("1xx", "hrsp_1xx"),
            ("2xx", "hrsp_2xx"),
            ("3xx", "hrsp_3xx"),
            ("4xx", "hrsp_4xx"),
            ("5xx", "hrsp_5xx"),
        ],
    ),
    (
        "Response time (ms)",
        &[("p50", "rtime_p50"), ("p99", "rtime_p99")],
    ),
    (
        "Server",
        &[
            ("Status", "status"),
            ("LastChk", "check_status"),
            ("Wght", "weight"),
            ("Act", "act"),
            ("Bck", "bck"),
            ("Chk", "chkfail"),
            ("Dwn", "chkdown"),
            ("Dwntme", "downtime"),
        ],
    ),
];

const STYLE: &str = "body{font-family:Arial,Helvetica,sans-serif;font-size:13px;margin:12px}\
h1{font-size:18px;margin:0 0 4px}p.info{color:#444;margin:0 0 12px}\
table.px{border-collapse:collapse;margin-bottom:16px;width:100%}\
table.px th,table.px td{border:1px solid #999;padding:2px 5px;text-align:right;white-space:nowrap}\
table.px th.name,table.px td.name{text-align:left}\
table.px caption{text-align:left;font-weight:bold;background:#20a0ff;color:#fff;padding:3px 6px}\
tr.titre th{background:#b0b0b0}tr.frontend td{background:#e8e8d0}tr.backend td{background:#e0e0e0;font-weight:bold}\
tr.up td{background:#c0ffc0}tr.down td{background:#ff9090}tr.maint td{background:#c07820;color:#fff}\
tr.drain td{background:#80a0ff}tr.nocheck td{background:#e0e0e0}";

/// The page for these rows; `refresh` adds HAProxy's auto-refresh.
pub(super) fn page(rows: &[Row], uptime: Duration, refresh: Option<Duration>, uri: &str) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">");
    if let Some(every) = refresh {
        let _ = write!(
            out,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            every.as_secs().max(1)
        );
    }
    let _ = writeln!(
        out,
        "<title>Statistics Report for halyard</title><style>{STYLE}</style></head><body>\
         <h1>Statistics Report for halyard (pid {})</h1><p class=\"info\">uptime {}; \
         also as <a href=\"{uri};csv\">CSV</a>, <a href=\"{uri};json\">JSON</a>, \
         <a href=\"{uri}/metrics\">Prometheus</a></p>",
        std::process::id(),
        uptime_text(uptime),
        uri = escape(uri)
    );
    let mut start = 0;
    while start < rows.len() {
        let name = rows[start].text_of("pxname");
        let end = rows[start..]
            .iter()
            .position(|r| r.text_of("pxname") != name)
            .map_or(rows.len(), |n| start + n);
        proxy_table(&mut out, &name, &rows[start..end]);
        start = end;
    }
    out.push_str("</body></html>\n");
    out
}

/// One proxy's table: the header rows, then its FRONTEND, servers and BACKEND rows.
fn proxy_table(out: &mut String, name: &str, rows: &[Row]) {
    let _ = write!(
        out,
        "<table class=\"px\" id=\"{0}\"><caption>{0}</caption><tr class=\"titre\">\
         <th class=\"name\" rowspan=\"2\"></th>",
        escape(name)
    );
    for (group, columns) in GROUPS {
        let _ = write!(out, "<th colspan=\"{}\">{group}</th>", columns.len());
    }
    out.push_str("</tr><tr class=\"titre\">");
    for (_, columns) in GROUPS {
        for (header, _) in *columns {
            let _ = write!(out, "<th>{header}</th>");
        }
    }
    out.push_str("</tr>\n");
    for row in rows {
        let status = row.text_of("status");
        let class = match (row.kind, status.as_str()) {
            (Kind::Frontend, _) => "frontend",
            (Kind::Backend, _) => "backend",
            (Kind::Server, "UP") => "up",
            (Kind::Server, "DOWN") => "down",
            (Kind::Server, "MAINT") => "maint",
            (Kind::Server, "DRAIN") => "drain",
            (Kind::Server, _) => "nocheck",
        };
        let _ = write!(
            out,
            "<tr class=\"{class}\" data-server=\"{0}\"><td class=\"name\">{0}</td>",
            escape(&row.text_of("svname"))
        );
        for (_, columns) in GROUPS {
            for (_, field) in *columns {
                let cell = match row.get(field) {
                    Some(value) => escape(&value.to_string()),
                    None => String::new(),
                };
                let _ = write!(out, "<td data-field=\"{field}\">{cell}</td>");
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// `2d 3h04m05s`, as HAProxy shows its uptime.
fn uptime_text(uptime: Duration) -> String {
    let s = uptime.as_secs();
    format!(
        "{}d {}h{:02}m{:02}s",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

/// Text made safe for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_uptime_reads_like_haproxys() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(uptime_text(Duration::from_secs(93_784)), "1d 2h03m04s");
    }
}
