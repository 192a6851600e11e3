//! Reloading under load: 32 keep-alive connections stay busy while the config is reloaded ten
//! times, alternating between two server sets, by SIGHUP and by `halyard ctl reload`. No
//! request may fail, and every request made wholly between two reloads must be served by the
//! set the config had then, as the log lines show.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::halyard;
use crate::run::{free_port, http_defaults, requests, LogCollector, RunProcess};
use crate::test_backend::TestBackend;

const CONNECTIONS: usize = 32;
const RELOADS: usize = 10;
/// The generation while a reload runs: requests sent then may meet either configuration.
const RELOADING: usize = usize::MAX;

/// What the load generator saw.
#[derive(Default)]
struct Load {
    ok: AtomicU64,
    failed: AtomicU64,
    /// The configuration generation the next requests are tagged with, or `RELOADING`.
    generation: AtomicUsize,
    /// Requests (their URIs) that a reload began or ended during.
    straddling: Mutex<HashSet<String>>,
    stop: AtomicBool,
}

/// Keeps `CONNECTIONS` keep-alive connections busy until `load.stop`, each request tagged
/// with the generation current when it is sent (and noted when that changed before its
/// answer came). A connection that breaks counts a failure and is replaced.
async fn generate(port: u16, load: Arc<Load>) {
    let mut tasks = Vec::new();
    for id in 0..CONNECTIONS {
        let load = load.clone();
        tasks.push(tokio::spawn(async move {
            'connection: while !load.stop.load(Ordering::Relaxed) {
                let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    load.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let Ok((mut send, conn)) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
                else {
                    load.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                tokio::spawn(conn);
                let mut n = 0u64;
                while !load.stop.load(Ordering::Relaxed) {
                    n += 1;
                    let generation = load.generation.load(Ordering::Acquire);
                    let uri = format!("/gen/{generation}/{id}/{n}");
                    let request = hyper::Request::get(&uri)
                        .header("host", "reload.test")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let answered = match send.send_request(request).await {
                        Ok(response) if response.status() == 200 => {
                            response.into_body().collect().await.is_ok()
                        }
                        _ => false,
                    };
                    if !answered {
                        load.failed.fetch_add(1, Ordering::Relaxed);
                        continue 'connection;
                    }
                    load.ok.fetch_add(1, Ordering::Relaxed);
                    if load.generation.load(Ordering::Acquire) != generation {
                        load.straddling.lock().unwrap().insert(uri);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn config(
    log: &LogCollector,
    front: u16,
    socket: &std::path::Path,
    servers: &[(&str, &TestBackend)],
) -> String {
    let mut config = http_defaults(log.addr, "5s").replacen(
        "global\n",
        &format!(
            "global\n    stats socket {} level admin\n",
            socket.display()
        ),
        1,
    );
    config.push_str(&format!(
        "listen web\n    bind 127.0.0.1:{front}\n    balance roundrobin\n"
    ));
    for (name, backend) in servers {
        config.push_str(&format!(
            "    server {name} {} check inter 500\n",
            backend.addr
        ));
    }
    config
}

#[test]
fn ten_reloads_under_load_fail_no_request_and_switch_server_sets() {
    let dir = tempfile::tempdir().unwrap();
    let backends = TestBackend::several(["a", "b", "c", "d"]);
    let sets = [
        [("a", &backends[0]), ("b", &backends[1])],
        [("c", &backends[2]), ("d", &backends[3])],
    ];
    let log = LogCollector::start();
    let front = free_port();
    let socket = dir.path().join("admin.sock");
    let path = dir.path().join("halyard.cfg");
    let run = RunProcess::start(dir.path(), &config(&log, front, &socket, &sets[0]));

    let load = Arc::new(Load::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let generator = runtime.spawn(generate(front, load.clone()));
    std::thread::sleep(Duration::from_millis(300));
    for reload in 1..=RELOADS {
        load.generation.store(RELOADING, Ordering::Release);
        std::fs::write(&path, config(&log, front, &socket, &sets[reload % 2])).unwrap();
        if reload % 2 == 1 {
            run.signal(libc::SIGHUP);
            run.wait_for_stderr("halyard run: reloaded", reload);
        } else {
            let out = halyard()
                .arg("ctl")
                .arg(&socket)
                .arg("reload")
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "Reload done.\n\n");
            assert!(out.status.success());
        }
        load.generation.store(reload, Ordering::Release);
        std::thread::sleep(Duration::from_millis(300));
    }
    load.stop.store(true, Ordering::Relaxed);
    runtime.block_on(generator).unwrap();
    let (ok, failed) = (
        load.ok.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
    );
    assert_eq!(failed, 0, "{failed} failed requests ({ok} answered)");
    assert!(ok > 1000, "only {ok} requests");

    let lines = log.wait_for("every request logged", |l| requests(l).len() as u64 >= ok);
    let straddling = load.straddling.lock().unwrap();
    eprintln!(
        "{RELOADS} reloads under load: {ok} requests, {failed} failed, {} straddling a reload",
        straddling.len()
    );
    let mut served = vec![std::collections::BTreeSet::new(); RELOADS + 1];
    for (server, status, termination, uri) in requests(&lines) {
        assert_eq!((status, termination.as_str()), (Some(200), "----"), "{uri}");
        let generation: usize = uri.split('/').nth(2).unwrap().parse().unwrap();
        if generation == RELOADING || straddling.contains(&uri) {
            continue;
        }
        let expected: Vec<&str> = sets[generation % 2].iter().map(|(n, _)| *n).collect();
        assert!(
            expected.contains(&server.as_str()),
            "{uri} (sent after reload {generation}) served by {server}, not by {expected:?}"
        );
        served[generation].insert(server);
    }
    for (generation, servers) in served.iter().enumerate() {
        assert_eq!(servers.len(), 2, "generation {generation}: {servers:?}");
    }
}

/// A GET on a new connection to `port`: the status, or `None` when nothing answers.
fn get(port: u16, path: &str) -> Option<u16> {
    let codes = crate::run::curl(&[format!("http://127.0.0.1:{port}{path}")]);
    codes.first().copied().filter(|&c| c != 0)
}

#[test]
fn reloads_bind_new_addresses_close_removed_ones_and_a_failed_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let backend = TestBackend::start("s", "127.0.0.1:0".parse().unwrap());
    let log = LogCollector::start();
    let socket = dir.path().join("admin.sock");
    let path = dir.path().join("halyard.cfg");
    let (first, second) = (free_port(), free_port());
    let config = |port: u16, maxconn: u32| {
        http_defaults(log.addr, "5s").replacen(
            "global\n",
            &format!(
                "global\n    stats socket {} level admin\n",
                socket.display()
            ),
            1,
        ) + &format!(
            "listen web\n    bind 127.0.0.1:{port}\n    maxconn {maxconn}\n    server s {}\n",
            backend.addr
        )
    };
    let run = RunProcess::start(dir.path(), &config(first, 100));
    assert_eq!(get(first, "/"), Some(200));
    // A request in flight across the reload finishes on the old configuration.
    let slow = std::thread::spawn(move || get(first, "/sleep/800"));
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(&path, config(second, 50)).unwrap();
    let reload = || {
        halyard()
            .arg("ctl")
            .arg(&socket)
            .arg("reload")
            .output()
            .unwrap()
    };
    assert!(reload().status.success());
    assert_eq!(slow.join().unwrap(), Some(200));
    assert_eq!(get(second, "/"), Some(200), "the new address serves");
    assert_eq!(get(first, "/"), None, "the removed address is closed");

    // A reload whose address cannot be bound is refused as a whole: the maxconn it also
    // changes stays as it was, and the running address keeps serving.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    std::fs::write(&path, config(busy, 7)).unwrap();
    let out = reload();
    assert_eq!(out.status.code(), Some(1));
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains(&format!("cannot bind 127.0.0.1:{busy}")),
        "{answer}"
    );
    assert_eq!(get(second, "/"), Some(200));
    let stat = halyard()
        .arg("ctl")
        .arg(&socket)
        .args(["show", "stat"])
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    let frontend: Vec<&str> = stat
        .lines()
        .find(|l| l.starts_with("web,FRONTEND,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(frontend[6], "50", "slim after the refused reload: {stat}");
    run.wait_for_stderr("reload of", 1);
}
