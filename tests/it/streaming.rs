//! Bodies stream through the balancer: a gigabyte down and up (chunked), and a gigabyte
//! compressed on the fly, with the balancer's memory sampled all along, never near the size of
//! what passes through.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use halyard::logline::{parse_line, Body};

use crate::run::{free_port, http_defaults, LogCollector, RunProcess};
use crate::test_backend::TestBackend;

const GIB: u64 = 1 << 30;

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Samples `pid`'s resident memory every 20 ms until dropped; `peak()` is the highest seen.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let (peak, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(bytes) = rss(pid) {
                    p.fetch_max(bytes, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_gigabyte_streams_both_ways_without_sitting_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let backend = TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap());
    let log = LogCollector::start();
    let front = free_port();
    let config = format!(
        "{}listen big\n    bind 127.0.0.1:{front}\n    server inst1 {}\n",
        http_defaults(log.addr, "60s"),
        backend.addr
    );
    let run = RunProcess::start(dir.path(), &config);
    let idle = rss(run.pid()).unwrap();
    let sampler = RssSampler::start(run.pid());

    let download = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
        ])
        .args(["--max-time", "300"])
        .arg(format!("http://127.0.0.1:{front}/download/{GIB}"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&download.stdout),
        format!("200 {GIB}")
    );
    // `curl -T -` reads stdin to its end, so it sends the body chunked.
    let upload = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {GIB} /dev/zero | curl -s --max-time 300 -T - \
             http://127.0.0.1:{front}/upload"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&upload.stdout), GIB.to_string());

    let peak = sampler.peak();
    assert!(peak > 0, "no memory sample was taken");
    assert!(
        peak < idle + 64 * (1 << 20),
        "memory grew from {idle} to {peak} bytes while 2 GiB went through"
    );
    let lines = log.wait_for("two lines", |lines| lines.len() >= 2);
    let http: Vec<(String, u64)> = lines
        .iter()
        .filter_map(|l| match parse_line(l).body {
            Body::Http(h) => Some((
                String::from_utf8_lossy(h.request.method).into_owned(),
                h.bytes_read,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(http.len(), 2, "{http:?}");
    assert!(http[0].0 == "GET" && http[0].1 > GIB, "{http:?}");
    assert_eq!(http[1].0, "PUT", "{http:?}");
}

#[test]
fn a_gigabyte_compressed_on_the_fly_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let backend = TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap());
    let log = LogCollector::start();
    let front = free_port();
    let config = format!(
        "{}listen big\n    bind 127.0.0.1:{front}\n    compression algo gzip\n    \
         server inst1 {}\n",
        http_defaults(log.addr, "60s"),
        backend.addr
    );
    let run = RunProcess::start(dir.path(), &config);
    let idle = rss(run.pid()).unwrap();
    let sampler = RssSampler::start(run.pid());
    // The gzip stream, decoded by gzip(1), is exactly the gigabyte of zeros the server sent.
    let download = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; curl -s --max-time 600 -H 'Accept-Encoding: gzip' \
             http://127.0.0.1:{front}/download/{GIB} | gzip -dc | cmp - <(head -c {GIB} /dev/zero) \
             && echo same"
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&download.stdout),
        "same\n",
        "{}",
        String::from_utf8_lossy(&download.stderr)
    );
    let peak = sampler.peak();
    assert!(peak > 0, "no memory sample was taken");
    assert!(
        peak < idle + 64 * (1 << 20),
        "memory grew from {idle} to {peak} bytes while 1 GiB was compressed"
    );
    let line = log.wait_for_line("/download/");
    let Body::Http(logged) = parse_line(line.as_bytes()).body else {
        panic!("not an httplog line: {line}");
    };
    // Zeros compress about a thousand to one: the log counts the compressed bytes sent.
    assert!(logged.bytes_read < GIB / 100, "{line}");
}
