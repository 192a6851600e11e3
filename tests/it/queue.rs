//! Queueing through the running balancer: servers at their `maxconn` make requests wait (Tw,
//! `sq/bq` in the log) instead of failing, and `timeout queue` ends the wait with 503 `sQ--`.

use std::net::SocketAddr;

use halyard::logline::{parse_line, Body};

use crate::run::{curl, free_port, http_defaults, LogCollector, RunProcess};
use crate::test_backend::TestBackend;

/// What the log says of one request.
#[derive(Debug)]
struct Logged {
    server: String,
    status: Option<u16>,
    queue_ms: Option<u64>,
    ahead: (u32, u32),
    server_conns: u32,
    termination: String,
}

fn logged(lines: &[Vec<u8>], backend: &str) -> Vec<Logged> {
    lines
        .iter()
        .filter_map(|l| match parse_line(l).body {
            Body::Http(h) if h.session.backend == backend.as_bytes() => Some(Logged {
                server: String::from_utf8_lossy(h.session.server).into_owned(),
                status: h.status,
                queue_ms: h.timers.queue,
                ahead: (h.queues.server, h.queues.backend),
                server_conns: h.connections.server,
                termination: String::from_utf8_lossy(h.termination_state.as_bytes()).into_owned(),
            }),
            _ => None,
        })
        .collect()
}

/// `n` requests for `url` at once, each on its own connection; their statuses.
fn at_once(url: String, n: usize) -> Vec<u16> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || curl(&[url]))
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

fn config(front: u16, server: SocketAddr, log: SocketAddr) -> String {
    let defaults = http_defaults(log, "10s");
    format!(
        "{defaults}frontend fe
    bind 127.0.0.1:{front}
    use_backend short if {{ path_beg /short/ }}
    use_backend hashed if {{ path_beg /hashed/ }}
    default_backend long
backend long
    timeout queue 5s
    server one {server} maxconn 1
backend short
    timeout queue 400ms
    server one {server} maxconn 1
backend hashed
    balance uri
    timeout queue 5s
    server one {server} maxconn 1
"
    )
}

#[test]
fn requests_wait_for_a_server_at_its_maxconn_and_the_log_says_how_long() {
    let dir = tempfile::tempdir().unwrap();
    let backend = TestBackend::start("one", "127.0.0.1:0".parse().unwrap());
    let log = LogCollector::start();
    let front = free_port();
    let _run = RunProcess::start(dir.path(), &config(front, backend.addr, log.addr));

    // Four 300 ms requests through one slot: all served, one after the other.
    let statuses = at_once(format!("http://127.0.0.1:{front}/sleep/300"), 4);
    assert_eq!(statuses, [200; 4]);
    let lines = log.wait_for("4 lines", |l| logged(l, "long").len() == 4);
    let mut long = logged(&lines, "long");
    long.sort_by_key(|l| l.queue_ms);
    for (k, l) in long.iter().enumerate() {
        let waited = l.queue_ms.unwrap();
        // The k-th to be served waited for k requests of 300 ms (the first came straight in).
        assert!(
            waited + 50 >= 300 * k as u64 && waited < 300 * k as u64 + 1500,
            "{k}: {long:?}"
        );
        assert_eq!((l.status, l.server_conns), (Some(200), 1), "{l:?}");
        assert_eq!(l.termination, "----", "{l:?}");
    }
    // Those that waited were in the backend's queue, behind the ones before them.
    let mut ahead: Vec<u32> = long[1..].iter().map(|l| l.ahead.1).collect();
    ahead.sort();
    assert_eq!(ahead, [0, 1, 2], "{long:?}");

    // `timeout queue 400ms` with one 1 s request in the slot: the others give up, 503 `sQ--`.
    let statuses = at_once(format!("http://127.0.0.1:{front}/short/sleep/1000"), 3);
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 503, 503]);
    let lines = log.wait_for("3 short lines", |l| logged(l, "short").len() == 3);
    let gave_up: Vec<Logged> = logged(&lines, "short")
        .into_iter()
        .filter(|l| l.status == Some(503))
        .collect();
    for l in &gave_up {
        assert_eq!(
            (l.server.as_str(), l.termination.as_str()),
            ("<NOSRV>", "sQ--"),
            "{l:?}"
        );
        let waited = l.queue_ms.unwrap();
        assert!((380..1500).contains(&waited), "{l:?}");
    }

    // A hash ties every request for one URI to its server: they wait in that server's queue.
    let statuses = at_once(format!("http://127.0.0.1:{front}/hashed/sleep/200"), 3);
    assert_eq!(statuses, [200; 3]);
    let lines = log.wait_for("3 hashed lines", |l| logged(l, "hashed").len() == 3);
    let hashed = logged(&lines, "hashed");
    let mut server_ahead: Vec<u32> = hashed.iter().map(|l| l.ahead.0).collect();
    server_ahead.sort();
    assert_eq!(server_ahead, [0, 0, 1], "{hashed:?}");
    assert!(
        hashed.iter().all(|l| l.ahead.1 == 0 && l.server == "one"),
        "{hashed:?}"
    );
}

/// A keep-alive connection to `port` that has had one request answered (so it is accepted
/// and counted), or, with `answered` false, that has sent one and not read the answer yet.
fn client(port: u16, answered: bool) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /held HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    if answered {
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    }
    stream
}

/// Whether an answer starts arriving on `stream` within `wait`.
fn answered_within(stream: &mut std::net::TcpStream, wait: std::time::Duration) -> bool {
    use std::io::Read;
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 200"))
}

#[test]
fn frontend_and_global_maxconn_hold_new_clients_until_a_connection_closes() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let backend = TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap());
    let log = LogCollector::start();
    let (limited, other) = (free_port(), free_port());
    // The frontend takes 2 connections; the process 3 (so `other` gets the third).
    let config = format!(
        "{}listen limited\n    bind 127.0.0.1:{limited}\n    maxconn 2\n    server inst1 {addr}\n\
         listen other\n    bind 127.0.0.1:{other}\n    server inst1 {addr}\n",
        http_defaults(log.addr, "5s").replacen("global\n", "global\n    maxconn 3\n", 1),
        addr = backend.addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let first = client(limited, true);
    let second = client(limited, true);
    let mut third = client(limited, false);
    assert!(
        !answered_within(&mut third, Duration::from_millis(500)),
        "a third client got in past maxconn 2"
    );
    let mut on_other = client(other, false);
    assert!(
        answered_within(&mut on_other, Duration::from_secs(5)),
        "the process had room for one"
    );
    let mut fourth_overall = client(other, false);
    assert!(
        !answered_within(&mut fourth_overall, Duration::from_millis(500)),
        "a fourth client got in past the global maxconn 3"
    );
    // One connection closes: one of the two waiting clients gets its place (the process is
    // at its limit again), the other when the next one closes.
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    let mut waiting = vec![third, fourth_overall];
    // Served clients stay connected (a closed one would free its place).
    let mut in_place = Vec::new();
    let mut served = |waiting: &mut Vec<std::net::TcpStream>, wait| {
        let before = in_place.len();
        for mut client in std::mem::take(waiting) {
            if answered_within(&mut client, wait) {
                in_place.push(client);
            } else {
                waiting.push(client);
            }
        }
        in_place.len() - before
    };
    assert_eq!(
        served(&mut waiting, Duration::from_millis(300)),
        1,
        "one place, one client"
    );
    drop(second);
    assert_eq!(
        served(&mut waiting, Duration::from_secs(5)),
        1,
        "the last one got in"
    );
}

#[test]
fn a_server_queue_at_its_maxqueue_sends_requests_to_the_backend_queue() {
    let dir = tempfile::tempdir().unwrap();
    let backends = TestBackend::several(["s1", "s2"]);
    let log = LogCollector::start();
    let front = free_port();
    // Every request carries s1's cookie: it waits for s1, unless s1's queue is full.
    let config = format!(
        "{}listen web
    bind 127.0.0.1:{front}
    cookie SRV insert
    timeout queue 5s
    server s1 {} cookie s1 maxconn 1 maxqueue 1
    server s2 {} cookie s2 maxconn 1
",
        http_defaults(log.addr, "5s"),
        backends[0].addr,
        backends[1].addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let url = format!("http://127.0.0.1:{front}/sleep/400");
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let started: Vec<_> = (0..3)
            .map(|_| {
                let url = url.clone();
                let handle = scope.spawn(move || {
                    let out = std::process::Command::new("curl")
                        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
                        .arg("Cookie: SRV=s1")
                        .arg(&url)
                        .output()
                        .unwrap();
                    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
                });
                // In order: the slot, the server's queue, then the full queue.
                std::thread::sleep(std::time::Duration::from_millis(100));
                handle
            })
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(codes, [200, 200, 200]);
    let lines = log.wait_for("3 lines", |l| logged(l, "web").len() == 3);
    let mut served: Vec<(String, u64)> = logged(&lines, "web")
        .into_iter()
        .map(|l| (l.server, l.queue_ms.unwrap()))
        .collect();
    served.sort_by_key(|(_, tw)| *tw);
    // s2 took the third at once; the second waited for s1 (about 300 ms).
    assert_eq!(served[0].0, "s1");
    assert_eq!(served[1], ("s2".to_owned(), served[1].1));
    assert!(served[1].1 < 100, "redispatched at once: {served:?}");
    assert_eq!(served[2].0, "s1");
    assert!(served[2].1 >= 200, "waited in s1's queue: {served:?}");
}

#[test]
fn queued_requests_go_to_a_server_as_soon_as_it_can_take_them() {
    let dir = tempfile::tempdir().unwrap();
    let backends = TestBackend::several(["s1", "s2"]);
    let log = LogCollector::start();
    let front = free_port();
    let socket = dir.path().join("admin.sock");
    let config = format!(
        "{}listen web
    bind 127.0.0.1:{front}
    timeout queue 5s
    server s1 {} maxconn 1
    server s2 {} maxconn 1 disabled
",
        http_defaults(log.addr, "5s").replacen(
            "global\n",
            &format!(
                "global\n    stats socket {} level admin\n",
                socket.display()
            ),
            1
        ),
        backends[0].addr,
        backends[1].addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{front}{path}");
        std::thread::spawn(move || curl(&[url]))
    };
    let slow = get("/sleep/1500");
    std::thread::sleep(std::time::Duration::from_millis(150));
    let waiting = get("/waiting");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // s2 leaves maintenance: the waiting request is handed to it at once, not after s1's.
    let out = crate::halyard()
        .arg("ctl")
        .arg(&socket)
        .args(["enable", "server", "web/s2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(waiting.join().unwrap(), [200]);
    assert_eq!(slow.join().unwrap(), [200]);
    let lines = log.wait_for("2 lines", |l| logged(l, "web").len() == 2);
    let requests = logged(&lines, "web");
    let handed = requests
        .iter()
        .find(|r| r.server == "s2")
        .expect("s2 served one");
    let tw = handed.queue_ms.unwrap();
    assert!(
        (250..1200).contains(&tw),
        "Tw {tw} ms: handed over when s2 came, not when s1 freed"
    );
    assert_eq!(handed.ahead, (0, 0));
}
