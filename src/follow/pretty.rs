//! `--format pretty`: one aligned line per request or session (time, client, frontend,
//! backend/server, timers, status, bytes, termination state, request), status coloured by
//! class, slow requests marked, and server DOWN/UP events on a highlighted line of their own.
//!
//! Columns are as wide as the widest value seen so far, so they line up on a stream whose
//! widths are not known in advance and only ever widen. Lines are written into a caller's
//! buffer without allocating: this runs on every line of a catch-up.

use chrono::{NaiveTime, Timelike};

use crate::logline::{Body, HttpLog, LogLine, ServerEventKind, TcpLog, Timestamp};

/// What the renderer needs to know about its output.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrettyOptions {
    /// ANSI colours (only for a terminal, and not with NO_COLOR).
    pub color: bool,
    /// Requests whose total time (`Ta`, or `Tt` for TCP) is above this are marked.
    pub slow_ms: Option<u64>,
}

/// The renderer, with the column widths seen so far.
#[derive(Debug)]
pub struct Pretty {
    options: PrettyOptions,
    widths: [usize; COLUMNS],
    cell: Vec<u8>,
}

/// Client, frontend, backend/server, timers, status, bytes, termination state.
const COLUMNS: usize = 7;

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const SLOW: &str = "\x1b[1;35m";
const DOWN: &str = "\x1b[1;97;41m";
const UP: &str = "\x1b[1;30;42m";
const MAINTENANCE: &str = "\x1b[1;30;43m";
const ABNORMAL: &str = "\x1b[33m";

impl Pretty {
    /// A renderer with no widths learned yet.
    pub fn new(options: PrettyOptions) -> Self {
        Pretty {
            options,
            widths: [0; COLUMNS],
            cell: Vec::with_capacity(64),
        }
    }

    /// Appends `parsed` (whose text is `raw`) as one rendered line with its newline.
    pub fn write(&mut self, raw: &[u8], parsed: &LogLine<'_>, out: &mut Vec<u8>) {
        match &parsed.body {
            Body::Http(h) => self.http(h, out),
            Body::Tcp(t) => self.tcp(t, out),
            Body::ServerEvent(e) => {
                let (style, word) = match e.kind {
                    ServerEventKind::Down => (DOWN, "DOWN"),
                    ServerEventKind::Up => (UP, "UP"),
                    ServerEventKind::Maintenance => (MAINTENANCE, "MAINT"),
                    ServerEventKind::Drain => (MAINTENANCE, "DRAIN"),
                    _ => return self.plain(event_time(parsed), parsed.message, out),
                };
                self.event(event_time(parsed), style, word, parsed.message, out);
            }
            Body::ProxyEvent(_) | Body::ConnectionError(_) => {
                self.plain(event_time(parsed), parsed.message, out)
            }
            Body::Other(_) => {
                self.styled(DIM, raw, out);
                out.push(b'\n');
            }
        }
    }

    fn http(&mut self, h: &HttpLog<'_>, out: &mut Vec<u8>) {
        let t = &h.timers;
        self.session_columns(&h.session, out);
        self.cell.clear();
        for (i, timer) in [t.request, t.queue, t.connect, t.response, t.active]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                self.cell.push(b'/');
            }
            push_timer(&mut self.cell, timer);
        }
        let slow = self.is_slow(t.active);
        self.timers_column(slow, out);
        self.cell.clear();
        match h.status {
            Some(code) => push_number(&mut self.cell, u64::from(code)),
            None => self.cell.extend_from_slice(b"-1"),
        }
        let style = status_style(h.status);
        self.column(4, style, out);
        self.counts_columns(h.bytes_read, h.termination_state.as_bytes(), out);
        out.extend_from_slice(h.request.method);
        if let Some(uri) = h.request.uri {
            out.push(b' ');
            out.extend_from_slice(uri);
        }
        out.push(b'\n');
    }

    fn tcp(&mut self, t: &TcpLog<'_>, out: &mut Vec<u8>) {
        self.session_columns(&t.session, out);
        self.cell.clear();
        for (i, timer) in [t.timers.queue, t.timers.connect, t.timers.total]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                self.cell.push(b'/');
            }
            push_timer(&mut self.cell, timer);
        }
        let slow = self.is_slow(t.timers.total);
        self.timers_column(slow, out);
        self.cell.clear();
        self.cell.extend_from_slice(b"tcp");
        self.column(4, "", out);
        self.counts_columns(t.bytes_read, t.termination_state.as_bytes(), out);
        // The line ends with the last column: no padding after it.
        while out.last() == Some(&b' ') {
            out.pop();
        }
        out.push(b'\n');
    }

    fn is_slow(&self, total: Option<u64>) -> bool {
        self.options
            .slow_ms
            .is_some_and(|limit| total.is_some_and(|t| t > limit))
    }

    /// Time, client, frontend and backend/server.
    fn session_columns(&mut self, s: &crate::logline::Session<'_>, out: &mut Vec<u8>) {
        push_time(out, Some(s.accept_date.time()));
        out.extend_from_slice(b"  ");
        self.cell.clear();
        self.cell.extend_from_slice(s.client_ip);
        self.cell.push(b':');
        push_number(&mut self.cell, u64::from(s.client_port));
        self.column(0, "", out);
        self.cell.clear();
        self.cell.extend_from_slice(s.frontend);
        self.column(1, "", out);
        self.cell.clear();
        self.cell.extend_from_slice(s.backend);
        self.cell.push(b'/');
        self.cell.extend_from_slice(s.server);
        self.column(2, "", out);
    }

    /// The timers, marked when slow: in colour, or with a `*` without it.
    fn timers_column(&mut self, slow: bool, out: &mut Vec<u8>) {
        if slow && !self.options.color {
            self.cell.insert(0, b'*');
        }
        self.column(3, if slow { SLOW } else { "" }, out);
    }

    /// Bytes (right-aligned) and the termination state (marked unless it is a normal end).
    fn counts_columns(&mut self, bytes: u64, state: &[u8], out: &mut Vec<u8>) {
        self.cell.clear();
        push_number(&mut self.cell, bytes);
        let width = self.widen(5);
        pad(out, width - self.cell.len());
        out.extend_from_slice(&self.cell);
        out.extend_from_slice(b"  ");
        self.cell.clear();
        self.cell.extend_from_slice(state);
        let abnormal = state.first().is_some_and(|&c| c != b'-');
        self.column(6, if abnormal { ABNORMAL } else { "" }, out);
    }

    /// Writes `self.cell` in `style`, padded to the column's width, then the gap.
    fn column(&mut self, index: usize, style: &str, out: &mut Vec<u8>) {
        let width = self.widen(index);
        let cell = std::mem::take(&mut self.cell);
        self.styled(style, &cell, out);
        pad(out, width - cell.len() + 2);
        self.cell = cell;
    }

    fn widen(&mut self, index: usize) -> usize {
        self.widths[index] = self.widths[index].max(self.cell.len());
        self.widths[index]
    }

    fn styled(&self, style: &str, text: &[u8], out: &mut Vec<u8>) {
        let style = if self.options.color { style } else { "" };
        out.extend_from_slice(style.as_bytes());
        out.extend_from_slice(text);
        if !style.is_empty() {
            out.extend_from_slice(RESET.as_bytes());
        }
    }

    /// A server state change, on a line of its own in the state's colours, or framed by
    /// `***` without colour.
    fn event(
        &self,
        time: Option<NaiveTime>,
        style: &str,
        word: &str,
        message: &[u8],
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        push_time(out, time);
        out.extend_from_slice(b"  ");
        if !self.options.color {
            out.extend_from_slice(b"*** ");
        }
        out.extend_from_slice(word.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(message);
        if self.options.color {
            out.splice(start..start, style.bytes());
            out.extend_from_slice(RESET.as_bytes());
        } else {
            out.extend_from_slice(b" ***");
        }
        out.push(b'\n');
    }

    fn plain(&self, time: Option<NaiveTime>, message: &[u8], out: &mut Vec<u8>) {
        push_time(out, time);
        out.extend_from_slice(b"  ");
        out.extend_from_slice(message);
        out.push(b'\n');
    }
}

/// Green for success, cyan for redirects, yellow for client errors, red for the rest.
fn status_style(status: Option<u16>) -> &'static str {
    match status {
        Some(100..=299) => "\x1b[32m",
        Some(300..=399) => "\x1b[36m",
        Some(400..=499) => "\x1b[33m",
        _ => "\x1b[1;31m",
    }
}

/// The time of day an event's syslog header gives, if it has one.
fn event_time(line: &LogLine<'_>) -> Option<NaiveTime> {
    line.envelope.timestamp.map(|t| match t {
        Timestamp::Bsd { time, .. } => time,
        Timestamp::Iso { local, .. } => local.time(),
    })
}

/// `hh:mm:ss.mmm`, or as many spaces when there is no time.
fn push_time(out: &mut Vec<u8>, time: Option<NaiveTime>) {
    let Some(t) = time else {
        pad(out, 12);
        return;
    };
    let two = |out: &mut Vec<u8>, n: u32| {
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8])
    };
    two(out, t.hour());
    out.push(b':');
    two(out, t.minute());
    out.push(b':');
    two(out, t.second());
    out.push(b'.');
    let ms = (t.nanosecond() / 1_000_000).min(999);
    out.push(b'0' + (ms / 100) as u8);
    two(out, ms % 100);
}

fn push_timer(out: &mut Vec<u8>, timer: Option<u64>) {
    match timer {
        Some(ms) => push_number(out, ms),
        None => out.extend_from_slice(b"-1"),
    }
}

fn push_number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn pad(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, b' ');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logline::parse_line;

    fn render(pretty: &mut Pretty, line: &[u8]) -> String {
        let mut out = Vec::new();
        pretty.write(line, &parse_line(line), &mut out);
        String::from_utf8(out).unwrap()
    }

    const FAST: &[u8] = b"<158>Nov 24 21:50:01 haproxy[9]: 10.0.0.1:5 [24/Nov/2026:21:50:01.674] fe be/a 0/0/1/2/3 200 162 - - ---- 4/4/3/1/0 0/0 \"GET /x HTTP/1.1\"";
    const SLOW_5XX: &[u8] = b"<158>Nov 24 21:50:02 haproxy[9]: 10.0.0.123:51522 [24/Nov/2026:21:50:02.007] fe_main be_app/app22 0/0/1/2999/3001 503 1620 - - sH-- 4/4/3/1/0 0/0 \"POST /api HTTP/1.1\"";

    #[test]
    fn columns_line_up_and_slow_requests_are_marked_without_colour() {
        let mut pretty = Pretty::new(PrettyOptions {
            color: false,
            slow_ms: Some(1000),
        });
        render(&mut pretty, SLOW_5XX);
        let fast = render(&mut pretty, FAST);
        let slow = render(&mut pretty, SLOW_5XX);
        assert!(fast.starts_with("21:50:01.674  10.0.0.1:5 "), "{fast}");
        assert!(slow.contains("*0/0/1/2999/3001"), "{slow}");
        assert!(!fast.contains('*'));
        // The status column starts at the same place on both lines.
        assert_eq!(fast.find(" 200 "), slow.find(" 503 "), "{fast}{slow}");
        assert!(fast.trim_end().ends_with("GET /x"));
        assert!(!fast.contains('\x1b'));
    }

    #[test]
    fn colours_by_status_class_and_events_on_their_own_line() {
        let mut pretty = Pretty::new(PrettyOptions {
            color: true,
            slow_ms: None,
        });
        assert!(render(&mut pretty, SLOW_5XX).contains("\x1b[1;31m503\x1b[0m"));
        assert!(render(&mut pretty, FAST).contains("\x1b[32m200\x1b[0m"));
        let down = b"<129>Nov 25 01:50:00 haproxy[1]: Server be/b is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        let shown = render(&mut pretty, down);
        assert!(shown.starts_with(DOWN), "{shown:?}");
        assert!(shown.contains("01:50:00.000  DOWN: Server be/b is DOWN"));
        let mut plain = Pretty::new(PrettyOptions::default());
        assert!(render(&mut plain, down).contains("*** DOWN: Server be/b is DOWN"));
    }
}
