//! Interoperability: Debian's HAProxy, with `log 127.0.0.1:PORT local3`, sends its request
//! logs to `halyard listen`; every request HAProxy served is in the file, and halog reads it.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use halyard::logline::{parse_line, Body};

use crate::halog::{halog, halog_servers, haproxy};
use crate::listen::{file_lines, ListenProcess};

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy in the foreground; killed when dropped.
struct HaproxyProcess(Child);

impl Drop for HaproxyProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lab setup on loopback: a frontend balancing over two servers, each a frontend of the
/// same HAProxy answering with its own name (`http-request return`), which do not log.
fn start_haproxy(dir: &Path, log_port: u16, front: u16) -> HaproxyProcess {
    let (web1, web2) = (free_tcp_port(), free_tcp_port());
    let config = format!(
        "global
    log 127.0.0.1:{log_port} local3
defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{front}
    default_backend be
backend be
    balance roundrobin
    server inst1 127.0.0.1:{web1}
    server inst2 127.0.0.1:{web2}
frontend web1
    bind 127.0.0.1:{web1}
    no log
    http-request return status 200 content-type text/plain string inst1
frontend web2
    bind 127.0.0.1:{web2}
    no log
    http-request return status 200 content-type text/plain string inst2
"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(haproxy())
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = HaproxyProcess(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", front)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    process
}

#[test]
fn haproxy_logs_every_request_to_halyard_listen_and_halog_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let log_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listener = ListenProcess::start(&logs, &["--udp", &format!("127.0.0.1:{log_port}")]);
    let front = free_tcp_port();
    let haproxy = start_haproxy(dir.path(), log_port, front);

    const REQUESTS: usize = 200;
    let curl = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}\\n"])
        .arg(format!("http://127.0.0.1:{front}/item/[1-{REQUESTS}]"))
        .output()
        .expect("curl (apt-get install curl)");
    let codes = String::from_utf8_lossy(&curl.stdout);
    assert_eq!(codes.lines().filter(|c| *c == "200").count(), REQUESTS);

    // HAProxy logs a request when it ends; wait until all of them are in the file.
    let file = logs.join("haproxy.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let requests = |lines: &[Vec<u8>]| {
        lines
            .iter()
            .filter(|l| matches!(&parse_line(l).body, Body::Http(h) if h.status == Some(200)))
            .count()
    };
    while requests(&file_lines(&file)) < REQUESTS {
        assert!(Instant::now() < deadline, "not every request was logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(haproxy);
    let (code, counters) = listener.stop();
    assert_eq!(code, Some(0));
    assert_eq!(counters["written"], counters["received"], "{counters:?}");

    let lines = file_lines(&file);
    let mut uris: Vec<String> = Vec::new();
    for line in &lines {
        let parsed = parse_line(line);
        assert_eq!(parsed.envelope.hostname, Some(&b"127.0.0.1"[..]));
        assert_eq!(parsed.envelope.tag, Some(&b"haproxy"[..]));
        // A client closing a kept-alive connection can show as a `<BADREQ>` line: logged,
        // but not one of the requests sent.
        if let Body::Http(http) = &parsed.body {
            if let Some(uri) = http.request.uri {
                uris.push(String::from_utf8_lossy(uri).into_owned());
            }
        }
    }
    let want: Vec<String> = (1..=REQUESTS).map(|i| format!("/item/{i}")).collect();
    uris.sort_by_key(|u| u[6..].parse::<usize>().unwrap_or(0));
    assert_eq!(uris, want, "each request exactly once");

    assert!(halog().exists());
    let servers = halog_servers(&file);
    let per_server: Vec<(&str, u64)> = servers
        .iter()
        .filter(|(name, _)| name.starts_with("be/"))
        .map(|(name, counts)| (name.as_str(), counts[4]))
        .collect();
    assert_eq!(
        per_server,
        [
            ("be/inst1", REQUESTS as u64 / 2),
            ("be/inst2", REQUESTS as u64 / 2)
        ]
    );
}
