//! Traffic logs: HTTP (`option httplog`, and its CLF variant) and TCP (`option tcplog`).
//!
//! The parsers read like HAProxy's format strings:
//! - httplog: `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc
//!   %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`
//! - tcplog: `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`

use chrono::NaiveDateTime;
use memchr::memchr;

use super::fields::{
    accept_date, byte, fail, field, malformed, plus, push_accept_date, push_timer, push_uint, sp,
    timer, token, uint, uint32, PResult,
};
use super::Body;

/// Who connected, when, and where the session went: the fields every traffic log starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session<'a> {
    /// Client address (`%ci`); IPv6 is written bare (`::1`), unix sockets as `unix`.
    pub client_ip: &'a [u8],
    /// Client port (`%cp`); for unix sockets, the listener's number.
    pub client_port: u16,
    /// When the connection was accepted (`%tr`/`%t`), local time, millisecond precision.
    pub accept_date: NaiveDateTime,
    /// Frontend name (`%ft`); a trailing `~` marks TLS.
    pub frontend: &'a [u8],
    /// Backend name (`%b`).
    pub backend: &'a [u8],
    /// Server name (`%s`) as written: `<NOSRV>` when none was chosen, `<STATS>` for the stats page.
    pub server: &'a [u8],
}

impl<'a> Session<'a> {
    /// The server that handled the session, `None` for `<NOSRV>`.
    pub fn server_name(&self) -> Option<&'a [u8]> {
        (self.server != b"<NOSRV>").then_some(self.server)
    }

    /// Whether the frontend accepted the connection over TLS (`~` suffix).
    pub fn is_tls(&self) -> bool {
        self.frontend.ends_with(b"~")
    }
}

/// The five HTTP timers, in milliseconds; `None` where HAProxy wrote `-1` (phase not reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HttpTimers {
    /// `TR`: time to receive the full request headers.
    pub request: Option<u64>,
    /// `Tw`: time spent waiting in queues.
    pub queue: Option<u64>,
    /// `Tc`: time to establish the connection to the server.
    pub connect: Option<u64>,
    /// `Tr`: server response time (headers).
    pub response: Option<u64>,
    /// `Ta`: total active time of the request.
    pub active: Option<u64>,
    /// `Ta` had logasap's `+` prefix: the request was still running when logged.
    pub active_partial: bool,
}

/// The three TCP timers, in milliseconds; `None` for `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpTimers {
    /// `Tw`: time spent waiting in queues.
    pub queue: Option<u64>,
    /// `Tc`: time to establish the connection to the server.
    pub connect: Option<u64>,
    /// `Tt`: total session duration.
    pub total: Option<u64>,
    /// `Tt` had logasap's `+` prefix.
    pub total_partial: bool,
}

/// The session state at disconnection: 4 characters for HTTP, 2 for TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TerminationState {
    codes: [u8; 4],
    len: u8,
}

impl TerminationState {
    /// From the 2 or 4 characters of a log line; `None` for any other length or a non-graphic byte.
    pub fn new(codes: &[u8]) -> Option<Self> {
        if !matches!(codes.len(), 2 | 4) || !codes.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut buf = [b'-'; 4];
        buf[..codes.len()].copy_from_slice(codes);
        Some(TerminationState {
            codes: buf,
            len: codes.len() as u8,
        })
    }

    /// The characters as logged.
    pub fn as_bytes(&self) -> &[u8] {
        &self.codes[..self.len as usize]
    }

    /// The first character: what ended the session (`C` client, `S` server, `s` server timeout,
    /// `-` normal end, ...).
    pub fn cause(&self) -> u8 {
        self.codes[0]
    }

    /// The second character: the session's phase then (`R` request, `H` headers, `D` data, ...).
    pub fn phase(&self) -> u8 {
        self.codes[1]
    }
}

/// Connection counts at logging time, and the retries of this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Connections {
    /// `ac`: concurrent connections on the process.
    pub active: u32,
    /// `fc`: concurrent connections on the frontend.
    pub frontend: u32,
    /// `bc`: concurrent connections on the backend.
    pub backend: u32,
    /// `sc`: concurrent connections on the server.
    pub server: u32,
    /// `rc`: connection retries.
    pub retries: u32,
    /// `rc` had a `+` prefix: the session was redispatched to another server.
    pub redispatched: bool,
}

/// Queue positions at logging time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Queues {
    /// `sq`: requests processed before this one in the server queue.
    pub server: u32,
    /// `bq`: requests processed before this one in the backend queue.
    pub backend: u32,
}

/// A captured header block `{v1|v2|...}`, holding the text between the braces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBlock<'a>(pub &'a [u8]);

impl<'a> HeaderBlock<'a> {
    /// The captured values in `capture ... header` order (empty when not present in the message).
    pub fn values(&self) -> impl Iterator<Item = &'a [u8]> {
        self.0.split(|&b| b == b'|')
    }
}

/// The request line (`%{+Q}r`), split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, or the whole text when there is no space in it (`<BADREQ>`).
    pub method: &'a [u8],
    /// The URI; `None` when the line has no space.
    pub uri: Option<&'a [u8]>,
    /// `HTTP/x.y`, when present.
    pub version: Option<&'a [u8]>,
    /// The closing quote was missing: the syslog length limit cut the line.
    pub truncated: bool,
}

impl<'a> Request<'a> {
    /// Whether HAProxy could not parse the request (`"<BADREQ>"`).
    pub fn is_bad(&self) -> bool {
        self.method == b"<BADREQ>" && self.uri.is_none()
    }

    /// Splits the text between the quotes.
    pub(super) fn split(line: &'a [u8], truncated: bool) -> Self {
        // Method and version are short: plain loops from either end beat memchr here.
        let Some(sp1) = line.iter().position(|&b| b == b' ') else {
            return Request {
                method: line,
                uri: None,
                version: None,
                truncated,
            };
        };
        let rest = &line[sp1 + 1..];
        let (uri, version) = match rest.iter().rposition(|&b| b == b' ') {
            Some(sp2) if rest[sp2 + 1..].starts_with(b"HTTP/") => {
                (&rest[..sp2], Some(&rest[sp2 + 1..]))
            }
            _ => (rest, None),
        };
        Request {
            method: &line[..sp1],
            uri: Some(uri),
            version,
            truncated,
        }
    }

    /// Writes the request line with its quotes (no closing quote when truncated).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        out.extend_from_slice(self.method);
        if let Some(uri) = self.uri {
            out.push(b' ');
            out.extend_from_slice(uri);
        }
        if let Some(v) = self.version {
            out.push(b' ');
            out.extend_from_slice(v);
        }
        if !self.truncated {
            out.push(b'"');
        }
    }
}

/// Which of HAProxy's HTTP log formats the line was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpSyntax<'a> {
    /// `option httplog`.
    HttpLog,
    /// `option httplog clf`: Common Log Format first, HAProxy's fields after.
    Clf {
        /// The UTC offset of the accept date (`+0000`), in minutes.
        utc_offset_minutes: i32,
        /// `%hrl %hsl` (captured header lists) as written, including the leading space.
        header_lists: &'a [u8],
    },
}

/// One HTTP request (`option httplog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLog<'a> {
    /// Client, accept date, frontend, backend and server.
    pub session: Session<'a>,
    /// `TR/Tw/Tc/Tr/Ta`.
    pub timers: HttpTimers,
    /// HTTP status (`%ST`); `None` for `-1`.
    pub status: Option<u16>,
    /// Bytes sent to the client (`%B`).
    pub bytes_read: u64,
    /// `%B` had logasap's `+` prefix.
    pub bytes_partial: bool,
    /// Captured request cookie (`%CC`); `None` for `-`.
    pub request_cookie: Option<&'a [u8]>,
    /// Captured response cookie (`%CS`); `None` for `-`.
    pub response_cookie: Option<&'a [u8]>,
    /// `%tsc`: 4 characters.
    pub termination_state: TerminationState,
    /// `ac/fc/bc/sc/rc`.
    pub connections: Connections,
    /// `sq/bq`.
    pub queues: Queues,
    /// The first `{...}` block: captured request headers. A line with a single block is read as
    /// request captures, the common case; the line itself cannot tell.
    pub request_headers: Option<HeaderBlock<'a>>,
    /// The second `{...}` block: captured response headers.
    pub response_headers: Option<HeaderBlock<'a>>,
    /// The request line.
    pub request: Request<'a>,
    /// How the line was laid out.
    pub syntax: HttpSyntax<'a>,
}

/// One TCP session (`option tcplog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpLog<'a> {
    /// Client, accept date, frontend, backend and server.
    pub session: Session<'a>,
    /// `Tw/Tc/Tt`.
    pub timers: TcpTimers,
    /// Bytes sent to the client (`%B`).
    pub bytes_read: u64,
    /// `%B` had logasap's `+` prefix.
    pub bytes_partial: bool,
    /// `%ts`: 2 characters.
    pub termination_state: TerminationState,
    /// `ac/fc/bc/sc/rc`.
    pub connections: Connections,
    /// `sq/bq`.
    pub queues: Queues,
}

/// Parses an HTTP or TCP log message; anything else becomes [`Body::Other`].
pub(crate) fn parse_session_log(message: &[u8]) -> Body<'_> {
    match session_log(message) {
        Ok((_, body)) => body,
        Err(e) => Body::Other(malformed(message, e)),
    }
}

fn session_log(i: &[u8]) -> PResult<'_, Body<'_>> {
    // A CLF line fails `session` at once (its client has no port), so it is tried only then.
    let (i, session) = match session(i) {
        Ok(ok) => ok,
        Err(e) => return super::clf::parse_clf(i).unwrap_or(Err(e)),
    };
    let (i, _) = sp(i)?;
    let (rest, (timers, count, partial)) = field("timers", timer_list)(i)?;
    match count {
        5 => http_rest(rest, session, timers, partial),
        3 => tcp_rest(rest, session, timers, partial),
        _ => fail(i, "timers TR/Tw/Tc/Tr/Ta or Tw/Tc/Tt"),
    }
}

/// `%ci:%cp [%tr] %ft %b/%s`
fn session(i: &[u8]) -> PResult<'_, Session<'_>> {
    let (i, (client_ip, client_port, accept_date)) = client_and_accept_date(i)?;
    let (i, frontend) = field("frontend", token)(i)?;
    let (i, _) = sp(i)?;
    let (i, (backend, server)) = field("backend/server", backend_server)(i)?;
    Ok((
        i,
        Session {
            client_ip,
            client_port,
            accept_date,
            frontend,
            backend,
            server,
        },
    ))
}

/// `%ci:%cp [%tr] `: who connected and when, the opening of traffic and connection-error lines.
pub(super) fn client_and_accept_date(i: &[u8]) -> PResult<'_, (&[u8], u16, NaiveDateTime)> {
    let (i, (client_ip, client_port)) = field("client address", client_address)(i)?;
    let (i, _) = sp(i)?;
    let (i, _) = field("[accept date]", byte(b'['))(i)?;
    let (i, (accept_date, _)) = field("accept date", accept_date)(i)?;
    let (i, _) = field("] after accept date", byte(b']'))(i)?;
    let (i, _) = sp(i)?;
    Ok((i, (client_ip, client_port, accept_date)))
}

/// `ip:port`, split at the last colon so bare IPv6 (`::1:40660`) works.
pub(super) fn client_address(i: &[u8]) -> PResult<'_, (&[u8], u16)> {
    let (rest, addr) = token(i)?;
    let Some(colon) = addr.iter().rposition(|&b| b == b':') else {
        return fail(i, "client address ip:port");
    };
    let (ip, port) = (&addr[..colon], &addr[colon + 1..]);
    let port = match uint(port) {
        Ok((b"", p)) if p <= u16::MAX as u64 => p as u16,
        _ => return fail(&i[colon + 1..], "client port"),
    };
    if !is_client_ip(ip) {
        return fail(i, "client ip");
    }
    Ok((rest, (ip, port)))
}

/// An IPv4 or bare IPv6 address, or `unix`; checked loosely (characters only), for speed.
pub(super) fn is_client_ip(ip: &[u8]) -> bool {
    const IP_CHARS: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            table[b] = c.is_ascii_hexdigit() || c == b'.' || c == b':';
            b += 1;
        }
        table
    };
    !ip.is_empty() && ip.iter().all(|&b| IP_CHARS[b as usize]) || ip == b"unix"
}

/// `backend/server`, read in one pass: the token's end and its first `/`.
fn backend_server(i: &[u8]) -> PResult<'_, (&[u8], &[u8])> {
    let mut slash = None;
    let mut end = i.len();
    for (k, &b) in i.iter().enumerate() {
        match b {
            b' ' => {
                end = k;
                break;
            }
            b'/' if slash.is_none() => slash = Some(k),
            _ => {}
        }
    }
    match slash {
        Some(slash) if slash > 0 && slash + 1 < end => {
            Ok((&i[end..], (&i[..slash], &i[slash + 1..end])))
        }
        _ => fail(i, "backend/server"),
    }
}

/// Up to five `/`-separated timers; only the last may carry logasap's `+`.
fn timer_list(i: &[u8]) -> PResult<'_, ([Option<u64>; 5], usize, bool)> {
    let mut values = [None; 5];
    let mut input = i;
    for (n, slot) in values.iter_mut().enumerate() {
        let (after_plus, partial) = plus(input);
        let (rest, v) = timer(after_plus)?;
        *slot = v;
        match rest.first() {
            Some(b'/') if !partial && n < 4 => input = &rest[1..],
            _ => return Ok((rest, (values, n + 1, partial))),
        }
    }
    fail(input, "timers")
}

/// The HTTP fields after the timers.
fn http_rest<'a>(
    i: &'a [u8],
    session: Session<'a>,
    t: [Option<u64>; 5],
    active_partial: bool,
) -> PResult<'a, Body<'a>> {
    let (i, _) = sp(i)?;
    let (i, status) = field("status code", status)(i)?;
    let (i, _) = sp(i)?;
    let (i, (bytes_read, bytes_partial)) = field("bytes read", bytes)(i)?;
    let (i, _) = sp(i)?;
    let (i, request_cookie) = field("request cookie", cookie)(i)?;
    let (i, _) = sp(i)?;
    let (i, response_cookie) = field("response cookie", cookie)(i)?;
    let (i, _) = sp(i)?;
    let (i, termination_state) = field("termination state", termination_state::<4>)(i)?;
    let (i, _) = sp(i)?;
    let (i, connections) = field("connection counts", connections)(i)?;
    let (i, _) = sp(i)?;
    let (i, queues) = field("queue positions", queues)(i)?;
    let (i, _) = sp(i)?;
    let (i, request_headers) = header_block(i)?;
    let (i, response_headers) = match request_headers {
        Some(_) => header_block(i)?,
        None => (i, None),
    };
    let (i, request) = field("quoted request", request)(i)?;
    Ok((
        i,
        Body::Http(HttpLog {
            session,
            timers: HttpTimers {
                request: t[0],
                queue: t[1],
                connect: t[2],
                response: t[3],
                active: t[4],
                active_partial,
            },
            status,
            bytes_read,
            bytes_partial,
            request_cookie,
            response_cookie,
            termination_state,
            connections,
            queues,
            request_headers,
            response_headers,
            request,
            syntax: HttpSyntax::HttpLog,
        }),
    ))
}

/// The TCP fields after the timers, up to the end of the line.
fn tcp_rest<'a>(
    i: &'a [u8],
    session: Session<'a>,
    t: [Option<u64>; 5],
    total_partial: bool,
) -> PResult<'a, Body<'a>> {
    let (i, _) = sp(i)?;
    let (i, (bytes_read, bytes_partial)) = field("bytes read", bytes)(i)?;
    let (i, _) = sp(i)?;
    let (i, termination_state) = field("termination state", termination_state::<2>)(i)?;
    let (i, _) = sp(i)?;
    let (i, connections) = field("connection counts", connections)(i)?;
    let (i, _) = sp(i)?;
    let (i, queues) = field("queue positions", queues)(i)?;
    if !i.is_empty() {
        return fail(i, "end of tcplog line");
    }
    Ok((
        i,
        Body::Tcp(TcpLog {
            session,
            timers: TcpTimers {
                queue: t[0],
                connect: t[1],
                total: t[2],
                total_partial,
            },
            bytes_read,
            bytes_partial,
            termination_state,
            connections,
            queues,
        }),
    ))
}

/// `%ST`: a status code, or `-1` when there was no response.
pub(super) fn status(i: &[u8]) -> PResult<'_, Option<u16>> {
    let (rest, v) = timer(i)?;
    match v {
        None => Ok((rest, None)),
        Some(code) if code <= 999 => Ok((rest, Some(code as u16))),
        Some(_) => fail(i, "status code"),
    }
}

/// `%B`, with logasap's optional `+`.
pub(super) fn bytes(i: &[u8]) -> PResult<'_, (u64, bool)> {
    let (i, partial) = plus(i);
    let (i, n) = uint(i)?;
    Ok((i, (n, partial)))
}

/// `%CC` / `%CS`: `-` when nothing was captured.
fn cookie(i: &[u8]) -> PResult<'_, Option<&[u8]>> {
    let (rest, t) = token(i)?;
    Ok((rest, (t != b"-").then_some(t)))
}

/// `%tsc` (N = 4) or `%ts` (N = 2).
pub(super) fn termination_state<const N: usize>(i: &[u8]) -> PResult<'_, TerminationState> {
    let Some(codes) = i.get(..N) else {
        return fail(i, "termination state");
    };
    match (TerminationState::new(codes), i.get(N)) {
        (Some(ts), None | Some(b' ')) => Ok((&i[N..], ts)),
        _ => fail(i, "termination state"),
    }
}

/// `ac/fc/bc/sc/rc`, `rc` with an optional `+` for a redispatch.
fn connections(i: &[u8]) -> PResult<'_, Connections> {
    let (i, active) = uint32(i)?;
    let (i, _) = byte(b'/')(i)?;
    let (i, frontend) = uint32(i)?;
    let (i, _) = byte(b'/')(i)?;
    let (i, backend) = uint32(i)?;
    let (i, _) = byte(b'/')(i)?;
    let (i, server) = uint32(i)?;
    let (i, _) = byte(b'/')(i)?;
    let (i, redispatched) = plus(i);
    let (i, retries) = uint32(i)?;
    Ok((
        i,
        Connections {
            active,
            frontend,
            backend,
            server,
            retries,
            redispatched,
        },
    ))
}

/// `sq/bq`
fn queues(i: &[u8]) -> PResult<'_, Queues> {
    let (i, server) = uint32(i)?;
    let (i, _) = byte(b'/')(i)?;
    let (i, backend) = uint32(i)?;
    Ok((i, Queues { server, backend }))
}

/// An optional `{...} ` capture block. HAProxy escapes `{`, `|`, `}` inside values as `#XX`,
/// so the first `}` closes the block.
fn header_block(i: &[u8]) -> PResult<'_, Option<HeaderBlock<'_>>> {
    if i.first() != Some(&b'{') {
        return Ok((i, None));
    }
    let Some(close) = memchr(b'}', i) else {
        return fail(i, "} closing the captured headers");
    };
    let (rest, _) = field("space after captured headers", sp)(&i[close + 1..])?;
    Ok((rest, Some(HeaderBlock(&i[1..close]))))
}

/// `"METHOD URI VERSION"` to the end of the line; a missing closing quote means the syslog
/// length limit cut the line. HAProxy escapes `"` inside the request, so a quote before the
/// end means something follows the request that should not.
fn request(i: &[u8]) -> PResult<'_, Request<'_>> {
    let (body, _) = byte(b'"')(i)?;
    let end = &body[body.len()..];
    match memchr(b'"', body) {
        None => Ok((end, Request::split(body, true))),
        Some(q) if q + 1 == body.len() => Ok((end, Request::split(&body[..q], false))),
        Some(q) => fail(&body[q + 1..], "end of line after the request"),
    }
}

/// Writes an httplog line (or its CLF variant).
pub(crate) fn write_http(h: &HttpLog<'_>, out: &mut Vec<u8>) {
    if let HttpSyntax::Clf { .. } = h.syntax {
        return super::clf::write_clf(h, out);
    }
    write_session(&h.session, out);
    out.push(b' ');
    let t = &h.timers;
    for v in [t.request, t.queue, t.connect, t.response] {
        push_timer(out, v);
        out.push(b'/');
    }
    if t.active_partial {
        out.push(b'+');
    }
    push_timer(out, t.active);
    out.push(b' ');
    push_timer(out, h.status.map(u64::from));
    out.push(b' ');
    write_bytes(out, h.bytes_read, h.bytes_partial);
    for cookie in [h.request_cookie, h.response_cookie] {
        out.push(b' ');
        out.extend_from_slice(cookie.unwrap_or(b"-"));
    }
    out.push(b' ');
    out.extend_from_slice(h.termination_state.as_bytes());
    write_counts(&h.connections, &h.queues, out);
    out.push(b' ');
    for block in [h.request_headers, h.response_headers]
        .into_iter()
        .flatten()
    {
        out.push(b'{');
        out.extend_from_slice(block.0);
        out.extend_from_slice(b"} ");
    }
    h.request.write(out);
}

/// Writes a tcplog line.
pub(crate) fn write_tcp(t: &TcpLog<'_>, out: &mut Vec<u8>) {
    write_session(&t.session, out);
    out.push(b' ');
    push_timer(out, t.timers.queue);
    out.push(b'/');
    push_timer(out, t.timers.connect);
    out.push(b'/');
    if t.timers.total_partial {
        out.push(b'+');
    }
    push_timer(out, t.timers.total);
    out.push(b' ');
    write_bytes(out, t.bytes_read, t.bytes_partial);
    out.push(b' ');
    out.extend_from_slice(t.termination_state.as_bytes());
    write_counts(&t.connections, &t.queues, out);
}

pub(super) fn write_session(s: &Session<'_>, out: &mut Vec<u8>) {
    write_client_and_accept_date(s.client_ip, s.client_port, &s.accept_date, out);
    out.extend_from_slice(s.frontend);
    out.push(b' ');
    out.extend_from_slice(s.backend);
    out.push(b'/');
    out.extend_from_slice(s.server);
}

/// Writes `%ci:%cp [%tr] `.
pub(super) fn write_client_and_accept_date(
    ip: &[u8],
    port: u16,
    accept_date: &NaiveDateTime,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(ip);
    out.push(b':');
    push_uint(out, port as u64);
    out.extend_from_slice(b" [");
    push_accept_date(out, accept_date, true);
    out.extend_from_slice(b"] ");
}

pub(super) fn write_bytes(out: &mut Vec<u8>, n: u64, partial: bool) {
    if partial {
        out.push(b'+');
    }
    push_uint(out, n);
}

/// ` ac/fc/bc/sc/rc sq/bq`
fn write_counts(c: &Connections, q: &Queues, out: &mut Vec<u8>) {
    out.push(b' ');
    for v in [c.active, c.frontend, c.backend, c.server] {
        push_uint(out, v as u64);
        out.push(b'/');
    }
    if c.redispatched {
        out.push(b'+');
    }
    push_uint(out, c.retries as u64);
    out.push(b' ');
    push_uint(out, q.server as u64);
    out.push(b'/');
    push_uint(out, q.backend as u64);
}
