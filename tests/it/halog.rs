//! halyard and Debian's halog must agree on the same file: per-server request counts and
//! status classes from `halyard parse --format jsonl` against `halog -H -srv`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{fixtures_dir, halyard};

#[path = "../../benches/corpus.rs"]
pub mod corpus;

/// halog from Debian's `haproxy` package; the test fails with how to get it when missing.
pub fn halog() -> PathBuf {
    ["/usr/sbin/halog", "/usr/bin/halog"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("halog not found: install it with `apt-get install haproxy` (.ci/run does)")
}

/// haproxy from Debian's `haproxy` package; the test fails with how to get it when missing.
pub fn haproxy() -> PathBuf {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("haproxy not found: install it with `apt-get install haproxy` (.ci/run does)")
}

/// What halog prints for `args` with `file` on stdin.
fn halog_output(args: &[&str], file: &Path) -> String {
    let out = Command::new(halog())
        .args(args)
        .stdin(std::fs::File::open(file).unwrap())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// `backend/server` -> [2xx, 3xx, 4xx, 5xx, total] per halog.
pub fn halog_servers(file: &Path) -> BTreeMap<String, [u64; 5]> {
    halog_output(&["-H", "-srv"], file)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            // srv_name 1xx 2xx 3xx 4xx 5xx other tot_req req_ok pct_ok avg_ct avg_rt
            let f: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (f[0].to_owned(), [n(2), n(3), n(4), n(5), n(7)])
        })
        .collect()
}

/// Status code -> requests per `halog -H -st`.
pub fn halog_statuses(file: &Path) -> BTreeMap<i64, u64> {
    halog_output(&["-H", "-st"], file)
        .lines()
        .filter_map(|l| {
            let (code, count) = l.split_once(' ')?;
            Some((code.parse().unwrap(), count.trim().parse().unwrap()))
        })
        .collect()
}

/// Writes `lines` well-formed corpus lines (seed 7) to `file`.
pub fn write_corpus(file: &Path, lines: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
    // halog counts a line cut after the server name as a request; halyard calls it malformed.
    // So this file holds only well-formed lines (of every kind).
    let mut gen = corpus::CorpusGen::new(7).well_formed();
    let mut buf = Vec::new();
    for _ in 0..lines {
        buf.clear();
        gen.write_line(&mut buf);
        out.write_all(&buf).unwrap();
    }
    out.flush().unwrap();
}

/// The same figures from halyard's JSON lines.
fn halyard_servers(file: &Path) -> BTreeMap<String, [u64; 5]> {
    let out = halyard()
        .args(["parse", "--format", "jsonl"])
        .arg(file)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut servers = BTreeMap::<String, [u64; 5]>::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["kind"] != "http" {
            continue;
        }
        let server = v["server"].as_str().unwrap_or("<NOSRV>");
        let key = format!("{}/{}", v["backend"].as_str().unwrap(), server);
        let counts = servers.entry(key).or_default();
        if let Some(class @ 2..=5) = v["status"].as_u64().map(|s| s / 100) {
            counts[class as usize - 2] += 1;
        }
        counts[4] += 1;
    }
    servers
}

#[test]
fn per_server_counts_match_halog_on_rsyslog_file_captured_from_haproxy() {
    let file = fixtures_dir().join("haproxy-2.6/rsyslog-traditional.log");
    let ours = halyard_servers(&file);
    assert!(ours.values().map(|c| c[4]).sum::<u64>() >= 5);
    assert_eq!(ours, halog_servers(&file));
}

#[test]
fn per_server_counts_match_halog_on_generated_mixed_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.log");
    write_corpus(&file, 50_000);
    let ours = halyard_servers(&file);
    assert!(ours.len() >= 9, "{ours:?}");
    assert!(ours.values().map(|c| c[4]).sum::<u64>() > 35_000);
    assert_eq!(ours, halog_servers(&file));
}
