//! `halyard report --format html` opened in a real browser: the page renders offline, draws the
//! charts its data calls for, and makes the browser log nothing (no script error, no blocked
//! load).
//!
//! Needs Debian's chromium at /usr/bin/chromium; CI installs it. Without it the test fails
//! rather than skips, so a missing browser cannot pass for a working page.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{fixtures_dir, halyard};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Long enough for a cold start on a slow CI machine; a hung browser must not hang the suite.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// Every fixture log: HTTP and TCP traffic, server events, several backends, two intervals.
fn fixture_logs() -> Vec<PathBuf> {
    let dir = fixtures_dir().join("haproxy-2.6");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

fn report(format: &str, output: &Path, inputs: &[PathBuf]) {
    let out = halyard()
        .args(["report", "--format", format, "--output"])
        .arg(output)
        .args(inputs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "halyard report --format {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The chart ids the HTML page must have for this JSON report.
fn expected_charts(json: &serde_json::Value) -> Vec<&'static str> {
    let rows = |key: &str| json[key].as_array().cloned().unwrap_or_default();
    let mut ids = Vec::new();
    if !rows("status").is_empty() {
        ids.push("chart-status");
    }
    let has_ta = |r: &serde_json::Value| ["p50", "p90", "p99"].iter().any(|p| r["Ta"][p].is_f64());
    if rows("servers").iter().any(has_ta) {
        ids.push("chart-latency");
    }
    if !rows("timeline").is_empty() {
        ids.push("chart-requests-over-time");
    }
    let uneven = |r: &serde_json::Value| {
        r["servers"].as_u64().unwrap_or(0) > 1
            && r["jain_by_interval"]
                .as_array()
                .is_some_and(|j| !j.is_empty())
    };
    if rows("fairness").iter().any(uneven) {
        ids.push("chart-fairness-over-time");
    }
    ids
}

/// Runs headless chromium on `page` with a fresh profile and returns (DOM, stderr).
fn dump_dom(page: &Path, profile: &Path) -> (String, String) {
    headless(
        &format!("file://{}", page.display()),
        profile,
        &["--dump-dom"],
    )
}

/// Runs headless chromium on `url` with a fresh profile and `action` (`--dump-dom`,
/// `--screenshot=FILE`, ...), and returns (stdout, stderr).
pub fn headless(url: &str, profile: &Path, action: &[&str]) -> (String, String) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: this test opens a page in a real browser; install it with \
         `apt-get install chromium`"
    );
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(action)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout can stop the browser's helper processes too.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{CHROMIUM}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (dom, log) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    (dom, log)
}

/// The serialised chart with `id`, up to its closing tag.
fn chart<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("chart {id} missing from the rendered page"));
    let len = dom[start..].find("</svg>").unwrap_or(dom.len() - start);
    &dom[start..start + len]
}

#[test]
fn html_report_renders_offline_in_chromium_with_its_charts() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: this test opens the HTML report in a real browser; \
         install it with `apt-get install chromium`"
    );
    let dir = tempfile::tempdir().unwrap();
    let (page, json_path) = (
        dir.path().join("report.html"),
        dir.path().join("report.json"),
    );
    let inputs = fixture_logs();
    report("html", &page, &inputs);
    report("json", &json_path, &inputs);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();

    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for external in ["<script", "<link", " src=", "url(", "@import"] {
        assert!(
            !html.contains(external),
            "page refers outside itself: {external}"
        );
    }

    let profile = tempfile::tempdir().unwrap();
    let (dom, log) = dump_dom(&page, profile.path());
    assert!(dom.contains("<title>halyard report</title>"), "{dom}");
    let expected = expected_charts(&json);
    assert!(
        expected.contains(&"chart-status") && expected.contains(&"chart-latency"),
        "the fixtures have HTTP traffic: {expected:?}"
    );
    for id in &expected {
        assert!(chart(&dom, id).contains("<title"), "{id} has no title");
    }
    let bars = chart(&dom, "chart-status").matches("class=\"bar\"").count();
    let codes = json["status"].as_array().map_or(0, Vec::len);
    assert!(bars >= 1);
    assert_eq!(bars, codes, "one bar per status code");
    if expected.contains(&"chart-requests-over-time") {
        let points = chart(&dom, "chart-requests-over-time").matches("class=\"point\"");
        assert_eq!(
            points.count(),
            json["timeline"].as_array().map_or(0, Vec::len)
        );
    }

    // Console messages are the page's own: a script error, or a load the CSP blocked. The rest
    // of chromium's log (dbus, gpu, sandbox) is about the machine.
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        console.is_empty(),
        "browser console:\n{}",
        console.join("\n")
    );
}
