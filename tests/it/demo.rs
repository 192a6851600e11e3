//! `halyard demo` as a user runs it: the whole pipeline on 127.0.0.1, judged by the JSON report
//! it prints over the files its listener wrote.

use serde_json::Value;

use crate::halyard;

/// The row of server `myweb/NAME` in the report's `servers` section.
fn server<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["servers"]
        .as_array()
        .expect("a servers section")
        .iter()
        .find(|row| row["backend"] == "myweb" && row["server"] == name)
        .unwrap_or_else(|| panic!("no row for myweb/{name} in {:#}", report["servers"]))
}

#[test]
fn the_demo_shows_traffic_an_outage_and_the_slow_servers_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = halyard()
        .args(["demo", "--duration", "10s", "--format", "json", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON report ({e}); stderr:\n{stderr}"));

    // The listener rotated: haproxy.log and at least one rotated file, all read by the report.
    let logs: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("haproxy.log"))
        .collect();
    assert!(logs.len() > 1, "no rotation: {logs:?}");
    assert!(logs.iter().any(|name| name == "haproxy.log"), "{logs:?}");
    let summary = &report["summary"];
    assert_eq!(summary["malformed"], 0, "{summary:#}");
    // 200 requests/s for 10 s, every one logged (a request the client had to send again on a
    // new connection is logged twice).
    assert!(
        summary["http_requests"].as_u64() >= Some(2000),
        "{summary:#}"
    );

    for name in ["inst1", "inst2", "inst3"] {
        let requests = server(&report, name)["requests"].as_u64();
        assert!(requests > Some(0), "myweb/{name} served nothing");
    }
    // inst2 has weight 2 and was never stopped: it serves more than either other server.
    let requests = |name| server(&report, name)["requests"].as_u64();
    assert!(requests("inst2") > requests("inst1").max(requests("inst3")));

    // inst1 was stopped a third of the way through and started again at two thirds.
    let transitions: Vec<(String, String)> = report["events"]["transitions"]
        .as_array()
        .expect("an events section")
        .iter()
        .map(|t| {
            (
                format!(
                    "{}/{}",
                    t["backend"].as_str().unwrap_or(""),
                    t["server"].as_str().unwrap_or("")
                ),
                t["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let inst1 = |state: &str| ("myweb/inst1".to_owned(), state.to_owned());
    assert_eq!(transitions, [inst1("down"), inst1("up")]);

    // inst3 answers some requests with a 500 itself; the balancer never makes a 500 (its own
    // errors are 502, 503 and 504), so every 500 in the status section is one of inst3's.
    let status_500 = report["status"]
        .as_array()
        .expect("a status section")
        .iter()
        .find(|row| row["status"] == 500)
        .and_then(|row| row["count"].as_u64());
    assert!(status_500 > Some(0), "no 500 in {:#}", report["status"]);
    assert!(server(&report, "inst3")["status_5xx"].as_u64() >= status_500);

    // The commands to explore further name the files (on stderr: stdout is the JSON).
    let command = format!("report {}/haproxy.log*", dir.path().display());
    assert!(stderr.contains(&command), "{command} not in:\n{stderr}");
}
