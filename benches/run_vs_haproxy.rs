//! `halyard run` against Debian's HAProxy 2.6 in front of the same nginx backends, loaded by
//! `wrk` in the same run: requests per second and p99 latency, and their ratios.
//!
//! `cargo bench --bench run_vs_haproxy`. Needs `nginx` (Debian's `nginx-light`), `wrk` and
//! `haproxy` (`apt-get install nginx-light wrk haproxy`). Env: `HALYARD_RUN_SECONDS` (default
//! 10) per measurement, `HALYARD_RUN_ROUNDS` (default 2; the best of each is kept).
//!
//! Setup, the same for both proxies: one nginx (`worker_processes 1`, `access_log off`)
//! answering a 3-byte body on two ports (the two servers of the lab config), the proxy with
//! `balance roundrobin`, keep-alive both sides, `option httplog` sent as UDP syslog to a socket
//! this benchmark drains (logging on, as in production), and `wrk -t1 -c32 --latency`. nginx
//! alone is measured too, as the ceiling. Targets: halyard >= 1.0x HAProxy's requests/s and
//! p99 <= 1.5x HAProxy's; exits 1 when missed.

mod anchor;
mod corpus;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anchor::env_number;

const NGINX: &str = "/usr/sbin/nginx";
const HAPROXY: &str = "/usr/sbin/haproxy";
const WRK: &str = "/usr/bin/wrk";

/// One wrk measurement.
#[derive(Debug, Clone, Copy)]
struct Load {
    requests_per_sec: f64,
    p99_ms: f64,
    errors: u64,
}

fn main() -> ExitCode {
    for tool in [NGINX, HAPROXY, WRK] {
        if !Path::new(tool).exists() {
            eprintln!("{tool} missing: apt-get install nginx-light wrk haproxy");
            return ExitCode::from(2);
        }
    }
    let seconds: u64 = env_number("HALYARD_RUN_SECONDS", 10);
    let rounds: usize = env_number("HALYARD_RUN_ROUNDS", 2);
    let dir = tempfile_dir();
    let (web1, web2) = (free_port(), free_port());
    let _nginx = start_nginx(&dir, web1, web2);
    let sink = LogSink::start();
    let (haproxy_port, halyard_port) = (free_port(), free_port());
    let servers = [web1, web2];
    let _haproxy = start_proxy(
        Command::new(HAPROXY).args(["-db", "-f"]).arg(write_config(
            &dir,
            "haproxy.cfg",
            haproxy_port,
            &servers,
            sink.addr,
        )),
        haproxy_port,
    );
    let _halyard = start_proxy(
        Command::new(env!("CARGO_BIN_EXE_halyard"))
            .args(["run", "-f"])
            .arg(write_config(
                &dir,
                "halyard.cfg",
                halyard_port,
                &servers,
                sink.addr,
            )),
        halyard_port,
    );
    let url = |port: u16| format!("http://127.0.0.1:{port}/");
    // Warm up every path once (connections, pools, caches).
    for port in [web1, haproxy_port, halyard_port] {
        wrk(&url(port), 2);
    }
    let mut best: [Option<Load>; 3] = [None; 3];
    let names = ["nginx direct", "haproxy 2.6", "halyard"];
    for round in 0..rounds {
        // Alternate the order of the two proxies between rounds.
        let order: [usize; 3] = if round % 2 == 0 { [0, 1, 2] } else { [0, 2, 1] };
        for which in order {
            let port = [web1, haproxy_port, halyard_port][which];
            let load = wrk(&url(port), seconds);
            eprintln!(
                "round {round}: {:<13} {:>9.0} req/s  p99 {:>6.2} ms  errors {}",
                names[which], load.requests_per_sec, load.p99_ms, load.errors
            );
            let slot = &mut best[which];
            if slot.is_none_or(|b| load.requests_per_sec > b.requests_per_sec) {
                *slot = Some(load);
            }
        }
    }
    let logged = sink.received.load(Ordering::Relaxed);
    println!("\nwrk -t1 -c32 -d{seconds}s, best of {rounds}; log datagrams received: {logged}");
    println!("{:<14} {:>10} {:>9}", "", "req/s", "p99 ms");
    for (name, load) in names.iter().zip(&best) {
        if let Some(l) = load {
            println!("{name:<14} {:>10.0} {:>9.2}", l.requests_per_sec, l.p99_ms);
        }
    }
    // Returned, not `process::exit`ed: the guards must drop to stop nginx and both proxies.
    let (Some(h), Some(y)) = (best[1], best[2]) else {
        return ExitCode::from(2);
    };
    let throughput = y.requests_per_sec / h.requests_per_sec;
    let latency = y.p99_ms / h.p99_ms;
    println!("halyard / haproxy: {throughput:.2}x requests/s (target >= 1.0), {latency:.2}x p99 (target <= 1.5)");
    if throughput < 1.0 || latency > 1.5 || y.errors > 0 {
        println!("target missed");
        return ExitCode::from(1);
    }
    println!("target met");
    ExitCode::SUCCESS
}

/// Runs wrk against `url` for `seconds` and reads its summary.
fn wrk(url: &str, seconds: u64) -> Load {
    let out = Command::new(WRK)
        .args(["-t1", "-c32", &format!("-d{seconds}s"), "--latency", url])
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let number_after = |label: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(parse_wrk_number)
    };
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map_or(0, |l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        });
    Load {
        requests_per_sec: number_after("Requests/sec:").unwrap_or(0.0),
        p99_ms: number_after("99%").unwrap_or(f64::INFINITY),
        errors,
    }
}

/// wrk's numbers: `12345.67`, or latencies like `850.00us`, `1.23ms`, `2.00s` (in ms).
fn parse_wrk_number(word: &str) -> Option<f64> {
    for (unit, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] {
        if let Some(n) = word.strip_suffix(unit) {
            return n.parse::<f64>().ok().map(|v| v * scale);
        }
    }
    word.parse().ok()
}

/// The same lab-style config for both proxies.
fn write_config(dir: &Path, name: &str, port: u16, servers: &[u16], log: SocketAddr) -> PathBuf {
    let mut text = format!(
        "global\n    log {log} local3\n    maxconn 4000\n\
         defaults\n    mode http\n    log global\n    option httplog\n    option dontlognull\n\
         \x20   retries 3\n    timeout connect 5s\n    timeout client 1m\n    timeout server 1m\n\
         \x20   timeout http-keep-alive 5s\n    maxconn 3000\n\
         listen bench\n    bind 127.0.0.1:{port}\n    balance roundrobin\n"
    );
    for (i, server) in servers.iter().enumerate() {
        text.push_str(&format!("    server inst{} 127.0.0.1:{server}\n", i + 1));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// nginx with one worker answering `ok\n` on two ports.
fn start_nginx(dir: &Path, a: u16, b: u16) -> Guard {
    let conf = dir.join("nginx.conf");
    let text = format!(
        "worker_processes 1;\ndaemon off;\npid {pid};\nerror_log {err};\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; keepalive_requests 1000000;\n\
         server {{ listen 127.0.0.1:{a}; listen 127.0.0.1:{b}; location / {{ return 200 \"ok\\n\"; }} }} }}\n",
        pid = dir.join("nginx.pid").display(),
        err = dir.join("nginx.err").display(),
    );
    std::fs::write(&conf, text).expect("write nginx.conf");
    let child = Command::new(NGINX)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    wait_for_port(a);
    Guard(child)
}

fn start_proxy(cmd: &mut Command, port: u16) -> Guard {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start proxy");
    wait_for_port(port);
    Guard(child)
}

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("halyard-run-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create bench dir");
    dir
}

/// A UDP socket that reads and counts the log datagrams both proxies send.
struct LogSink {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
}

impl LogSink {
    fn start() -> LogSink {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind log sink");
        let addr = socket.local_addr().expect("sink address");
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while socket.recv(&mut buf).is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        LogSink { addr, received }
    }
}
