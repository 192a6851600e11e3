//! A flat view of a log line with one column per field: what `halyard parse` writes as JSON lines
//! or CSV, and what `halyard tail --format jsonl` prints.
//!
//! Every record has every column (null where it does not apply), so the output has one schema
//! whatever the mix of lines.

use std::borrow::Cow;

use serde::Serialize;

use super::envelope::write_envelope;
use super::{lossy, Body, LogLine, Session};

/// The column names, in output order (JSON keys and the CSV header).
pub const RECORD_COLUMNS: [&str; 51] = [
    "file",
    "line",
    "kind",
    "syslog_header",
    "host",
    "tag",
    "pid",
    "facility",
    "severity",
    "client_ip",
    "client_port",
    "accept_date",
    "frontend",
    "backend",
    "server",
    "proxy",
    "TR",
    "Tw",
    "Tc",
    "Tr",
    "Ta",
    "Tt",
    "logasap",
    "status",
    "bytes_read",
    "request_cookie",
    "response_cookie",
    "termination_state",
    "actconn",
    "feconn",
    "beconn",
    "srv_conn",
    "retries",
    "redispatched",
    "srv_queue",
    "backend_queue",
    "captured_request_headers",
    "captured_response_headers",
    "method",
    "uri",
    "http_version",
    "truncated",
    "event",
    "reason",
    "check_code",
    "info",
    "check_duration_ms",
    "active_servers",
    "backup_servers",
    "message",
    "error",
];

type Text<'a> = Option<Cow<'a, str>>;

/// One line as a flat record: built with [`Record::new`], written with serde (JSON) or
/// [`Record::csv_cells`]. Field names follow HAProxy's (`TR`, `Tw`, `actconn`, ...).
#[derive(Debug, Clone, Default, Serialize)]
#[allow(non_snake_case)]
pub struct Record<'a> {
    /// The input file, `None` for stdin.
    file: Option<&'a str>,
    /// 1-based line number in that input.
    line: u64,
    /// `http`, `tcp`, `server_event`, `proxy_event` or `other`.
    kind: &'static str,
    /// The syslog header text (priority, timestamp, host, tag), as written.
    syslog_header: Text<'a>,
    host: Text<'a>,
    tag: Text<'a>,
    pid: Text<'a>,
    facility: Option<&'static str>,
    severity: Option<&'static str>,
    client_ip: Text<'a>,
    client_port: Option<u16>,
    /// ISO 8601 with milliseconds, local time as HAProxy logs it.
    accept_date: Option<String>,
    frontend: Text<'a>,
    backend: Text<'a>,
    /// `None` for `<NOSRV>`.
    server: Text<'a>,
    /// The proxy of a proxy event.
    proxy: Text<'a>,
    TR: Option<u64>,
    Tw: Option<u64>,
    Tc: Option<u64>,
    Tr: Option<u64>,
    Ta: Option<u64>,
    Tt: Option<u64>,
    /// The total time or byte count had logasap's `+`.
    logasap: Option<bool>,
    status: Option<u16>,
    bytes_read: Option<u64>,
    request_cookie: Text<'a>,
    response_cookie: Text<'a>,
    termination_state: Text<'a>,
    actconn: Option<u32>,
    feconn: Option<u32>,
    beconn: Option<u32>,
    srv_conn: Option<u32>,
    retries: Option<u32>,
    redispatched: Option<bool>,
    srv_queue: Option<u32>,
    backend_queue: Option<u32>,
    captured_request_headers: Option<Vec<Cow<'a, str>>>,
    captured_response_headers: Option<Vec<Cow<'a, str>>>,
    method: Text<'a>,
    uri: Text<'a>,
    http_version: Text<'a>,
    truncated: Option<bool>,
    /// Event name: `down`, `up`, `maintenance`, `check_passed`, `no_server`, `started`, ...
    event: Option<&'static str>,
    reason: Text<'a>,
    check_code: Option<u16>,
    info: Text<'a>,
    check_duration_ms: Option<u64>,
    active_servers: Option<u32>,
    backup_servers: Option<u32>,
    /// The message text, for events and lines that were not understood.
    message: Text<'a>,
    /// Why the line was not understood (`other` only).
    error: Option<String>,
}

fn text(bytes: &[u8]) -> Text<'_> {
    Some(lossy(bytes))
}

/// An accept date in ISO 8601 with milliseconds.
fn iso_date(when: &chrono::NaiveDateTime) -> String {
    when.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

impl<'a> Record<'a> {
    /// The record of line `line` (1-based) of `file`.
    pub fn new(file: Option<&'a str>, line: u64, parsed: &LogLine<'a>) -> Self {
        let env = &parsed.envelope;
        let mut header = Vec::new();
        write_envelope(env, &mut header);
        let mut r = Record {
            file,
            line,
            kind: parsed.kind().as_str(),
            syslog_header: (!header.is_empty())
                .then(|| Cow::Owned(String::from_utf8_lossy(&header).into_owned())),
            host: env.hostname.and_then(text),
            tag: env.tag.and_then(text),
            pid: env.pid.and_then(text),
            facility: env.priority.map(|p| p.facility_name()),
            severity: env.priority.map(|p| p.severity_name()),
            ..Record::default()
        };
        match &parsed.body {
            Body::Http(h) => {
                r.session(&h.session);
                let t = &h.timers;
                (r.TR, r.Tw, r.Tc, r.Tr, r.Ta) =
                    (t.request, t.queue, t.connect, t.response, t.active);
                r.logasap = Some(t.active_partial || h.bytes_partial);
                r.status = h.status;
                r.bytes_read = Some(h.bytes_read);
                r.request_cookie = h.request_cookie.and_then(text);
                r.response_cookie = h.response_cookie.and_then(text);
                r.termination_state = Some(Cow::Owned(
                    lossy(h.termination_state.as_bytes()).into_owned(),
                ));
                r.counts(&h.connections, &h.queues);
                r.captured_request_headers =
                    h.request_headers.map(|b| b.values().map(lossy).collect());
                r.captured_response_headers =
                    h.response_headers.map(|b| b.values().map(lossy).collect());
                r.method = text(h.request.method);
                r.uri = h.request.uri.and_then(text);
                r.http_version = h.request.version.and_then(text);
                r.truncated = Some(h.request.truncated);
            }
            Body::Tcp(t) => {
                r.session(&t.session);
                (r.Tw, r.Tc, r.Tt) = (t.timers.queue, t.timers.connect, t.timers.total);
                r.logasap = Some(t.timers.total_partial || t.bytes_partial);
                r.bytes_read = Some(t.bytes_read);
                r.termination_state = Some(Cow::Owned(
                    lossy(t.termination_state.as_bytes()).into_owned(),
                ));
                r.counts(&t.connections, &t.queues);
            }
            Body::ServerEvent(e) => {
                r.event = Some(e.kind.as_str());
                r.backend = text(e.backend);
                r.server = text(e.server);
                r.reason = e.reason.and_then(text);
                r.check_code = e.check_code;
                r.info = e.info.and_then(text);
                r.check_duration_ms = e.check_duration_ms;
                r.active_servers = e.active_servers;
                r.backup_servers = e.backup_servers;
                r.message = text(parsed.message);
            }
            Body::ProxyEvent(e) => {
                r.event = Some(e.kind.as_str());
                r.proxy = text(e.proxy);
                if e.kind == super::ProxyEventKind::NoServer {
                    r.backend = text(e.proxy);
                }
                r.message = text(parsed.message);
            }
            Body::ConnectionError(e) => {
                r.client_ip = text(e.client_ip);
                r.client_port = Some(e.client_port);
                r.accept_date = Some(iso_date(&e.accept_date));
                r.frontend = text(e.frontend);
                r.reason = text(e.error);
                r.message = text(parsed.message);
            }
            Body::Other(why) => {
                r.message = text(parsed.message);
                r.error = Some(why.to_string());
            }
        }
        r
    }

    fn session(&mut self, s: &Session<'a>) {
        self.client_ip = text(s.client_ip);
        self.client_port = Some(s.client_port);
        self.accept_date = Some(iso_date(&s.accept_date));
        self.frontend = text(s.frontend);
        self.backend = text(s.backend);
        self.server = s.server_name().and_then(text);
    }

    fn counts(&mut self, c: &super::Connections, q: &super::Queues) {
        self.actconn = Some(c.active);
        self.feconn = Some(c.frontend);
        self.beconn = Some(c.backend);
        self.srv_conn = Some(c.server);
        self.retries = Some(c.retries);
        self.redispatched = Some(c.redispatched);
        self.srv_queue = Some(q.server);
        self.backend_queue = Some(q.backend);
    }

    /// The record as CSV cells in [`RECORD_COLUMNS`] order; header lists are joined with `|`
    /// as HAProxy writes them.
    pub fn csv_cells(&self) -> Vec<String> {
        fn t(v: &Text<'_>) -> String {
            v.as_deref().unwrap_or_default().to_owned()
        }
        fn n<T: ToString>(v: Option<T>) -> String {
            v.map(|v| v.to_string()).unwrap_or_default()
        }
        fn list(v: &Option<Vec<Cow<'_, str>>>) -> String {
            v.as_ref().map(|l| l.join("|")).unwrap_or_default()
        }
        vec![
            self.file.unwrap_or_default().to_owned(),
            self.line.to_string(),
            self.kind.to_owned(),
            t(&self.syslog_header),
            t(&self.host),
            t(&self.tag),
            t(&self.pid),
            n(self.facility),
            n(self.severity),
            t(&self.client_ip),
            n(self.client_port),
            n(self.accept_date.as_ref()),
            t(&self.frontend),
            t(&self.backend),
            t(&self.server),
            t(&self.proxy),
            n(self.TR),
            n(self.Tw),
            n(self.Tc),
            n(self.Tr),
            n(self.Ta),
            n(self.Tt),
            n(self.logasap),
            n(self.status),
            n(self.bytes_read),
            t(&self.request_cookie),
            t(&self.response_cookie),
            t(&self.termination_state),
            n(self.actconn),
            n(self.feconn),
            n(self.beconn),
            n(self.srv_conn),
            n(self.retries),
            n(self.redispatched),
            n(self.srv_queue),
            n(self.backend_queue),
            list(&self.captured_request_headers),
            list(&self.captured_response_headers),
            t(&self.method),
            t(&self.uri),
            t(&self.http_version),
            n(self.truncated),
            n(self.event),
            t(&self.reason),
            n(self.check_code),
            t(&self.info),
            n(self.check_duration_ms),
            n(self.active_servers),
            n(self.backup_servers),
            t(&self.message),
            n(self.error.as_ref()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logline::parse_line;

    #[test]
    fn json_keys_and_csv_cells_follow_the_column_list() {
        let line = parse_line(b"<158>Nov 24 21:50:01 haproxy[9]: 10.0.0.1:51522 [24/Nov/2026:21:50:01.674] fe_main be_app/app2 0/595/0/600/1195 200 162 - - --NI 4/4/3/1/+2 1/0 {h|a b} {19} \"GET /sleep/600 HTTP/1.1\"");
        let rec = Record::new(Some("x.log"), 7, &line);
        let json = serde_json::to_value(&rec).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut expected = RECORD_COLUMNS.to_vec();
        expected.sort_unstable();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected);
        assert_eq!(rec.csv_cells().len(), RECORD_COLUMNS.len());
        let cells = rec.csv_cells();
        let cell = |name: &str| &cells[RECORD_COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert_eq!(cell("Tw"), "595");
        assert_eq!(cell("accept_date"), "2026-11-24T21:50:01.674");
        assert_eq!(cell("captured_request_headers"), "h|a b");
        assert_eq!(cell("retries"), "2");
        assert_eq!(cell("redispatched"), "true");
        assert_eq!(
            json["captured_request_headers"],
            serde_json::json!(["h", "a b"])
        );
        assert_eq!(json["server"], "app2");
        assert_eq!(json["syslog_header"], "<158>Nov 24 21:50:01 haproxy[9]:");
    }
}
