//! Writing a [`LogLine`] back as HAProxy (or rsyslog, for its file formats) writes it.

use super::conn_error::write_connection_error;
use super::envelope::write_envelope;
use super::event::{write_proxy_event, write_server_event};
use super::session::{write_http, write_tcp};
use super::{Body, LogLine};

/// Appends the line, without a terminator, to `out`.
pub(crate) fn write_line(line: &LogLine<'_>, out: &mut Vec<u8>) {
    let separator_due = write_envelope(&line.envelope, out);
    if separator_due {
        out.push(b' ');
    }
    let body_start = out.len();
    match &line.body {
        Body::Http(h) => write_http(h, out),
        Body::Tcp(t) => write_tcp(t, out),
        Body::ServerEvent(e) => write_server_event(e, out),
        Body::ProxyEvent(e) => write_proxy_event(e, out),
        Body::ConnectionError(e) => write_connection_error(e, out),
        Body::Other(_) => out.extend_from_slice(line.message),
    }
    // An empty message takes no separator after the envelope.
    if separator_due && out.len() == body_start {
        out.pop();
    }
}
