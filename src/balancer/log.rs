//! Sending log lines as UDP syslog, in HAProxy's default envelope
//! (`<PRI>Mmm dd hh:mm:ss haproxy[PID]: MESSAGE`), to every target of a proxy.
//!
//! Sending never waits: the socket is non-blocking and a datagram the kernel has no room for
//! is dropped and counted, so a slow or absent log receiver cannot slow requests down.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{Datelike, Local, Timelike};

use super::stats::unix_now;
use crate::config::LogTarget;
use crate::logline::{Body, Envelope, EnvelopeSyntax, LogLine, Priority, Timestamp};

/// Severities HAProxy uses.
pub mod severity {
    /// `backend X has no server available!`
    pub const EMERG: u8 = 0;
    /// A server going DOWN.
    pub const ALERT: u8 = 1;
    /// A server going UP, check results.
    pub const NOTICE: u8 = 5;
    /// Traffic logs.
    pub const INFO: u8 = 6;
}

/// The log sockets and counters shared by every proxy.
#[derive(Debug)]
pub struct LogSender {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    pid: String,
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl LogSender {
    /// Opens the sending sockets (one per address family).
    pub fn new() -> io::Result<Arc<LogSender>> {
        let open = |addr: &str| -> Option<UdpSocket> {
            let socket = UdpSocket::bind(addr).ok()?;
            socket.set_nonblocking(true).ok()?;
            Some(socket)
        };
        let v4 = open("0.0.0.0:0");
        let v6 = open("[::]:0");
        if v4.is_none() && v6.is_none() {
            return Err(io::Error::other("cannot open a UDP socket for logging"));
        }
        Ok(Arc::new(LogSender {
            v4,
            v6,
            pid: std::process::id().to_string(),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }))
    }

    /// Datagrams sent and dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// Sends a traffic log (the body of an HTTP or TCP log) to `targets` at `severity`.
    pub fn send_body(&self, targets: &[LogTarget], severity: u8, body: Body<'_>) {
        self.send_with(targets, severity, |envelope, out| {
            LogLine {
                envelope,
                message: b"",
                body: body.clone(),
            }
            .write_to(out)
        });
    }

    /// Sends a sentence (a server or proxy event) to `targets` at `severity`.
    pub fn send_text(&self, targets: &[LogTarget], severity: u8, text: &str) {
        self.send_with(targets, severity, |envelope, out| {
            envelope.write_with(text.as_bytes(), out)
        });
    }

    fn send_with(
        &self,
        targets: &[LogTarget],
        severity: u8,
        write: impl Fn(Envelope<'_>, &mut Vec<u8>),
    ) {
        if targets.is_empty() {
            return;
        }
        let timestamp = envelope_time();
        let mut datagram = Vec::with_capacity(512);
        for target in targets.iter().filter(|t| severity <= t.max_level) {
            datagram.clear();
            let envelope = Envelope {
                syntax: EnvelopeSyntax::Bsd,
                priority: Priority::from_parts(target.facility, severity),
                timestamp: Some(timestamp),
                hostname: None,
                tag: Some(b"haproxy"),
                pid: Some(self.pid.as_bytes()),
            };
            write(envelope, &mut datagram);
            self.send_to(&datagram, target.addr);
        }
    }

    fn send_to(&self, datagram: &[u8], addr: SocketAddr) {
        let socket = if addr.is_ipv4() { &self.v4 } else { &self.v6 };
        let sent = socket
            .as_ref()
            .is_some_and(|s| s.send_to(datagram, addr).is_ok());
        let counter = if sent { &self.sent } else { &self.dropped };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The envelope's local time, to the second: worked out once a second per thread (the
/// time zone lookup behind it is not free, and every request sends a line).
fn envelope_time() -> Timestamp {
    thread_local! {
        static CACHED: std::cell::Cell<Option<(u64, Timestamp)>> = const { std::cell::Cell::new(None) };
    }
    let second = unix_now();
    if let Some((at, timestamp)) = CACHED.get() {
        if at == second {
            return timestamp;
        }
    }
    let now = Local::now();
    let timestamp = Timestamp::Bsd {
        month: now.month(),
        day: now.day(),
        time: now.time().with_nanosecond(0).unwrap_or(now.time()),
    };
    CACHED.set(Some((second, timestamp)));
    timestamp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logline::parse_line;

    #[test]
    fn events_go_out_in_haproxy_envelope_filtered_by_level() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let targets = [
            LogTarget {
                addr: receiver.local_addr().unwrap(),
                facility: 19,
                max_level: 7,
                line: 1,
            },
            LogTarget {
                addr: receiver.local_addr().unwrap(),
                facility: 16,
                max_level: severity::ALERT,
                line: 2,
            },
        ];
        let sender = LogSender::new().unwrap();
        sender.send_text(&targets, severity::NOTICE, "Proxy myweb started.");
        let mut buf = [0u8; 2048];
        let n = receiver.recv(&mut buf).unwrap();
        let line = parse_line(&buf[..n]);
        assert_eq!(line.envelope.priority, Priority::from_parts(19, 5));
        assert_eq!(line.envelope.tag, Some(&b"haproxy"[..]));
        assert_eq!(line.envelope.hostname, None);
        assert_eq!(line.message, b"Proxy myweb started.");
        assert_eq!(sender.counts(), (1, 0), "the alert-only target got nothing");
    }
}
