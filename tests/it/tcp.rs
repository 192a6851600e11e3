//! `mode tcp` end to end on 127.0.0.1: echo servers that greet with their name, the balancer
//! relaying byte for byte, and the tcplog lines it sends, read back with the log-line model.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use halyard::logline::{parse_line, Body};

use crate::run::{free_port, LogCollector, RunProcess};

/// A TCP server that writes `NAME\n` to every client, then echoes what it receives.
fn echo_server(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.write_all(format!("{name}\n").as_bytes());
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// The tcplog lines among `lines`: (frontend, server, Tc, bytes to the client, state).
fn sessions(lines: &[Vec<u8>]) -> Vec<(String, String, Option<u64>, u64, String)> {
    lines
        .iter()
        .filter_map(|l| match parse_line(l).body {
            Body::Tcp(t) => Some((
                String::from_utf8_lossy(t.session.frontend).into_owned(),
                String::from_utf8_lossy(t.session.server).into_owned(),
                t.timers.connect,
                t.bytes_read,
                String::from_utf8_lossy(t.termination_state.as_bytes()).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn tcp_sessions_are_relayed_balanced_and_logged_with_tcplog() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (echo_server("a"), echo_server("b"));
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = LogCollector::start();
    let (front, idle_front, dead_front) = (free_port(), free_port(), free_port());
    let config = format!(
        "global
    log {} local3
defaults
    mode tcp
    log global
    option tcplog
    retries 2
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen echo
    bind 127.0.0.1:{front}
    option dontlognull
    balance roundrobin
    server a {a}
    server b {b}
listen idle
    bind 127.0.0.1:{idle_front}
    timeout client 400ms
    server a {a}
listen dead
    bind 127.0.0.1:{dead_front}
    server gone {dead}
",
        log.addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let connect = |port: u16| {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    };

    // Four sessions, round robin: each greeted by its server, echoed, closed by the client.
    let mut greeted = Vec::new();
    for i in 0..4 {
        let mut stream = connect(front);
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut name = String::new();
        reader.read_line(&mut name).unwrap();
        greeted.push(name.trim().to_owned());
        let message = format!("message {i} \u{0}\u{ff}");
        stream.write_all(message.as_bytes()).unwrap();
        let mut echoed = vec![0u8; message.len()];
        reader.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, message.as_bytes());
    }
    assert_eq!(greeted, ["a", "b", "a", "b"]);
    // A client that sends nothing is not logged under `option dontlognull`.
    drop(connect(front));

    // Idle past `timeout client`: the balancer closes, `cD`.
    let started = Instant::now();
    let mut idle = connect(idle_front);
    idle.write_all(b"x").unwrap();
    let mut all = Vec::new();
    let _ = idle.read_to_end(&mut all);
    let waited = started.elapsed();
    assert_eq!(all, b"a\nx");
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );

    // Nobody listens: 1 + 2 retries, then the client is closed, `SC`, Tc -1.
    let mut refused = connect(dead_front);
    refused.write_all(b"hello?").unwrap();
    let mut nothing = Vec::new();
    let _ = refused.read_to_end(&mut nothing);
    assert!(nothing.is_empty());

    let lines = log.wait_for("6 tcplog lines", |l| sessions(l).len() >= 6);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sessions(&log.lines()).len(),
        6,
        "the silent client was logged"
    );
    let logged = sessions(&lines);
    let echo: Vec<_> = logged.iter().filter(|s| s.0 == "echo").collect();
    assert_eq!(echo.len(), 4, "{logged:?}");
    for (i, s) in echo.iter().enumerate() {
        let message_len = format!("message {i} \u{0}\u{ff}").len() as u64;
        assert_eq!(s.3, 2 + message_len, "{s:?}");
        assert_eq!(s.4, "--", "{s:?}");
        assert!(s.2.is_some(), "{s:?}");
    }
    // Sessions ending on different worker threads may log in either order: the greetings
    // above show the round robin, the log shows each server twice.
    let mut servers: Vec<&str> = echo.iter().map(|s| s.1.as_str()).collect();
    servers.sort_unstable();
    assert_eq!(servers, ["a", "a", "b", "b"]);
    let idle = logged.iter().find(|s| s.0 == "idle").unwrap();
    assert_eq!((idle.1.as_str(), idle.3, idle.4.as_str()), ("a", 3, "cD"));
    let dead = logged.iter().find(|s| s.0 == "dead").unwrap();
    assert_eq!(
        (dead.1.as_str(), dead.2, dead.3, dead.4.as_str()),
        ("gone", None, 0, "SC")
    );
    let raw = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .find(|l| l.contains(" dead dead/gone "))
        .unwrap();
    assert!(
        raw.contains(" 0/-1/") && raw.contains(" 0 SC ") && raw.ends_with("/2 0/0"),
        "{raw}"
    );
}

#[test]
fn halog_reads_the_tcplog_lines_as_it_reads_haproxys() {
    let dir = tempfile::tempdir().unwrap();
    let a = echo_server("a");
    let front = free_port();
    let log_port = free_port();
    // The whole pipeline: the balancer logs to its own listener, which writes the file halog
    // reads, in rsyslog's traditional format.
    let config = format!(
        "global
    log 127.0.0.1:{log_port} local3
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen echo
    bind 127.0.0.1:{front}
    server a {a}
log-forward syslog
    dgram-bind 127.0.0.1:{log_port}
    dir logs
"
    );
    let _run = RunProcess::start(dir.path(), &config);
    for _ in 0..3 {
        let mut stream = TcpStream::connect(("127.0.0.1", front)).unwrap();
        stream.write_all(b"hi").unwrap();
        let mut echoed = [0u8; 4];
        stream.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"a\nhi");
    }
    let file = dir.path().join("logs/haproxy.log");
    let lines = crate::listen::wait_for_file_lines(&file, "3 sessions", |l| sessions(l).len() >= 3);
    // `halog -ac`: the sessions accepted in each millisecond, as halog reads HAProxy's
    // tcplog lines; like HAProxy's "Proxy ... started.", the event line is not a session.
    let out = std::process::Command::new(crate::halog::halog())
        .args(["-ac", "1"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events = lines.len() - sessions(&lines).len();
    assert!(
        stderr.contains(&format!("{} lines in, ", lines.len()))
            && stderr.contains(&format!(" {events} parsing errors")),
        "{stderr}"
    );
    let per_ms = |pairs: &mut dyn Iterator<Item = (String, u64)>| {
        let mut counts = std::collections::BTreeMap::new();
        for (time, n) in pairs {
            *counts.entry(time).or_insert(0) += n;
        }
        counts
    };
    let halog = per_ms(
        &mut String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let fields: Vec<&str> = l.split(' ').collect();
                Some((fields.first()?.to_string(), fields.get(3)?.parse().ok()?))
            }),
    );
    let ours = per_ms(&mut lines.iter().filter_map(|l| match parse_line(l).body {
        Body::Tcp(t) => Some((t.session.accept_date.format("%H:%M:%S%.3f").to_string(), 1)),
        _ => None,
    }));
    assert_eq!(halog, ours);
    assert_eq!(ours.values().sum::<u64>(), 3);
}
