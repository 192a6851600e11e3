//! `halyard parse` as a user runs it: formats, inputs, exit codes, pipes.

use std::io::{Read, Write};
use std::process::Stdio;

use halyard::logline::RECORD_COLUMNS;

use crate::{fixture_lines, fixtures_dir, halyard};

fn jsonl(args: &[&str]) -> Vec<serde_json::Value> {
    let out = halyard().arg("parse").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn jsonl_has_one_object_per_line_with_every_column() {
    let path = fixtures_dir().join("haproxy-2.6/httplog.log");
    let records = jsonl(&[path.to_str().unwrap()]);
    assert_eq!(
        records.len(),
        fixture_lines("haproxy-2.6/httplog.log").len()
    );
    for (n, r) in records.iter().enumerate() {
        assert_eq!(r["line"], n as u64 + 1);
        let keys = r.as_object().unwrap();
        assert_eq!(keys.len(), RECORD_COLUMNS.len());
        assert!(RECORD_COLUMNS.iter().all(|c| keys.contains_key(*c)));
    }
    let timeout = records
        .iter()
        .find(|r| r["termination_state"] == "sH--")
        .expect("a server timeout line");
    assert_eq!(timeout["kind"], "http");
    assert_eq!(timeout["status"], 504);
    assert_eq!(timeout["Tr"], serde_json::Value::Null);
    assert!(timeout["Ta"].as_u64().unwrap() >= 1000);
    assert_eq!(timeout["uri"], "/sleep/3000");
    let badreq = records
        .iter()
        .find(|r| r["method"] == "<BADREQ>")
        .expect("a <BADREQ> line");
    assert_eq!(badreq["server"], serde_json::Value::Null);
    assert_eq!(badreq["TR"], serde_json::Value::Null);
    assert!(badreq["accept_date"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-24T"));
}

#[test]
fn gzip_and_stdin_give_the_same_records_as_the_plain_file() {
    let plain = fixtures_dir().join("haproxy-2.6/tcplog.log");
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("tcplog.log.2.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let strip_file = |mut v: Vec<serde_json::Value>| {
        for r in &mut v {
            r["file"] = serde_json::Value::Null;
        }
        v
    };
    let from_plain = strip_file(jsonl(&[plain.to_str().unwrap()]));
    let from_gz = strip_file(jsonl(&[gz.to_str().unwrap()]));
    assert_eq!(from_plain, from_gz);
    assert!(from_plain.iter().any(|r| r["kind"] == "tcp"));

    let mut child = halyard()
        .args(["parse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&plain).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let from_stdin: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(from_plain, from_stdin);
}

#[test]
fn stats_names_malformed_lines_by_file_and_line_and_exits_1() {
    let path = fixtures_dir().join("malformed.log");
    let out = halyard()
        .args(["parse", "--format", "stats", "--show-malformed", "100"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let n = fixture_lines("malformed.log").len();
    assert!(
        text.contains(&format!("not understood: {n} lines")),
        "{text}"
    );
    for line in 1..=n {
        let needle = format!("{}:{line}: ", path.display());
        assert!(text.contains(&needle), "missing {needle} in\n{text}");
    }
}

#[test]
fn stats_counts_kinds_and_servers_and_exits_0_on_clean_input() {
    let path = fixtures_dir().join("haproxy-2.6/rsyslog-traditional.log");
    let out = halyard()
        .args(["parse", "-f", "stats"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines = fixture_lines("haproxy-2.6/rsyslog-traditional.log").len();
    let first = text.lines().next().unwrap();
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        ["lines", &lines.to_string()]
    );
    let records = jsonl(&[path.to_str().unwrap()]);
    for kind in ["http", "tcp", "server_event", "proxy_event"] {
        let count = records.iter().filter(|r| r["kind"] == kind).count();
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{kind} ")))
            .unwrap_or_else(|| panic!("no {kind} row in\n{text}"));
        assert_eq!(
            row.split_whitespace().nth(1),
            Some(count.to_string().as_str())
        );
        assert_eq!(row.len(), first.len(), "counts line up:\n{text}");
    }
}

#[test]
fn csv_has_the_header_and_one_row_per_line() {
    let path = fixtures_dir().join("haproxy-2.6/httplog-captures.log");
    let out = halyard()
        .args(["parse", "--format", "csv"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut reader = csv::Reader::from_reader(&out.stdout[..]);
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        RECORD_COLUMNS
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        fixture_lines("haproxy-2.6/httplog-captures.log").len()
    );
    let col = RECORD_COLUMNS
        .iter()
        .position(|c| *c == "captured_request_headers")
        .unwrap();
    assert!(rows.iter().any(|r| r[col].contains("Mozilla/5.0 (")));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.log");
    let line = fixture_lines("haproxy-2.6/httplog.log").remove(0);
    let mut data = Vec::new();
    for _ in 0..200_000 {
        data.extend_from_slice(&line);
        data.push(b'\n');
    }
    std::fs::write(&big, data).unwrap();
    let mut child = halyard()
        .arg("parse")
        .arg(&big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_file_is_exit_2_with_its_name() {
    let out = halyard()
        .args(["parse", "/nonexistent/haproxy.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("halyard: /nonexistent/haproxy.log: "),
        "{err}"
    );
}

#[test]
fn a_corrupt_gzip_is_exit_2_naming_the_file_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.log.2.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for _ in 0..20_000 {
        enc.write_all(&fixture_lines("haproxy-2.6/httplog.log")[0])
            .unwrap();
        enc.write_all(b"\n").unwrap();
    }
    let gz = enc.finish().unwrap();
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    for format in ["jsonl", "csv", "stats"] {
        let out = halyard()
            .args(["parse", "--format", format])
            .arg(&path)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{format}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains("haproxy.log.2.gz: read error"),
            "{format}: {err}"
        );
    }
}
