//! The CLF variant of the HTTP log (`option httplog clf`):
//! `%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc
//! %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl`, where `+Q` quotes the text fields.

use chrono::Duration;
use memchr::memchr;

use super::fields::{
    accept_date, byte, digits, fail, field, plus, push_accept_date, push_padded, push_timer,
    push_uint, sp, timer, token, uint32, PResult,
};
use super::session::{
    bytes, is_client_ip, status, termination_state, write_bytes, Connections, HttpLog, HttpSyntax,
    HttpTimers, Queues, Request, Session,
};
use super::Body;

/// Parses a CLF line; `None` when the message does not open like one (`IP - - [`).
pub(crate) fn parse_clf(i: &[u8]) -> Option<PResult<'_, Body<'_>>> {
    let (rest, ip) = token(i).ok()?;
    if !rest.starts_with(b" - - [") || !is_client_ip(ip) {
        return None;
    }
    Some(clf_rest(ip, &rest[b" - - [".len()..]))
}

fn clf_rest<'a>(client_ip: &'a [u8], i: &'a [u8]) -> PResult<'a, Body<'a>> {
    let (i, (date, _)) = field("accept date", accept_date)(i)?;
    let (i, _) = sp(i)?;
    let (i, utc_offset_minutes) = field("utc offset", utc_offset)(i)?;
    let (i, _) = field("] after accept date", byte(b']'))(i)?;
    let (i, _) = sp(i)?;
    let (i, line) = field("quoted request", quoted)(i)?;
    let (i, _) = sp(i)?;
    let (i, status) = field("status code", status)(i)?;
    let (i, _) = sp(i)?;
    let (i, (bytes_read, bytes_partial)) = field("bytes read", bytes)(i)?;
    let Some(i) = i.strip_prefix(br#" "" "" "#) else {
        return fail(i, r#"empty referer and user agent """#);
    };
    let (i, client_port) = field("client port", uint32)(i)?;
    let Ok(client_port) = u16::try_from(client_port) else {
        return fail(i, "client port");
    };
    let (i, _) = sp(i)?;
    let (i, millis) = field("accept milliseconds", digits::<3>)(i)?;
    let (i, _) = sp(i)?;
    let (i, frontend) = field("frontend", quoted)(i)?;
    let (i, _) = sp(i)?;
    let (i, backend) = field("backend", quoted)(i)?;
    let (i, _) = sp(i)?;
    let (i, server) = field("server", quoted)(i)?;
    let (i, t) = field("timers", spaced_timers)(i)?;
    let (i, _) = sp(i)?;
    let (i, termination_state) = field("termination state", termination_state::<4>)(i)?;
    let mut n = [0u32; 7];
    let mut redispatched = false;
    let mut i = i;
    for (k, slot) in n.iter_mut().enumerate() {
        let (r, _) = sp(i)?;
        let (r, plus_sign) = if k == 4 { plus(r) } else { (r, false) };
        redispatched |= plus_sign;
        (i, *slot) = field("connection counts", uint32)(r)?;
    }
    let (i, _) = sp(i)?;
    let (i, request_cookie) = field("request cookie", quoted)(i)?;
    let (i, _) = sp(i)?;
    let (header_lists, response_cookie) = field("response cookie", quoted)(i)?;
    let session = Session {
        client_ip,
        client_port,
        accept_date: date + Duration::milliseconds(millis as i64),
        frontend,
        backend,
        server,
    };
    Ok((
        &header_lists[header_lists.len()..],
        Body::Http(HttpLog {
            session,
            timers: t,
            status,
            bytes_read,
            bytes_partial,
            request_cookie: (!request_cookie.is_empty()).then_some(request_cookie),
            response_cookie: (!response_cookie.is_empty()).then_some(response_cookie),
            termination_state,
            connections: Connections {
                active: n[0],
                frontend: n[1],
                backend: n[2],
                server: n[3],
                retries: n[4],
                redispatched,
            },
            queues: Queues {
                server: n[5],
                backend: n[6],
            },
            request_headers: None,
            response_headers: None,
            request: Request::split(line, false),
            syntax: HttpSyntax::Clf {
                utc_offset_minutes,
                header_lists,
            },
        }),
    ))
}

/// `+hhmm` / `-hhmm`
fn utc_offset(i: &[u8]) -> PResult<'_, i32> {
    let (sign, rest) = match i.split_first() {
        Some((b'+', rest)) => (1, rest),
        Some((b'-', rest)) => (-1, rest),
        _ => return fail(i, "utc offset"),
    };
    let (rest, hhmm) = digits::<4>(rest)?;
    Ok((rest, sign * ((hhmm / 100) * 60 + hhmm % 100) as i32))
}

/// `"text"`: HAProxy escapes `"` inside quoted fields, so the next quote closes it.
fn quoted(i: &[u8]) -> PResult<'_, &[u8]> {
    let (body, _) = byte(b'"')(i)?;
    match memchr(b'"', body) {
        Some(end) => Ok((&body[end + 1..], &body[..end])),
        None => fail(i, "closing quote"),
    }
}

/// ` TR Tw Tc Tr Ta`, space separated; `Ta` may carry logasap's `+`.
fn spaced_timers(mut i: &[u8]) -> PResult<'_, HttpTimers> {
    let mut t = [None; 5];
    let mut active_partial = false;
    for (k, slot) in t.iter_mut().enumerate() {
        let (r, _) = sp(i)?;
        let (r, partial) = if k == 4 { plus(r) } else { (r, false) };
        active_partial = partial;
        (i, *slot) = timer(r)?;
    }
    Ok((
        i,
        HttpTimers {
            request: t[0],
            queue: t[1],
            connect: t[2],
            response: t[3],
            active: t[4],
            active_partial,
        },
    ))
}

/// Writes a CLF line.
pub(crate) fn write_clf(h: &HttpLog<'_>, out: &mut Vec<u8>) {
    use chrono::Timelike;
    let HttpSyntax::Clf {
        utc_offset_minutes,
        header_lists,
    } = h.syntax
    else {
        return;
    };
    let s = &h.session;
    out.extend_from_slice(s.client_ip);
    out.extend_from_slice(b" - - [");
    push_accept_date(out, &s.accept_date, false);
    out.push(b' ');
    out.push(if utc_offset_minutes < 0 { b'-' } else { b'+' });
    let m = utc_offset_minutes.unsigned_abs();
    push_padded(out, (m / 60) * 100 + m % 60, 4);
    out.extend_from_slice(b"] ");
    h.request.write(out);
    out.push(b' ');
    push_timer(out, h.status.map(u64::from));
    out.push(b' ');
    write_bytes(out, h.bytes_read, h.bytes_partial);
    out.extend_from_slice(br#" "" "" "#);
    push_uint(out, s.client_port as u64);
    out.push(b' ');
    push_padded(out, s.accept_date.nanosecond() / 1_000_000, 3);
    for name in [s.frontend, s.backend, s.server] {
        push_quoted(out, name);
    }
    let t = &h.timers;
    let timers = [t.request, t.queue, t.connect, t.response, t.active];
    push_spaced(out, timers, t.active_partial);
    out.push(b' ');
    out.extend_from_slice(h.termination_state.as_bytes());
    let c = &h.connections;
    let counts = [c.active, c.frontend, c.backend, c.server, c.retries].map(|v| Some(v as u64));
    push_spaced(out, counts, c.redispatched);
    for v in [h.queues.server, h.queues.backend] {
        out.push(b' ');
        push_uint(out, v as u64);
    }
    push_quoted(out, h.request_cookie.unwrap_or_default());
    push_quoted(out, h.response_cookie.unwrap_or_default());
    out.extend_from_slice(header_lists);
}

/// ` v1 v2 ... vN`, `-1` for `None`, `+` before the last when `last_plus`.
fn push_spaced<const N: usize>(out: &mut Vec<u8>, values: [Option<u64>; N], last_plus: bool) {
    for (k, v) in values.into_iter().enumerate() {
        out.push(b' ');
        if k + 1 == N && last_plus {
            out.push(b'+');
        }
        push_timer(out, v);
    }
}

/// ` "text"`
fn push_quoted(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(b" \"");
    out.extend_from_slice(text);
    out.push(b'"');
}
