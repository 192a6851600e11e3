//! Event lines in the log stream: servers going DOWN/UP or into maintenance, health check
//! results (`option log-health-checks`), proxies starting and stopping, and backends that ran
//! out of servers.
//!
//! HAProxy writes these as English sentences whose tail varies between versions, so an event
//! keeps its sentence verbatim (that is what it writes back) and exposes the parts a report
//! needs (kind, reason, check code, info, servers left) as parsed fields.

use memchr::memmem;

use super::fields::{uint, uint32};
use super::Body;

/// A server changing state, or the result of one of its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent<'a> {
    /// What happened.
    pub kind: ServerEventKind,
    /// Which sentence form introduced the server.
    pub source: EventSource,
    /// The server is a `backup` server.
    pub backup: bool,
    /// Backend name.
    pub backend: &'a [u8],
    /// Server name.
    pub server: &'a [u8],
    /// The rest of the sentence after `be/srv `, as written (`is DOWN, reason: ...`).
    pub detail: &'a [u8],
    /// `reason: ...` (`Layer4 connection problem`, `Layer7 check passed`, ...).
    pub reason: Option<&'a [u8]>,
    /// `code: N`: the status the check received.
    pub check_code: Option<u16>,
    /// `info: "..."` without the quotes.
    pub info: Option<&'a [u8]>,
    /// `check duration: Nms`.
    pub check_duration_ms: Option<u64>,
    /// `N active and M backup servers left/online`: N.
    pub active_servers: Option<u32>,
    /// `N active and M backup servers left/online`: M.
    pub backup_servers: Option<u32>,
}

/// What a server event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerEventKind {
    /// The server went DOWN.
    Down,
    /// The server came UP.
    Up,
    /// The server was put into maintenance.
    Maintenance,
    /// The server was set to drain (no new sessions).
    Drain,
    /// A health check succeeded (`option log-health-checks`).
    CheckPassed,
    /// A health check failed (`option log-health-checks`).
    CheckFailed,
    /// Another sentence about a server.
    Other,
}

impl ServerEventKind {
    /// The name used in JSON and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerEventKind::Down => "down",
            ServerEventKind::Up => "up",
            ServerEventKind::Maintenance => "maintenance",
            ServerEventKind::Drain => "drain",
            ServerEventKind::CheckPassed => "check_passed",
            ServerEventKind::CheckFailed => "check_failed",
            ServerEventKind::Other => "server_other",
        }
    }
}

/// The words that introduce the server in a server event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventSource {
    /// `Server be/srv ...` (`Backup Server` for backups).
    State,
    /// `Health check for server be/srv ...` (`backup server` for backups).
    HealthCheck,
    /// `Agent check for server be/srv ...`.
    AgentCheck,
    /// `SIGHUP: Server be/srv ...`: the state dump HAProxy logs on SIGHUP.
    StateDump,
}

/// A proxy-wide event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEvent<'a> {
    /// What happened.
    pub kind: ProxyEventKind,
    /// The proxy (frontend, backend or listen section) it happened to.
    pub proxy: &'a [u8],
    /// The whole sentence, as written.
    pub text: &'a [u8],
}

/// What a proxy event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyEventKind {
    /// `Proxy X started.`
    Started,
    /// `Stopping proxy X in N ms.` (or frontend/backend).
    Stopping,
    /// `Proxy X stopped (cumulated conns: ...).`
    Stopped,
    /// `Pausing proxy X.` / `Paused ...`
    Paused,
    /// `Resuming proxy X.`
    Resumed,
    /// `backend X has no server available!`
    NoServer,
    /// The state dump HAProxy logs on SIGHUP (`SIGHUP: Proxy X has ...`).
    StateDump,
}

impl ProxyEventKind {
    /// The name used in JSON and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyEventKind::Started => "started",
            ProxyEventKind::Stopping => "stopping",
            ProxyEventKind::Stopped => "stopped",
            ProxyEventKind::Paused => "paused",
            ProxyEventKind::Resumed => "resumed",
            ProxyEventKind::NoServer => "no_server",
            ProxyEventKind::StateDump => "state_dump",
        }
    }
}

/// Server event openings: (words before `be/srv`, source, backup).
const SERVER_OPENINGS: [(&[u8], EventSource, bool); 7] = [
    (b"Server ", EventSource::State, false),
    (b"Backup Server ", EventSource::State, true),
    (b"Health check for server ", EventSource::HealthCheck, false),
    (
        b"Health check for backup server ",
        EventSource::HealthCheck,
        true,
    ),
    (b"Agent check for server ", EventSource::AgentCheck, false),
    (
        b"Agent check for backup server ",
        EventSource::AgentCheck,
        true,
    ),
    (b"SIGHUP: Server ", EventSource::StateDump, false),
];

/// Proxy event forms: (words before the name, words after it, kind).
const PROXY_FORMS: [(&[u8], &[u8], ProxyEventKind); 12] = [
    (b"Proxy ", b" started.", ProxyEventKind::Started),
    (b"Proxy ", b" stopped (", ProxyEventKind::Stopped),
    (b"Stopping proxy ", b" in ", ProxyEventKind::Stopping),
    (b"Stopping frontend ", b" in ", ProxyEventKind::Stopping),
    (b"Stopping backend ", b" in ", ProxyEventKind::Stopping),
    (b"Pausing proxy ", b".", ProxyEventKind::Paused),
    (b"Paused proxy ", b".", ProxyEventKind::Paused),
    (b"Pausing frontend ", b".", ProxyEventKind::Paused),
    (b"Resuming proxy ", b".", ProxyEventKind::Resumed),
    (
        b"backend ",
        b" has no server available!",
        ProxyEventKind::NoServer,
    ),
    (b"SIGHUP: Proxy ", b" has ", ProxyEventKind::StateDump),
    (
        b"SIGHUP received, dumping servers states for proxy ",
        b".",
        ProxyEventKind::StateDump,
    ),
];

/// Parses an event sentence; `None` when the message does not open like one.
pub(crate) fn parse_event(message: &[u8]) -> Option<Body<'_>> {
    if !matches!(
        message.first(),
        Some(b'S' | b'B' | b'H' | b'A' | b'P' | b'R' | b'b')
    ) {
        return None;
    }
    for (opening, source, backup) in SERVER_OPENINGS {
        if let Some(rest) = message.strip_prefix(opening) {
            return server_event(rest, source, backup).map(Body::ServerEvent);
        }
    }
    PROXY_FORMS.iter().find_map(|&(before, after, kind)| {
        let rest = message.strip_prefix(before)?;
        // Proxy names have no spaces: the name ends at the first one, or at the final `.`.
        let end = match rest.iter().position(|&b| b == b' ') {
            Some(space) if rest[space..].starts_with(after) => space,
            None if after == b"." => rest.len().checked_sub(1)?,
            _ => return None,
        };
        let proxy = &rest[..end];
        (!proxy.is_empty()).then_some(Body::ProxyEvent(ProxyEvent {
            kind,
            proxy,
            text: message,
        }))
    })
}

fn server_event(rest: &[u8], source: EventSource, backup: bool) -> Option<ServerEvent<'_>> {
    let space = memchr::memchr(b' ', rest)?;
    let (name, detail) = (&rest[..space], &rest[space + 1..]);
    let slash = memchr::memchr(b'/', name)?;
    let (backend, server) = (&name[..slash], &name[slash + 1..]);
    if backend.is_empty() || server.is_empty() {
        return None;
    }
    let kind = match detail {
        d if d.starts_with(b"is going DOWN for maintenance") => ServerEventKind::Maintenance,
        d if d.starts_with(b"was DOWN and now enters maintenance") => ServerEventKind::Maintenance,
        d if d.starts_with(b"enters drain state") => ServerEventKind::Drain,
        d if d.starts_with(b"is DOWN") => ServerEventKind::Down,
        d if d.starts_with(b"is UP") => ServerEventKind::Up,
        d if d.starts_with(b"succeeded") || d.starts_with(b"conditionally succeeded") => {
            ServerEventKind::CheckPassed
        }
        d if d.starts_with(b"failed") => ServerEventKind::CheckFailed,
        _ => ServerEventKind::Other,
    };
    let (active_servers, backup_servers) = servers_left(detail).unzip();
    Some(ServerEvent {
        kind,
        source,
        backup,
        backend,
        server,
        detail,
        reason: after(detail, &NEEDLES.reason).map(|r| until_any(r, b",.")),
        check_code: after(detail, &NEEDLES.code)
            .and_then(|c| number(c).and_then(|v| u16::try_from(v).ok())),
        info: after(detail, &NEEDLES.info)
            .and_then(|i| memchr::memchr(b'"', i).map(|end| &i[..end])),
        check_duration_ms: after(detail, &NEEDLES.duration).and_then(number),
        active_servers,
        backup_servers,
    })
}

/// `N active and M backup servers`
fn servers_left(detail: &[u8]) -> Option<(u32, u32)> {
    let at = NEEDLES.active.find(detail)?;
    let before = &detail[..at];
    let start = before
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |p| p + 1);
    let (_, active) = uint32(&before[start..]).ok()?;
    let (_, backup) = uint32(&detail[at + b" active and ".len()..]).ok()?;
    Some((active, backup))
}

/// The text after the first `needle`.
fn after<'a>(hay: &'a [u8], needle: &memmem::Finder<'_>) -> Option<&'a [u8]> {
    needle.find(hay).map(|p| &hay[p + needle.needle().len()..])
}

/// The phrases looked for in server event sentences, prepared once.
struct Needles {
    reason: memmem::Finder<'static>,
    code: memmem::Finder<'static>,
    info: memmem::Finder<'static>,
    duration: memmem::Finder<'static>,
    active: memmem::Finder<'static>,
}

static NEEDLES: std::sync::LazyLock<Needles> = std::sync::LazyLock::new(|| Needles {
    reason: memmem::Finder::new(", reason: "),
    code: memmem::Finder::new(", code: "),
    info: memmem::Finder::new(", info: \""),
    duration: memmem::Finder::new("check duration: "),
    active: memmem::Finder::new(" active and "),
});

/// The text up to the first of `stops`.
fn until_any<'a>(text: &'a [u8], stops: &[u8]) -> &'a [u8] {
    let end = text
        .iter()
        .position(|b| stops.contains(b))
        .unwrap_or(text.len());
    &text[..end]
}

fn number(text: &[u8]) -> Option<u64> {
    uint(text).ok().map(|(_, v)| v)
}

/// Writes a server event sentence.
pub(crate) fn write_server_event(e: &ServerEvent<'_>, out: &mut Vec<u8>) {
    let opening = SERVER_OPENINGS
        .iter()
        .find(|(_, source, backup)| *source == e.source && *backup == e.backup)
        .map_or(&b"Server "[..], |(words, _, _)| words);
    out.extend_from_slice(opening);
    out.extend_from_slice(e.backend);
    out.push(b'/');
    out.extend_from_slice(e.server);
    out.push(b' ');
    out.extend_from_slice(e.detail);
}

/// Writes a proxy event sentence.
pub(crate) fn write_proxy_event(e: &ProxyEvent<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(e.text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(line: &[u8]) -> ServerEvent<'_> {
        match parse_event(line) {
            Some(Body::ServerEvent(e)) => e,
            other => panic!("not a server event: {other:?}"),
        }
    }

    #[test]
    fn down_event_from_the_reference() {
        let e = server(b"Server myweb/inst3 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
        assert_eq!(e.kind, ServerEventKind::Down);
        assert_eq!((e.backend, e.server), (&b"myweb"[..], &b"inst3"[..]));
        assert_eq!(e.reason, Some(&b"Layer4 connection problem"[..]));
        assert_eq!(e.info, Some(&b"Connection refused"[..]));
        assert_eq!(e.check_duration_ms, Some(0));
        assert_eq!((e.active_servers, e.backup_servers), (Some(2), Some(0)));
        assert_eq!(e.check_code, None);
    }

    #[test]
    fn up_and_maintenance_events() {
        let e = server(b"Server myweb/inst3 is UP, reason: Layer7 check passed, code: 200, check duration: 0ms. 3 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.");
        assert_eq!(e.kind, ServerEventKind::Up);
        assert_eq!(e.check_code, Some(200));
        assert_eq!(e.reason, Some(&b"Layer7 check passed"[..]));
        assert_eq!(e.active_servers, Some(3));
        let e = server(b"Backup Server myweb/b1 is going DOWN for maintenance. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
        assert!(e.backup);
        assert_eq!(e.kind, ServerEventKind::Maintenance);
        assert_eq!(e.reason, None);
    }

    #[test]
    fn proxy_events_and_no_server() {
        let cases: [(&[u8], ProxyEventKind, &[u8]); 3] = [
            (b"Proxy myweb started.", ProxyEventKind::Started, b"myweb"),
            (
                b"Proxy fe stopped (cumulated conns: FE: 12, BE: 0).",
                ProxyEventKind::Stopped,
                b"fe",
            ),
            (
                b"backend be_app has no server available!",
                ProxyEventKind::NoServer,
                b"be_app",
            ),
        ];
        for (line, kind, proxy) in cases {
            match parse_event(line) {
                Some(Body::ProxyEvent(e)) => {
                    assert_eq!((e.kind, e.proxy), (kind, proxy));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn words_that_only_look_like_events_are_not_events() {
        assert!(parse_event(b"Proxy started.").is_none());
        assert!(parse_event(b"Server without-slash is DOWN").is_none());
        assert!(parse_event(b"beef::1:4242 [24/Nov/2026:21:50:01.674] fe be/s").is_none());
    }
}
