//! The stats page of `halyard run` against known traffic: every format's numbers agree with
//! the log lines of the same requests (read back with the log-line model), the CSV header is
//! HAProxy's own (asked of a real HAProxy), the login is enforced, and the page renders in
//! headless Chromium.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use halyard::logline::{parse_line, Body};

use crate::report_html::headless;
use crate::run::{curl, free_port, http_defaults, LogCollector, RunProcess};
use crate::test_backend::TestBackend;

/// A balancer with a stats page, two live servers and one that refuses connections.
struct StatsLab {
    front: u16,
    log: LogCollector,
    _run: RunProcess,
    _backends: [TestBackend; 2],
    _dir: tempfile::TempDir,
}

impl StatsLab {
    fn start() -> StatsLab {
        let dir = tempfile::tempdir().unwrap();
        let backends = TestBackend::several(["inst1", "inst2"]);
        let log = LogCollector::start();
        let front = free_port();
        let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = format!(
            "{}    retries 0
listen web
    bind 127.0.0.1:{front}
    balance roundrobin
    option httpchk GET /index.html
    stats uri /admin/stats
    stats refresh 5s
    stats auth admin:s3cret
    server inst1 {} check inter 200
    server inst2 {} check inter 200
    server dead {dead}
",
            http_defaults(log.addr, "5s"),
            backends[0].addr,
            backends[1].addr,
        );
        let run = RunProcess::start(dir.path(), &config);
        StatsLab {
            front,
            log,
            _run: run,
            _backends: backends,
            _dir: dir,
        }
    }

    fn url(&self, rest: &str) -> String {
        format!("http://127.0.0.1:{}{rest}", self.front)
    }

    /// The page at `rest` with the login: (status, body).
    fn get(&self, rest: &str, login: Option<&str>) -> (u16, String) {
        let mut command = Command::new("curl");
        command.args(["-s", "--max-time", "10", "-w", "\n%{http_code}"]);
        if let Some(login) = login {
            command.args(["-u", login]);
        }
        let out = command.arg(self.url(rest)).output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_owned())
    }
}

/// Per server: (requests, 2xx, 4xx, 5xx, bytes sent to clients), from the log lines.
fn from_log(lines: &[Vec<u8>]) -> BTreeMap<String, [u64; 5]> {
    let mut per_server: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    for line in lines {
        let Body::Http(h) = parse_line(line).body else {
            continue;
        };
        let server = String::from_utf8_lossy(h.session.server).into_owned();
        if server.starts_with('<') {
            continue;
        }
        let counts = per_server.entry(server).or_default();
        counts[0] += 1;
        match h.status.unwrap_or(0) / 100 {
            2 => counts[1] += 1,
            4 => counts[2] += 1,
            5 => counts[3] += 1,
            _ => {}
        }
        counts[4] += h.bytes_read;
    }
    per_server
}

/// The CSV's rows as maps from column name to value.
fn csv_rows(csv: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = csv.lines();
    let header = lines.next().unwrap().trim_start_matches("# ");
    let columns: Vec<&str> = header.split(',').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|line| {
            let values: Vec<&str> = line.split(',').collect();
            assert_eq!(values.len(), columns.len(), "row {line}");
            columns
                .iter()
                .zip(values)
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn row<'a>(rows: &'a [BTreeMap<String, String>], sv: &str) -> &'a BTreeMap<String, String> {
    rows.iter()
        .find(|r| r["svname"] == sv)
        .unwrap_or_else(|| panic!("no {sv} row"))
}

#[test]
fn stats_formats_count_what_the_log_shows() {
    let lab = StatsLab::start();
    // 36 requests round robin over three servers, one refusing (503 SC): 30 pages, then 6
    // that the live servers answer 404.
    let mut codes = curl(&[lab.url("/item/[1-30]")]);
    codes.extend(curl(&[lab.url("/[1-6]/status/404")]));
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 20);
    assert_eq!(codes.iter().filter(|&&c| c == 404).count(), 4);
    assert_eq!(codes.iter().filter(|&&c| c == 503).count(), 12);
    let lines = lab.log.wait_for("36 request lines", |l| {
        l.iter()
            .filter(|x| matches!(parse_line(x).body, Body::Http(_)))
            .count()
            >= 36
    });
    let logged = from_log(&lines);
    assert_eq!(logged["dead"][3], logged["dead"][0], "dead only 503s");

    // The login: none, a wrong one, then the right one.
    let (status, page) = lab.get("/admin/stats", None);
    assert_eq!(status, 401);
    assert!(page.contains("401 Unauthorized"), "{page}");
    assert_eq!(lab.get("/admin/stats", Some("admin:wrong")).0, 401);
    let refused = lab.log.wait_for_line("/admin/stats HTTP/1.1");
    let refused = parse_line(refused.as_bytes());
    let Body::Http(h) = refused.body else {
        panic!("not an HTTP line")
    };
    assert_eq!(
        (h.session.server, h.status, h.termination_state.as_bytes()),
        (&b"<STATS>"[..], Some(401), &b"PR--"[..])
    );

    let (status, csv) = lab.get("/admin/stats;csv", Some("admin:s3cret"));
    assert_eq!(status, 200);
    let rows = csv_rows(&csv);
    for server in ["inst1", "inst2", "dead"] {
        let (r, counts) = (row(&rows, server), logged[server]);
        let n = |c: &str| {
            r[c].parse::<u64>()
                .unwrap_or_else(|_| panic!("{server} {c}: {r:?}"))
        };
        assert_eq!(
            [
                n("stot"),
                n("hrsp_2xx"),
                n("hrsp_4xx"),
                n("hrsp_5xx"),
                n("bout")
            ],
            counts,
            "{server}: stats against the log"
        );
        assert_eq!(r["pxname"], "web");
    }
    let (inst1, dead) = (row(&rows, "inst1"), row(&rows, "dead"));
    assert_eq!(
        (inst1["status"].as_str(), inst1["check_status"].as_str()),
        ("UP", "L7OK")
    );
    assert_eq!(inst1["check_code"], "200");
    assert_eq!(inst1["addr"], lab._backends[0].addr.to_string());
    assert_eq!(dead["status"], "no check");
    assert_eq!(
        dead["econ"],
        logged["dead"][0].to_string(),
        "one failed connect each"
    );
    assert!(inst1["bin"].parse::<u64>().unwrap() > 20 * "GET /item/1 HTTP/1.1\r\n".len() as u64);
    let backend = row(&rows, "BACKEND");
    let total: u64 = logged.values().map(|c| c[0]).sum();
    assert_eq!(backend["stot"], total.to_string());
    assert_eq!(backend["econ"], dead["econ"]);
    assert_eq!(backend["algo"], "roundrobin");
    let frontend = row(&rows, "FRONTEND");
    // The front counts the stats requests too (the two refused so far).
    let requests: u64 = frontend["req_tot"].parse().unwrap();
    assert!(
        (total + 2..=total + 3).contains(&requests),
        "req_tot {requests}"
    );
    assert_eq!(frontend["status"], "OPEN");

    // JSON: the same numbers.
    let (_, json) = lab.get("/admin/stats;json", Some("admin:s3cret"));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let inst2 = json["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["svname"] == "inst2")
        .unwrap();
    assert_eq!(inst2["stot"], logged["inst2"][0]);
    assert_eq!(inst2["hrsp_4xx"], logged["inst2"][2]);
    assert!(inst2["rtime_p99"].as_u64().unwrap() >= inst2["rtime_p50"].as_u64().unwrap());

    // Prometheus, under HAProxy's exporter names.
    let (_, metrics) = lab.get("/admin/stats/metrics", Some("admin:s3cret"));
    for expected in [
        format!(
            "haproxy_server_http_responses_total{{proxy=\"web\",server=\"inst1\",code=\"2xx\"}} {}",
            logged["inst1"][1]
        ),
        format!(
            "haproxy_server_connection_errors_total{{proxy=\"web\",server=\"dead\"}} {}",
            logged["dead"][0]
        ),
        "haproxy_server_status{proxy=\"web\",server=\"inst2\",state=\"UP\"} 1".to_owned(),
        "haproxy_backend_status{proxy=\"web\"} 1".to_owned(),
        "# TYPE haproxy_frontend_http_requests_total counter".to_owned(),
    ] {
        assert!(
            metrics.contains(&expected),
            "{expected} missing:\n{metrics}"
        );
    }

    // The HTML page: a table for the proxy, a row per server, refreshing every 5 s.
    let (_, html) = lab.get("/admin/stats", Some("admin:s3cret"));
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
    for server in ["inst1", "inst2", "dead", "FRONTEND", "BACKEND"] {
        assert!(
            html.contains(&format!("data-server=\"{server}\"")),
            "{server}"
        );
    }
    let (_, html) = lab.get("/admin/stats;norefresh", Some("admin:s3cret"));
    assert!(!html.contains("http-equiv=\"refresh\""));
}

#[test]
fn the_csv_header_is_haproxys_own() {
    let ours = {
        let lab = StatsLab::start();
        let (_, csv) = lab.get("/admin/stats;csv", Some("admin:s3cret"));
        csv.lines().next().unwrap().to_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    \
             timeout server 5s\nlisten stats\n    bind 127.0.0.1:{port}\n    stats enable\n    \
             stats uri /stats\n"
        ),
    )
    .unwrap();
    let mut haproxy = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("haproxy (apt-get install haproxy)");
    let deadline = Instant::now() + Duration::from_secs(10);
    let theirs = loop {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}/stats;csv"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(header) = text.lines().next().filter(|l| l.starts_with("# ")) {
            break header.to_owned();
        }
        assert!(Instant::now() < deadline, "haproxy's stats did not answer");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = haproxy.kill();
    let _ = haproxy.wait();
    assert_eq!(ours, theirs);
}

#[test]
fn the_stats_page_renders_in_chromium() {
    let lab = StatsLab::start();
    curl(&[lab.url("/item/[1-12]")]);
    let profile = tempfile::tempdir().unwrap();
    // Chromium sends the login embedded in a top-level URL.
    let url = format!(
        "http://admin:s3cret@127.0.0.1:{}/admin/stats;norefresh",
        lab.front
    );
    let (dom, log) = headless(&url, profile.path(), &["--dump-dom"]);
    assert!(
        dom.contains("<table class=\"px\" id=\"web\">"),
        "{dom}\n{log}"
    );
    assert!(dom.contains("Statistics Report for halyard"));
    let shot = profile.path().join("stats.png");
    let screenshot = format!("--screenshot={}", shot.display());
    headless(
        &url,
        profile.path(),
        &[&screenshot, "--window-size=1500,420"],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("HALYARD_STATS_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
