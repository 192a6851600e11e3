//! Property tests: no input panics the parser, and generated valid lines parse to the values
//! they were generated from and write back byte for byte.

use proptest::prelude::*;

use halyard::logline::{parse_line, Body};

use crate::fixture_lines;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let parsed = parse_line(&bytes);
        let _ = parsed.to_bytes();
        let _ = halyard::logline::Record::new(None, 1, &parsed);
    }

    #[test]
    fn writing_back_is_stable_for_any_line(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for line in halyard::input::lines(&bytes) {
            let parsed = parse_line(line);
            let written = parsed.to_bytes();
            let reparsed = parse_line(&written);
            prop_assert_eq!(&reparsed.to_bytes(), &written);
            prop_assert_eq!(reparsed.kind(), parsed.kind());
        }
    }

    #[test]
    fn mutated_real_lines_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let lines = fixture_lines("haproxy-2.6/httplog.log");
        let mut line = lines[pick.index(lines.len())].clone();
        for (at, byte, op) in edits {
            let at = at.index(line.len() + 1);
            match op {
                0 if at < line.len() => line[at] = byte,
                1 => line.insert(at, byte),
                _ if at < line.len() => { line.remove(at); }
                _ => {}
            }
        }
        let parsed = parse_line(&line);
        let _ = parsed.to_bytes();
        let _ = halyard::logline::Record::new(None, 1, &parsed);
    }

    #[test]
    fn generated_httplog_lines_parse_to_their_fields_and_round_trip(g in http_line()) {
        let text = g.text();
        let parsed = parse_line(text.as_bytes());
        let Body::Http(h) = &parsed.body else {
            return Err(TestCaseError::fail(format!("not http: {text}: {:?}", parsed.body)));
        };
        prop_assert_eq!(h.session.client_ip, g.ip.as_bytes());
        prop_assert_eq!(h.session.client_port, g.port);
        prop_assert_eq!(h.session.backend, g.backend.as_bytes());
        prop_assert_eq!(h.session.server, g.server.as_bytes());
        let t = h.timers;
        prop_assert_eq!([t.request, t.queue, t.connect, t.response, t.active], g.timers);
        prop_assert_eq!(t.active_partial, g.logasap);
        prop_assert_eq!(h.bytes_partial, g.logasap);
        prop_assert_eq!(h.status, g.status);
        prop_assert_eq!(h.bytes_read, g.bytes);
        prop_assert_eq!(h.termination_state.as_bytes(), g.tsc.as_bytes());
        prop_assert_eq!(h.connections.retries, g.retries);
        prop_assert_eq!(h.connections.redispatched, g.redispatched);
        let req: Option<Vec<String>> = h.request_headers.map(|b| {
            b.values().map(|v| String::from_utf8_lossy(v).into_owned()).collect()
        });
        prop_assert_eq!(req, g.request_headers.clone());
        let resp: Option<Vec<String>> = h.response_headers.map(|b| {
            b.values().map(|v| String::from_utf8_lossy(v).into_owned()).collect()
        });
        prop_assert_eq!(resp, g.response_headers.clone());
        prop_assert_eq!(h.request.method, g.method.as_bytes());
        prop_assert_eq!(h.request.uri, Some(g.uri.as_bytes()));
        prop_assert_eq!(h.request.truncated, g.truncated);
        prop_assert_eq!(h.request.version.is_some(), !g.truncated);
        let written = parsed.to_bytes();
        prop_assert_eq!(String::from_utf8_lossy(&written), text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn generated_tcplog_lines_parse_to_their_fields_and_round_trip(
        ip in "(10|127|192)\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        port in any::<u16>(),
        names in (name(), name(), name()),
        timers in [timer(), timer(), timer()],
        logasap in any::<bool>(),
        bytes in any::<u64>(),
        ts in "[-CSPLRIDUKcs][-RQCHDLT]",
        counts in any::<[u32; 7]>(),
        redispatched in any::<bool>(),
    ) {
        let t = |v: Option<u64>| v.map_or("-1".to_owned(), |v| v.to_string());
        let plus = if logasap { "+" } else { "" };
        let text = format!(
            "{ip}:{port} [01/Jan/2027:00:00:00.000] {} {}/{} {}/{}/{plus}{} {plus}{bytes} {ts} {}/{}/{}/{}/{}{} {}/{}",
            names.0, names.1, names.2, t(timers[0]), t(timers[1]), t(timers[2]),
            counts[0], counts[1], counts[2], counts[3], if redispatched { "+" } else { "" }, counts[4],
            counts[5], counts[6],
        );
        let parsed = parse_line(text.as_bytes());
        let Body::Tcp(tcp) = &parsed.body else {
            return Err(TestCaseError::fail(format!("not tcp: {text}: {:?}", parsed.body)));
        };
        prop_assert_eq!(tcp.session.client_port, port);
        prop_assert_eq!([tcp.timers.queue, tcp.timers.connect, tcp.timers.total], timers);
        prop_assert_eq!((tcp.timers.total_partial, tcp.bytes_partial), (logasap, logasap));
        prop_assert_eq!(tcp.bytes_read, bytes);
        prop_assert_eq!(tcp.termination_state.as_bytes(), ts.as_bytes());
        let c = &tcp.connections;
        prop_assert_eq!([c.active, c.frontend, c.backend, c.server, c.retries], [counts[0], counts[1], counts[2], counts[3], counts[4]]);
        prop_assert_eq!(c.redispatched, redispatched);
        prop_assert_eq!([tcp.queues.server, tcp.queues.backend], [counts[5], counts[6]]);
        let written = parsed.to_bytes();
        prop_assert_eq!(String::from_utf8_lossy(&written), text);
    }
}

/// The fields of one generated httplog line; `text` lays them out independently of the
/// formatter under test, following HAProxy's format string.
#[derive(Debug, Clone)]
struct GeneratedHttp {
    pri: u8,
    ip: String,
    port: u16,
    date: (u32, &'static str, u32, u32, u32, u32, u32),
    frontend: String,
    backend: String,
    server: String,
    timers: [Option<u64>; 5],
    logasap: bool,
    status: Option<u16>,
    bytes: u64,
    tsc: String,
    retries: u32,
    redispatched: bool,
    request_headers: Option<Vec<String>>,
    response_headers: Option<Vec<String>>,
    method: String,
    uri: String,
    truncated: bool,
}

impl GeneratedHttp {
    fn text(&self) -> String {
        let t = |v: Option<u64>| v.map_or("-1".to_owned(), |v| v.to_string());
        let plus = if self.logasap { "+" } else { "" };
        let (day, mon, year, h, m, s, ms) = self.date;
        let mut text = format!(
            "<{}>Nov 24 21:50:01 haproxy[77]: {}:{} [{day:02}/{mon}/{year}:{h:02}:{m:02}:{s:02}.{ms:03}] {} {}/{} {}/{}/{}/{}/{plus}{} {} {plus}{} - - {} 3/2/1/0/{}{} 0/0 ",
            self.pri,
            self.ip,
            self.port,
            self.frontend,
            self.backend,
            self.server,
            t(self.timers[0]),
            t(self.timers[1]),
            t(self.timers[2]),
            t(self.timers[3]),
            t(self.timers[4]),
            self.status.map_or("-1".to_owned(), |s| s.to_string()),
            self.bytes,
            self.tsc,
            if self.redispatched { "+" } else { "" },
            self.retries,
        );
        for block in [&self.request_headers, &self.response_headers]
            .into_iter()
            .flatten()
        {
            text.push_str(&format!("{{{}}} ", block.join("|")));
        }
        text.push_str(&format!("\"{} {}", self.method, self.uri));
        if !self.truncated {
            text.push_str(" HTTP/1.1\"");
        }
        text
    }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_.-]{0,12}"
}

fn timer() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![1 => Just(None), 4 => (0u64..10_000_000).prop_map(Some)]
}

fn header_values() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        "[ -z~]{0,20}".prop_filter("no |{}\"", |v| !v.contains(['|', '{', '}', '"'])),
        1..4,
    )
}

fn http_line() -> impl Strategy<Value = GeneratedHttp> {
    let ip = prop_oneof![
        (any::<[u8; 4]>()).prop_map(|b| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])),
        (any::<[u16; 3]>()).prop_map(|w| format!("{:x}::{:x}:{:x}", w[0], w[1], w[2])),
        Just("::1".to_owned()),
        Just("unix".to_owned()),
    ];
    let date = (
        1u32..=28,
        prop::sample::select(&["Jan", "Feb", "Jun", "Nov", "Dec"][..]),
        1970u32..2100,
        0u32..24,
        0u32..60,
        0u32..60,
        0u32..1000,
    );
    let captures = prop_oneof![
        Just((None, None)),
        header_values().prop_map(|v| (Some(v), None)),
        (header_values(), header_values()).prop_map(|(a, b)| (Some(a), Some(b))),
    ];
    (
        (
            0u8..=191,
            ip,
            any::<u16>(),
            date,
            name(),
            name(),
            prop_oneof![name(), Just("<NOSRV>".to_owned())],
        ),
        (
            [timer(), timer(), timer(), timer(), timer()],
            any::<bool>(),
            prop_oneof![Just(None), (100u16..600).prop_map(Some)],
            any::<u64>(),
        ),
        (
            "[-CSPLRIDUKcs][-RQCHDLT][-NIDVEO][-NIUPRD]",
            0u32..10,
            any::<bool>(),
        ),
        captures,
        ("[A-Z]{1,7}", "/[!-~&&[^\"]]{0,80}", any::<bool>()),
    )
        .prop_map(|(a, b, c, d, e)| GeneratedHttp {
            pri: a.0,
            ip: a.1,
            port: a.2,
            date: a.3,
            frontend: a.4,
            backend: a.5,
            server: a.6,
            timers: b.0,
            logasap: b.1,
            status: b.2,
            bytes: b.3,
            tsc: c.0,
            retries: c.1,
            redispatched: c.2,
            request_headers: d.0,
            response_headers: d.1,
            method: e.0,
            uri: e.1,
            truncated: e.2,
        })
}

proptest! {
    // Each case builds a whole report over ~200 lines.
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn a_report_over_damaged_logs_accounts_for_every_line(
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()),
            0..40,
        ),
    ) {
        let mut lines: Vec<Vec<u8>> = ["haproxy-2.6/httplog.log", "haproxy-2.6/tcplog.log", "haproxy-2.6/events.log", "haproxy-2.6/rsyslog-traditional.log"]
            .iter()
            .flat_map(|f| fixture_lines(f))
            .collect();
        for (line, at, byte) in edits {
            let count = lines.len();
            let line = &mut lines[line.index(count)];
            let at = at.index(line.len().max(1));
            match line.get_mut(at) {
                // A newline would split the line; the count below is per line.
                Some(b) if byte != b'\n' => *b = byte,
                _ => line.push(b'?'),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("damaged.log");
        std::fs::write(&file, lines.join(&b"\n"[..])).unwrap();
        let options = halyard::report::ReportOptions {
            sections: halyard::report::Section::ALL.to_vec(),
            interval_ms: 60_000,
            top: 5,
            filter: halyard::report::Filter::default(),
            weights: None,
            threads: 2,
            show_malformed: 3,
            max_transitions: 10,
        };
        let report = halyard::report::build(&[halyard::input::Source::File(file)], &options, |_| {});
        let report = report.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let s = report.summary.expect("summary asked for");
        prop_assert_eq!(s.lines_read, lines.len() as u64);
        prop_assert_eq!(s.http_requests + s.tcp_sessions + s.events + s.malformed, s.lines_read);
        let served: u64 = report.servers.expect("servers asked for").iter().map(|r| r.requests).sum();
        prop_assert_eq!(served, s.http_requests + s.tcp_sessions);
    }
}
