//! Which requests, sessions and events a report counts: time window, frontend, backend, server
//! and status, as given on the command line.

use chrono::{NaiveDate, NaiveDateTime};

use crate::logline::Session;

/// Conditions a line must meet to be counted; empty lists accept everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Accepted at or after this local time.
    pub since: Option<NaiveDateTime>,
    /// Accepted before this local time.
    pub until: Option<NaiveDateTime>,
    /// Frontend names (a TLS frontend's `~` suffix may be left out).
    pub frontends: Vec<String>,
    /// Backend names.
    pub backends: Vec<String>,
    /// Server names, or `backend/server`.
    pub servers: Vec<String>,
    /// Status code ranges (inclusive); a filter on status keeps HTTP requests only.
    pub statuses: Vec<(u16, u16)>,
}

impl Filter {
    /// Whether a request (`status` is `Some`, itself `None` for -1) or a TCP session (`None`)
    /// is counted.
    pub fn accepts_session(&self, s: &Session<'_>, status: Option<Option<i32>>) -> bool {
        let frontend = s.frontend.strip_suffix(b"~").unwrap_or(s.frontend);
        let status_ok = self.statuses.is_empty()
            || status.flatten().is_some_and(|code| {
                self.statuses
                    .iter()
                    .any(|&(lo, hi)| (i32::from(lo)..=i32::from(hi)).contains(&code))
            });
        self.accepts_time(s.accept_date)
            && status_ok
            && matches_any(&self.frontends, frontend)
            && self.accepts_server(s.backend, s.server)
    }

    /// Whether traffic or events of `backend/server` are counted.
    pub fn accepts_server(&self, backend: &[u8], server: &[u8]) -> bool {
        matches_any(&self.backends, backend)
            && (self.servers.is_empty()
                || self.servers.iter().any(|want| match want.split_once('/') {
                    Some((b, s)) => b.as_bytes() == backend && s.as_bytes() == server,
                    None => want.as_bytes() == server,
                }))
    }

    /// Whether a local time is inside the window.
    pub fn accepts_time(&self, t: NaiveDateTime) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

fn matches_any(wanted: &[String], name: &[u8]) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| w.as_bytes() == name)
}

/// Parses `--status`: a comma-separated list of `5xx`, `404` or `500-599`.
pub fn parse_statuses(spec: &str) -> Result<Vec<(u16, u16)>, String> {
    spec.split(',')
        .map(str::trim)
        .map(|part| {
            let bad = || {
                format!("bad status {part:?}: expected e.g. 5xx, 404 or 500-599 (codes 100 to 599)")
            };
            let code = |s: &str| {
                s.parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(bad)
            };
            if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                let first = class.parse::<u16>().ok().filter(|c| (1..=5).contains(c));
                return first.map(|c| (c * 100, c * 100 + 99)).ok_or_else(bad);
            }
            match part.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (code(lo)?, code(hi)?);
                    if lo > hi {
                        return Err(bad());
                    }
                    Ok((lo, hi))
                }
                None => code(part).map(|c| (c, c)),
            }
        })
        .collect()
}

/// Parses `--since`/`--until`: an ISO date or date-time in the logs' local time
/// (`2026-11-24`, `2026-11-24T21:00`, `2026-11-24 21:00:05.250`), or a duration before `now`
/// (`90s`, `30m`, `2h`, `1d`).
pub fn parse_time(spec: &str, now: NaiveDateTime) -> Result<NaiveDateTime, String> {
    if let Ok(ago) = parse_duration_ms(spec) {
        return Ok(now - chrono::Duration::milliseconds(ago));
    }
    let spec = spec.trim();
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(spec, format) {
            return Ok(t);
        }
    }
    NaiveDate::parse_from_str(spec, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| {
            format!(
                "bad time {spec:?}: expected 2026-11-24T21:00[:05], 2026-11-24, or an age like 30m"
            )
        })
}

/// Parses a duration like `500ms`, `30s`, `1m`, `2h`, `1d` into milliseconds (> 0).
pub fn parse_duration_ms(spec: &str) -> Result<i64, String> {
    let spec = spec.trim();
    let digits = spec.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = spec.split_at(digits);
    let per_unit: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => 0,
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
        .filter(|&ms| ms > 0)
        .ok_or_else(|| format!("bad duration {spec:?}: expected e.g. 500ms, 30s, 1m, 2h or 1d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_specs() {
        assert_eq!(parse_statuses("5xx"), Ok(vec![(500, 599)]));
        assert_eq!(
            parse_statuses("404,500-503"),
            Ok(vec![(404, 404), (500, 503)])
        );
        for bad in ["", "6", "x5xx", "503-500", "0xx", "6xx", "abc", "600"] {
            assert!(parse_statuses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_absolute_and_relative() {
        let now = NaiveDateTime::parse_from_str("2026-11-24 12:00:00", "%Y-%m-%d %H:%M:%S")
            .expect("valid");
        let at = |s| parse_time(s, now).map(|t| t.to_string());
        assert_eq!(at("2h").as_deref(), Ok("2026-11-24 10:00:00"));
        assert_eq!(at("90s").as_deref(), Ok("2026-11-24 11:58:30"));
        assert_eq!(at("2026-11-23").as_deref(), Ok("2026-11-23 00:00:00"));
        assert_eq!(at("2026-11-23T21:05").as_deref(), Ok("2026-11-23 21:05:00"));
        assert_eq!(
            at("2026-11-23 21:05:01.250").as_deref(),
            Ok("2026-11-23 21:05:01.250")
        );
        assert!(at("yesterday").is_err());
        assert!(at("0m").is_err());
        assert!(parse_duration_ms("1w").is_err());
        assert_eq!(parse_duration_ms("1m"), Ok(60_000));
    }
}
