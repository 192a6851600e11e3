//! The syslog envelope around a message: RFC 3164 as HAProxy sends it (with or without a
//! hostname), RFC 5424, rsyslog's traditional and high-precision file formats, the ISO-stamped
//! form loggen sends, and bare messages with no envelope at all.
//!
//! Every part is optional; what is present is kept exactly so the envelope writes back as read.

use chrono::{Datelike, NaiveDateTime, Timelike};

use super::fields::{
    byte, clock_time, date_time, digits, fail, month_abbr, month_name, push_clock, push_padded,
    push_uint, token, uint, PResult, RecentDate,
};

/// The syslog header of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Which of the syslog layouts the header uses.
    pub syntax: EnvelopeSyntax<'a>,
    /// `<PRI>`: facility and severity.
    pub priority: Option<Priority>,
    /// When the message was sent (RFC 3164 has no year or zone).
    pub timestamp: Option<Timestamp>,
    /// The sending host (absent in HAProxy's default RFC 3164 form).
    pub hostname: Option<&'a [u8]>,
    /// The program name, `haproxy` (APP-NAME in RFC 5424).
    pub tag: Option<&'a [u8]>,
    /// The process id in `tag[pid]` (PROCID in RFC 5424).
    pub pid: Option<&'a [u8]>,
}

/// The layout of a syslog header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeSyntax<'a> {
    /// No header: the whole line is the message (`log stdout format raw`).
    Bare,
    /// `[<PRI>]TIMESTAMP [HOST] TAG[PID]: MSG`: RFC 3164 and rsyslog's file formats.
    Bsd,
    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
    Rfc5424 {
        /// MSGID, `None` for the nil value `-`.
        msgid: Option<&'a [u8]>,
        /// STRUCTURED-DATA as written, `None` for `-`.
        structured_data: Option<&'a [u8]>,
    },
}

/// A syslog priority value (`facility * 8 + severity`), at most 191.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Priority(u8);

impl Default for Priority {
    /// user.notice: what RFC 3164 says a message without a priority has.
    fn default() -> Self {
        Priority(13)
    }
}

impl Priority {
    const FACILITIES: [&'static str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
    const SEVERITIES: [&'static str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];

    /// The priority `value`, if it is one (0..=191).
    pub fn new(value: u8) -> Option<Self> {
        (value <= 191).then_some(Priority(value))
    }

    /// From facility (0..=23) and severity (0..=7).
    pub fn from_parts(facility: u8, severity: u8) -> Option<Self> {
        (severity <= 7)
            .then(|| facility.checked_mul(8)?.checked_add(severity))
            .flatten()
            .and_then(Self::new)
    }

    /// The number written between `<` and `>`.
    pub fn value(self) -> u8 {
        self.0
    }

    /// The facility number, 0..=23.
    pub fn facility(self) -> u8 {
        self.0 >> 3
    }

    /// The severity number, 0 (emerg) ..= 7 (debug).
    pub fn severity(self) -> u8 {
        self.0 & 7
    }

    /// The facility's name as syslog configurations spell it (`local3`).
    pub fn facility_name(self) -> &'static str {
        Self::FACILITIES[self.facility() as usize]
    }

    /// The severity's name as syslog configurations spell it (`info`).
    pub fn severity_name(self) -> &'static str {
        Self::SEVERITIES[self.severity() as usize]
    }

    /// The facility number of a name as syslog configurations spell it (`local3` -> 19).
    pub fn facility_by_name(name: &str) -> Option<u8> {
        Self::FACILITIES
            .iter()
            .position(|&f| f == name)
            .map(|n| n as u8)
    }

    /// The severity number of a name as syslog configurations spell it (`info` -> 6); the old
    /// aliases `warn`, `error` and `panic` are accepted too.
    pub fn severity_by_name(name: &str) -> Option<u8> {
        let name = match name {
            "warn" => "warning",
            "error" => "err",
            "panic" => "emerg",
            other => other,
        };
        Self::SEVERITIES
            .iter()
            .position(|&s| s == name)
            .map(|n| n as u8)
    }
}

/// The timestamp of a syslog header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// RFC 3164 `Mmm dd hh:mm:ss` (day space-padded): local time, no year.
    Bsd {
        /// 1..=12
        month: u32,
        /// 1..=31
        day: u32,
        /// Time of day.
        time: chrono::NaiveTime,
    },
    /// RFC 3339 `yyyy-mm-ddThh:mm:ss[.frac][offset]`, as RFC 5424 and rsyslog's precise format
    /// write it (loggen leaves the offset out).
    Iso {
        /// The local date and time.
        local: NaiveDateTime,
        /// How many fraction digits were written (0 for none).
        fraction_digits: u8,
        /// The UTC offset, if written.
        offset: Option<UtcOffset>,
    },
}

impl Timestamp {
    /// The local date and time written; a BSD timestamp has no year, so it is placed in `year`.
    /// `None` for a BSD date that does not exist in that year (Feb 29).
    pub fn local_in_year(&self, year: i32) -> Option<NaiveDateTime> {
        match *self {
            Timestamp::Bsd { month, day, time } => {
                chrono::NaiveDate::from_ymd_opt(year, month, day).map(|d| d.and_time(time))
            }
            Timestamp::Iso { local, .. } => Some(local),
        }
    }
}

/// A UTC offset as written in an RFC 3339 timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UtcOffset {
    /// `Z`
    Zulu,
    /// `+hh:mm` or `-hh:mm`, in minutes east of UTC.
    Minutes(i32),
}

impl<'a> Envelope<'a> {
    /// Splits one line (no terminator) into its envelope and the message after it, without
    /// reading the message: what a receiver needs to file a line.
    pub fn split(line: &'a [u8]) -> (Envelope<'a>, &'a [u8]) {
        parse_envelope(line)
    }

    /// Appends this envelope and `message` as one line (no terminator) to `out`.
    pub fn write_with(&self, message: &[u8], out: &mut Vec<u8>) {
        if write_envelope(self, out) && !message.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(message);
    }
}

/// Splits a line into its envelope and message.
pub(crate) fn parse_envelope(line: &[u8]) -> (Envelope<'_>, &[u8]) {
    let bare = Envelope {
        syntax: EnvelopeSyntax::Bare,
        priority: None,
        timestamp: None,
        hostname: None,
        tag: None,
        pid: None,
    };
    let (after_pri, priority) = match priority(line) {
        Ok((rest, p)) => (rest, Some(p)),
        Err(_) => (line, None),
    };
    if priority.is_some() && after_pri.starts_with(b"1 ") {
        if let Ok((message, envelope)) = rfc5424(after_pri, priority) {
            return (envelope, message);
        }
    }
    match bsd_header(after_pri) {
        Ok((message, (timestamp, hostname, tag, pid))) => (
            Envelope {
                syntax: EnvelopeSyntax::Bsd,
                priority,
                timestamp: Some(timestamp),
                hostname,
                tag,
                pid,
            },
            message,
        ),
        // A PRI with nothing recognisable after it: keep the PRI, the rest is the message.
        Err(_) if priority.is_some() => (
            Envelope {
                syntax: EnvelopeSyntax::Bsd,
                priority,
                ..bare
            },
            after_pri,
        ),
        Err(_) => (bare, line),
    }
}

/// `<PRI>`: 1 to 3 digits, at most 191.
fn priority(input: &[u8]) -> PResult<'_, Priority> {
    let (i, _) = byte(b'<')(input)?;
    let end = i.iter().take(4).position(|&b| b == b'>');
    match end {
        Some(n @ 1..=3) if i[0] != b'0' || n == 1 => match uint(&i[..n]) {
            Ok((rest, v)) if rest.is_empty() && v <= 191 => Ok((&i[n + 1..], Priority(v as u8))),
            _ => fail(input, "priority"),
        },
        _ => fail(input, "priority"),
    }
}

type BsdHeader<'a> = (
    Timestamp,
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    Option<&'a [u8]>,
);

/// `TIMESTAMP [HOST] TAG[PID]: ` of RFC 3164 and rsyslog's file formats.
fn bsd_header(input: &[u8]) -> PResult<'_, BsdHeader<'_>> {
    let (i, timestamp) = match input.first() {
        Some(b'0'..=b'9') => iso_timestamp(input)?,
        _ => bsd_timestamp(input)?,
    };
    let (i, _) = byte(b' ')(i)?;
    let (after_first, first) = token(i)?;
    if let Some((tag, pid)) = split_tag(first) {
        return Ok((skip_space(after_first), (timestamp, None, Some(tag), pid)));
    }
    let (after_second, _) = byte(b' ')(after_first)?;
    let (rest, second) = token(after_second)?;
    match split_tag(second) {
        Some((tag, pid)) => Ok((skip_space(rest), (timestamp, Some(first), Some(tag), pid))),
        None => fail(i, "syslog tag"),
    }
}

/// The single space after `tag:`; absent only when the message is empty.
fn skip_space(i: &[u8]) -> &[u8] {
    i.strip_prefix(b" ").unwrap_or(i)
}

/// Splits `tag[pid]:` or `tag:` into tag and pid; `None` if `word` is not a tag.
fn split_tag(word: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let word = word.strip_suffix(b":")?;
    match word.strip_suffix(b"]") {
        Some(inner) => {
            let open = inner.iter().position(|&b| b == b'[')?;
            let (tag, pid) = (&inner[..open], &inner[open + 1..]);
            (!tag.is_empty() && !pid.is_empty()).then_some((tag, Some(pid)))
        }
        None => (!word.is_empty() && !word.contains(&b'[')).then_some((word, None)),
    }
}

thread_local! {
    static BSD_SECOND: std::cell::Cell<([u8; 15], Option<Timestamp>)> =
        const { std::cell::Cell::new(([0; 15], None)) };
}

/// `Mmm dd hh:mm:ss`, the day padded with a space (or a zero).
fn bsd_timestamp(input: &[u8]) -> PResult<'_, Timestamp> {
    const RECENT: RecentDate<15, Timestamp> = RecentDate { last: &BSD_SECOND };
    RECENT.get(input, read_bsd_timestamp)
}

fn read_bsd_timestamp(input: &[u8]) -> PResult<'_, Timestamp> {
    let (i, month) = month_name(input)?;
    let (i, _) = byte(b' ')(i)?;
    let (i, day) = match i {
        [b' ', d, rest @ ..] if d.is_ascii_digit() => (rest, (d - b'0') as u32),
        _ => digits::<2>(i)?,
    };
    let (i, _) = byte(b' ')(i)?;
    let (i, (h, m, s)) = clock_time(i)?;
    // Any leap year accepts 29 Feb; the year itself is not in the timestamp.
    let when = date_time(input, (2000, month, day), (h, m, s), 0)?;
    Ok((
        i,
        Timestamp::Bsd {
            month,
            day,
            time: when.time(),
        },
    ))
}

/// `yyyy-mm-ddThh:mm:ss[.frac][Z|+hh:mm|-hh:mm]`.
fn iso_timestamp(input: &[u8]) -> PResult<'_, Timestamp> {
    let (i, year) = digits::<4>(input)?;
    let (i, _) = byte(b'-')(i)?;
    let (i, month) = digits::<2>(i)?;
    let (i, _) = byte(b'-')(i)?;
    let (i, day) = digits::<2>(i)?;
    let (i, _) = byte(b'T')(i)?;
    let (i, hms) = clock_time(i)?;
    let (i, nanos, fraction_digits) = match i {
        [b'.', rest @ ..] => {
            let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return fail(rest, "timestamp fraction");
            }
            let (_, frac) = uint(&rest[..n])?;
            let nanos = frac as u32 * 10u32.pow(9 - n as u32);
            (&rest[n..], nanos, n as u8)
        }
        _ => (i, 0, 0),
    };
    let (i, offset) = match i {
        [b'Z', rest @ ..] => (rest, Some(UtcOffset::Zulu)),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (r, hh) = digits::<2>(rest)?;
            let (r, _) = byte(b':')(r)?;
            let (r, mm) = digits::<2>(r)?;
            let minutes = (hh * 60 + mm) as i32;
            (
                r,
                Some(UtcOffset::Minutes(if *sign == b'-' {
                    -minutes
                } else {
                    minutes
                })),
            )
        }
        _ => (i, None),
    };
    let local = date_time(input, (year as i32, month, day), hms, nanos)?;
    Ok((
        i,
        Timestamp::Iso {
            local,
            fraction_digits,
            offset,
        },
    ))
}

/// The rest of an RFC 5424 header after `<PRI>`.
fn rfc5424(input: &[u8], priority: Option<Priority>) -> PResult<'_, Envelope<'_>> {
    let (i, _) = byte(b'1')(input)?;
    let (i, _) = byte(b' ')(i)?;
    let (i, timestamp) = match i {
        [b'-', rest @ ..] => (rest, None),
        _ => {
            let (r, t) = iso_timestamp(i)?;
            (r, Some(t))
        }
    };
    let (i, _) = byte(b' ')(i)?;
    let (i, hostname) = nil_or_token(i)?;
    let (i, _) = byte(b' ')(i)?;
    let (i, tag) = nil_or_token(i)?;
    let (i, _) = byte(b' ')(i)?;
    let (i, pid) = nil_or_token(i)?;
    let (i, _) = byte(b' ')(i)?;
    let (i, msgid) = nil_or_token(i)?;
    let (i, _) = byte(b' ')(i)?;
    let (i, structured_data) = structured_data(i)?;
    let message = skip_space(i);
    Ok((
        message,
        Envelope {
            syntax: EnvelopeSyntax::Rfc5424 {
                msgid,
                structured_data,
            },
            priority,
            timestamp,
            hostname,
            tag,
            pid,
        },
    ))
}

/// An RFC 5424 header field; `-` is the nil value.
fn nil_or_token(input: &[u8]) -> PResult<'_, Option<&[u8]>> {
    let (i, t) = token(input)?;
    Ok((i, (t != b"-").then_some(t)))
}

/// STRUCTURED-DATA: `-`, or one or more `[...]` elements (`\]` escapes a bracket inside).
fn structured_data(input: &[u8]) -> PResult<'_, Option<&[u8]>> {
    if let [b'-', rest @ ..] = input {
        return Ok((rest, None));
    }
    let mut pos = 0;
    while input.get(pos) == Some(&b'[') {
        pos += 1;
        loop {
            match input.get(pos) {
                Some(b'\\') => pos += 2,
                Some(b']') => break,
                Some(_) => pos += 1,
                None => return fail(input, "structured data"),
            }
        }
        pos += 1;
    }
    if pos == 0 {
        return fail(input, "structured data");
    }
    Ok((&input[pos..], Some(&input[..pos])))
}

/// Writes the envelope without the space that separates it from a non-empty message; returns
/// whether that space is due.
pub(crate) fn write_envelope(env: &Envelope<'_>, out: &mut Vec<u8>) -> bool {
    if let Some(p) = env.priority {
        out.push(b'<');
        push_uint(out, p.value() as u64);
        out.push(b'>');
    }
    match env.syntax {
        EnvelopeSyntax::Bare => false,
        EnvelopeSyntax::Bsd => {
            let Some(t) = &env.timestamp else {
                return false;
            };
            write_timestamp(t, out);
            if let Some(host) = env.hostname {
                out.push(b' ');
                out.extend_from_slice(host);
            }
            if let Some(tag) = env.tag {
                out.push(b' ');
                out.extend_from_slice(tag);
                if let Some(pid) = env.pid {
                    out.push(b'[');
                    out.extend_from_slice(pid);
                    out.push(b']');
                }
                out.push(b':');
            }
            true
        }
        EnvelopeSyntax::Rfc5424 {
            msgid,
            structured_data,
        } => {
            out.extend_from_slice(b"1 ");
            match &env.timestamp {
                Some(t) => write_timestamp(t, out),
                None => out.push(b'-'),
            }
            for part in [env.hostname, env.tag, env.pid, msgid, structured_data] {
                out.push(b' ');
                out.extend_from_slice(part.unwrap_or(b"-"));
            }
            true
        }
    }
}

/// Writes a timestamp exactly as it was read.
fn write_timestamp(t: &Timestamp, out: &mut Vec<u8>) {
    match *t {
        Timestamp::Bsd { month, day, time } => {
            out.extend_from_slice(month_abbr(month));
            out.push(b' ');
            if day < 10 {
                out.push(b' ');
            }
            push_uint(out, day as u64);
            out.push(b' ');
            push_clock(out, time);
        }
        Timestamp::Iso {
            local,
            fraction_digits,
            offset,
        } => {
            push_padded(out, local.year().max(0) as u32, 4);
            out.push(b'-');
            push_padded(out, local.month(), 2);
            out.push(b'-');
            push_padded(out, local.day(), 2);
            out.push(b'T');
            push_clock(out, local.time());
            if fraction_digits > 0 {
                out.push(b'.');
                let scaled = local.nanosecond() / 10u32.pow(9 - fraction_digits as u32);
                push_padded(out, scaled, fraction_digits as usize);
            }
            match offset {
                None => {}
                Some(UtcOffset::Zulu) => out.push(b'Z'),
                Some(UtcOffset::Minutes(m)) => {
                    out.push(if m < 0 { b'-' } else { b'+' });
                    let m = m.unsigned_abs();
                    push_padded(out, m / 60, 2);
                    out.push(b':');
                    push_padded(out, m % 60, 2);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(line: &[u8]) -> (Envelope<'_>, &[u8]) {
        let (env, msg) = Envelope::split(line);
        let mut out = Vec::new();
        env.write_with(msg, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(line),
            "envelope must write back as read"
        );
        (env, msg)
    }

    #[test]
    fn haproxy_default_rfc3164_has_no_hostname_and_a_space_padded_day() {
        let (env, msg) = roundtrip(b"<158>Nov  4 21:50:01 haproxy[1234]: hello world");
        assert_eq!(env.priority, Priority::from_parts(19, 6));
        assert_eq!(env.priority.unwrap().facility_name(), "local3");
        assert_eq!(env.priority.unwrap().severity_name(), "info");
        assert_eq!(env.hostname, None);
        assert_eq!(env.tag, Some(&b"haproxy"[..]));
        assert_eq!(env.pid, Some(&b"1234"[..]));
        assert!(matches!(
            env.timestamp,
            Some(Timestamp::Bsd {
                month: 11,
                day: 4,
                ..
            })
        ));
        assert_eq!(msg, b"hello world");
    }

    #[test]
    fn rfc3164_with_hostname_and_rsyslog_traditional_file_line() {
        let (env, msg) = roundtrip(b"<158>Nov 24 21:50:01 lb1 haproxy[1234]: x");
        assert_eq!(env.hostname, Some(&b"lb1"[..]));
        assert_eq!(msg, b"x");
        let (env, msg) = roundtrip(b"Nov 24 21:50:36 web-01 haproxy[77]: Proxy a started.");
        assert_eq!(env.priority, None);
        assert_eq!(env.hostname, Some(&b"web-01"[..]));
        assert_eq!(msg, b"Proxy a started.");
    }

    #[test]
    fn rsyslog_precise_and_loggen_iso_timestamps() {
        let (env, _) = roundtrip(b"2026-11-24T21:50:36.123456+00:00 h haproxy[7]: m");
        match env.timestamp {
            Some(Timestamp::Iso {
                fraction_digits: 6,
                offset: Some(UtcOffset::Minutes(0)),
                local,
            }) => assert_eq!(local.to_string(), "2026-11-24 21:50:36.123456"),
            other => panic!("unexpected {other:?}"),
        }
        let (env, msg) = roundtrip(b"<38>2026-11-24T21:53:12 localhost prg00000[1234]: seq: 1");
        assert_eq!(env.priority, Priority::new(38));
        assert_eq!(env.tag, Some(&b"prg00000"[..]));
        assert_eq!(msg, b"seq: 1");
        roundtrip(b"2026-01-02T03:04:05Z h t: m");
        roundtrip(b"2026-01-02T03:04:05.5-05:30 h t: m");
    }

    #[test]
    fn rfc5424_with_nil_fields_and_structured_data() {
        let (env, msg) = roundtrip(
            b"<158>1 2026-11-24T21:47:47.153606+00:00 lb haproxy 4242 - - 127.0.0.1:1 [x]",
        );
        assert_eq!(env.pid, Some(&b"4242"[..]));
        assert!(matches!(
            env.syntax,
            EnvelopeSyntax::Rfc5424 {
                msgid: None,
                structured_data: None
            }
        ));
        assert_eq!(msg, b"127.0.0.1:1 [x]");
        let (env, msg) = roundtrip(b"<13>1 - - - - ID7 [a b=\"c\\]\"][d] msg");
        assert_eq!(env.timestamp, None);
        assert!(matches!(
            env.syntax,
            EnvelopeSyntax::Rfc5424 {
                msgid: Some(b"ID7"),
                structured_data: Some(b"[a b=\"c\\]\"][d]")
            }
        ));
        assert_eq!(msg, b"msg");
    }

    #[test]
    fn lines_without_envelope_are_bare_and_odd_priorities_are_not_priorities() {
        let (env, msg) = roundtrip(b"127.0.0.1:5 [24/Nov/2026:21:50:01.674] fe");
        assert_eq!(env.syntax, EnvelopeSyntax::Bare);
        assert_eq!(msg, b"127.0.0.1:5 [24/Nov/2026:21:50:01.674] fe");
        let (env, _) = roundtrip(b"<999>Nov 24 21:50:01 haproxy[1]: x");
        assert_eq!(env.priority, None);
        let (env, msg) = roundtrip(b"<158>");
        assert_eq!(env.priority, Priority::new(158));
        assert_eq!(msg, b"");
        let (env, msg) = roundtrip(b"<158>garbage here");
        assert_eq!(env.timestamp, None);
        assert_eq!(msg, b"garbage here");
    }
}
