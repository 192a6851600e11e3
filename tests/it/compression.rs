//! `compression algo|type`: `halyard run` in front of a real server compresses what HAProxy
//! would (curl `--compressed` gets the original body back), leaves alone what HAProxy would
//! (no `Accept-Encoding`, another type, HEAD, a 404), streams a slow body compressed as it
//! comes, and logs the bytes it sent.

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use halyard::logline::{parse_line, Body};
use http_body_util::BodyExt;

use crate::run::{free_port, http_defaults, LogCollector, RunProcess};
use crate::test_backend::TestBackend;

/// `halyard run` with `compression algo gzip` and `extra` lines in front of `inst1`.
struct Lab {
    _run: RunProcess,
    front: u16,
    log: LogCollector,
    _backend: TestBackend,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(extra: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let backend = TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap());
        let log = LogCollector::start();
        let front = free_port();
        let config = format!(
            "{}listen web\n    bind 127.0.0.1:{front}\n    compression algo gzip\n{extra}    \
             server inst1 {}\n",
            http_defaults(log.addr, "5s"),
            backend.addr
        );
        let run = RunProcess::start(dir.path(), &config);
        Lab {
            _run: run,
            front,
            log,
            _backend: backend,
            _dir: dir,
        }
    }

    /// curl on `path` with `args`: the response head (lowercase) and the body as received.
    fn curl(&self, path: &str, args: &[&str]) -> (String, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "-D", "/dev/stderr"])
            .args(args)
            .arg(format!("http://127.0.0.1:{}{path}", self.front))
            .output()
            .expect("curl (apt-get install curl)");
        let head = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
        (head, out.stdout)
    }
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn gzip_when_asked_and_allowed_the_body_unchanged_otherwise() {
    let lab = Lab::start("");
    // curl decodes: the client gets the exact body back.
    let (head, body) = lab.curl("/hello?type=text/plain", &["--compressed"]);
    assert!(head.contains("\r\ncontent-encoding: gzip\r\n"), "{head}");
    assert!(head.contains("\r\nvary: accept-encoding\r\n"), "{head}");
    assert!(
        head.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{head}"
    );
    assert!(!head.contains("content-length"), "{head}");
    assert_eq!(body, b"inst1\n");
    // What went over the wire is gzip.
    let (_, raw) = lab.curl("/raw", &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(&raw[..2], b"\x1f\x8b");
    assert_eq!(gunzip(&raw), "inst1\n");

    let plain = |path: &str, args: &[&str]| {
        let (head, body) = lab.curl(path, args);
        assert!(
            !head.contains("content-encoding"),
            "{path} {args:?}: {head}"
        );
        (head, body)
    };
    assert_eq!(plain("/not-asked", &[]).1, b"inst1\n");
    assert_eq!(
        plain("/not-gzip", &["-H", "Accept-Encoding: br"]).1,
        b"inst1\n"
    );
    let (head, _) = plain("/head", &["-I", "-H", "Accept-Encoding: gzip"]);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let (head, body) = plain("/status/404", &["-H", "Accept-Encoding: gzip"]);
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert_eq!(body, b"inst1\n");
    plain("/refused", &["-H", "Accept-Encoding: gzip;q=0"]);

    // The log counts what was sent: the gzip body, not the original.
    let (_, big) = lab.curl("/download/1000000", &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(gunzip(&big).len(), 1_000_000);
    let line = lab.log.wait_for_line("/download/1000000");
    let Body::Http(logged) = parse_line(line.as_bytes()).body else {
        panic!("not an httplog line: {line}");
    };
    assert!(
        logged.bytes_read > big.len() as u64 && logged.bytes_read < big.len() as u64 + 300,
        "{} bytes of gzip body sent, {line}",
        big.len()
    );
}

#[test]
fn compression_type_limits_what_is_compressed() {
    let lab = Lab::start("    compression type text/plain application/json\n");
    let encoding = |path: &str| {
        let (head, body) = lab.curl(path, &["--compressed"]);
        assert_eq!(body, b"inst1\n", "{path}");
        head.contains("content-encoding: gzip")
    };
    assert!(encoding("/a?type=text/plain;%20charset=utf-8"));
    assert!(encoding("/b?type=Application/JSON"));
    assert!(!encoding("/c?type=text/html"));
    assert!(!encoding("/d?type=image/png"));
    assert!(!encoding("/e"), "no Content-Type: not a listed type");
}

#[test]
fn a_slow_stream_reaches_the_client_compressed_as_it_is_made() {
    let lab = Lab::start("");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut send = crate::run::http1_client(lab.front).await;
        let request = hyper::Request::get("/drip/5")
            .header("host", "x")
            .header("accept-encoding", "gzip")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let started = Instant::now();
        let response = send.send_request(request).await.unwrap();
        assert_eq!(response.headers()["content-encoding"], "gzip");
        let mut body = response.into_body();
        let mut wire = Vec::new();
        let mut first_line_at = None;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                wire.extend_from_slice(&data);
            }
            // Each compressed frame is flushed: what arrived decodes on its own.
            let mut so_far = Vec::new();
            let _ = flate2::read::GzDecoder::new(&wire[..]).read_to_end(&mut so_far);
            if first_line_at.is_none() && so_far.starts_with(b"line 0\n") {
                first_line_at = Some(started.elapsed());
            }
        }
        let total = started.elapsed();
        assert_eq!(gunzip(&wire), "line 0\nline 1\nline 2\nline 3\nline 4\n");
        let first = first_line_at.expect("line 0 decoded");
        assert!(
            total >= Duration::from_millis(800) && first < Duration::from_millis(500),
            "first line after {first:?}, whole body after {total:?}"
        );
    });
}
