//! Access control through the running balancer: `http-request deny` answers with HAProxy's
//! page and logs `PR--`; `tcp-request connection reject` closes before reading anything.

use std::io::Read;

use halyard::logline::{parse_line, Body};

use crate::run::{curl, free_port, http_defaults, LogCollector, RunProcess};
use crate::test_backend::TestBackend;

#[test]
fn denied_requests_get_haproxys_answer_and_rejected_connections_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let backend = TestBackend::start("web1", "127.0.0.1:0".parse().unwrap());
    let log = LogCollector::start();
    let (front, closed) = (free_port(), free_port());
    let config = format!(
        "{}frontend fe
    bind 127.0.0.1:{front}
    acl local src 127.0.0.0/8 ::1
    acl admin path_beg /admin
    http-request deny if admin
    http-request deny deny_status 429 if {{ path_beg /busy }}
    http-request deny unless local
    default_backend web
frontend closed
    bind 127.0.0.1:{closed}
    tcp-request connection reject if {{ src 127.0.0.1/32 }}
    default_backend web
backend web
    server web1 {}
",
        http_defaults(log.addr, "5s"),
        backend.addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let base = format!("http://127.0.0.1:{front}");
    let statuses: Vec<u16> = ["/admin/users", "/busy", "/index.html"]
        .iter()
        .flat_map(|path| curl(&[format!("{base}{path}")]))
        .collect();
    assert_eq!(statuses, [403, 429, 200]);
    let page = std::process::Command::new("curl")
        .args(["-s", "-i", &format!("{base}/admin")])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{page}");
    assert!(
        page.contains("Request forbidden by administrative rules."),
        "{page}"
    );

    // Rejected: the connection is closed without a byte, and nothing is logged for it.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", closed)).unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    assert!(got.is_empty());

    let lines = log.wait_for("4 request lines", |lines| {
        lines
            .iter()
            .filter(|l| matches!(parse_line(l).body, Body::Http(_)))
            .count()
            >= 4
    });
    let requests: Vec<(String, String, Option<u16>, String)> = lines
        .iter()
        .filter_map(|l| match parse_line(l).body {
            Body::Http(h) => Some((
                String::from_utf8_lossy(h.session.frontend).into_owned(),
                String::from_utf8_lossy(h.session.server).into_owned(),
                h.status,
                String::from_utf8_lossy(h.termination_state.as_bytes()).into_owned(),
            )),
            _ => None,
        })
        .collect();
    let denied = |status| {
        (
            "fe".to_owned(),
            "<NOSRV>".to_owned(),
            Some(status),
            "PR--".to_owned(),
        )
    };
    assert_eq!(
        requests,
        [
            denied(403),
            denied(429),
            ("fe".into(), "web1".into(), Some(200), "----".into()),
            denied(403),
        ]
    );
    let first = String::from_utf8_lossy(&lines[lines.len() - 4]).into_owned();
    assert!(
        first.contains(" fe fe/<NOSRV> ") && first.contains("/-1/-1/-1/"),
        "{first}"
    );
}
