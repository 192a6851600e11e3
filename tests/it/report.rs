//! `halyard report` as a user runs it: agreement with halog, exact percentiles, fairness,
//! events, filters, formats and errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::halog::{halog_servers, halog_statuses, write_corpus};
use crate::{fixtures_dir, halyard};

fn run(args: &[&str]) -> Output {
    halyard().arg("report").args(args).output().unwrap()
}

fn json(args: &[&str]) -> Value {
    let out = run(&[&["--format", "json"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap()
}

/// `backend/server` -> [2xx, 3xx, 4xx, 5xx, requests] from the servers section.
fn report_servers(report: &Value) -> BTreeMap<String, [u64; 5]> {
    rows(&report["servers"])
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            let key = format!(
                "{}/{}",
                r["backend"].as_str().unwrap(),
                r["server"].as_str().unwrap()
            );
            let counts = [
                n("status_2xx"),
                n("status_3xx"),
                n("status_4xx"),
                n("status_5xx"),
                n("requests"),
            ];
            (key, counts)
        })
        .collect()
}

fn report_statuses(report: &Value) -> BTreeMap<i64, u64> {
    rows(&report["status"])
        .iter()
        .map(|r| (r["status"].as_i64().unwrap(), r["count"].as_u64().unwrap()))
        .collect()
}

fn agrees_with_halog(file: &Path) {
    // halog -H reads HTTP logs only: compare on the HTTP backends.
    let report = json(&["--sections", "servers,status", file.to_str().unwrap()]);
    let http_backends: Vec<String> = rows(&report["status_by_backend"])
        .iter()
        .map(|r| r["backend"].as_str().unwrap().to_owned())
        .collect();
    let ours: BTreeMap<String, [u64; 5]> = report_servers(&report)
        .into_iter()
        .filter(|(k, _)| {
            http_backends
                .iter()
                .any(|b| k.starts_with(&format!("{b}/")))
        })
        .collect();
    assert!(!ours.is_empty());
    assert_eq!(ours, halog_servers(file));
    assert_eq!(report_statuses(&report), halog_statuses(file));
}

#[test]
fn servers_and_statuses_match_halog_on_haproxy_capture() {
    agrees_with_halog(&fixtures_dir().join("haproxy-2.6/rsyslog-traditional.log"));
}

#[test]
fn servers_and_statuses_match_halog_on_generated_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.log");
    write_corpus(&file, 60_000);
    agrees_with_halog(&file);
}

/// A tiny deterministic generator, independent of halyard.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// One httplog line laid out by hand (not by halyard's formatter).
#[allow(clippy::too_many_arguments)]
fn http_line(
    out: &mut String,
    second: u32,
    backend: &str,
    server: &str,
    t: [i64; 5],
    status: i64,
    uri: &str,
) {
    let (min, sec) = (second / 60, second % 60);
    let _ = writeln!(
        out,
        "<134>Nov 24 10:{min:02}:{sec:02} haproxy[7]: 10.1.2.3:4000 [24/Nov/2026:10:{min:02}:{sec:02}.250] fe {backend}/{server} {}/{}/{}/{}/{} {status} 512 - - ---- 1/1/0/0/0 0/0 \"GET {uri} HTTP/1.1\"",
        t[0], t[1], t[2], t[3], t[4]
    );
}

/// Nearest rank: the value at rank ceil(p/100 * n), computed in integers.
fn nearest_rank(sorted: &[i64], p: u64) -> i64 {
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).max(1);
    sorted[rank as usize - 1]
}

#[test]
fn percentiles_are_exact_nearest_rank_and_minus_one_is_aborted() {
    let mut rng = Lcg(42);
    let mut log = String::new();
    // Sizes that make rounding matter: 1, 7, 100, 101 and 1999 values.
    let servers = [("s1", 1), ("s2", 7), ("s3", 100), ("s4", 101), ("s5", 1999)];
    let mut expected: BTreeMap<&str, (Vec<i64>, Vec<i64>, u64)> = BTreeMap::new();
    for (server, n) in servers {
        for i in 0..n {
            let tr = if rng.below(10) == 0 {
                -1
            } else {
                rng.below(5000) as i64
            };
            let ta = rng.below(20_000) as i64 + tr.max(0);
            http_line(
                &mut log,
                (i % 3600) as u32,
                "be",
                server,
                [0, 0, 1, tr, ta],
                200,
                "/p",
            );
            let e = expected.entry(server).or_default();
            e.0.push(ta);
            if tr >= 0 {
                e.1.push(tr);
            } else {
                e.2 += 1;
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("timers.log");
    std::fs::write(&file, log).unwrap();
    let report = json(&["--sections", "servers", file.to_str().unwrap()]);
    let got: BTreeMap<String, &Value> = rows(&report["servers"])
        .iter()
        .map(|r| (r["server"].as_str().unwrap().to_owned(), r))
        .collect();
    for (server, (mut ta, mut tr, aborted)) in expected {
        ta.sort_unstable();
        tr.sort_unstable();
        let row = got[server];
        for (name, values) in [("Ta", &ta), ("Tr", &tr)] {
            let t = &row[name];
            for p in [50, 90, 99] {
                assert_eq!(
                    t[format!("p{p}")].as_f64(),
                    Some(nearest_rank(values, p) as f64),
                    "{server} {name} p{p} of {} values",
                    values.len()
                );
            }
            assert_eq!(t["max"].as_f64(), values.last().map(|&v| v as f64));
            let mean = values.iter().sum::<i64>() as f64 / values.len() as f64;
            assert!(
                (t["mean"].as_f64().unwrap() - mean).abs() < 1e-9,
                "{server} {name} mean"
            );
            assert_eq!(t["count"], values.len() as u64);
        }
        assert_eq!(row["Tr"]["aborted"], aborted, "{server}");
        assert_eq!(row["Ta"]["aborted"], 0);
    }
}

#[test]
fn fairness_follows_config_weights_and_names_idle_servers() {
    let mut log = String::new();
    // be_w: a and b get 30 and 10 over the hour; weights 3 and 1 make that perfectly fair.
    // be_eq: x gets 30, y 10, equal weights: Jain = 40²/(2·(30²+10²)) = 0.8, max/min 3,
    // CV = 10/20 = 0.5.
    for i in 0..40u32 {
        let second = i * 60;
        let (w, eq) = if i % 4 == 3 { ("b", "y") } else { ("a", "x") };
        http_line(&mut log, second, "be_w", w, [0, 0, 1, 5, 6], 200, "/");
        http_line(&mut log, second, "be_eq", eq, [0, 0, 1, 5, 6], 200, "/");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fair.log");
    std::fs::write(&file, log).unwrap();
    let config = dir.path().join("halyard.cfg");
    std::fs::write(
        &config,
        "backend be_w\n  server a 127.0.0.1:1 weight 3\n  server b 127.0.0.1:2 weight 1\n  server c 127.0.0.1:3 weight 2 backup\n\
         backend be_eq\n  server x 127.0.0.1:4\n  server y 127.0.0.1:5\n  server z 127.0.0.1:6\n",
    )
    .unwrap();
    let report = json(&[
        "--sections",
        "servers,fairness",
        "--interval",
        "10m",
        "--config",
        config.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let fairness: BTreeMap<&str, &Value> = rows(&report["fairness"])
        .iter()
        .map(|r| (r["backend"].as_str().unwrap(), r))
        .collect();
    let w = fairness["be_w"];
    assert_eq!(w["jain_index"], 1.0);
    assert_eq!(w["max_min_ratio"], 1.0);
    assert_eq!(w["cv"], 0.0);
    assert_eq!(
        w["servers"], 2,
        "the backup server is not expected to take load"
    );
    // be_eq has z configured with nothing logged: an idle server, and no finite max/min.
    let eq = fairness["be_eq"];
    assert_eq!(eq["servers"], 3);
    assert_eq!(eq["idle_servers"], serde_json::json!(["z"]));
    assert_eq!(eq["max_min_ratio"], Value::Null);
    let loads = [30.0f64, 10.0, 0.0];
    let jain = loads.iter().sum::<f64>().powi(2) / (3.0 * loads.iter().map(|x| x * x).sum::<f64>());
    assert!((eq["jain_index"].as_f64().unwrap() - jain).abs() < 1e-12);
    // Four 10-minute intervals of 10 requests each; z got none in any of them.
    assert_eq!(eq["idle_intervals"][0]["server"], "z");
    assert_eq!(eq["idle_intervals"][0]["intervals"], 4);
    let shares: BTreeMap<String, (f64, Value)> = rows(&report["servers"])
        .iter()
        .map(|r| {
            let key = format!(
                "{}/{}",
                r["backend"].as_str().unwrap(),
                r["server"].as_str().unwrap()
            );
            (
                key,
                (r["share"].as_f64().unwrap(), r["expected_share"].clone()),
            )
        })
        .collect();
    assert_eq!(shares["be_w/a"], (0.75, serde_json::json!(0.75)));
    assert_eq!(shares["be_w/b"], (0.25, serde_json::json!(0.25)));
    assert_eq!(shares["be_w/c"].1, serde_json::json!(0.0));
    assert_eq!(shares["be_eq/z"].0, 0.0);
}

#[test]
fn equal_weights_without_config() {
    let mut log = String::new();
    for i in 0..40u32 {
        let server = if i % 4 == 3 { "y" } else { "x" };
        http_line(&mut log, i * 60, "be_eq", server, [0, 0, 1, 5, 6], 200, "/");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("eq.log");
    std::fs::write(&file, log).unwrap();
    let report = json(&["--sections", "fairness,servers", file.to_str().unwrap()]);
    let row = &report["fairness"][0];
    assert!((row["jain_index"].as_f64().unwrap() - 0.8).abs() < 1e-12);
    assert!((row["max_min_ratio"].as_f64().unwrap() - 3.0).abs() < 1e-12);
    assert!((row["cv"].as_f64().unwrap() - 0.5).abs() < 1e-12);
    assert_eq!(report["servers"][0]["expected_share"], 0.5);
    // Intervals are aligned to the clock, whatever the first request's second.
    let timeline = json(&[
        "--sections",
        "timeline",
        "--interval",
        "7m",
        file.to_str().unwrap(),
    ]);
    let starts: std::collections::BTreeSet<&str> = rows(&timeline["timeline"])
        .iter()
        .map(|r| r["start"].as_str().unwrap())
        .collect();
    assert_eq!(starts.first().copied(), Some("2026-11-24T09:58:00.000"));
    assert_eq!(starts.len(), 6, "{starts:?}");
    let requests: u64 = rows(&timeline["timeline"])
        .iter()
        .map(|r| r["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 40);
}

#[test]
fn downtime_runs_from_down_to_up_and_to_the_end_when_still_down() {
    let log = "\
<129>Nov 24 10:00:00 haproxy[7]: Server be/a is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
<133>Nov 24 10:01:30 haproxy[7]: Server be/a is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
<129>Nov 24 10:05:00 haproxy[7]: Server be/b is DOWN, reason: Layer7 wrong status, code: 500, info: \"Internal Server Error\", check duration: 2ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
<134>Nov 24 10:06:00 haproxy[7]: 10.1.2.3:4000 [24/Nov/2026:10:06:00.000] fe be/a 0/0/1/5/6 200 512 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.log");
    std::fs::write(&file, log).unwrap();
    let report = json(&["--sections", "events", file.to_str().unwrap()]);
    let events = &report["events"];
    let states: Vec<(&str, &str, &str)> = rows(&events["transitions"])
        .iter()
        .map(|t| {
            (
                t["time"].as_str().unwrap(),
                t["server"].as_str().unwrap(),
                t["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("2026-11-24T10:00:00.000", "a", "down"),
            ("2026-11-24T10:01:30.000", "a", "up"),
            ("2026-11-24T10:05:00.000", "b", "down"),
        ]
    );
    assert_eq!(
        events["transitions"][0]["reason"],
        "Layer4 connection problem"
    );
    let downtime = rows(&events["downtime"]);
    assert_eq!(downtime[0]["server"], "a");
    assert_eq!(downtime[0]["seconds"], 90.0);
    assert_eq!(downtime[0]["still_down"], false);
    assert_eq!(downtime[1]["server"], "b");
    assert_eq!(downtime[1]["seconds"], 60.0, "open until the last line");
    assert_eq!(downtime[1]["still_down"], true);
    // Listing fewer transitions changes neither the count nor the downtime.
    let capped = json(&[
        "--sections",
        "events",
        "--transitions",
        "1",
        file.to_str().unwrap(),
    ]);
    assert_eq!(rows(&capped["events"]["transitions"]).len(), 1);
    assert_eq!(capped["events"]["transitions_total"], 3);
    assert_eq!(capped["events"]["downtime"], events["downtime"]);
}

#[test]
fn filters_select_backend_server_status_and_time() {
    let mut log = String::new();
    for i in 0..120u32 {
        let (backend, server) = if i % 2 == 0 {
            ("be_a", "a1")
        } else {
            ("be_b", "b1")
        };
        let status = if i % 5 == 0 { 503 } else { 200 };
        http_line(
            &mut log,
            i * 10,
            backend,
            server,
            [0, 0, 1, 5, 6],
            status,
            "/x?y=1",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.log");
    std::fs::write(&file, log).unwrap();
    let f = file.to_str().unwrap();
    let requests = |args: &[&str]| {
        json(&[&["--sections", "summary"], args, &[f]].concat())["summary"]["http_requests"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(requests(&[]), 120);
    assert_eq!(requests(&["--backend", "be_a"]), 60);
    assert_eq!(requests(&["--server", "be_b/b1"]), 60);
    assert_eq!(requests(&["--server", "b1", "--backend", "be_a"]), 0);
    assert_eq!(requests(&["--status", "5xx"]), 24);
    assert_eq!(requests(&["--status", "200,503"]), 120);
    assert_eq!(requests(&["--status", "500-502"]), 0);
    // Lines are 10 s apart from 10:00:00: [10:05, 10:10) holds 30 of them.
    assert_eq!(
        requests(&[
            "--since",
            "2026-11-24T10:05",
            "--until",
            "2026-11-24 10:10:00"
        ]),
        30
    );
    assert_eq!(requests(&["--frontend", "fe"]), 120);
    assert_eq!(requests(&["--frontend", "other"]), 0);
    let report = json(&["--sections", "top", "--top", "1", f]);
    assert_eq!(
        report["top"]["urls_by_count"][0]["url"], "/x",
        "query string removed"
    );
    assert_eq!(report["top"]["urls_by_count"][0]["requests"], 120);
    assert_eq!(report["top"]["urls_by_errors"][0]["errors"], 24);
    assert_eq!(report["top"]["clients"][0]["client"], "10.1.2.3");
    let bad = run(&["--status", "6xx", f]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad status"));
}

#[test]
fn empty_input_gives_an_empty_report() {
    let mut child = halyard()
        .args(["report", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["lines_read"], 0);
    assert_eq!(report["servers"], serde_json::json!([]));
    assert_eq!(report["timeline"], serde_json::json!([]));
    assert!(run(&[fixtures_dir()
        .join("haproxy-2.6/empty-ish-does-not-exist")
        .to_str()
        .unwrap()])
    .status
    .code()
    .is_some_and(|c| c == 2));
    let table = run(&["/dev/null"]);
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("lines read"));
}

#[test]
fn missing_file_and_truncated_gzip_are_named() {
    let out = run(&["/nonexistent/haproxy.log"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/haproxy.log"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("haproxy.log");
    write_corpus(&plain, 200_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    let zipped = gz.finish().unwrap();
    let cut = dir.path().join("haproxy.log.2.gz");
    std::fs::write(&cut, &zipped[..zipped.len() * 3 / 4]).unwrap();
    let out = run(&[plain.to_str().unwrap(), cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("haproxy.log.2.gz"), "{err}");
    let after: u64 = err
        .split("(after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line count in: {err}"));
    assert!((100_000..200_000).contains(&after), "{err}");
}

#[test]
fn gzip_and_several_files_are_one_input() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("haproxy.log");
    write_corpus(&plain, 20_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    let zipped = dir.path().join("haproxy.log.1.gz");
    std::fs::write(&zipped, gz.finish().unwrap()).unwrap();
    let one = json(&["--sections", "summary,servers", plain.to_str().unwrap()]);
    let both = json(&[
        "--sections",
        "summary,servers",
        plain.to_str().unwrap(),
        zipped.to_str().unwrap(),
    ]);
    assert_eq!(both["summary"]["lines_read"], 40_000);
    for (key, counts) in report_servers(&one) {
        assert_eq!(report_servers(&both)[&key], counts.map(|n| n * 2), "{key}");
    }
}

#[test]
fn csv_writes_one_file_per_table_and_table_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let log = fixtures_dir().join("haproxy-2.6/httplog.log");
    let out_dir = dir.path().join("csv");
    let out = run(&[
        "--format",
        "csv",
        "--output",
        out_dir.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let servers = std::fs::read_to_string(out_dir.join("servers.csv")).unwrap();
    assert!(servers.starts_with("backend,server,requests,share,expected_share,status_2xx"));
    let report = json(&[log.to_str().unwrap()]);
    assert_eq!(servers.lines().count() - 1, rows(&report["servers"]).len());
    for name in [
        "summary",
        "status",
        "status_by_backend",
        "termination",
        "fairness",
        "timeline",
        "top_urls_by_count",
        "top_clients",
        "events",
        "downtime",
    ] {
        assert!(out_dir.join(format!("{name}.csv")).exists(), "{name}.csv");
    }
    let no_dir = run(&["--format", "csv", log.to_str().unwrap()]);
    assert_eq!(no_dir.status.code(), Some(2));
    let table = run(&[log.to_str().unwrap()]);
    let text = String::from_utf8(table.stdout).unwrap();
    for title in [
        "Summary",
        "Status codes",
        "Termination states",
        "Servers",
        "Fairness",
        "Timeline",
        "Top URLs",
        "Server events",
    ] {
        assert!(text.contains(title), "{title}");
    }
    assert!(!text.contains('\x1b'), "no colour when piped");
}

#[test]
fn a_sighup_state_dump_is_not_a_transition() {
    let events = fixtures_dir().join("haproxy-2.6/events.log");
    let report = json(&["--sections", "events", events.to_str().unwrap()]);
    let transitions = rows(&report["events"]["transitions"]);
    assert!(transitions.len() >= 5);
    assert!(
        transitions
            .iter()
            .all(|t| !t["reason"].as_str().unwrap().contains("Conn:")),
        "{transitions:?}"
    );
}
