//! Every fixture line: round trip, and the fields HAProxy wrote, read back right.

use halyard::logline::{
    parse_line, Body, EnvelopeSyntax, EventSource, HttpLog, HttpSyntax, LineKind, LogLine,
    ProxyEventKind, ServerEvent, ServerEventKind, TcpLog, Timestamp, UtcOffset,
};

use crate::{fixture_lines, fixtures_dir};

/// All captured and hand-made valid fixture files.
fn valid_fixture_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(fixtures_dir().join("haproxy-2.6"))
        .expect("fixtures/haproxy-2.6")
        .map(|e| format!("haproxy-2.6/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|name| name.ends_with(".log"))
        .collect();
    files.push("handmade.log".to_owned());
    files.sort();
    files
}

#[test]
fn every_fixture_line_round_trips_exactly() {
    let mut checked = 0;
    for file in valid_fixture_files() {
        for (n, line) in fixture_lines(&file).iter().enumerate() {
            let written = parse_line(line).to_bytes();
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(line),
                "{file}:{}",
                n + 1
            );
            checked += 1;
        }
    }
    assert!(checked > 150, "only {checked} fixture lines found");
}

#[test]
fn every_captured_line_is_understood() {
    for file in valid_fixture_files() {
        for (n, line) in fixture_lines(&file).iter().enumerate() {
            let parsed = parse_line(line);
            if let Body::Other(why) = parsed.body {
                panic!(
                    "{file}:{}: not understood: {why}: {}",
                    n + 1,
                    String::from_utf8_lossy(line)
                );
            }
        }
    }
}

#[test]
fn every_malformed_line_is_other_with_a_reason_and_the_bytes_kept() {
    let lines = fixture_lines("malformed.log");
    assert!(lines.len() >= 10);
    for (n, line) in lines.iter().enumerate() {
        let parsed = parse_line(line);
        assert_eq!(parsed.kind(), LineKind::Other, "malformed.log:{}", n + 1);
        assert_eq!(parsed.to_bytes(), *line, "malformed.log:{}", n + 1);
    }
}

/// The first line of `file` containing `needle` (fixtures are re-captured with new ports and
/// dates, so tests find lines by what the capture script asked for, not by position).
/// Leaked so a parsed line can borrow it for the whole test.
fn line_with(file: &str, needle: &str) -> &'static [u8] {
    let line = fixture_lines(file)
        .into_iter()
        .find(|l| String::from_utf8_lossy(l).contains(needle))
        .unwrap_or_else(|| panic!("{file}: no line with {needle:?}"));
    Box::leak(line.into_boxed_slice())
}

fn http<'a>(parsed: &'a LogLine<'a>) -> &'a HttpLog<'a> {
    match &parsed.body {
        Body::Http(h) => h,
        other => panic!("not http: {other:?}"),
    }
}

fn tcp<'a>(parsed: &'a LogLine<'a>) -> &'a TcpLog<'a> {
    match &parsed.body {
        Body::Tcp(t) => t,
        other => panic!("not tcp: {other:?}"),
    }
}

fn server_event<'a>(parsed: &'a LogLine<'a>) -> &'a ServerEvent<'a> {
    match &parsed.body {
        Body::ServerEvent(e) => e,
        other => panic!("not a server event: {other:?}"),
    }
}

/// An independent reading of an httplog message: split on spaces, as the format string lays
/// the fields out, and compare each with the parsed field.
fn check_against_split(file: &str, n: usize, line: &[u8]) {
    let parsed = parse_line(line);
    let Body::Http(h) = &parsed.body else { return };
    if h.syntax != HttpSyntax::HttpLog {
        return;
    }
    let msg = String::from_utf8_lossy(parsed.message);
    let f: Vec<&str> = msg.splitn(12, ' ').collect();
    let at = format!("{file}:{}", n + 1);
    let s = &h.session;
    let t = |v: Option<u64>| v.map_or("-1".to_owned(), |v| v.to_string());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(
        f[0],
        format!("{}:{}", text(s.client_ip), s.client_port),
        "{at}"
    );
    assert_eq!(
        f[1],
        s.accept_date.format("[%d/%b/%Y:%H:%M:%S%.3f]").to_string(),
        "{at}"
    );
    assert_eq!(f[2], text(s.frontend), "{at}");
    assert_eq!(
        f[3],
        format!("{}/{}", text(s.backend), text(s.server)),
        "{at}"
    );
    let tm = &h.timers;
    let plus = if tm.active_partial { "+" } else { "" };
    assert_eq!(
        f[4],
        format!(
            "{}/{}/{}/{}/{plus}{}",
            t(tm.request),
            t(tm.queue),
            t(tm.connect),
            t(tm.response),
            t(tm.active)
        ),
        "{at}"
    );
    assert_eq!(f[5], t(h.status.map(u64::from)), "{at}");
    let bplus = if h.bytes_partial { "+" } else { "" };
    assert_eq!(f[6], format!("{bplus}{}", h.bytes_read), "{at}");
    assert_eq!(f[7], h.request_cookie.map_or("-".into(), text), "{at}");
    assert_eq!(f[8], h.response_cookie.map_or("-".into(), text), "{at}");
    assert_eq!(f[9], text(h.termination_state.as_bytes()), "{at}");
    let c = &h.connections;
    let rplus = if c.redispatched { "+" } else { "" };
    assert_eq!(
        f[10],
        format!(
            "{}/{}/{}/{}/{rplus}{}",
            c.active, c.frontend, c.backend, c.server, c.retries
        ),
        "{at}"
    );
    let rest = f[11];
    let (queues, rest) = rest.split_once(' ').unwrap();
    assert_eq!(
        queues,
        format!("{}/{}", h.queues.server, h.queues.backend),
        "{at}"
    );
    let request_at = rest.find('"').unwrap();
    assert_eq!(h.request_headers.is_some(), request_at > 0, "{at}");
    let request = &rest[request_at + 1..];
    assert_eq!(
        request.trim_end_matches('"').split(' ').next().unwrap(),
        text(h.request.method),
        "{at}"
    );
    assert_eq!(request.ends_with('"'), !h.request.truncated, "{at}");
}

#[test]
fn every_httplog_fixture_line_agrees_with_a_plain_split() {
    for file in valid_fixture_files() {
        for (n, line) in fixture_lines(&file).iter().enumerate() {
            check_against_split(&file, n, line);
        }
    }
}

#[test]
fn httplog_default_envelope_and_a_slow_request() {
    let line = line_with("haproxy-2.6/httplog.log", "/sleep/600 ");
    let parsed = parse_line(line);
    let env = &parsed.envelope;
    assert_eq!(env.syntax, EnvelopeSyntax::Bsd);
    let pri = env.priority.unwrap();
    assert_eq!(
        (pri.facility_name(), pri.severity_name()),
        ("local3", "info")
    );
    assert_eq!(env.hostname, None);
    assert_eq!(env.tag, Some(&b"haproxy"[..]));
    assert!(env.pid.unwrap().iter().all(u8::is_ascii_digit));
    let h = http(&parsed);
    assert_eq!(h.session.client_ip, b"127.0.0.1");
    assert_eq!(h.session.frontend, b"fe_main");
    assert_eq!(h.session.backend, b"be_app");
    assert_eq!(h.status, Some(200));
    assert!(h.timers.response.unwrap() >= 600);
    assert!(h.timers.active.unwrap() >= h.timers.response.unwrap());
    assert_eq!(h.termination_state.as_bytes(), b"----");
    assert_eq!(
        (h.request.method, h.request.uri, h.request.version),
        (
            &b"GET"[..],
            Some(&b"/sleep/600"[..]),
            Some(&b"HTTP/1.1"[..])
        )
    );
    assert!(!h.request.truncated);
    assert_eq!(h.request_headers, None);
}

#[test]
fn httplog_server_timeout_client_abort_and_bad_request() {
    let timeout = line_with("haproxy-2.6/httplog.log", " sH-- ");
    let timeout = parse_line(timeout);
    let h = http(&timeout);
    assert_eq!(h.status, Some(504));
    assert_eq!(h.timers.response, None);
    assert!(h.timers.active.unwrap() >= 1000);
    assert_eq!(
        (h.termination_state.cause(), h.termination_state.phase()),
        (b's', b'H')
    );

    let abort = line_with("haproxy-2.6/httplog.log", " CD-- ");
    assert_eq!(http(&parse_line(abort)).termination_state.cause(), b'C');

    let bad = line_with("haproxy-2.6/httplog.log", "\"<BADREQ>\"");
    let bad = parse_line(bad);
    let h = http(&bad);
    assert!(h.request.is_bad());
    assert_eq!(h.session.server_name(), None);
    assert_eq!(h.session.server, b"<NOSRV>");
    assert_eq!(h.timers.request, None);
    assert_eq!(h.status.map(|s| s / 100), Some(4));
}

#[test]
fn httplog_dead_backend_queue_timeout_and_redispatch() {
    let dead = parse_line(line_with("haproxy-2.6/httplog.log", "be_dead/<NOSRV>"));
    let h = http(&dead);
    assert_eq!(h.status, Some(503));
    assert_eq!((h.timers.queue, h.timers.connect), (None, None));
    assert_eq!(h.termination_state.as_bytes(), b"SC--");

    let queued = parse_line(line_with("haproxy-2.6/httplog.log", " sQ-- "));
    let h = http(&queued);
    assert_eq!(h.status, Some(503));
    assert!(h.timers.queue.unwrap() >= 500);
    assert!(h.queues.backend > 0);

    let retried = parse_line(line_with("haproxy-2.6/httplog.log", "/+1 "));
    let h = http(&retried);
    assert_eq!(h.connections.retries, 1);
    assert!(h.connections.redispatched);
    assert_eq!(h.status, Some(200));
}

#[test]
fn httplog_ipv6_unix_stats_and_cookie_persistence() {
    let v6 = parse_line(line_with("haproxy-2.6/httplog.log", "]: ::1:"));
    assert_eq!(http(&v6).session.client_ip, b"::1");
    let unix = parse_line(line_with("haproxy-2.6/httplog.log", "]: unix:"));
    assert_eq!(http(&unix).session.client_ip, b"unix");
    let stats = parse_line(line_with("haproxy-2.6/httplog.log", "<STATS>"));
    assert_eq!(http(&stats).session.server_name(), Some(&b"<STATS>"[..]));
    for (needle, codes) in [(" --NI ", b"--NI"), (" --VN ", b"--VN")] {
        let l = parse_line(line_with("haproxy-2.6/httplog.log", needle));
        let h = http(&l);
        assert_eq!(h.termination_state.as_bytes(), codes);
        assert_eq!(h.session.backend, b"be_sticky");
    }
    let escaped = parse_line(line_with("haproxy-2.6/httplog.log", "/caf#E9/"));
    assert!(http(&escaped)
        .request
        .uri
        .unwrap()
        .starts_with(b"/caf#E9/men#FC.html"));
}

#[test]
fn captured_headers_in_two_blocks_one_block_with_spaces_and_empty_values() {
    let two = parse_line(line_with(
        "haproxy-2.6/httplog-captures.log",
        "(compatible; Halyard Test)",
    ));
    let h = http(&two);
    let req: Vec<&[u8]> = h.request_headers.unwrap().values().collect();
    assert_eq!(req.len(), 3);
    assert_eq!(req[1], b"Mozilla/5.0 (compatible; Halyard Test)");
    assert_eq!(req[2], b"session=abc123; theme=dark");
    let resp: Vec<&[u8]> = h.response_headers.unwrap().values().collect();
    assert_eq!(resp[0], b"text/html");

    let empty = parse_line(line_with("haproxy-2.6/httplog-captures.log", " {||} "));
    let req: Vec<&[u8]> = http(&empty).request_headers.unwrap().values().collect();
    assert_eq!(req, [&b""[..], b"", b""]);

    let escaped = parse_line(line_with(
        "haproxy-2.6/httplog-captures.log",
        "#7Bbraces#7D",
    ));
    let req: Vec<&[u8]> = http(&escaped).request_headers.unwrap().values().collect();
    assert_eq!(req[1], b"odd#7Cagent #22quoted#22 #7Bbraces#7D");

    let one = parse_line(line_with(
        "haproxy-2.6/httplog-captures.log",
        "fe_capsreq be_app/app2",
    ));
    let h = http(&one);
    assert!(h.request_headers.is_some());
    assert_eq!(h.response_headers, None);
    assert_eq!(h.status, Some(503));
}

#[test]
fn hostname_rfc5424_raw_and_rsyslog_envelopes() {
    let l = parse_line(line_with("haproxy-2.6/httplog-hostname.log", " 404 "));
    assert_eq!(l.envelope.hostname, Some(&b"myhost"[..]));
    assert_eq!(http(&l).status, Some(404));

    let l = parse_line(line_with("haproxy-2.6/httplog-rfc5424.log", "POST /form"));
    assert!(matches!(
        l.envelope.syntax,
        EnvelopeSyntax::Rfc5424 {
            msgid: None,
            structured_data: None
        }
    ));
    assert_eq!(
        (l.envelope.hostname, l.envelope.tag),
        (None, Some(&b"haproxy"[..]))
    );
    assert!(matches!(
        l.envelope.timestamp,
        Some(Timestamp::Iso {
            fraction_digits: 6,
            offset: Some(UtcOffset::Minutes(0)),
            ..
        })
    ));
    assert_eq!(http(&l).status, Some(201));

    let l = parse_line(line_with(
        "haproxy-2.6/httplog-raw.log",
        "/search?q=a%20b&x=1",
    ));
    assert_eq!(l.envelope.syntax, EnvelopeSyntax::Bare);
    assert_eq!(http(&l).request.uri, Some(&b"/search?q=a%20b&x=1"[..]));

    for file in [
        "haproxy-2.6/rsyslog-traditional.log",
        "haproxy-2.6/rsyslog-precise.log",
    ] {
        let l = parse_line(line_with(file, " 200 "));
        assert_eq!(l.envelope.priority, None, "{file}");
        assert!(l.envelope.hostname.is_some(), "{file}");
        assert_eq!(l.kind(), LineKind::Http, "{file}");
    }
    let precise = parse_line(line_with("haproxy-2.6/rsyslog-precise.log", " 200 "));
    assert!(matches!(
        precise.envelope.timestamp,
        Some(Timestamp::Iso {
            offset: Some(_),
            ..
        })
    ));
}

#[test]
fn clf_variant_carries_the_same_fields() {
    let l = parse_line(line_with("haproxy-2.6/httplog-clf.log", " sH-- "));
    let h = http(&l);
    assert!(matches!(
        h.syntax,
        HttpSyntax::Clf {
            utc_offset_minutes: 0,
            ..
        }
    ));
    assert_eq!(h.status, Some(504));
    assert_eq!(h.timers.response, None);
    assert!(h.timers.active.unwrap() >= 1000);
    assert_eq!(h.session.frontend, b"fe_clf");
    assert_eq!(h.request.uri, Some(&b"/sleep/1500"[..]));
    let msg = String::from_utf8_lossy(l.message);
    let millis: u32 = msg.split(' ').nth(13).unwrap().parse().unwrap();
    assert_eq!(
        chrono::Timelike::nanosecond(&h.session.accept_date) / 1_000_000,
        millis
    );
    let bad = parse_line(line_with("haproxy-2.6/httplog-clf.log", "<BADREQ>"));
    assert!(http(&bad).request.is_bad());
    assert_eq!(http(&bad).session.server_name(), None);
}

#[test]
fn logasap_marks_time_and_bytes_as_partial() {
    let l = parse_line(line_with("haproxy-2.6/httplog-logasap.log", "/sleep/600 "));
    let h = http(&l);
    assert!(h.timers.active_partial && h.bytes_partial);
    assert!(h.timers.active.unwrap() >= 600);
}

#[test]
fn request_lines_cut_by_the_syslog_limit_are_kept_and_marked() {
    let lines = fixture_lines("haproxy-2.6/httplog-truncated.log");
    let cut: Vec<&Vec<u8>> = lines.iter().filter(|l| l.len() == 1024).collect();
    assert!(cut.len() >= 2);
    for line in cut {
        let parsed = parse_line(line);
        let h = http(&parsed);
        assert!(h.request.truncated);
        assert_eq!(h.request.version, None);
        assert!(h.request.uri.unwrap().len() > 800);
        assert!(line.ends_with(h.request.uri.unwrap()));
    }
}

#[test]
fn tcplog_sessions() {
    let l = parse_line(line_with("haproxy-2.6/tcplog.log", " SC "));
    let t = tcp(&l);
    assert_eq!(t.timers.connect, None);
    assert_eq!(t.termination_state.as_bytes(), b"SC");
    assert_eq!(t.bytes_read, 0);
    let l = parse_line(line_with("haproxy-2.6/tcplog.log", " sD "));
    assert!(tcp(&l).timers.total.unwrap() >= 1000);
    let l = parse_line(line_with("haproxy-2.6/tcplog.log", " -- "));
    let t = tcp(&l);
    assert_eq!(t.session.frontend, b"tcp_main");
    assert_eq!(t.session.backend, b"tcp_main");
    assert_eq!(t.termination_state.as_bytes(), b"--");
}

#[test]
fn server_events_down_up_maintenance_backup_and_health_checks() {
    let f = "haproxy-2.6/events.log";
    let l = parse_line(line_with(f, "Layer7 wrong status"));
    let e = server_event(&l);
    assert_eq!(e.kind, ServerEventKind::Down);
    assert_eq!((e.backend, e.server), (&b"be_chk500"[..], &b"c500"[..]));
    assert_eq!(e.check_code, Some(500));
    assert_eq!(e.info, Some(&b"Internal Server Error"[..]));
    assert_eq!(e.active_servers, Some(0));
    let sev = l.envelope.priority.unwrap();
    assert_eq!(
        (sev.facility_name(), sev.severity_name()),
        ("local3", "alert")
    );

    let l = parse_line(line_with(f, "Layer7 timeout"));
    assert!(server_event(&l).check_duration_ms.unwrap() >= 1000);

    let l = parse_line(line_with(f, "Backup Server be_chk/chkbk is DOWN"));
    let e = server_event(&l);
    assert!(e.backup);
    assert_eq!(e.reason, Some(&b"Layer4 connection problem"[..]));
    assert_eq!(e.info, Some(&b"Connection refused"[..]));

    let l = parse_line(line_with(f, "is UP, reason: Layer7 check passed"));
    let e = server_event(&l);
    assert_eq!(e.kind, ServerEventKind::Up);
    assert_eq!(e.check_code, Some(200));
    assert_eq!(l.envelope.priority.unwrap().severity_name(), "notice");

    let l = parse_line(line_with(f, "going DOWN for maintenance"));
    assert_eq!(server_event(&l).kind, ServerEventKind::Maintenance);

    let l = parse_line(line_with(f, "Health check for server be_lhc/lhc1 failed"));
    let e = server_event(&l);
    assert_eq!(
        (e.kind, e.source),
        (ServerEventKind::CheckFailed, EventSource::HealthCheck)
    );
    let l = parse_line(line_with(
        f,
        "Health check for server be_lhc/lhc1 succeeded",
    ));
    assert_eq!(server_event(&l).kind, ServerEventKind::CheckPassed);

    let l = parse_line(line_with(f, "SIGHUP: Server "));
    assert_eq!(server_event(&l).source, EventSource::StateDump);
}

#[test]
fn proxy_events_and_backends_without_servers() {
    let l = parse_line(line_with(
        "haproxy-2.6/httplog-hostname.log",
        "has no server available!",
    ));
    match &l.body {
        Body::ProxyEvent(e) => {
            assert_eq!(e.kind, ProxyEventKind::NoServer);
            assert_eq!(e.proxy, b"be_hostdead");
        }
        other => panic!("{other:?}"),
    }
    let l = parse_line(line_with(
        "haproxy-2.6/tcplog.log",
        "Proxy tcp_main stopped",
    ));
    match &l.body {
        Body::ProxyEvent(e) => assert_eq!(
            (e.kind, e.proxy),
            (ProxyEventKind::Stopped, &b"tcp_main"[..])
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hand_made_lines_non_utf8_crlf_and_large_values() {
    let lines = fixture_lines("handmade.log");
    let raw_uri = lines
        .iter()
        .find(|l| l.windows(5).any(|w| w == b"/caf\xe9"))
        .unwrap();
    let l = parse_line(raw_uri);
    assert!(http(&l)
        .request
        .uri
        .unwrap()
        .starts_with(b"/caf\xe9/men\xfc"));
    let raw_header = lines
        .iter()
        .find(|l| l.windows(4).any(|w| w == b"caf\xe9"))
        .unwrap();
    let l = parse_line(raw_header);
    assert!(http(&l).request_headers.is_some());
    let big = parse_line(line_with("handmade.log", "/big "));
    assert_eq!(http(&big).bytes_read, 5_368_709_120);
    assert_eq!(http(&big).timers.active, Some(3_600_123));
}

#[test]
fn drain_and_leaving_drain() {
    let l = parse_line(line_with("haproxy-2.6/events.log", "enters drain state"));
    let e = server_event(&l);
    assert_eq!(e.kind, ServerEventKind::Drain);
    assert_eq!((e.active_servers, e.backup_servers), (Some(1), Some(1)));
    let l = parse_line(line_with(
        "haproxy-2.6/events.log",
        "(leaving forced drain)",
    ));
    assert_eq!(server_event(&l).kind, ServerEventKind::Up);
}
