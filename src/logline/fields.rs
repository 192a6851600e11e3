//! Grammar rules shared by the envelope, session and event parsers: numbers, tokens, dates.
//!
//! Each rule is a nom parser over `&[u8]` whose error names the field it expected, so a line
//! that fails says why ([`super::Malformed`]).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use nom::error::{ErrorKind, ParseError};
use nom::IResult;

/// The error of every rule: where it failed and which field it expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldError<'a> {
    pub input: &'a [u8],
    pub expected: &'static str,
}

impl<'a> ParseError<&'a [u8]> for FieldError<'a> {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        FieldError {
            input,
            expected: "",
        }
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// The result type of every rule.
pub(crate) type PResult<'a, O> = IResult<&'a [u8], O, FieldError<'a>>;

/// Fails at `input`, expecting `what`.
pub(crate) fn fail<'a, O>(input: &'a [u8], what: &'static str) -> PResult<'a, O> {
    Err(nom::Err::Error(FieldError {
        input,
        expected: what,
    }))
}

/// Names the field `parser` reads, unless an inner rule already named a more precise one.
pub(crate) fn field<'a, O>(
    what: &'static str,
    mut parser: impl FnMut(&'a [u8]) -> PResult<'a, O>,
) -> impl FnMut(&'a [u8]) -> PResult<'a, O> {
    move |input| {
        parser(input).map_err(|e| {
            e.map(|mut err| {
                if err.expected.is_empty() {
                    err.expected = what;
                }
                err
            })
        })
    }
}

/// Converts a failed parse of `whole` into the reason and byte offset it failed at.
pub(crate) fn malformed(whole: &[u8], err: nom::Err<FieldError<'_>>) -> super::Malformed {
    match err {
        nom::Err::Error(e) | nom::Err::Failure(e) => super::Malformed {
            reason: if e.expected.is_empty() {
                "unexpected input"
            } else {
                e.expected
            },
            offset: whole.len().saturating_sub(e.input.len()),
        },
        nom::Err::Incomplete(_) => super::Malformed {
            reason: "line ends early",
            offset: whole.len(),
        },
    }
}

/// One byte `c`.
pub(crate) fn byte<'a>(c: u8) -> impl Fn(&'a [u8]) -> PResult<'a, ()> {
    move |input| match input.first() {
        Some(&b) if b == c => Ok((&input[1..], ())),
        _ => fail(input, "separator"),
    }
}

/// The single space between fields.
pub(crate) fn sp(input: &[u8]) -> PResult<'_, ()> {
    match input.first() {
        Some(b' ') => Ok((&input[1..], ())),
        _ => fail(input, "space"),
    }
}

/// A non-empty run of bytes up to the next space or the end.
pub(crate) fn token(input: &[u8]) -> PResult<'_, &[u8]> {
    // Fields are short: a plain loop beats memchr's setup cost here.
    let end = input.iter().position(|&b| b == b' ').unwrap_or(input.len());
    if end == 0 {
        return fail(input, "token");
    }
    Ok((&input[end..], &input[..end]))
}

/// An unsigned decimal number that fits in a `u64`.
pub(crate) fn uint(input: &[u8]) -> PResult<'_, u64> {
    let mut value: u64 = 0;
    let mut len = 0;
    for &b in input {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(digit as u64))
        {
            Some(v) => v,
            None => return fail(input, "number in range"),
        };
        len += 1;
    }
    if len == 0 {
        return fail(input, "number");
    }
    Ok((&input[len..], value))
}

/// An unsigned number that fits in a `u32`.
pub(crate) fn uint32(input: &[u8]) -> PResult<'_, u32> {
    let (rest, v) = uint(input)?;
    match u32::try_from(v) {
        Ok(v) => Ok((rest, v)),
        Err(_) => fail(input, "number in range"),
    }
}

/// Exactly `N` decimal digits.
pub(crate) fn digits<const N: usize>(input: &[u8]) -> PResult<'_, u32> {
    if input.len() < N {
        return fail(input, "digits");
    }
    let mut value = 0u32;
    for &b in &input[..N] {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return fail(input, "digits");
        }
        value = value * 10 + digit as u32;
    }
    Ok((&input[N..], value))
}

/// A timer in milliseconds; HAProxy writes `-1` for a phase that was never reached.
pub(crate) fn timer(input: &[u8]) -> PResult<'_, Option<u64>> {
    match input {
        [b'-', b'1', rest @ ..] if !rest.first().is_some_and(u8::is_ascii_digit) => {
            Ok((rest, None))
        }
        _ => {
            let (rest, v) = uint(input)?;
            Ok((rest, Some(v)))
        }
    }
}

/// An optional `+` prefix (logasap's "still running", or a redispatched retry count).
pub(crate) fn plus(input: &[u8]) -> (&[u8], bool) {
    match input.split_first() {
        Some((b'+', rest)) => (rest, true),
        _ => (input, false),
    }
}

/// A three-letter English month abbreviation, as a month number 1..=12.
pub(crate) fn month_name(input: &[u8]) -> PResult<'_, u32> {
    let Some(name) = input.get(..3) else {
        return fail(input, "month name");
    };
    let month = match name {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return fail(input, "month name"),
    };
    Ok((&input[3..], month))
}

/// The English abbreviation of month `m` (1..=12).
pub(crate) fn month_abbr(m: u32) -> &'static [u8; 3] {
    const NAMES: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    NAMES[(m.clamp(1, 12) - 1) as usize]
}

/// `hh:mm:ss`, checked by chrono.
pub(crate) fn clock_time(input: &[u8]) -> PResult<'_, (u32, u32, u32)> {
    let (i, h) = digits::<2>(input)?;
    let (i, _) = byte(b':')(i)?;
    let (i, m) = digits::<2>(i)?;
    let (i, _) = byte(b':')(i)?;
    let (i, s) = digits::<2>(i)?;
    Ok((i, (h, m, s)))
}

/// Builds a date-time with chrono, failing at `at` when the calendar says it does not exist.
pub(crate) fn date_time<'a>(
    at: &'a [u8],
    (year, month, day): (i32, u32, u32),
    (hour, min, sec): (u32, u32, u32),
    nanos: u32,
) -> Result<NaiveDateTime, nom::Err<FieldError<'a>>> {
    calendar_date(year, month, day)
        .zip(NaiveTime::from_hms_nano_opt(hour, min, sec, nanos))
        .map(|(d, t)| d.and_time(t))
        .ok_or(nom::Err::Error(FieldError {
            input: at,
            expected: "valid date",
        }))
}

/// `NaiveDate::from_ymd_opt`, remembering the last answer: consecutive log lines almost always
/// share their date, and asking chrono once per line is a measurable share of parse time.
fn calendar_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    use std::cell::Cell;
    thread_local! {
        static LAST: Cell<(i32, u32, u32, Option<NaiveDate>)> = const { Cell::new((0, 0, 0, None)) };
    }
    LAST.with(|last| {
        let (y, m, d, date) = last.get();
        if (y, m, d) == (year, month, day) && date.is_some() {
            return date;
        }
        let date = NaiveDate::from_ymd_opt(year, month, day);
        last.set((year, month, day, date));
        date
    })
}

/// HAProxy's accept date `dd/Mmm/yyyy:hh:mm:ss.mmm` (`%tr`); the milliseconds are optional
/// so the CLF form (`%trg`, seconds only) can share it.
pub(crate) fn accept_date(input: &[u8]) -> PResult<'_, (NaiveDateTime, bool)> {
    let (i, day) = digits::<2>(input)?;
    let (i, _) = byte(b'/')(i)?;
    let (i, month) = month_name(i)?;
    let (i, _) = byte(b'/')(i)?;
    let (i, year) = digits::<4>(i)?;
    let (i, _) = byte(b':')(i)?;
    let (i, hms) = clock_time(i)?;
    let (i, millis) = match i {
        [b'.', rest @ ..] => {
            let (i, ms) = digits::<3>(rest)?;
            (i, Some(ms))
        }
        _ => (i, None),
    };
    let when = date_time(
        input,
        (year as i32, month, day),
        hms,
        millis.unwrap_or(0) * 1_000_000,
    )?;
    Ok((i, (when, millis.is_some())))
}

/// Writes `value` as decimal.
pub(crate) fn push_uint(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Writes `value` as exactly `width` digits (zero padded).
pub(crate) fn push_padded(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut buf = itoa::Buffer::new();
    let text = buf.format(value).as_bytes();
    for _ in text.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(text);
}

/// Writes a timer, `-1` for `None`.
pub(crate) fn push_timer(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(v) => push_uint(out, v),
        None => out.extend_from_slice(b"-1"),
    }
}

/// Writes an accept date as `dd/Mmm/yyyy:hh:mm:ss`, then `.mmm` when `millis`.
pub(crate) fn push_accept_date(out: &mut Vec<u8>, when: &NaiveDateTime, millis: bool) {
    use chrono::{Datelike, Timelike};
    push_padded(out, when.day(), 2);
    out.push(b'/');
    out.extend_from_slice(month_abbr(when.month()));
    out.push(b'/');
    push_padded(out, when.year().max(0) as u32, 4);
    out.push(b':');
    push_clock(out, when.time());
    if millis {
        out.push(b'.');
        push_padded(out, when.nanosecond() / 1_000_000, 3);
    }
}

/// Writes `hh:mm:ss`.
pub(crate) fn push_clock(out: &mut Vec<u8>, t: NaiveTime) {
    use chrono::Timelike;
    push_padded(out, t.hour(), 2);
    out.push(b':');
    push_padded(out, t.minute(), 2);
    out.push(b':');
    push_padded(out, t.second(), 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_reads_minus_one_as_none_and_rejects_other_negatives() {
        assert_eq!(timer(b"-1/"), Ok((&b"/"[..], None)));
        assert_eq!(timer(b"1195 "), Ok((&b" "[..], Some(1195))));
        assert!(timer(b"-12").is_err());
        assert!(timer(b"-").is_err());
    }

    #[test]
    fn uint_rejects_overflow_instead_of_wrapping() {
        assert_eq!(uint(b"18446744073709551615"), Ok((&b""[..], u64::MAX)));
        assert_eq!(
            uint(b"18446744073709551616").unwrap_err(),
            nom::Err::Error(FieldError {
                input: b"18446744073709551616",
                expected: "number in range"
            })
        );
    }

    #[test]
    fn accept_date_rejects_impossible_calendar_days() {
        let (_, (when, ms)) = accept_date(b"29/Feb/2024:23:59:59.999]").unwrap();
        assert!(ms);
        assert_eq!(when.to_string(), "2024-02-29 23:59:59.999");
        assert!(accept_date(b"29/Feb/2026:00:00:00.000").is_err());
        assert!(accept_date(b"24/Noz/2026:00:00:00.000").is_err());
        assert!(accept_date(b"24/Nov/2026:25:00:00.000").is_err());
    }

    #[test]
    fn accept_date_round_trips_through_push() {
        let text = b"04/Jan/2026:09:05:07.042";
        let (_, (when, ms)) = accept_date(text).unwrap();
        let mut out = Vec::new();
        push_accept_date(&mut out, &when, ms);
        assert_eq!(out, text);
    }
}
