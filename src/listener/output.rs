//! Turning a received message into the line a file gets, in the chosen output format, and the
//! facts routing needs (facility, severity, tag).
//!
//! One message is always one line: LF and CR inside it are written as `#012` and `#015`, as
//! rsyslog does. A message with no syslog header is written as received, in every format but
//! JSON lines.

use std::net::SocketAddr;

use chrono::{DateTime, Datelike, Local, NaiveDateTime, Timelike};
use serde::Serialize;

use crate::config::OutputFormat;
use crate::logline::{
    parse_line, Envelope, EnvelopeSyntax, Priority, Record, Timestamp, UtcOffset,
};

/// A message ready to file.
#[derive(Debug)]
pub(super) struct Filed<'a> {
    /// The line to write, without terminator.
    pub line: &'a [u8],
    /// The message as received, as one line (escaped): what the live parser reads.
    pub received: &'a [u8],
    /// Facility and severity, for routing.
    pub priority: Priority,
    /// The sender's program name, for routing.
    pub tag: Option<&'a [u8]>,
    /// Whether the message had a syslog header.
    pub is_syslog: bool,
}

/// Formats messages, reusing its buffers.
#[derive(Debug)]
pub(super) struct LineFormatter {
    format: OutputFormat,
    escaped: Vec<u8>,
    line: Vec<u8>,
    host: (Option<std::net::IpAddr>, String),
    sequence: u64,
}

impl LineFormatter {
    pub(super) fn new(format: OutputFormat) -> Self {
        LineFormatter {
            format,
            escaped: Vec::new(),
            line: Vec::new(),
            host: (None, String::new()),
            sequence: 0,
        }
    }

    /// Formats one message received from `peer` at `received`.
    pub(super) fn format(
        &mut self,
        message: &[u8],
        peer: SocketAddr,
        received: &DateTime<Local>,
    ) -> Filed<'_> {
        self.sequence += 1;
        super::message_line(message, &mut self.escaped);
        let (envelope, body) = Envelope::split(&self.escaped);
        let is_syslog = envelope.priority.is_some();
        let priority = envelope.priority.unwrap_or_default();
        if self.host.0 != Some(peer.ip()) {
            self.host = (Some(peer.ip()), peer.ip().to_string());
        }
        let host = envelope.hostname.unwrap_or(self.host.1.as_bytes());
        self.line.clear();
        match self.format {
            OutputFormat::Jsonl => {
                let parsed = parse_line(&self.escaped);
                let object = JsonLine {
                    received: received.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string(),
                    peer: peer.to_string(),
                    record: Record::new(None, self.sequence, &parsed),
                };
                // Serializing plain data into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut self.line, &object);
            }
            _ if !is_syslog => self.line.extend_from_slice(&self.escaped),
            OutputFormat::Raw => self.line.extend_from_slice(&self.escaped),
            OutputFormat::Traditional => {
                let out = Envelope {
                    syntax: EnvelopeSyntax::Bsd,
                    priority: None,
                    timestamp: Some(bsd_timestamp(envelope.timestamp, received)),
                    hostname: Some(host),
                    tag: envelope.tag,
                    pid: envelope.pid,
                };
                out.write_with(body, &mut self.line);
            }
            OutputFormat::Rfc5424 => {
                let syntax = match envelope.syntax {
                    s @ EnvelopeSyntax::Rfc5424 { .. } => s,
                    _ => EnvelopeSyntax::Rfc5424 {
                        msgid: None,
                        structured_data: None,
                    },
                };
                let out = Envelope {
                    syntax,
                    priority: Some(priority),
                    timestamp: Some(iso_timestamp(envelope.timestamp, received)),
                    hostname: Some(host),
                    tag: envelope.tag,
                    pid: envelope.pid,
                };
                out.write_with(body, &mut self.line);
            }
        }
        Filed {
            line: &self.line,
            received: &self.escaped,
            priority,
            tag: envelope.tag,
            is_syslog,
        }
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    received: String,
    peer: String,
    #[serde(flatten)]
    record: Record<'a>,
}

/// Drops the terminators senders add: trailing LF, CR and NUL.
pub(super) fn trim_end(message: &[u8]) -> &[u8] {
    let keep = message
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | 0))
        .map_or(0, |i| i + 1);
    &message[..keep]
}

/// Copies `message` into `out` with LF and CR written as rsyslog writes them.
pub(super) fn escape_into(message: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut rest = message;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(if rest[i] == b'\n' { b"#012" } else { b"#015" });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// The message's own time as `Mmm dd hh:mm:ss`, or the time it was received.
fn bsd_timestamp(sent: Option<Timestamp>, received: &DateTime<Local>) -> Timestamp {
    let local = match sent {
        Some(t @ Timestamp::Bsd { .. }) => return t,
        Some(Timestamp::Iso { local, .. }) => local,
        None => received.naive_local(),
    };
    Timestamp::Bsd {
        month: local.month(),
        day: local.day(),
        time: local.time().with_nanosecond(0).unwrap_or(local.time()),
    }
}

/// The message's own time in RFC 3339 form, or the time it was received. A BSD time has no
/// year or zone: it takes those of the receiving clock (last year's, if it would be more than
/// a day ahead).
fn iso_timestamp(sent: Option<Timestamp>, received: &DateTime<Local>) -> Timestamp {
    let offset = UtcOffset::Minutes(received.offset().local_minus_utc() / 60);
    let local: NaiveDateTime = match sent {
        Some(t @ Timestamp::Iso { .. }) => return t,
        Some(bsd) => {
            let now = received.naive_local();
            let this_year = bsd.local_in_year(now.year());
            match this_year {
                Some(t) if t <= now + chrono::Duration::days(1) => t,
                _ => match bsd.local_in_year(now.year() - 1) {
                    Some(t) => t,
                    None => now,
                },
            }
        }
        None => {
            return Timestamp::Iso {
                local: received.naive_local(),
                fraction_digits: 6,
                offset: Some(offset),
            }
        }
    };
    Timestamp::Iso {
        local,
        fraction_digits: 0,
        offset: Some(offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn format(format: OutputFormat, message: &[u8]) -> String {
        let received = Local.with_ymd_and_hms(2026, 11, 25, 1, 2, 3).unwrap();
        let peer: SocketAddr = "10.1.2.3:40000".parse().unwrap();
        let mut f = LineFormatter::new(format);
        String::from_utf8_lossy(f.format(message, peer, &received).line).into_owned()
    }

    const HAPROXY: &[u8] = b"<158>Nov 24 22:33:48 haproxy[1]: 127.0.0.1:5 [24/Nov/2026:22:33:42.394] fe be/s 0/0/0/0/0 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n";

    #[test]
    fn traditional_takes_the_host_from_the_sender_when_the_message_has_none() {
        assert_eq!(
            format(OutputFormat::Traditional, HAPROXY),
            "Nov 24 22:33:48 10.1.2.3 haproxy[1]: 127.0.0.1:5 [24/Nov/2026:22:33:42.394] fe be/s 0/0/0/0/0 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
        );
        assert_eq!(
            format(
                OutputFormat::Traditional,
                b"<38>2026-11-24T21:53:12 lb prg[12]: seq: 1"
            ),
            "Nov 24 21:53:12 lb prg[12]: seq: 1"
        );
        assert_eq!(
            format(
                OutputFormat::Traditional,
                b"<13>1 2026-11-24T21:53:12.5Z lb app 99 - - hi"
            ),
            "Nov 24 21:53:12 lb app[99]: hi"
        );
        // A priority and nothing else recognisable: received time and sender, then the text.
        assert_eq!(
            format(OutputFormat::Traditional, b"<13>hello there"),
            "Nov 25 01:02:03 10.1.2.3 hello there"
        );
    }

    #[test]
    fn one_message_is_one_line_and_non_syslog_bytes_are_kept() {
        assert_eq!(
            format(
                OutputFormat::Traditional,
                b"<13>Nov 24 22:33:48 t: a\nb\r\nc\n\0"
            ),
            "Nov 24 22:33:48 10.1.2.3 t: a#012b#015#012c"
        );
        let binary = b"\xff\xfe not syslog \x01";
        let mut f = LineFormatter::new(OutputFormat::Traditional);
        let received = Local::now();
        let filed = f.format(binary, "10.1.2.3:1".parse().unwrap(), &received);
        assert_eq!(filed.line, binary);
        assert!(!filed.is_syslog);
        assert_eq!(filed.priority, Priority::default());
    }

    #[test]
    fn rfc5424_and_raw_and_jsonl() {
        assert_eq!(
            format(OutputFormat::Rfc5424, b"<158>Nov 24 22:33:48 haproxy[1]: x"),
            "<158>1 2026-11-24T22:33:48+00:00 10.1.2.3 haproxy 1 - - x".replace(
                "+00:00",
                &Local
                    .with_ymd_and_hms(2026, 11, 25, 1, 2, 3)
                    .unwrap()
                    .format("%:z")
                    .to_string()
            )
        );
        assert_eq!(
            format(OutputFormat::Raw, b"<158>Nov 24 22:33:48 haproxy[1]: x\n"),
            "<158>Nov 24 22:33:48 haproxy[1]: x"
        );
        let json: serde_json::Value =
            serde_json::from_str(&format(OutputFormat::Jsonl, HAPROXY)).unwrap();
        assert_eq!(json["peer"], "10.1.2.3:40000");
        assert_eq!(json["kind"], "http");
        assert_eq!(json["status"], 200);
        assert_eq!(json["facility"], "local3");
        assert!(json["received"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-25T01:02:03.000000"));
    }

    #[test]
    fn routing_facts_come_from_the_header() {
        let mut f = LineFormatter::new(OutputFormat::Raw);
        let filed = f.format(HAPROXY, "10.1.2.3:1".parse().unwrap(), &Local::now());
        assert_eq!(filed.priority.facility_name(), "local3");
        assert_eq!(filed.priority.severity_name(), "info");
        assert_eq!(filed.tag, Some(&b"haproxy"[..]));
        assert!(filed.is_syslog);
    }
}
