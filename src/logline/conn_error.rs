//! Connection errors: a client connection that failed before any request or session began
//! (HAProxy's `sess_log_embryonic`), such as a TLS handshake that went wrong.
//!
//! The format is fixed in HAProxy 2.6, whatever the `log-format`:
//! `%ci:%cp [%tr] %ft/LISTENER: ERROR`, e.g. (captured from HAProxy 2.6.12)
//! `127.0.0.1:34688 [25/Nov/2026:05:55:32.012] fe/1: SSL handshake failure`. The listener is
//! the `bind` line's `name`, else its number in the frontend.

use chrono::NaiveDateTime;

use super::fields::{fail, sp, PResult};
use super::session::{client_and_accept_date, write_client_and_accept_date};
use super::Body;

/// A client connection that ended in an error before it carried a request or a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError<'a> {
    /// Client address (`%ci`).
    pub client_ip: &'a [u8],
    /// Client port (`%cp`).
    pub client_port: u16,
    /// When the connection was accepted (`%tr`), local time, millisecond precision.
    pub accept_date: NaiveDateTime,
    /// Frontend name (`%ft`, without the TLS `~`: HAProxy writes the bare name here).
    pub frontend: &'a [u8],
    /// The listener (`bind` line) that accepted the connection: its name or number.
    pub listener: &'a [u8],
    /// What went wrong, as written (`SSL handshake failure`, `Timeout during SSL handshake`,
    /// `Connection closed during SSL handshake`, ...).
    pub error: &'a [u8],
}

/// `%ci:%cp [%tr] %ft/LISTENER: ERROR`; `None` when the message is not one.
pub(super) fn parse_connection_error(message: &[u8]) -> Option<Body<'_>> {
    connection_error(message)
        .ok()
        .map(|(_, e)| Body::ConnectionError(e))
}

fn connection_error(i: &[u8]) -> PResult<'_, ConnectionError<'_>> {
    let (i, (client_ip, client_port, accept_date)) = client_and_accept_date(i)?;
    let (i, (frontend, listener)) = proxy_listener(i)?;
    let (error, _) = sp(i)?;
    if error.is_empty() {
        return fail(error, "an error message");
    }
    Ok((
        &[],
        ConnectionError {
            client_ip,
            client_port,
            accept_date,
            frontend,
            listener,
            error,
        },
    ))
}

/// `FRONTEND/LISTENER:` (names have no spaces; the last `/` before the `:` splits them).
fn proxy_listener(i: &[u8]) -> PResult<'_, (&[u8], &[u8])> {
    let end = i.iter().position(|&b| b == b' ').unwrap_or(i.len());
    let Some(name) = i[..end].strip_suffix(b":") else {
        return fail(i, "frontend/listener:");
    };
    match name.iter().rposition(|&b| b == b'/') {
        Some(slash) if slash > 0 && slash + 1 < name.len() => {
            Ok((&i[end..], (&name[..slash], &name[slash + 1..])))
        }
        _ => fail(i, "frontend/listener:"),
    }
}

/// Writes the line as HAProxy does.
pub(crate) fn write_connection_error(e: &ConnectionError<'_>, out: &mut Vec<u8>) {
    write_client_and_accept_date(e.client_ip, e.client_port, &e.accept_date, out);
    out.extend_from_slice(e.frontend);
    out.push(b'/');
    out.extend_from_slice(e.listener);
    out.extend_from_slice(b": ");
    out.extend_from_slice(e.error);
}

#[cfg(test)]
mod tests {
    use super::super::{parse_line, Body, LineKind};

    /// Captured from HAProxy 2.6.12 (`bind ... ssl crt`, plain HTTP and an empty connection
    /// sent to the TLS port).
    const CAPTURED: [&[u8]; 3] = [
        b"<158>Nov 25 05:55:32 haproxy[26731]: 127.0.0.1:34688 [25/Nov/2026:05:55:32.012] fe/1: SSL handshake failure",
        b"<158>Nov 25 05:55:32 haproxy[26731]: 127.0.0.1:52934 [25/Nov/2026:05:55:32.014] fetcp/1: SSL handshake failure",
        b"<158>Nov 25 05:55:32 haproxy[26731]: 127.0.0.1:34702 [25/Nov/2026:05:55:32.015] fe/1: Connection closed during SSL handshake",
    ];

    #[test]
    fn captured_lines_parse_and_write_back() {
        for line in CAPTURED {
            let parsed = parse_line(line);
            assert_eq!(parsed.kind(), LineKind::ConnectionError, "{parsed:?}");
            assert_eq!(parsed.to_bytes(), line);
        }
        let Body::ConnectionError(e) = parse_line(CAPTURED[1]).body else {
            panic!("not a connection error");
        };
        assert_eq!(
            (e.client_ip, e.client_port, e.frontend, e.listener, e.error),
            (
                &b"127.0.0.1"[..],
                52934,
                &b"fetcp"[..],
                &b"1"[..],
                &b"SSL handshake failure"[..]
            )
        );
    }

    #[test]
    fn near_misses_are_other_lines() {
        for message in [
            &b"127.0.0.1:1 [25/Nov/2026:05:55:32.012] fe/1:"[..],
            b"127.0.0.1:1 [25/Nov/2026:05:55:32.012] fe/1: ",
            b"127.0.0.1:1 [25/Nov/2026:05:55:32.012] fe: SSL handshake failure",
            b"127.0.0.1:1 [25/Nov/2026:05:55:32.012] /1: SSL handshake failure",
            b"127.0.0.1:1 [25/Nov/2026:05:55:32.012] fe/1 SSL handshake failure",
        ] {
            assert_eq!(parse_line(message).kind(), LineKind::Other, "{message:?}");
        }
    }
}
