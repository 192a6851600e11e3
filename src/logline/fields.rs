//! Grammar rules shared by the envelope, session and event parsers: numbers, tokens, dates.
//!
//! Each rule is a nom parser over `&[u8]` whose error names the field it expected, so a line
//! that fails says why ([`super::Malformed`]).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use nom::error::{ErrorKind, ParseError};
use nom::IResult;

/// The error of every rule: where it failed and which field it expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// How many bytes of the input were left where the rule failed (kept instead of the slice
    /// itself: a smaller error makes every rule's result cheaper to pass around).
    pub remaining: usize,
    pub expected: &'static str,
}

impl<'a> ParseError<&'a [u8]> for FieldError {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        FieldError {
            remaining: input.len(),
            expected: "",
        }
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// The result type of every rule.
pub(crate) type PResult<'a, O> = IResult<&'a [u8], O, FieldError>;

/// Fails at `input`, expecting `what`.
#[inline]
pub(crate) fn fail<'a, O>(input: &'a [u8], what: &'static str) -> PResult<'a, O> {
    Err(error_at(input, what))
}

/// The error of a rule that failed at `input`, expecting `what`.
pub(crate) fn error_at(input: &[u8], what: &'static str) -> nom::Err<FieldError> {
    nom::Err::Error(FieldError {
        remaining: input.len(),
        expected: what,
    })
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
pub(crate) fn malformed(whole: &[u8], err: nom::Err<FieldError>) -> super::Malformed {
    match err {
        nom::Err::Error(e) | nom::Err::Failure(e) => super::Malformed {
            reason: if e.expected.is_empty() {
                "known syntax"
            } else {
                e.expected
            },
            offset: whole.len().saturating_sub(e.remaining),
        },
        nom::Err::Incomplete(_) => super::Malformed {
            reason: "more input",
            offset: whole.len(),
        },
    }
}

/// One byte `c`.
#[inline]
pub(crate) fn byte<'a>(c: u8) -> impl Fn(&'a [u8]) -> PResult<'a, ()> {
    move |input| match input.first() {
        Some(&b) if b == c => Ok((&input[1..], ())),
        _ => fail(
            input,
            match c {
                b'/' => "'/'",
                b':' => "':'",
                b'[' => "'['",
                b']' => "']'",
                b'-' => "'-'",
                b'T' => "'T'",
                b'"' => "'\"'",
                b' ' => "a space",
                _ => "separator",
            },
        ),
    }
}

/// The single space between fields.
#[inline]
pub(crate) fn sp(input: &[u8]) -> PResult<'_, ()> {
    match input.first() {
        Some(b' ') => Ok((&input[1..], ())),
        _ => fail(input, "a space after the field"),
    }
}

/// A non-empty run of bytes up to the next space or the end.
#[inline]
pub(crate) fn token(input: &[u8]) -> PResult<'_, &[u8]> {
    // Fields are short: a plain loop beats memchr's setup cost here.
    let end = input.iter().position(|&b| b == b' ').unwrap_or(input.len());
    if end == 0 {
        return fail(input, "a field");
    }
    Ok((&input[end..], &input[..end]))
}

/// An unsigned decimal number that fits in a `u64`.
#[inline(always)]
pub(crate) fn uint(input: &[u8]) -> PResult<'_, u64> {
    let mut len = 0;
    let mut value = 0u64;
    while let Some(&b) = input.get(len) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(digit as u64);
        len += 1;
    }
    match len {
        0 => fail(input, "number"),
        // Up to 19 digits cannot overflow a u64; longer numbers are redone with checks.
        1..=19 => Ok((&input[len..], value)),
        _ => checked_uint(input),
    }
}

#[cold]
fn checked_uint(input: &[u8]) -> PResult<'_, u64> {
    let len = input.iter().take_while(|b| b.is_ascii_digit()).count();
    let value = input[..len].iter().try_fold(0u64, |v, &b| {
        v.checked_mul(10)?.checked_add((b - b'0') as u64)
    });
    match value {
        Some(v) => Ok((&input[len..], v)),
        None => fail(input, "number in range"),
    }
}

/// An unsigned number that fits in a `u32`.
#[inline(always)]
pub(crate) fn uint32(input: &[u8]) -> PResult<'_, u32> {
    let (rest, v) = uint(input)?;
    match u32::try_from(v) {
        Ok(v) => Ok((rest, v)),
        Err(_) => fail(input, "number in range"),
    }
}

/// Exactly `N` decimal digits.
#[inline]
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
#[inline(always)]
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
#[inline]
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
pub(crate) fn date_time(
    at: &[u8],
    (year, month, day): (i32, u32, u32),
    (hour, min, sec): (u32, u32, u32),
    nanos: u32,
) -> Result<NaiveDateTime, nom::Err<FieldError>> {
    NaiveDate::from_ymd_opt(year, month, day)
        .zip(NaiveTime::from_hms_nano_opt(hour, min, sec, nanos))
        .map(|(d, t)| d.and_time(t))
        .ok_or_else(|| error_at(at, "valid date"))
}

/// Remembers what the last `N`-byte date text parsed to. Consecutive log lines almost always
/// carry the same second, and re-reading it (with chrono's calendar checks) is a measurable
/// share of parse time.
pub(crate) struct RecentDate<const N: usize, T: Copy + 'static> {
    pub(crate) last: &'static std::thread::LocalKey<std::cell::Cell<([u8; N], Option<T>)>>,
}

impl<const N: usize, T: Copy + 'static> RecentDate<N, T> {
    /// The value for `input[..N]`, from the last call if the text is the same, else from `parse`
    /// (which must consume exactly `N` bytes to be remembered).
    pub(crate) fn get<'a>(
        &self,
        input: &'a [u8],
        parse: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
    ) -> PResult<'a, T> {
        if let Some(key) = input.get(..N) {
            let (last_key, last) = self.last.with(|c| c.get());
            if let (Some(value), true) = (last, last_key == key) {
                return Ok((&input[N..], value));
            }
        }
        let (rest, value) = parse(input)?;
        if input.len() - rest.len() == N {
            let mut key = [0u8; N];
            key.copy_from_slice(&input[..N]);
            self.last.with(|c| c.set((key, Some(value))));
        }
        Ok((rest, value))
    }
}

thread_local! {
    static ACCEPT_SECOND: std::cell::Cell<([u8; 20], Option<NaiveDateTime>)> =
        const { std::cell::Cell::new(([0; 20], None)) };
}

/// `dd/Mmm/yyyy:hh:mm:ss`
fn accept_second(input: &[u8]) -> PResult<'_, NaiveDateTime> {
    let (i, day) = digits::<2>(input)?;
    let (i, _) = byte(b'/')(i)?;
    let (i, month) = month_name(i)?;
    let (i, _) = byte(b'/')(i)?;
    let (i, year) = digits::<4>(i)?;
    let (i, _) = byte(b':')(i)?;
    let (i, hms) = clock_time(i)?;
    Ok((i, date_time(input, (year as i32, month, day), hms, 0)?))
}

/// HAProxy's accept date `dd/Mmm/yyyy:hh:mm:ss.mmm` (`%tr`); the milliseconds are optional
/// so the CLF form (`%trg`, seconds only) can share it.
pub(crate) fn accept_date(input: &[u8]) -> PResult<'_, (NaiveDateTime, bool)> {
    const RECENT: RecentDate<20, NaiveDateTime> = RecentDate {
        last: &ACCEPT_SECOND,
    };
    let (i, second) = RECENT.get(input, accept_second)?;
    match i {
        [b'.', rest @ ..] => {
            let (i, ms) = digits::<3>(rest)?;
            let when = chrono::Timelike::with_nanosecond(&second, ms * 1_000_000).unwrap_or(second);
            Ok((i, (when, true)))
        }
        _ => Ok((i, (second, false))),
    }
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
    fn uint_reads_every_length_and_stops_at_any_terminator() {
        let cases: [&[u8]; 17] = [
            b"0 x",
            b"7/",
            b"42 ",
            b"999/",
            b"1234]",
            b"65535:",
            b"123456 ",
            b"9999999/",
            b"1000000 ",
            b"0000001 ",
            b"12345678 ",
            b"123456789/",
            b"00000000",
            b"5\x7f\x00\x00\x00\x00\x00\x00",
            b"3\xfa\xff\xff\xff\xff\xff\xff",
            b"8:",
            b"1/2/3/4/5",
        ];
        for bytes in cases {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            let plain = std::str::from_utf8(&bytes[..digits]).unwrap();
            match uint(bytes) {
                Ok((rest, v)) => {
                    assert_eq!(v, plain.parse::<u64>().unwrap(), "{bytes:?}");
                    assert_eq!(rest.len(), bytes.len() - digits, "{bytes:?}");
                }
                Err(_) => assert_eq!(digits, 0, "{bytes:?}"),
            }
        }
        for n in [
            0u64, 1, 9, 10, 99, 100, 4095, 65536, 999_999, 1_000_000, 9_999_999,
        ] {
            let text = format!("{n}/0/0/0");
            assert_eq!(uint(text.as_bytes()).unwrap().1, n);
        }
    }

    #[test]
    fn uint_rejects_overflow_instead_of_wrapping() {
        assert_eq!(uint(b"18446744073709551615"), Ok((&b""[..], u64::MAX)));
        assert_eq!(
            uint(b"18446744073709551616").unwrap_err(),
            nom::Err::Error(FieldError {
                remaining: 20,
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
