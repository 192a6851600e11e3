//! `halyard listen` with real sockets on 127.0.0.1: numbered messages over UDP and TCP arrive
//! exactly once and in order across rotations; SIGHUP after an external rename loses nothing;
//! garbage and oversized messages are kept and counted.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use halyard::config::{ListenerSettings, Rotation, Route};
use halyard::listener::{CounterSnapshot, Listener};
use halyard::logline::parse_line;

use crate::{halyard, Collected};

/// Message `seq` of sender `sender`, as HAProxy frames it, padded to about 200 bytes.
fn numbered(sender: usize, seq: usize) -> Vec<u8> {
    format!(
        "<158>Nov 25 01:50:00 haproxy[{sender}]: sender={sender} seq={seq} {:x<150}",
        ""
    )
    .into_bytes()
}

/// `(sender, seq)` of a line written by the listener, or `None` for any other line.
fn sender_and_seq(line: &[u8]) -> Option<(usize, usize)> {
    let parsed = parse_line(line);
    let text = std::str::from_utf8(parsed.message).ok()?;
    let mut words = text.split(' ');
    let sender = words.next()?.strip_prefix("sender=")?.parse().ok()?;
    let seq = words.next()?.strip_prefix("seq=")?.parse().ok()?;
    Some((sender, seq))
}

/// Every file in `dir` that belongs to `base`, oldest first: `base.N[.gz]` from the highest N
/// down, then `base` itself.
fn rotated_files(dir: &Path, base: &str) -> Vec<PathBuf> {
    let mut numbered: Vec<(u64, PathBuf)> = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == base {
            continue;
        }
        let Some(rest) = name.strip_prefix(&format!("{base}.")) else {
            continue;
        };
        match rest.trim_end_matches(".gz").parse() {
            Ok(n) => numbered.push((n, entry.path())),
            Err(_) => others.push(name),
        }
    }
    assert!(
        others.is_empty(),
        "unexpected files next to {base}: {others:?}"
    );
    numbered.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let mut files: Vec<PathBuf> = numbered.into_iter().map(|(_, p)| p).collect();
    files.push(dir.join(base));
    files
}

/// The lines of the file at `path` once `enough` holds for them (within 10 s).
pub fn wait_for_file_lines(
    path: &Path,
    what: &str,
    enough: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let lines = if path.exists() {
            file_lines(path)
        } else {
            Vec::new()
        };
        if enough(&lines) {
            return lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: waited for {what}; {} lines",
            path.display(),
            lines.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The lines of a plain or gzip file.
pub fn file_lines(path: &Path) -> Vec<Vec<u8>> {
    let mut data = Vec::new();
    let file = std::fs::File::open(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(file)
            .read_to_end(&mut data)
            .unwrap();
    } else {
        BufReader::new(file).read_to_end(&mut data).unwrap();
    }
    assert!(
        data.is_empty() || data.ends_with(b"\n"),
        "{} ends mid-line",
        path.display()
    );
    halyard::input::lines(&data).map(<[u8]>::to_vec).collect()
}

/// Checks that each sender's messages arrived exactly once and in order, `sent[s]` of them.
fn assert_all_in_order(lines: &[Vec<u8>], sent: &[usize]) {
    let mut next: BTreeMap<usize, usize> = BTreeMap::new();
    for line in lines {
        let (sender, seq) = sender_and_seq(line)
            .unwrap_or_else(|| panic!("not a numbered line: {}", String::from_utf8_lossy(line)));
        let expected = next.entry(sender).or_default();
        assert_eq!(seq, *expected, "sender {sender}: out of order or missing");
        *expected += 1;
    }
    for (sender, &count) in sent.iter().enumerate() {
        assert_eq!(
            next.get(&sender).copied().unwrap_or(0),
            count,
            "sender {sender}"
        );
    }
}

fn send_udp(target: SocketAddr, sender: usize, count: usize) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..count {
        socket.send_to(&numbered(sender, seq), target).unwrap();
    }
}

/// RFC 6587 octet counting; `lf` switches to one message per line.
fn send_tcp(target: SocketAddr, sender: usize, count: usize, lf: bool) {
    let mut stream = std::io::BufWriter::new(TcpStream::connect(target).unwrap());
    for seq in 0..count {
        let message = numbered(sender, seq);
        if lf {
            stream.write_all(&message).unwrap();
            stream.write_all(b"\n").unwrap();
        } else {
            write!(stream, "{} ", message.len()).unwrap();
            stream.write_all(&message).unwrap();
        }
    }
    stream.flush().unwrap();
}

/// Waits (up to 10 s) until the listener's counters satisfy `done`.
fn wait_for_counters(listener: &Listener, done: impl Fn(&CounterSnapshot) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counters = listener.counters();
        if done(&counters) {
            return;
        }
        assert!(Instant::now() < deadline, "gave up waiting at {counters}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn numbered_messages_over_udp_and_tcp_survive_twenty_compressed_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ListenerSettings {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        // Two receiving threads on SO_REUSEPORT sockets: each sender's datagrams stay on one.
        receivers: 2,
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        dir: dir.path().to_owned(),
        rotation: Rotation {
            size: Some(256 << 10),
            keep: 0,
            compress: true,
            ..Rotation::default()
        },
        ..ListenerSettings::default()
    };
    let listener = Listener::start(&settings).unwrap();
    let (udp, tcp) = (listener.udp_addrs()[0], listener.tcp_addrs()[0]);
    const PER_SENDER: usize = 8000;
    let senders: Vec<_> = (0..5)
        .map(|s| {
            std::thread::spawn(move || match s {
                0..=2 => send_udp(udp, s, PER_SENDER),
                3 => send_tcp(tcp, s, PER_SENDER, false),
                _ => send_tcp(tcp, s, PER_SENDER, true),
            })
        })
        .collect();
    senders.into_iter().for_each(|t| t.join().unwrap());
    // UDP has no end-of-stream: wait until everything sent has been counted in.
    wait_for_counters(&listener, |c| c.received >= 5 * PER_SENDER as u64);
    let counters = listener.stop();
    assert_eq!(counters.received, 5 * PER_SENDER as u64, "{counters}");
    assert_eq!(counters.written, counters.received, "{counters}");
    assert_eq!(counters.lost(), 0, "{counters}");
    assert!(counters.rotations >= 20, "{counters}");

    let files = rotated_files(dir.path(), "haproxy.log");
    assert_eq!(files.len() as u64, counters.rotations + 1);
    let mut lines = Vec::new();
    for file in &files[..files.len() - 1] {
        assert!(
            file.to_string_lossy().ends_with(".gz"),
            "{}",
            file.display()
        );
        let size = file_lines(file).iter().map(|l| l.len() + 1).sum::<usize>();
        assert!(size <= 256 << 10, "{} holds {size} bytes", file.display());
    }
    for file in &files {
        lines.extend(file_lines(file));
    }
    assert_all_in_order(&lines, &[PER_SENDER; 5]);
}

/// `halyard listen` run as a user runs it, with its stderr collected.
pub struct ListenProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl ListenProcess {
    /// Starts it and waits until it says it is receiving.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let mut all = vec!["--dir", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        Self::start_with(&all)
    }

    /// Starts it with exactly `args`.
    fn start_with(args: &[&str]) -> Self {
        let mut command = halyard();
        command.arg("listen").args(args);
        let Collected { child, stderr } = Collected::spawn(command);
        let process = ListenProcess { child, stderr };
        process.wait_for("receiving on");
        process
    }

    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stderr.lock().unwrap().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no '{text}' from halyard listen: {}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// SIGTERM, then the exit code and the final counters.
    pub fn stop(mut self) -> (Option<i32>, BTreeMap<String, u64>) {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().unwrap();
        self.wait_for("stopped:");
        let stderr = self.stderr.lock().unwrap().clone();
        let line = stderr.lines().find(|l| l.contains("stopped:")).unwrap();
        let counters = line
            .split("stopped: ")
            .nth(1)
            .unwrap()
            .split(' ')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect();
        (status.code(), counters)
    }
}

/// A UDP port free now on 127.0.0.1 (the OS picks it; there is a small window before use).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the listener has counted `n` messages, by asking for its counters (SIGUSR1).
fn wait_received(process: &ListenProcess, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("received={n} ");
    loop {
        process.signal(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(50));
        if process.stderr.lock().unwrap().contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never received {n}");
    }
}

#[test]
fn sighup_after_an_external_rename_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let process = ListenProcess::start(dir.path(), &["--udp", &addr.to_string()]);
    send_udp(addr, 0, 3000);
    wait_received(&process, 3000);
    // What logrotate does with `create`: rename, then signal.
    std::fs::rename(
        dir.path().join("haproxy.log"),
        dir.path().join("haproxy.log.1"),
    )
    .unwrap();
    send_udp(addr, 1, 500);
    process.signal(libc::SIGHUP);
    process.wait_for("SIGHUP: reopening files");
    send_udp(addr, 2, 3000);
    wait_received(&process, 6500);
    let (code, counters) = process.stop();
    assert_eq!(code, Some(0));
    assert_eq!(counters["written"], 6500, "{counters:?}");
    let old = file_lines(&dir.path().join("haproxy.log.1"));
    let new = file_lines(&dir.path().join("haproxy.log"));
    assert!(
        old.len() >= 3000 && !new.is_empty(),
        "{} + {}",
        old.len(),
        new.len()
    );
    let all: Vec<Vec<u8>> = old.into_iter().chain(new).collect();
    assert_all_in_order(&all, &[3000, 500, 3000]);
}

#[test]
fn garbage_and_oversized_messages_are_kept_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let addr = format!("127.0.0.1:{port}");
    let process = ListenProcess::start(
        dir.path(),
        &["--udp", &addr, "--tcp", &addr, "--max-message-size", "1k"],
    );
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let garbage: &[u8] = b"\xff\xfe\x00binary\nnot syslog\x01";
    udp.send_to(garbage, &addr).unwrap();
    let mut big = b"<13>Nov 25 01:50:00 big: ".to_vec();
    big.resize(5000, b'u');
    udp.send_to(&big, &addr).unwrap();
    // UDP and TCP are received on different threads: let the datagrams in first, so the
    // order in the file is known.
    wait_received(&process, 2);
    let mut stream = TcpStream::connect(&addr).unwrap();
    let mut tcp_big = b"<13>Nov 25 01:50:00 big: ".to_vec();
    tcp_big.resize(3000, b't');
    write!(stream, "{} ", tcp_big.len()).unwrap();
    stream.write_all(&tcp_big).unwrap();
    stream
        .write_all(b"<13>Nov 25 01:50:00 after: fine\n")
        .unwrap();
    drop(stream);
    wait_received(&process, 4);
    let (code, counters) = process.stop();
    assert_eq!(code, Some(0));
    assert_eq!(
        (
            counters["not_syslog"],
            counters["truncated"],
            counters["written"]
        ),
        (1, 2, 4),
        "{counters:?}"
    );
    let lines = file_lines(&dir.path().join("haproxy.log"));
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], b"\xff\xfe\x00binary#012not syslog\x01");
    for (line, fill) in [(&lines[1], b'u'), (&lines[2], b't')] {
        let parsed = parse_line(line);
        assert_eq!(parsed.envelope.tag, Some(&b"big"[..]));
        assert_eq!(parsed.envelope.hostname, Some(&b"127.0.0.1"[..]));
        // The message keeps its first 1024 bytes: header (25) and 999 of the fill.
        assert_eq!(parsed.message.len(), 1024 - 25);
        assert!(parsed.message.iter().all(|&b| b == fill));
    }
    assert!(lines[3].ends_with(b"after: fine"));
}

#[test]
fn a_taken_port_is_an_error_that_says_who_holds_it() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = halyard()
        .args([
            "listen",
            "--udp",
            &addr,
            "--dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot bind UDP {addr}: "))
            && stderr.contains(&format!("(pid {})", std::process::id())),
        "{stderr}"
    );
}

/// An httplog line from HAProxy for `server`, with `Ta` and `status`.
fn request_line(server: &str, ta: u32, status: u16) -> Vec<u8> {
    format!(
        "<158>Nov 25 01:50:00 haproxy[9]: 127.0.0.1:4000 [25/Nov/2026:01:50:00.000] fe be/{server} 0/0/1/1/{ta} {status} 10 - - ---- 1/1/0/0/0 0/0 \"GET /x HTTP/1.1\""
    )
    .into_bytes()
}

#[test]
fn live_view_and_interval_reports_see_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ListenerSettings {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        dir: dir.path().to_owned(),
        live: true,
        report_every: Some(Duration::from_secs(1)),
        ..ListenerSettings::default()
    };
    let listener = Listener::start(&settings).unwrap();
    let target = listener.udp_addrs()[0];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // 100 requests each on a and b (Ta 1..=100), 50 on c of which 5 are 503; then c goes down.
    for ta in 1..=100 {
        socket.send_to(&request_line("a", ta, 200), target).unwrap();
        socket.send_to(&request_line("b", ta, 200), target).unwrap();
        if ta % 2 == 0 {
            let status = if ta % 20 == 0 { 503 } else { 200 };
            socket
                .send_to(&request_line("c", ta, status), target)
                .unwrap();
        }
        // Spread over more than two report intervals.
        std::thread::sleep(Duration::from_millis(25));
    }
    let down = b"<129>Nov 25 01:50:01 haproxy[9]: Server be/c is DOWN, reason: Layer4 timeout, check duration: 2001ms. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    socket.send_to(down, target).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = listener.live_rows().unwrap();
        if rows.iter().map(|r| r.requests).sum::<u64>() == 250 && rows[2].last_change.is_some() {
            break rows;
        }
        assert!(Instant::now() < deadline, "live view stuck at {rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let summary: Vec<String> = rows
        .iter()
        .map(|r| {
            let ms = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
            let (p50, p99) = (ms(r.p50_ms), ms(r.p99_ms));
            format!("{} {} {} {p50} {p99}", r.server, r.requests, r.status_5xx)
        })
        .collect();
    assert_eq!(summary, ["a 100 0 50 99", "b 100 0 50 99", "c 50 5 50 100"]);
    assert_eq!(rows[2].last_change.as_ref().unwrap().0, "DOWN");
    let counters = listener.stop();
    assert_eq!(counters.live_skipped, 0);

    // The interval reports, the last one partial, add up to every request.
    let mut reports = 0;
    let mut per_server: BTreeMap<String, u64> = BTreeMap::new();
    let mut requests = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("report-") {
            continue;
        }
        assert!(name.ends_with(".json"), "{name}");
        reports += 1;
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
        requests += doc["report"]["summary"]["http_requests"].as_u64().unwrap();
        for row in doc["report"]["servers"].as_array().unwrap() {
            *per_server
                .entry(row["server"].as_str().unwrap().to_owned())
                .or_default() += row["requests"].as_u64().unwrap();
        }
    }
    assert!(reports >= 2, "{reports} reports");
    assert_eq!(requests, 250);
    assert_eq!(
        per_server.into_iter().collect::<Vec<_>>(),
        [
            ("a".to_owned(), 100),
            ("b".to_owned(), 100),
            ("c".to_owned(), 50)
        ]
    );
}

/// A tmpfs of `kib` KiB mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(kib: usize) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        SmallDisk { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_loses_counted_lines_only_and_writing_resumes_when_space_returns() {
    let disk = SmallDisk::mount(256);
    let filler = disk.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 128 << 10]).unwrap();
    let logs = disk.dir.path().join("logs");
    let port = free_udp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let process = ListenProcess::start(&logs, &["--udp", &addr.to_string()]);
    // About 400 KB into the 128 KB left: most of it cannot be written.
    for chunk in 0..20 {
        for seq in chunk * 100..(chunk + 1) * 100 {
            UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .send_to(&numbered(0, seq), addr)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_received(&process, 2000);
    process.wait_for("cannot write");
    std::fs::remove_file(&filler).unwrap();
    send_udp(addr, 1, 200);
    wait_received(&process, 2200);
    process.wait_for("works again");
    let (code, counters) = process.stop();
    assert_eq!(code, Some(1), "lost lines make exit status 1");
    assert!(counters["write_lost"] > 0, "{counters:?}");
    assert_eq!(
        counters["written"] + counters["write_lost"],
        2200,
        "{counters:?}"
    );
    let lines = file_lines(&logs.join("haproxy.log"));
    assert_eq!(lines.len() as u64, counters["written"]);
    // Whole lines only, each once; sender 1 came after the space returned: all written.
    let mut seen = std::collections::BTreeSet::new();
    for line in &lines {
        let id = sender_and_seq(line).expect("a whole numbered line");
        assert!(seen.insert(id), "{id:?} twice");
    }
    assert!((0..200).all(|seq| seen.contains(&(1, seq))));
}

#[test]
fn routes_split_by_facility_severity_and_tag_and_the_rest_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ListenerSettings {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        dir: dir.path().to_owned(),
        routes: vec![
            Route::from_words(&["local3.*", "haproxy.log"]).unwrap(),
            Route::from_words(&["*.err", "tag=nginx", "nginx-errors.log"]).unwrap(),
        ],
        unmatched: Some("other.log".to_owned()),
        ..ListenerSettings::default()
    };
    let listener = Listener::start(&settings).unwrap();
    let target = listener.udp_addrs()[0];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for message in [
        "<158>Nov 25 01:50:00 haproxy[1]: local3.info", // 19*8+6
        "<155>Nov 25 01:50:00 nginx[2]: local3.err from nginx: both routes",
        "<11>Nov 25 01:50:00 nginx[2]: user.err from nginx",
        "<14>Nov 25 01:50:00 nginx[2]: user.info: no route",
        "<11>Nov 25 01:50:00 cron[3]: user.err, not nginx: no route",
    ] {
        socket.send_to(message.as_bytes(), target).unwrap();
    }
    wait_for_counters(&listener, |c| c.received >= 5);
    let counters = listener.stop();
    assert_eq!((counters.unmatched, counters.written), (2, 6), "{counters}");
    let messages = |file: &str| -> Vec<String> {
        file_lines(&dir.path().join(file))
            .iter()
            .map(|l| String::from_utf8_lossy(parse_line(l).message).into_owned())
            .collect()
    };
    assert_eq!(
        messages("haproxy.log"),
        ["local3.info", "local3.err from nginx: both routes"]
    );
    assert_eq!(
        messages("nginx-errors.log"),
        ["local3.err from nginx: both routes", "user.err from nginx"]
    );
    assert_eq!(
        messages("other.log"),
        ["user.info: no route", "user.err, not nginx: no route"]
    );
}

#[test]
fn senders_outside_allow_are_rejected_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ListenerSettings {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        dir: dir.path().to_owned(),
        allow: vec!["10.0.0.0/8".parse().unwrap()],
        ..ListenerSettings::default()
    };
    let listener = Listener::start(&settings).unwrap();
    send_udp(listener.udp_addrs()[0], 0, 10);
    let mut stream = TcpStream::connect(listener.tcp_addrs()[0]).unwrap();
    let _ = stream.write_all(b"<13>Nov 25 01:50:00 t: refused\n");
    wait_for_counters(&listener, |c| c.rejected >= 11);
    let counters = listener.stop();
    assert_eq!((counters.received, counters.written), (0, 0), "{counters}");
    assert!(file_lines(&dir.path().join("haproxy.log")).is_empty());
}

#[test]
fn a_log_forward_section_configures_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let config = dir.path().join("halyard.cfg");
    std::fs::write(
        &config,
        format!(
            "log-forward syslog\n    dgram-bind 127.0.0.1:{port}\n    dir {}\n    file from-config.log\n    output-format rfc5424\n    log 10.0.0.1:514 local0\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let process = ListenProcess::start_with(&["-f", config.to_str().unwrap()]);
    assert!(process
        .stderr
        .lock()
        .unwrap()
        .contains("halyard.cfg:6: 'log' (forwarding to another server) is not supported"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    send_udp(addr, 0, 3);
    wait_received(&process, 3);
    let (code, _) = process.stop();
    assert_eq!(code, Some(0));
    let lines = file_lines(&dir.path().join("from-config.log"));
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with(b"<158>1 "),
        "{}",
        String::from_utf8_lossy(&lines[0])
    );
    assert_all_in_order(&lines, &[3]);
}

#[test]
fn files_rotate_on_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ListenerSettings {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        dir: dir.path().to_owned(),
        rotation: Rotation {
            every: Some(Duration::from_secs(1)),
            keep: 0,
            ..Rotation::default()
        },
        ..ListenerSettings::default()
    };
    let listener = Listener::start(&settings).unwrap();
    let target = listener.udp_addrs()[0];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..60 {
        socket.send_to(&numbered(0, seq), target).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let counters = listener.stop();
    assert!(counters.rotations >= 2, "{counters}");
    let files = rotated_files(dir.path(), "haproxy.log");
    let lines: Vec<Vec<u8>> = files.iter().flat_map(|f| file_lines(f)).collect();
    assert_all_in_order(&lines, &[60]);
}

#[test]
fn kernel_drops_are_counted_so_every_datagram_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ListenerSettings {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        dir: dir.path().to_owned(),
        // The smallest buffer the kernel allows, against bursts: it must drop.
        rcvbuf: 1,
        ..ListenerSettings::default()
    };
    let listener = Listener::start(&settings).unwrap();
    let target = listener.udp_addrs()[0];
    // Bursts smaller than the loopback device's backlog (1000 packets), so that what is
    // dropped is dropped at this socket, not in the device, where other tests would lose too.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for burst in 0..5 {
        for seq in burst * 800..(burst + 1) * 800 {
            socket.send_to(&numbered(0, seq), target).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The drop count rides on the next datagram received: send one after the bursts.
    std::thread::sleep(Duration::from_millis(200));
    send_udp(target, 1, 1);
    wait_for_counters(&listener, |c| c.received + c.kernel_dropped == 4001);
    let counters = listener.stop();
    assert!(counters.kernel_dropped > 0, "{counters}");
    assert_eq!(counters.written, counters.received, "{counters}");
    let lines = file_lines(&dir.path().join("haproxy.log"));
    assert_eq!(lines.len() as u64, counters.written);
}

#[test]
fn a_privileged_port_without_privilege_says_what_to_do() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    // As `nobody`: the tests run as root, who may bind port 514.
    let out = halyard()
        .args(["listen", "--udp", "127.0.0.1:514", "--dir"])
        .arg(dir.path())
        .uid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("halyard: cannot bind UDP 127.0.0.1:514: Permission denied")
            && stderr.contains("CAP_NET_BIND_SERVICE")
            && stderr.contains("--udp 127.0.0.1:5514")
            && stderr.matches("Permission denied").count() == 1,
        "{stderr}"
    );
}

#[test]
fn rotations_within_one_batch_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ListenerSettings {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        dir: dir.path().to_owned(),
        // About ten 200-byte lines per file: one received batch crosses it several times.
        rotation: Rotation {
            size: Some(2 << 10),
            keep: 0,
            ..Rotation::default()
        },
        ..ListenerSettings::default()
    };
    let listener = Listener::start(&settings).unwrap();
    send_udp(listener.udp_addrs()[0], 0, 3000);
    wait_for_counters(&listener, |c| c.received >= 3000);
    let counters = listener.stop();
    assert!(counters.rotations > 250, "{counters}");
    let files = rotated_files(dir.path(), "haproxy.log");
    let lines: Vec<Vec<u8>> = files.iter().flat_map(|f| file_lines(f)).collect();
    assert_all_in_order(&lines, &[3000]);
}

#[test]
fn drops_while_stopped_are_counted_even_with_no_datagram_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let process = ListenProcess::start(dir.path(), &["--udp", &addr.to_string(), "--rcvbuf", "4k"]);
    process.signal(libc::SIGSTOP);
    send_udp(addr, 0, 2000);
    process.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(300));
    let (code, counters) = process.stop();
    assert_eq!(code, Some(1), "lost messages make exit status 1");
    assert!(counters["kernel_dropped"] > 0, "{counters:?}");
    assert_eq!(
        counters["received"] + counters["kernel_dropped"],
        2000,
        "{counters:?}"
    );
}

#[test]
fn timeout_client_zero_keeps_an_idle_tcp_connection() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ListenerSettings {
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        dir: dir.path().to_owned(),
        tcp_idle_timeout: Duration::ZERO,
        ..ListenerSettings::default()
    };
    let listener = Listener::start(&settings).unwrap();
    let mut stream = TcpStream::connect(listener.tcp_addrs()[0]).unwrap();
    stream.write_all(b"<13>Nov 25 01:50:00 t: first\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream
        .write_all(b"<13>Nov 25 01:50:00 t: second\n")
        .unwrap();
    drop(stream);
    wait_for_counters(&listener, |c| c.received >= 2);
    assert_eq!(listener.stop().written, 2);
}
