//! `halyard run` end to end on 127.0.0.1: real HTTP backends served by hyper in this process,
//! the balancer run as a user runs it, curl as the client, and a UDP socket collecting the log
//! lines it sends.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use halyard::logline::{parse_line, Body};

use crate::test_backend::TestBackend;
use crate::{halyard, Collected};

/// Collects the syslog datagrams sent to it.
pub struct LogCollector {
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl LogCollector {
    pub fn start() -> LogCollector {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = lines.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = socket.recv(&mut buf) {
                collected.lock().unwrap().push(buf[..n].to_vec());
            }
        });
        LogCollector { addr, lines }
    }

    pub fn lines(&self) -> Vec<Vec<u8>> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits for a line containing `text` and returns it.
    pub fn wait_for_line(&self, text: &str) -> String {
        let lines = self.wait_for(text, |l| {
            l.iter().any(|x| String::from_utf8_lossy(x).contains(text))
        });
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .find(|l| l.contains(text))
            .unwrap_or_default()
    }

    /// Waits until `pred` holds for the lines collected so far.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let lines = self.lines();
            if pred(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log so far:\n{}",
                lines
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `halyard run -f CONFIG`, stopped (SIGTERM) when dropped.
pub struct RunProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl RunProcess {
    /// Writes `config` to a file, starts `halyard run` on it and waits until it listens.
    pub fn start(dir: &std::path::Path, config: &str) -> RunProcess {
        let path = dir.join("halyard.cfg");
        std::fs::write(&path, config).unwrap();
        let mut command = halyard();
        command.args(["run", "-f"]).arg(&path);
        let Collected { child, stderr } = Collected::spawn(command);
        let mut process = RunProcess { child, stderr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !process.stderr.lock().unwrap().contains("listening on") {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "halyard run exited with {status}: {}",
                    process.stderr.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "halyard run did not start: {}",
                process.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        process
    }
}

impl RunProcess {
    /// The balancer's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the balancer.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits until the balancer has said `text` on stderr `times` times in all.
    pub fn wait_for_stderr(&self, text: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let said = self.stderr.lock().unwrap().matches(text).count();
            if said >= times {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {text:?} ×{times}: {}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RunProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(libc::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

/// Sends `request` as raw bytes on a new connection to `port` and reads the answer to the end.
fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The server may answer and close before taking all of it (headers too large).
    let _ = std::io::Write::write_all(&mut stream, request);
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    answer
}

/// An HTTP/1.1 client connection to 127.0.0.1:`port`, driven on a task of its own.
pub async fn http1_client(
    port: u16,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// A TCP port free now on 127.0.0.1.
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `curl` for each URL in `urls` (globs allowed), one connection reused: the status codes.
pub fn curl(urls: &[String]) -> Vec<u16> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}\\n",
            "--max-time",
            "10",
        ])
        .args(urls)
        .output()
        .expect("curl (apt-get install curl)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|c| c.parse().unwrap_or(0))
        .collect()
}

/// The HTTP log lines among `lines`, as (server, status, termination state, request).
pub fn requests(lines: &[Vec<u8>]) -> Vec<(String, Option<u16>, String, String)> {
    lines
        .iter()
        .filter_map(|l| match parse_line(l).body {
            Body::Http(h) => Some((
                String::from_utf8_lossy(h.session.server).into_owned(),
                h.status,
                String::from_utf8_lossy(h.termination_state.as_bytes()).into_owned(),
                String::from_utf8_lossy(h.request.uri.unwrap_or(b"")).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

/// `global` logging to `log` and HTTP `defaults` with `timeout client` and `timeout server`
/// of `timeout`: the start of most test configs.
pub fn http_defaults(log: SocketAddr, timeout: &str) -> String {
    format!(
        "global
    log {log} local3
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client {timeout}
    timeout server {timeout}
"
    )
}

fn lab_config(front: u16, servers: &[SocketAddr], log: SocketAddr, extra: &str) -> String {
    // A later `timeout server` in the same `defaults` replaces the earlier one.
    let mut config = format!(
        "{}    option dontlognull
    retries 3
    timeout server 1s
    timeout check 1s
listen myweb
    bind 127.0.0.1:{front}
    option httpchk GET /index.html
    balance roundrobin
{extra}",
        http_defaults(log, "5s")
    );
    for (i, addr) in servers.iter().enumerate() {
        config.push_str(&format!(
            "    server inst{} {addr} check inter 200 fall 2 rise 2\n",
            i + 1
        ));
    }
    config
}

/// `halyard run` on the lab config with one in-process server `inst1`: what most tests here
/// start from. Fields drop in order: the balancer stops before its server.
struct OneServerLab {
    run: RunProcess,
    front: u16,
    log: LogCollector,
    backend: TestBackend,
    _dir: tempfile::TempDir,
}

impl OneServerLab {
    /// Starts it, with `extra` lines in the `listen` section.
    fn start(extra: &str) -> OneServerLab {
        let dir = tempfile::tempdir().unwrap();
        let backend = TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap());
        let log = LogCollector::start();
        let front = free_port();
        let run = RunProcess::start(
            dir.path(),
            &lab_config(front, &[backend.addr], log.addr, extra),
        );
        OneServerLab {
            run,
            front,
            log,
            backend,
            _dir: dir,
        }
    }
}

#[test]
fn requests_are_balanced_logged_through_the_built_in_listener_and_halog_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let backends = [
        TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap()),
        TestBackend::start("inst2", "127.0.0.1:0".parse().unwrap()),
    ];
    let log_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_addr: SocketAddr = format!("127.0.0.1:{log_port}").parse().unwrap();
    let front = free_port();
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    // The whole pipeline in one process: the balancer logs over UDP to its own listener.
    let config = format!(
        "{}log-forward syslog\n    dgram-bind {log_addr}\n    dir logs\n",
        lab_config(front, &addrs, log_addr, "")
    );
    let _run = RunProcess::start(dir.path(), &config);
    let codes = curl(&[format!("http://127.0.0.1:{front}/item/[1-100]")]);
    assert_eq!(codes, vec![200; 100]);
    let file = dir.path().join("logs/haproxy.log");
    let lines =
        crate::listen::wait_for_file_lines(&file, "100 requests", |l| requests(l).len() >= 100);
    let mut per_server: BTreeMap<String, usize> = BTreeMap::new();
    for (server, status, termination, _) in requests(&lines) {
        assert_eq!((status, termination.as_str()), (Some(200), "----"));
        *per_server.entry(server).or_default() += 1;
    }
    assert_eq!(
        per_server.into_iter().collect::<Vec<_>>(),
        [("inst1".to_owned(), 50), ("inst2".to_owned(), 50)]
    );
    // Every line writes back byte for byte with the log-line model.
    for line in &lines {
        assert_eq!(parse_line(line).to_bytes(), *line);
    }
    // One client connection's 100 requests reuse pooled server connections, not 100 new ones.
    for backend in &backends {
        let opened = backend.traffic_connections.load(Ordering::Relaxed);
        assert!(opened <= 2, "{opened} server connections for 50 requests");
    }
    // halog reads the listener's file as it reads rsyslog's, and counts the same.
    let halog = crate::halog::halog_servers(&file);
    assert_eq!(halog["myweb/inst1"][4], 50, "{halog:?}");
    assert_eq!(halog["myweb/inst2"][4], 50, "{halog:?}");
}

#[test]
fn a_killed_server_goes_down_within_inter_times_fall_and_comes_back_after_rise() {
    let dir = tempfile::tempdir().unwrap();
    let mut second = TestBackend::start("inst2", "127.0.0.1:0".parse().unwrap());
    let backends = [TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap())];
    let log = LogCollector::start();
    let front = free_port();
    let addrs = [backends[0].addr, second.addr];
    let _run = RunProcess::start(dir.path(), &lab_config(front, &addrs, log.addr, ""));
    let killed_at = Instant::now();
    second.stop();
    let is_event = |kind: &'static str| {
        move |lines: &[Vec<u8>]| {
            lines.iter().any(|l| {
                String::from_utf8_lossy(l).contains(&format!("Server myweb/inst2 is {kind}"))
            })
        }
    };
    log.wait_for("inst2 DOWN", is_event("DOWN"));
    // inter 200 ms x fall 2, plus the check in flight when it died.
    assert!(
        killed_at.elapsed() < Duration::from_millis(1500),
        "{:?}",
        killed_at.elapsed()
    );
    let codes = curl(&[format!("http://127.0.0.1:{front}/while-down/[1-10]")]);
    assert_eq!(codes, vec![200; 10]);
    let lines = log.wait_for("10 requests", |l| requests(l).len() >= 10);
    assert!(requests(&lines)
        .iter()
        .all(|(server, ..)| server == "inst1"));

    let _back = TestBackend::start("inst2", addrs[1]);
    let returned_at = Instant::now();
    log.wait_for("inst2 UP", is_event("UP"));
    assert!(returned_at.elapsed() < Duration::from_millis(1500));
    let down = log
        .lines()
        .into_iter()
        .find(|l| String::from_utf8_lossy(l).contains("is DOWN"))
        .unwrap();
    let parsed = parse_line(&down);
    assert_eq!(parsed.envelope.priority.unwrap().severity_name(), "alert");
    assert!(matches!(parsed.body, Body::ServerEvent(_)), "{parsed:?}");
}

#[test]
fn error_paths_answer_and_log_like_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let backend = TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap());
    // A port nobody listens on: connections are refused.
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = LogCollector::start();
    // A server that reads the request and closes without answering.
    let closer = StdTcpListener::bind("127.0.0.1:0").unwrap();
    let closer_addr = closer.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in closer.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 1024];
            let _ = std::io::Read::read(&mut stream, &mut buf);
        }
    });
    let (front, split) = (free_port(), free_port());
    let config = format!(
        "{}backend dead
    server gone {dead}
backend closing
    server rude {closer_addr}
backend empty
frontend split
    bind 127.0.0.1:{split}
    use_backend dead if {{ path_beg /dead }}
    use_backend empty if {{ path_beg /empty }}
    use_backend closing if {{ path_beg /close }}
    default_backend myweb
",
        lab_config(front, &[backend.addr], log.addr, "")
    );
    let _run = RunProcess::start(dir.path(), &config);
    let only =
        |status: u16| move |lines: &[Vec<u8>]| requests(lines).iter().any(|r| r.1 == Some(status));
    let find = |lines: &[Vec<u8>], status: u16| {
        let line = lines
            .iter()
            .find(|l| matches!(&parse_line(l).body, Body::Http(h) if h.status == Some(status)))
            .unwrap();
        String::from_utf8_lossy(line).into_owned()
    };

    // A slow server: 504 after `timeout server` (1 s), `sH--`, Tr -1.
    assert_eq!(
        curl(&[format!("http://127.0.0.1:{front}/sleep/1500")]),
        [504]
    );
    let line = find(&log.wait_for("a 504", only(504)), 504);
    assert!(
        line.contains(" myweb myweb/inst1 ") && line.contains("/-1/"),
        "{line}"
    );
    assert!(line.contains(" 504 198 - - sH-- "), "{line}");

    // Refused connections: 3 retries, then 503 `SC--` with Tc -1 and rc 3.
    assert_eq!(curl(&[format!("http://127.0.0.1:{split}/dead/x")]), [503]);
    let line = find(&log.wait_for("a 503", only(503)), 503);
    assert!(
        line.contains(" split dead/gone ") && line.contains("/0/-1/-1/"),
        "{line}"
    );
    assert!(
        line.contains(" 503 217 - - SC-- ") && line.contains("/3 0/0 "),
        "{line}"
    );

    // The server closes without a response: 502 `SH--`.
    assert_eq!(curl(&[format!("http://127.0.0.1:{split}/close")]), [502]);
    let line = find(&log.wait_for("a 502", only(502)), 502);
    assert!(
        line.contains(" split closing/rude ") && line.contains(" 502 209 - - SH-- "),
        "{line}"
    );

    // A request that is not HTTP: hyper answers 400, the line says `<BADREQ>` and `PR--`.
    let answer = raw_exchange(front, b"NOT HTTP AT ALL\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let line = log.wait_for_line("<BADREQ>");
    assert!(
        line.contains(" myweb myweb/<NOSRV> -1/-1/-1/-1/") && line.contains(" 400 "),
        "{line}"
    );
    assert!(line.contains(" PR-- "), "{line}");

    // Headers larger than the request buffer: 431, logged as `<BADREQ>` `PR--` with its status.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let answer = raw_exchange(front, huge.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let line = log.wait_for_line(" 431 ");
    assert!(
        line.contains("<BADREQ>") && line.contains(" PR-- "),
        "{line}"
    );

    // No server at all: `<NOSRV>`, Tw -1.
    assert_eq!(curl(&[format!("http://127.0.0.1:{split}/empty/x")]), [503]);
    let line = log.wait_for_line("empty/<NOSRV>");
    assert!(
        line.contains("/-1/-1/-1/") && line.contains(" SC-- "),
        "{line}"
    );
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let mut lab = OneServerLab::start("");
    let (front, log) = (lab.front, &lab.log);
    let url = format!("http://127.0.0.1:{front}/sleep/600");
    let request = std::thread::spawn(move || curl(&[url]));
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(lab.run.child.id() as i32, libc::SIGTERM) };
    assert_eq!(
        request.join().unwrap(),
        [200],
        "the request in flight completes"
    );
    let status = lab.run.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let lines = log.wait_for("its log line", |l| !requests(l).is_empty());
    assert_eq!(requests(&lines)[0].1, Some(200));
}

#[test]
fn forwardfor_adds_the_client_and_hop_by_hop_headers_stay_behind() {
    let lab = OneServerLab::start("    option forwardfor\n");
    let front = lab.front;
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-H",
            "Keep-Alive: timeout=5",
            "-H",
            "X-Kept: yes",
        ])
        .arg(format!("http://127.0.0.1:{front}/headers"))
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(seen.contains("x-forwarded-for: 127.0.0.1\n"), "{seen}");
    assert!(seen.contains("x-kept: yes\n"), "{seen}");
    assert!(
        !seen.contains("keep-alive:"),
        "a hop-by-hop header was forwarded: {seen}"
    );
}

/// Reads from `stream` until the peer closes (or 5 s pass): what arrived and when it ended.
fn read_until_closed(stream: &mut std::net::TcpStream) -> (String, Instant) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(stream, &mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        Instant::now(),
    )
}

#[test]
fn request_timeouts_answer_408_and_idle_keep_alive_closes_quietly() {
    let extra = "    timeout http-request 600ms\n    timeout http-keep-alive 300ms\n";
    let lab = OneServerLab::start(extra);
    let (front, log) = (lab.front, &lab.log);
    let connect = || std::net::TcpStream::connect(("127.0.0.1", front)).unwrap();

    // Headers that never end: HAProxy's 408 page after `timeout http-request`, then close.
    let started = Instant::now();
    let mut slow = connect();
    std::io::Write::write_all(&mut slow, b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (answer, ended) = read_until_closed(&mut slow);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Time-out\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("</body></html>\n"), "{answer}");
    let waited = ended - started;
    assert!(
        waited >= Duration::from_millis(550) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    let line = log.wait_for_line("<BADREQ>");
    assert!(
        line.contains(" myweb myweb/<NOSRV> -1/-1/-1/-1/") && line.contains(" 408 "),
        "{line}"
    );
    assert!(line.contains(" cR-- "), "{line}");
    let logged_bytes = answer.len() + 3;
    assert!(line.contains(&format!(" 408 {logged_bytes} ")), "{line}");

    // A request slower than both timeouts is served (they only count while waiting for a
    // request), then the idle connection is closed after `timeout http-keep-alive`, silently.
    let mut kept = connect();
    std::io::Write::write_all(&mut kept, b"GET /sleep/900 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    let (answer, ended) = read_until_closed(&mut kept);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(!answer.contains("408"), "{answer}");
    let open = ended - started;
    assert!(
        open >= Duration::from_millis(1150) && open < Duration::from_secs(4),
        "the idle connection was closed after {open:?}"
    );

    // A client that connects and sends nothing gets the 408 but, under `option dontlognull`,
    // no log line.
    let mut silent = connect();
    let (answer, _) = read_until_closed(&mut silent);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let lines = log.wait_for("the /sleep request", |l| {
        requests(l).iter().any(|r| r.3 == "/sleep/900")
    });
    let requests = requests(&lines);
    assert_eq!(
        requests.iter().filter(|r| r.1 == Some(408)).count(),
        1,
        "{requests:?}"
    );
    assert_eq!(requests.len(), 2, "{requests:?}");
}

#[test]
fn clients_that_leave_early_are_logged_ch_and_cd() {
    let dir = tempfile::tempdir().unwrap();
    let backend = TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap());
    // A server with an endless body: the head, then 64 KiB chunks until the peer goes away.
    let endless = StdTcpListener::bind("127.0.0.1:0").unwrap();
    let endless_addr = endless.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in endless.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut buf);
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\n";
                let chunk = vec![b'x'; 65536];
                let mut sent = std::io::Write::write_all(&mut stream, head);
                while sent.is_ok() {
                    sent = std::io::Write::write_all(&mut stream, &chunk);
                }
            });
        }
    });
    let log = LogCollector::start();
    let front = free_port();
    let extra = "    use_backend endless if { path_beg /endless }\n";
    let config = format!(
        "{}backend endless\n    server big {endless_addr}\n",
        lab_config(front, &[backend.addr], log.addr, extra)
    );
    let _run = RunProcess::start(dir.path(), &config);

    // Gone while the server thinks: `CH--`, no status, no response time.
    let mut waiting = std::net::TcpStream::connect(("127.0.0.1", front)).unwrap();
    std::io::Write::write_all(&mut waiting, b"GET /sleep/800 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(waiting);
    let line = log.wait_for_line(" CH-- ");
    assert!(
        line.contains(" myweb/inst1 ") && line.contains("/-1/") && line.contains(" -1 0 "),
        "{line}"
    );

    // Gone in the middle of the body: `CD--` with the status and the bytes sent so far.
    let mut reading = std::net::TcpStream::connect(("127.0.0.1", front)).unwrap();
    std::io::Write::write_all(&mut reading, b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = vec![0u8; 300_000];
    std::io::Read::read_exact(&mut reading, &mut got).unwrap();
    drop(reading);
    let line = log.wait_for_line(" CD-- ");
    let parsed = parse_line(line.as_bytes());
    let Body::Http(http) = parsed.body else {
        panic!("not an http line: {line}")
    };
    assert_eq!(http.session.server, b"big", "{line}");
    assert_eq!(http.status, Some(200), "{line}");
    assert!(
        http.bytes_read >= 300_000 && http.bytes_read < 1_000_000_000,
        "{line}"
    );
}

#[test]
fn websocket_upgrades_are_tunnelled_and_logged_when_they_close() {
    let lab = OneServerLab::start("");
    let (front, log) = (lab.front, &lab.log);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", front)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        std::io::Read::read_exact(&mut stream, &mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(
        head.contains("upgrade: websocket\r\n") && head.contains("connection: upgrade\r\n"),
        "{head}"
    );
    // Bytes flow both ways, in several exchanges over the same tunnel.
    let messages = [&b"hello"[..], b"binary \x00\xff frame", b"bye"];
    for message in messages {
        std::io::Write::write_all(&mut stream, message).unwrap();
        let mut echoed = vec![0u8; message.len()];
        std::io::Read::read_exact(&mut stream, &mut echoed).unwrap();
        assert_eq!(echoed, message);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        requests(&log.lines()).is_empty(),
        "the line waits for the session to end"
    );
    drop(stream);
    let line = log.wait_for_line(" 101 ");
    let parsed = parse_line(line.as_bytes());
    let Body::Http(http) = parsed.body else {
        panic!("not an http line: {line}")
    };
    assert_eq!(http.session.server, b"inst1", "{line}");
    assert_eq!(http.request.uri, Some(&b"/echo"[..]), "{line}");
    let echoed: usize = messages.iter().map(|m| m.len()).sum();
    assert_eq!(http.bytes_read, (head.len() + echoed) as u64, "{line}");
    assert!(
        http.timers.active.unwrap_or(0) >= 300,
        "Ta spans the session: {line}"
    );
}

#[test]
fn responses_without_a_body_end_normally_and_keep_their_server_connection() {
    let lab = OneServerLab::start("");
    let (front, log) = (lab.front, &lab.log);
    // Five HEAD requests on one client connection: hyper never polls their empty bodies.
    let out = Command::new("curl")
        .args(["-s", "-I", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{front}/x/[1-5]"))
        .output()
        .unwrap();
    let heads = String::from_utf8_lossy(&out.stdout);
    assert_eq!(heads.matches("HTTP/1.1 200").count(), 5, "{heads}");
    let lines = log.wait_for("5 lines", |l| requests(l).len() == 5);
    for (_, status, termination, _) in requests(&lines) {
        assert_eq!((status, termination.as_str()), (Some(200), "----"));
    }
    assert_eq!(
        lab.backend.traffic_connections.load(Ordering::Relaxed),
        1,
        "the server connection went back to the pool after each"
    );
}
