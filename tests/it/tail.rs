//! `halyard tail` as a user runs it: every line exactly once and in order through 50
//! rotations of three kinds, each filter operator against the real fixture lines (checked
//! against `halyard parse`'s records of the same lines), the caret under a bad expression,
//! `-n` from a `.gz`, several files, a live UDP stream, and a closed pipe.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{fixtures_dir, halyard};

/// The lines of a running `halyard tail`, collected as they come.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicU64>,
}

impl Running {
    fn spawn(args: &[&str]) -> Running {
        let mut child = halyard()
            .arg("tail")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU64::new(0));
        let (into, counted) = (lines.clone(), count.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                into.lock().unwrap().push(line);
                counted.fetch_add(1, Ordering::Release);
            }
        });
        Running {
            child,
            lines,
            count,
        }
    }

    /// Waits (up to a minute: the machine may be loaded) until `n` lines were printed.
    fn wait_for(&self, n: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.count.load(Ordering::Acquire) < n {
            assert!(
                Instant::now() < deadline,
                "{what}: {} lines printed, waited for {n}",
                self.count.load(Ordering::Acquire)
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

const LINES: u64 = 200_000;
const ROTATIONS: u64 = 50;

/// How the file is rotated, in turn.
#[derive(Debug, Clone, Copy)]
enum Rotation {
    /// `mv log log.N`, then a new `log` (logrotate's default, with the writer reopening).
    RenameCreate,
    /// logrotate's copytruncate: copy `log` to `log.N`, then truncate `log` in place while
    /// the writer keeps its descriptor (O_APPEND, so its next line lands at offset 0).
    CopyTruncate,
    /// `rm log`, a few lines more into the deleted file, then a new `log`.
    DeleteRecreate,
}

/// The writer of the torture test: numbered lines, one `write` each, into a file it rotates.
struct Writer {
    path: PathBuf,
    file: std::fs::File,
    written: u64,
    /// The first line of the file now under the name.
    generation_start: u64,
}

impl Writer {
    fn open(path: &Path) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    }

    fn write_line(&mut self) {
        let line = format!("seq={:07} {:x<60}\n", self.written, "");
        self.file.write_all(line.as_bytes()).unwrap();
        self.written += 1;
    }

    fn rotate(&mut self, how: Rotation, n: u64, tail: &Running) {
        // A file rotated away before tail ever opened it is not reachable by its name (the
        // same is true of `tail -F`): tail must have shown a line of this one first.
        tail.wait_for(self.generation_start + 1, "before rotating");
        let rotated = self.path.with_extension(format!("log.{n}"));
        match how {
            Rotation::RenameCreate => {
                std::fs::rename(&self.path, &rotated).unwrap();
                self.file = Writer::open(&self.path);
            }
            Rotation::CopyTruncate => {
                // Whatever is written after tail's last read and before the truncation is
                // only in the copy, and whatever is written between the copy and the
                // truncation is nowhere: no reader of `log` can see those lines. "Exactly
                // once" is only defined when the writer is quiet across copy+truncate and
                // tail has read everything before it, so the test makes it so. What remains
                // to test is the hard part: tail notices the truncation even though the
                // writer refills the file at once, past where tail had read, and starts
                // again at offset 0.
                tail.wait_for(self.written, "before copytruncate");
                std::fs::copy(&self.path, &rotated).unwrap();
                Writer::open(&self.path).set_len(0).unwrap();
            }
            Rotation::DeleteRecreate => {
                std::fs::remove_file(&self.path).unwrap();
                // Tail still holds the deleted file open: these must come out too.
                for _ in 0..10 {
                    self.write_line();
                }
                self.file = Writer::open(&self.path);
            }
        }
        self.generation_start = self.written;
    }
}

#[test]
fn follows_by_name_through_50_rotations_every_line_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.log");
    // The file does not exist yet when tail starts.
    let tail = Running::spawn(&["-F", "-n", "+1", "--format", "raw", path.to_str().unwrap()]);
    let mut writer = Writer {
        file: Writer::open(&path),
        path: path.clone(),
        written: 0,
        generation_start: 0,
    };
    let started = Instant::now();
    let per_generation = LINES / (ROTATIONS + 1);
    let kinds = [
        Rotation::RenameCreate,
        Rotation::CopyTruncate,
        Rotation::DeleteRecreate,
    ];
    let mut rotations = 0;
    while writer.written < LINES {
        writer.write_line();
        if rotations < ROTATIONS && writer.written % per_generation == 0 {
            writer.rotate(kinds[(rotations % 3) as usize], rotations, &tail);
            rotations += 1;
        }
    }
    assert_eq!(rotations, ROTATIONS);
    tail.wait_for(LINES, "after the last line");
    // Anything extra (a line twice) would come right after the last one.
    std::thread::sleep(Duration::from_millis(300));
    let lines = tail.stop();
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| {
            l.strip_prefix("seq=")
                .and_then(|rest| rest.get(..7))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a numbered line: {l:?}"))
        })
        .collect();
    let first_wrong = seqs.iter().enumerate().find(|(i, &s)| s != *i as u64);
    assert!(first_wrong.is_none(), "line {first_wrong:?} out of place");
    assert_eq!(seqs.len() as u64, LINES);
    eprintln!(
        "{LINES} lines through {ROTATIONS} rotations in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Every fixture file of HAProxy 2.6 lines, and the malformed ones.
fn fixture_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(fixtures_dir().join("haproxy-2.6"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".log"))
        .collect();
    files.sort();
    files.push(fixtures_dir().join("malformed.log").display().to_string());
    files
}

fn json_lines(output: &[u8]) -> Vec<Value> {
    output
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// `(file, line)` of each record.
fn places(records: &[Value]) -> Vec<(String, u64)> {
    records
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_owned(),
                r["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn tail_jsonl(filter: &str, files: &[String]) -> (Vec<Value>, String) {
    let out = halyard()
        .args(["tail", "-n", "+1", "--format", "jsonl", "--filter", filter])
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{filter}: {out:?}");
    (
        json_lines(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_filter_operator_keeps_exactly_the_lines_whose_fields_match() {
    let files = fixture_files();
    let parsed = halyard()
        .args(["parse", "--format", "jsonl"])
        .args(&files)
        .output()
        .unwrap();
    let all = json_lines(&parsed.stdout);
    let num = |r: &Value, k: &str| r[k].as_u64();
    let text = |r: &Value, k: &str| r[k].as_str().map(str::to_owned);
    type Predicate = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(&str, Predicate)> = vec![
        (
            "status>=500",
            Box::new(move |r| num(r, "status").is_some_and(|s| s >= 500)),
        ),
        (
            "status=5xx",
            Box::new(move |r| num(r, "status").is_some_and(|s| s / 100 == 5)),
        ),
        (
            "status!=200",
            Box::new(move |r| num(r, "status").is_some_and(|s| s != 200)),
        ),
        (
            "status<300",
            Box::new(move |r| num(r, "status").is_some_and(|s| s < 300)),
        ),
        (
            "Ta>1000",
            Box::new(move |r| num(r, "Ta").is_some_and(|t| t > 1000)),
        ),
        (
            "Tt<=1",
            Box::new(move |r| num(r, "Tt").is_some_and(|t| t <= 1)),
        ),
        (
            "server=app1",
            Box::new(move |r| text(r, "server").as_deref() == Some("app1")),
        ),
        (
            "backend~^be_",
            Box::new(move |r| text(r, "backend").is_some_and(|b| b.starts_with("be_"))),
        ),
        (
            "uri~/(sleep|status)/",
            Box::new(move |r| {
                text(r, "uri").is_some_and(|u| u.contains("/sleep/") || u.contains("/status/"))
            }),
        ),
        (
            "uri!~^/index",
            Box::new(move |r| text(r, "uri").is_some_and(|u| !u.starts_with("/index"))),
        ),
        (
            "tsc=sH",
            Box::new(move |r| text(r, "termination_state").is_some_and(|t| t.starts_with("sH"))),
        ),
        (
            "client=127.0.0.0/8",
            // An IPv4-mapped IPv6 address counts as its IPv4 address.
            Box::new(move |r| {
                text(r, "client_ip")
                    .is_some_and(|c| c.trim_start_matches("::ffff:").starts_with("127."))
            }),
        ),
        (
            "kind=server_event",
            Box::new(move |r| r["kind"] == "server_event"),
        ),
        (
            "method=POST",
            Box::new(move |r| text(r, "method").as_deref() == Some("POST")),
        ),
        (
            "event=down",
            Box::new(move |r| r["kind"] == "server_event" && r["event"] == "down"),
        ),
        (
            "(kind=tcp or status=404) and not server=app1",
            Box::new(move |r| {
                (r["kind"] == "tcp" || num(r, "status") == Some(404))
                    && text(r, "server").as_deref() != Some("app1")
            }),
        ),
    ];
    let malformed = all.iter().filter(|r| r["kind"] == "other").count();
    assert!(malformed > 0, "the fixtures hold lines that are not logs");
    for (expr, keep) in cases {
        let expected: Vec<&Value> = all
            .iter()
            .filter(|r| r["kind"] != "other" && keep(r))
            .collect();
        assert!(
            !expected.is_empty(),
            "{expr}: the fixtures have no such line"
        );
        let (got, stderr) = tail_jsonl(expr, &files);
        let expected: Vec<Value> = expected.into_iter().cloned().collect();
        // Files are read side by side, so only the order within each file is kept.
        let (mut got, mut expected) = (places(&got), places(&expected));
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{expr}");
        assert!(
            stderr.contains(&format!("{malformed} lines were not HAProxy logs")),
            "{expr}: {stderr}"
        );
    }
}

#[test]
fn a_bad_expression_is_shown_with_a_caret_and_exits_2() {
    let out = halyard()
        .args(["tail", "--filter", "status>=500 and Ta>fast", "x.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let shown = lines
        .iter()
        .position(|l| l.trim() == "status>=500 and Ta>fast")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(stderr.contains("expected a number for 'Ta'"), "{stderr}");
    let expr_column = lines[shown].find("status").unwrap();
    assert_eq!(
        lines[shown + 1].find('^'),
        Some(expr_column + "status>=500 and Ta>".len()),
        "{stderr}"
    );
}

#[test]
fn last_lines_of_a_gzip_and_of_several_files_each_named() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures_dir().join("haproxy-2.6/httplog.log");
    let text = std::fs::read(&source).unwrap();
    let gz = dir.path().join("haproxy.log.2.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&text).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let plain = dir.path().join("haproxy.log");
    std::fs::copy(&source, &plain).unwrap();
    let out = halyard()
        .args(["tail", "-n", "3", "--format", "raw"])
        .args([&gz, &plain])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let last3: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .rev()
        .take(3)
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    for file in [&gz, &plain] {
        let shown: Vec<&str> = got
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{}: ", file.display())))
            .collect();
        assert_eq!(shown, last3, "{}", file.display());
    }
}

#[test]
fn listens_to_a_live_udp_stream() {
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let tail = Running::spawn(&[
        "--listen",
        &format!("udp@{addr}"),
        "--format",
        "jsonl",
        "--filter",
        "status=5xx",
    ]);
    let lines = crate::fixture_lines("haproxy-2.6/httplog.log");
    let errors = lines
        .iter()
        .filter(|l| {
            let parsed = halyard::logline::parse_line(l);
            matches!(&parsed.body, halyard::logline::Body::Http(h) if h.status.is_some_and(|s| s >= 500))
        })
        .count() as u64;
    assert!(errors > 0);
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // The socket may not be bound yet: send until the first error line is through.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tail.count.load(Ordering::Acquire) == 0 {
        assert!(Instant::now() < deadline, "nothing received");
        for line in &lines {
            // Refused while tail is not bound yet.
            let _ = sender.send_to(line, &addr);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let a round in flight settle, then send one more.
    std::thread::sleep(Duration::from_millis(300));
    let before = tail.count.load(Ordering::Acquire);
    for line in &lines {
        sender.send_to(line, &addr).unwrap();
    }
    tail.wait_for(before + errors, "the last round");
    let records: Vec<Value> = tail
        .stop()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.iter().all(|r| r["status"].as_u64().unwrap() >= 500));
    assert!(records.iter().all(|r| r["file"].is_null()));
}

#[test]
fn a_closed_pipe_ends_tail_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let line = crate::fixture_lines("haproxy-2.6/httplog.log").remove(0);
    let mut text = Vec::new();
    for _ in 0..200_000 {
        text.extend_from_slice(&line);
        text.push(b'\n');
    }
    std::fs::write(&path, text).unwrap();
    let mut child = halyard()
        .args(["tail", "-n", "+1"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
