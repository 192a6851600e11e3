//! The one model of an HAProxy log line, and both directions over it.
//!
//! [`parse_line`] turns the bytes of one line into a [`LogLine`] that borrows from them (no
//! allocation, no UTF-8 requirement); [`LogLine::write_to`] writes it back as HAProxy writes it.
//! The round trip `write_to(parse_line(x)) == x` holds for every line HAProxy (or rsyslog, for its
//! file formats) produces. Parsing is lenient: a line that is not understood becomes
//! [`Body::Other`] with the reason, never a panic and never an error that loses the line.
//!
//! Every other module reads and writes log text through this one; nothing else splits it.

mod clf;
mod conn_error;
mod envelope;
mod event;
mod fields;
mod format;
mod record;
mod session;

pub use conn_error::ConnectionError;
pub use envelope::{Envelope, EnvelopeSyntax, Priority, Timestamp, UtcOffset};
pub use event::{EventSource, ProxyEvent, ProxyEventKind, ServerEvent, ServerEventKind};
pub use record::{Record, RECORD_COLUMNS};
pub use session::{
    Connections, HeaderBlock, HttpLog, HttpSyntax, HttpTimers, Queues, Request, Session, TcpLog,
    TcpTimers, TerminationState,
};

/// One parsed log line: the syslog envelope, the message it carried, and what the message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The syslog header, or [`EnvelopeSyntax::Bare`] when the line has none.
    pub envelope: Envelope<'a>,
    /// The message after the envelope, as it was in the input.
    pub message: &'a [u8],
    /// What the message was understood to be.
    pub body: Body<'a>,
}

/// The meaning of a log message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// An HTTP request log (`option httplog`, or its CLF variant).
    Http(HttpLog<'a>),
    /// A TCP session log (`option tcplog`).
    Tcp(TcpLog<'a>),
    /// A server changing state: DOWN, UP, maintenance, or a health check result.
    ServerEvent(ServerEvent<'a>),
    /// A proxy starting, stopping, or running out of servers.
    ProxyEvent(ProxyEvent<'a>),
    /// A client connection that failed before a request or session (a TLS handshake).
    ConnectionError(ConnectionError<'a>),
    /// A message that is none of the above.
    Other(Malformed),
}

/// Why a message was not understood, and where in it the parser gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    /// What the parser expected to find.
    pub reason: &'static str,
    /// Byte offset where it was expected: into the line for [`parse_line`], into the message
    /// for [`parse_message`].
    pub offset: usize,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "expected {} at byte {}", self.reason, self.offset)
    }
}

/// The kind of a line, as the `kind` column of `halyard parse` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineKind {
    /// [`Body::Http`]
    Http,
    /// [`Body::Tcp`]
    Tcp,
    /// [`Body::ServerEvent`]
    ServerEvent,
    /// [`Body::ProxyEvent`]
    ProxyEvent,
    /// [`Body::ConnectionError`]
    ConnectionError,
    /// [`Body::Other`]
    Other,
}

impl LineKind {
    /// All kinds, in the order reports list them.
    pub const ALL: [LineKind; 6] = [
        LineKind::Http,
        LineKind::Tcp,
        LineKind::ServerEvent,
        LineKind::ProxyEvent,
        LineKind::ConnectionError,
        LineKind::Other,
    ];

    /// The name used in JSON, CSV and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Http => "http",
            LineKind::Tcp => "tcp",
            LineKind::ServerEvent => "server_event",
            LineKind::ProxyEvent => "proxy_event",
            LineKind::ConnectionError => "connection_error",
            LineKind::Other => "other",
        }
    }
}

impl<'a> LogLine<'a> {
    /// The kind of this line.
    pub fn kind(&self) -> LineKind {
        match self.body {
            Body::Http(_) => LineKind::Http,
            Body::Tcp(_) => LineKind::Tcp,
            Body::ServerEvent(_) => LineKind::ServerEvent,
            Body::ProxyEvent(_) => LineKind::ProxyEvent,
            Body::ConnectionError(_) => LineKind::ConnectionError,
            Body::Other(_) => LineKind::Other,
        }
    }

    /// The session part shared by HTTP and TCP logs, if this is one.
    pub fn session(&self) -> Option<&Session<'a>> {
        match &self.body {
            Body::Http(h) => Some(&h.session),
            Body::Tcp(t) => Some(&t.session),
            _ => None,
        }
    }

    /// Appends the line as HAProxy writes it (without a line terminator) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        format::write_line(self, out);
    }

    /// The line as HAProxy writes it, without a line terminator.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.message.len() + 64);
        self.write_to(&mut out);
        out
    }
}

/// Parses one line (a trailing `\n` or `\r\n` is ignored). Never fails: what is not understood
/// becomes [`Body::Other`].
pub fn parse_line(line: &[u8]) -> LogLine<'_> {
    let line = trim_line_end(line);
    let (envelope, message) = envelope::parse_envelope(line);
    let mut body = parse_message(message);
    if let Body::Other(why) = &mut body {
        // The message is what follows the envelope: count from the start of the line.
        why.offset += line.len() - message.len();
    }
    LogLine {
        envelope,
        message,
        body,
    }
}

/// Parses a message without a syslog envelope (what `log stdout format raw` writes).
pub fn parse_message(message: &[u8]) -> Body<'_> {
    if message.is_empty() {
        return Body::Other(Malformed {
            reason: "a message",
            offset: 0,
        });
    }
    event::parse_event(message).unwrap_or_else(|| match session::parse_session_log(message) {
        // Tried only for what is not a traffic log: they share the opening.
        Body::Other(why) => conn_error::parse_connection_error(message).unwrap_or(Body::Other(why)),
        body => body,
    })
}

/// Strips one line terminator, `\n` or `\r\n`; a `\r` not followed by `\n` is content.
fn trim_line_end(line: &[u8]) -> &[u8] {
    match line.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => line,
    }
}

/// Lossy UTF-8 view of a field, for output that must be text.
pub fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_not_understood_says_what_was_expected_where_in_the_line() {
        let line: &[u8] = b"<158>Nov 24 22:33:48 haproxy[1]: 127.0.0.1:99999 [24/Nov/2026:22:33:42.394] fe be/s 0/0/0/0/0 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\r\n";
        let parsed = parse_line(line);
        let Body::Other(why) = parsed.body else {
            panic!("understood: {parsed:?}");
        };
        assert!(line[why.offset..].starts_with(b"99999 "), "{why}");
        assert_eq!(
            why.to_string(),
            format!("expected client port at byte {}", why.offset)
        );
        assert_eq!(parsed.message, &line[33..line.len() - 2]);
    }

    #[test]
    fn crlf_and_lf_endings_are_not_part_of_the_line() {
        let lf = parse_line(b"Proxy fe started.\n");
        let crlf = parse_line(b"Proxy fe started.\r\n");
        assert_eq!(lf, crlf);
        assert_eq!(lf.to_bytes(), b"Proxy fe started.");
        assert_eq!(lf.kind(), LineKind::ProxyEvent);
        // A lone `\r` is content (found by fuzzing: stripping it made writing unstable).
        assert_eq!(parse_line(b"x\r\r").to_bytes(), b"x\r\r");
        assert_eq!(parse_line(b"x\r\r\n").to_bytes(), b"x\r");
    }
}
