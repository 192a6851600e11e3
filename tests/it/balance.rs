//! Every `balance` algorithm through the running balancer: many requests over real
//! connections to three in-process servers weighted 1:2:3, the servers that answered counted
//! (each names itself in `x-served-by`) and compared with what HAProxy's algorithm gives.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty};
use hyper::Request;

use halyard::logline::{parse_line, Body};

use crate::run::{free_port, http_defaults, LogCollector, RunProcess};
use crate::test_backend::TestBackend;

/// One request: its path and an optional `X-User` header.
struct Get {
    path: String,
    user: Option<String>,
}

impl Get {
    fn path(path: impl Into<String>) -> Get {
        Get {
            path: path.into(),
            user: None,
        }
    }
}

/// Sends `gets` one after another on one keep-alive connection; which server answered each.
fn served_by(port: u16, gets: &[Get]) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut send = crate::run::http1_client(port).await;
        let mut servers = Vec::new();
        for get in gets {
            let mut request = Request::get(get.path.as_str()).header("host", "balance.test");
            if let Some(user) = &get.user {
                request = request.header("x-user", user.as_str());
            }
            send.ready().await.unwrap();
            let response = send
                .send_request(request.body(Empty::<bytes::Bytes>::new()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{}", get.path);
            let server = response.headers()["x-served-by"]
                .to_str()
                .unwrap()
                .to_owned();
            response.into_body().collect().await.unwrap();
            servers.push(server);
        }
        servers
    })
}

fn counts(servers: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for s in servers {
        *counts.entry(s.clone()).or_default() += 1;
    }
    counts
}

/// A frontend routing `/NAME...` to backend `NAME`, one backend per algorithm, all over the
/// same three servers weighted 1:2:3 (`a`, `b`, `c`); the uri-hash backends health-check them.
fn config(front: u16, servers: &[SocketAddr; 3], log: SocketAddr) -> String {
    let algorithms = [
        ("rr", "roundrobin", ""),
        ("srr", "static-rr", ""),
        ("lc", "leastconn", ""),
        ("first", "first", ""),
        ("src", "source", ""),
        ("uri", "uri", ""),
        ("param", "url_param user", ""),
        ("hdr", "hdr(X-User)", ""),
        ("rand", "random(2)", ""),
        ("ring", "uri", "    hash-type consistent\n"),
        ("map", "uri", "    hash-type map-based\n"),
    ];
    let mut text = http_defaults(log, "5s");
    text.push_str(&format!("frontend fe\n    bind 127.0.0.1:{front}\n"));
    for (name, _, _) in algorithms {
        text.push_str(&format!(
            "    use_backend {name} if {{ path_beg /{name}/ }}\n"
        ));
    }
    for (name, balance, extra) in algorithms {
        text.push_str(&format!("backend {name}\n    balance {balance}\n{extra}"));
        let check = if extra.is_empty() {
            ""
        } else {
            " check inter 100 fall 2 rise 2"
        };
        for (i, addr) in servers.iter().enumerate() {
            let server = ["a", "b", "c"][i];
            text.push_str(&format!(
                "    server {server} {addr} weight {}{check}\n",
                i + 1
            ));
        }
    }
    text
}

#[test]
fn every_algorithm_spreads_requests_as_haproxys_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut backends =
        ["a", "b", "c"].map(|n| TestBackend::start(n, "127.0.0.1:0".parse().unwrap()));
    let addrs = [backends[0].addr, backends[1].addr, backends[2].addr];
    let log = LogCollector::start();
    let front = free_port();
    let _run = RunProcess::start(dir.path(), &config(front, &addrs, log.addr));
    let expect = |counts: BTreeMap<String, usize>, want: &[(&str, usize)]| {
        let want: BTreeMap<String, usize> = want.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        assert_eq!(counts, want);
    };
    let numbered = |prefix: &str, n: usize| -> Vec<Get> {
        (0..n)
            .map(|i| Get::path(format!("/{prefix}/{i}")))
            .collect()
    };

    // Smooth weighted round robin, dynamic or static: exactly the weights over 600 requests,
    // and never the same server three times in a row with weights 1:2:3.
    let rr = served_by(front, &numbered("rr", 600));
    expect(counts(&rr), &[("a", 100), ("b", 200), ("c", 300)]);
    assert!(
        rr.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])),
        "{rr:?}"
    );
    let srr = served_by(front, &numbered("srr", 600));
    expect(counts(&srr), &[("a", 100), ("b", 200), ("c", 300)]);

    // The log says the same as the servers.
    let lines = log.wait_for("600 rr lines", |lines| {
        lines
            .iter()
            .filter(|l| String::from_utf8_lossy(l).contains(" fe rr/"))
            .count()
            == 600
    });
    let mut logged: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        if let Body::Http(http) = parse_line(line).body {
            if http.session.backend == b"rr" {
                *logged
                    .entry(String::from_utf8_lossy(http.session.server).into_owned())
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(
        logged,
        HashMap::from([("a".into(), 100), ("b".into(), 200), ("c".into(), 300)])
    );

    // One request at a time: every server is idle, so leastconn takes turns; `first` keeps
    // to the first server; `source` keeps the one client on one server.
    expect(
        counts(&served_by(front, &numbered("lc", 300))),
        &[("a", 100), ("b", 100), ("c", 100)],
    );
    expect(
        counts(&served_by(front, &numbered("first", 60))),
        &[("a", 60)],
    );
    let source = counts(&served_by(front, &numbered("src", 60)));
    assert_eq!(source.len(), 1, "{source:?}");

    // random(2) among idle servers: the later draw wins the tie, so shares follow the weights
    // (1/6, 2/6, 3/6 of 600; bounds at more than 5 standard deviations).
    let random = counts(&served_by(front, &numbered("rand", 600)));
    assert!((50..=150).contains(&random["a"]), "{random:?}");
    assert!((230..=370).contains(&random["c"]), "{random:?}");

    // Hashes: the same key always lands on the same server, and keys spread by weight.
    let sticky = |gets: Vec<Get>| {
        let first = served_by(front, &gets);
        assert_eq!(served_by(front, &gets), first, "a key changed server");
        let spread = counts(&first);
        assert_eq!(spread.len(), 3, "{spread:?}");
        assert!(spread["c"] > spread["a"], "{spread:?}");
        first
    };
    sticky(numbered("uri", 300));
    sticky(
        (0..300)
            .map(|i| Get::path(format!("/param/x?user={i}&page=1")))
            .collect(),
    );
    sticky(
        (0..300)
            .map(|i| Get {
                path: "/hdr/x".into(),
                user: Some(format!("user{i}")),
            })
            .collect(),
    );

    // A server goes down. Consistent hashing moves only the keys it had; map-based hashing
    // (modulo the weights up) moves most of the others too.
    let ring_before = sticky(numbered("ring", 300));
    let map_before = sticky(numbered("map", 300));
    backends[2].stop();
    log.wait_for_line("Server ring/c is DOWN");
    log.wait_for_line("Server map/c is DOWN");
    let ring_after = served_by(front, &numbered("ring", 300));
    let map_after = served_by(front, &numbered("map", 300));
    let moved = |before: &[String], after: &[String]| {
        let survivors = before.iter().filter(|s| *s != "c").count();
        let moved = before
            .iter()
            .zip(after)
            .filter(|(b, a)| *b != "c" && b != a)
            .count();
        (moved, survivors)
    };
    assert!(ring_after.iter().all(|s| s != "c") && map_after.iter().all(|s| s != "c"));
    let (ring_moved, _) = moved(&ring_before, &ring_after);
    assert_eq!(
        ring_moved, 0,
        "consistent hashing moved keys of servers still up"
    );
    let (map_moved, survivors) = moved(&map_before, &map_after);
    assert!(
        map_moved * 4 > survivors,
        "map-based hashing moved only {map_moved} of {survivors}"
    );
}

#[test]
fn redispatch_moves_a_refused_request_to_another_server_and_logs_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let live = TestBackend::start("live", "127.0.0.1:0".parse().unwrap());
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = LogCollector::start();
    let front = free_port();
    // No health checks: the dead server stays in the rotation, so every other request meets
    // a refused connect.
    let config = format!(
        "{}listen web
    bind 127.0.0.1:{front}
    option redispatch
    retries 1
    server dead {dead}
    server live {}
",
        http_defaults(log.addr, "5s"),
        live.addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let gets: Vec<Get> = (0..6).map(|i| Get::path(format!("/r/{i}"))).collect();
    assert_eq!(served_by(front, &gets), ["live"; 6]);
    let lines = log.wait_for("6 lines", |lines| {
        lines
            .iter()
            .filter(|l| matches!(parse_line(l).body, Body::Http(_)))
            .count()
            == 6
    });
    let mut redispatched = 0;
    for line in &lines {
        if let Body::Http(http) = parse_line(line).body {
            assert_eq!(http.session.server, b"live");
            assert_eq!(http.status, Some(200));
            let c = http.connections;
            if c.redispatched {
                assert_eq!(c.retries, 1, "{}", String::from_utf8_lossy(line));
                redispatched += 1;
            } else {
                assert_eq!(c.retries, 0, "{}", String::from_utf8_lossy(line));
            }
        }
    }
    assert_eq!(
        redispatched, 3,
        "round robin sends every other request to the dead server"
    );
}

/// One request with `curl`, with a `Cookie` header when given: the server that answered, the
/// `Set-Cookie` and `Cache-Control` it got, and the body.
fn with_cookie(
    url: &str,
    cookie: Option<&str>,
) -> (String, Option<String>, Option<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let mut command = std::process::Command::new("curl");
    command.args(["-s", "--max-time", "10", "-D"]).arg(&head);
    if let Some(cookie) = cookie {
        command.args(["-H", &format!("Cookie: {cookie}")]);
    }
    let out = command.arg(url).output().unwrap();
    let head = std::fs::read_to_string(head).unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.trim().to_owned())
    };
    (
        header("x-served-by").unwrap_or_default(),
        header("set-cookie"),
        header("cache-control"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_persistence_cookie_keeps_a_client_on_its_server_until_the_server_goes_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut backends = ["a", "b"].map(|n| TestBackend::start(n, "127.0.0.1:0".parse().unwrap()));
    let log = LogCollector::start();
    let front = free_port();
    let config = format!(
        "{}listen web
    bind 127.0.0.1:{front}
    option httpchk GET /index.html
    option redispatch
    cookie SRV insert indirect nocache httponly
    server a {} cookie sa check inter 100 fall 2 rise 2
    server b {} cookie sb check inter 100 fall 2 rise 2
",
        http_defaults(log.addr, "5s"),
        backends[0].addr,
        backends[1].addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let url = format!("http://127.0.0.1:{front}/headers");

    // No cookie: balanced, and told where it went.
    let (first, set, cache, _) = with_cookie(&url, None);
    let value = format!("s{first}");
    assert_eq!(
        set.as_deref(),
        Some(format!("SRV={value}; path=/; HttpOnly").as_str())
    );
    assert_eq!(cache.as_deref(), Some("private"));
    // With it: always the same server, nothing new to set, and (`indirect`) the server never
    // sees the cookie, only the client's others.
    for _ in 0..6 {
        let (server, set, _, seen) = with_cookie(&url, Some(&format!("theme=dark; SRV={value}")));
        assert_eq!((server.as_str(), set), (first.as_str(), None));
        assert!(
            seen.contains("cookie: theme=dark\n") && !seen.contains("SRV"),
            "{seen}"
        );
    }
    // A value no server has: balanced like a new client, and given a valid one.
    let (_, set, _, _) = with_cookie(&url, Some("SRV=nope"));
    assert!(set.is_some_and(|s| s.starts_with("SRV=s")));

    // Its server goes down: redispatched to the other, which hands out its own cookie.
    let (index, other) = if first == "a" { (0, "b") } else { (1, "a") };
    backends[index].stop();
    log.wait_for_line(&format!("Server web/{first} is DOWN"));
    let (server, set, _, _) = with_cookie(&url, Some(&format!("SRV={value}")));
    assert_eq!(server, other);
    assert_eq!(
        set.as_deref(),
        Some(format!("SRV=s{other}; path=/; HttpOnly").as_str())
    );

    // The log's third and fourth termination characters tell the story.
    let lines = log.wait_for("9 request lines", |lines| {
        lines
            .iter()
            .filter(|l| matches!(parse_line(l).body, Body::Http(h) if h.request.uri == Some(b"/headers")))
            .count()
            == 9
    });
    let states: Vec<String> = lines
        .iter()
        .filter_map(|l| match parse_line(l).body {
            Body::Http(h) if h.request.uri == Some(b"/headers") => {
                Some(String::from_utf8_lossy(h.termination_state.as_bytes()).into_owned())
            }
            _ => None,
        })
        .collect();
    let mut expected = vec!["--NI"];
    expected.extend(["--VN"; 6]);
    expected.extend(["--II", "--DI"]);
    assert_eq!(states, expected);
}

#[test]
fn slowstart_ramps_a_returning_servers_share_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut backends = TestBackend::several(["a", "b"]);
    let log = LogCollector::start();
    let front = free_port();
    let config = format!(
        "{}listen web
    bind 127.0.0.1:{front}
    balance roundrobin
    server a {}
    server b {} check inter 100 fall 1 rise 1 slowstart 3s
",
        http_defaults(log.addr, "5s"),
        backends[0].addr,
        backends[1].addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let gets: Vec<Get> = (0..40).map(|i| Get::path(format!("/{i}"))).collect();
    // Not at start: slowstart applies to a server coming back, as in HAProxy.
    assert_eq!(counts(&served_by(front, &gets))["b"], 20);
    let addr = backends[1].addr;
    backends[1].stop();
    log.wait_for_line("Server web/b is DOWN");
    backends[1] = TestBackend::start("b", addr);
    log.wait_for_line("Server web/b is UP");
    let started = std::time::Instant::now();
    let early = counts(&served_by(front, &gets));
    let early_b = early.get("b").copied().unwrap_or(0);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1000),
        "the first requests took too long to say anything about the ramp"
    );
    // In its first second b has at most a third of its weight: at most 1/4 of the requests.
    assert!(
        (1..=10).contains(&early_b),
        "b took {early_b} of 40 just after coming back"
    );
    std::thread::sleep(std::time::Duration::from_millis(3200).saturating_sub(started.elapsed()));
    assert_eq!(
        counts(&served_by(front, &gets))["b"],
        20,
        "full weight after 3 s"
    );
}

#[test]
fn prefix_cookies_carry_the_server_in_front_of_the_applications_session() {
    let dir = tempfile::tempdir().unwrap();
    let backends = TestBackend::several(["a", "b"]);
    let log = LogCollector::start();
    let front = free_port();
    let config = format!(
        "{}listen web
    bind 127.0.0.1:{front}
    cookie JSESSIONID prefix
    server a {} cookie sa
    server b {} cookie sb
",
        http_defaults(log.addr, "5s"),
        backends[0].addr,
        backends[1].addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let base = format!("http://127.0.0.1:{front}");
    // The application's own cookie comes back with its server in front.
    let (server, set, _, _) = with_cookie(&format!("{base}/login"), None);
    assert_eq!(
        set.as_deref(),
        Some(format!("JSESSIONID=s{server}~{server}-session; Path=/").as_str())
    );
    // The client sends it back: same server, which sees its own value again.
    for _ in 0..4 {
        let cookie = format!("JSESSIONID=s{server}~{server}-session; theme=dark");
        let (again, set, _, seen) = with_cookie(&format!("{base}/headers"), Some(&cookie));
        assert_eq!((again.as_str(), set), (server.as_str(), None));
        assert!(
            seen.contains(&format!(
                "cookie: JSESSIONID={server}-session; theme=dark\n"
            )),
            "{seen}"
        );
    }
    let lines = log.wait_for("5 lines", |l| {
        l.iter()
            .filter(|x| matches!(parse_line(x).body, Body::Http(_)))
            .count()
            == 5
    });
    let states: Vec<String> = lines
        .iter()
        .filter_map(|l| match parse_line(l).body {
            Body::Http(h) => {
                Some(String::from_utf8_lossy(h.termination_state.as_bytes()).into_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(states, ["--NR", "--VN", "--VN", "--VN", "--VN"]);
}
