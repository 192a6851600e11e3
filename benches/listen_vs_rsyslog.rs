//! `halyard listen` against Debian's rsyslogd receiving the same UDP syslog load, in the same
//! run: each one's loss per rate and its highest zero-loss rate.
//!
//! `cargo bench --bench listen_vs_rsyslog`. Env:
//! - `HALYARD_LISTEN_RATES`: total messages per second to try, comma-separated (default
//!   `50000,100000,150000,200000`);
//! - `HALYARD_LISTEN_SECONDS`: how long each rate is sent (default 10);
//! - `HALYARD_LISTEN_ONLY`: `halyard` or `rsyslog` runs one receiver; `sender` measures the
//!   load generator alone, into a socket nobody reads (default: both receivers);
//! - `HALYARD_BENCH_DIR`: where the run directories go (default `/var/tmp/halyard-bench`);
//!   `HALYARD_LISTEN_KEEP=1` keeps them.
//!
//! Each rate is sent by 2 senders as 300-byte HAProxy httplog lines (see `loadgen.rs`) to a
//! fresh receiver, which is stopped with SIGTERM once its socket is empty and its files stop
//! growing; the files are then checked message by message. The receivers alternate which goes
//! first at each rate. rsyslogd runs with default imudp settings and Debian's default file
//! format (`RSYSLOG_FileFormat`): the anchor as Debian ships it, which includes the kernel's
//! default receive buffer (`net.core.rmem_default`, 208 KiB here) where halyard asks for its own
//! (32 MiB by default); that difference is part of what is compared.
//! Beside each run: the socket's own drop counter (`/proc/net/udp`) and the system-wide
//! `Udp: RcvbufErrors` delta (`/proc/net/snmp`), peak RSS and CPU time of the receiver, and
//! the load average: the machine is shared, and a busy one costs rsyslog far more than halyard.
//! Target: halyard loses nothing at or below 100 000 messages/s. Exits 1 when it does.

mod anchor;
mod corpus;
mod loadgen;

use std::ffi::OsString;
use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anchor::env_number;
use loadgen::{send_udp, Load, SendStats, Verification};

/// halyard must lose nothing at or below this rate (messages per second).
const TARGET_RATE: u64 = 100_000;
const SENDERS: usize = 2;
const MESSAGE_SIZE: usize = 300;
const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
/// The log file both receivers write, in the run's `out/` directory.
const LOG_FILE: &str = "haproxy.log";

/// How long a receiver may take to bind its port.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// After sending, a receiver counts as done once its socket is empty and its files have not
/// grown for `QUIET`, but not before `SETTLE_MIN` nor after `SETTLE_MAX`.
const QUIET: Duration = Duration::from_secs(1);
const SETTLE_MIN: Duration = Duration::from_secs(2);
const SETTLE_MAX: Duration = Duration::from_secs(30);
/// How long a receiver may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// `halyard listen`'s command line for a run, in one place so it is easy to adjust as the
/// subcommand grows.
fn halyard_listen_args(addr: SocketAddr, out: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "listen",
        "--udp",
        &addr.to_string(),
        "--file",
        LOG_FILE,
        "--rotate-size",
        "10M",
        "--keep",
        "0",
        // Live parsing on: the rolling per-server view and the report of every 10 s.
        "--live",
        "--report-every",
        "10s",
        "--dir",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(out.into());
    args
}

/// rsyslogd's configuration for a run: imudp with its defaults and one file action, as
/// Debian's own `/etc/rsyslog.conf` writes its files (no template: `RSYSLOG_FileFormat`).
fn rsyslog_config(addr: SocketAddr, run: &Path, out: &Path) -> String {
    format!(
        "global(workDirectory=\"{run}\")\n\
         module(load=\"imudp\")\n\
         input(type=\"imudp\" port=\"{port}\" address=\"{ip}\")\n\
         *.* {file}\n",
        run = run.display(),
        port = addr.port(),
        ip = addr.ip(),
        file = out.join(LOG_FILE).display(),
    )
}

/// A syslog receiver under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiver {
    Halyard,
    Rsyslog,
}

impl Receiver {
    fn name(self) -> &'static str {
        match self {
            Receiver::Halyard => "halyard",
            Receiver::Rsyslog => "rsyslog",
        }
    }

    /// The command that receives on `addr` and writes into `out`; its own files go in `run`.
    fn command(self, addr: SocketAddr, run: &Path, out: &Path) -> Command {
        match self {
            Receiver::Halyard => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_halyard"));
                cmd.args(halyard_listen_args(addr, out));
                cmd
            }
            Receiver::Rsyslog => {
                let conf = run.join("rsyslog.conf");
                std::fs::write(&conf, rsyslog_config(addr, run, out)).expect("write rsyslog.conf");
                let mut cmd = Command::new(RSYSLOGD);
                // -n: stay in the foreground, so the child is rsyslogd itself (wait4 gets its
                // RSS); -i: a pid file of its own instead of /run/rsyslogd.pid.
                cmd.arg("-n")
                    .arg("-f")
                    .arg(&conf)
                    .arg("-i")
                    .arg(run.join("rsyslogd.pid"));
                cmd
            }
        }
    }
}

/// How a receiver exited.
#[derive(Debug, Clone, Copy)]
struct Exit {
    status: ExitStatus,
    /// Killed with SIGKILL after not exiting on SIGTERM in time.
    killed: bool,
    max_rss_kib: u64,
    /// User plus system CPU time.
    cpu: Duration,
}

/// A receiver process, reaped with wait4 for its peak RSS. Dropping it kills it.
struct Running {
    pid: libc::pid_t,
    name: &'static str,
    stderr: PathBuf,
    exit: Option<Exit>,
}

impl Running {
    /// Starts `receiver` and waits until its UDP port is bound.
    fn start(receiver: Receiver, addr: SocketAddr, run: &Path, out: &Path) -> Running {
        let stderr = run.join(format!("{}.stderr", receiver.name()));
        let mut cmd = receiver.command(addr, run, out);
        cmd.stdin(Stdio::null())
            .stdout(File::create(run.join(format!("{}.stdout", receiver.name()))).expect("stdout"))
            .stderr(File::create(&stderr).expect("stderr file"));
        #[allow(clippy::zombie_processes)] // reaped by wait4 in `wait`
        let child = cmd.spawn().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
        let mut running = Running {
            pid: child.id() as libc::pid_t,
            name: receiver.name(),
            stderr,
            exit: None,
        };
        let started = Instant::now();
        while udp_socket(addr.port()).sockets == 0 {
            if running.wait(Duration::ZERO).is_some() || started.elapsed() > START_TIMEOUT {
                panic!(
                    "{} did not bind {addr} ({:?}): {}",
                    running.name,
                    running.exit.map(|e| e.status),
                    running.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        running
    }

    /// Waits up to `timeout` for the process to exit; its exit once it has.
    fn wait(&mut self, timeout: Duration) -> Option<Exit> {
        let started = Instant::now();
        while self.exit.is_none() {
            let mut status = 0;
            // SAFETY: rusage is plain data that wait4 fills in.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: waiting for our own child with valid pointers.
            let pid = unsafe { libc::wait4(self.pid, &mut status, libc::WNOHANG, &mut usage) };
            if pid == self.pid {
                self.exit = Some(Exit {
                    status: ExitStatus::from_raw(status),
                    killed: false,
                    max_rss_kib: usage.ru_maxrss as u64,
                    cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
                });
            } else if pid < 0 || started.elapsed() >= timeout {
                break;
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.exit
    }

    /// SIGTERM, then SIGKILL if it has not exited within [`STOP_TIMEOUT`].
    fn stop(&mut self) -> Exit {
        if let Some(exit) = self.wait(Duration::ZERO) {
            return exit;
        }
        // SAFETY: signalling our own child, not yet reaped (so the pid is still ours).
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        if let Some(exit) = self.wait(STOP_TIMEOUT) {
            return exit;
        }
        // SAFETY: as above.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let mut exit = self.wait(STOP_TIMEOUT).expect("killed receiver exits");
        exit.killed = true;
        self.exit = Some(exit);
        exit
    }

    /// The end of what the process wrote to stderr, for messages.
    fn stderr_text(&self) -> String {
        let text = std::fs::read(&self.stderr).unwrap_or_default();
        let tail = &text[text.len().saturating_sub(2000)..];
        String::from_utf8_lossy(tail).trim().to_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.wait(Duration::ZERO).is_none() {
            // SAFETY: signalling our own child, not yet reaped.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.wait(STOP_TIMEOUT);
        }
    }
}

/// The sockets bound to a local UDP port, from `/proc/net/udp` (IPv4).
#[derive(Debug, Clone, Copy, Default)]
struct UdpPort {
    sockets: usize,
    /// Bytes waiting to be read, all sockets.
    rx_queue: u64,
    /// Datagrams dropped because a socket's buffer was full, all sockets.
    drops: u64,
}

fn udp_socket(port: u16) -> UdpPort {
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let suffix = format!(":{port:04X}");
    let mut found = UdpPort::default();
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    // ref pointer drops
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 13 || !fields[1].ends_with(&suffix) {
            continue;
        }
        let hex = |s: &str| u64::from_str_radix(s, 16).unwrap_or(0);
        found.sockets += 1;
        found.rx_queue += fields[4].split_once(':').map_or(0, |(_, rx)| hex(rx));
        found.drops += fields[12].parse::<u64>().unwrap_or(0);
    }
    found
}

/// `Udp: RcvbufErrors` from `/proc/net/snmp`: datagrams dropped system-wide for want of
/// receive buffer.
fn rcvbuf_errors() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// Total size of the files in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Waits until the receiver on `port` has read everything and stopped writing to `out`.
fn settle(port: u16, out: &Path) -> Duration {
    let started = Instant::now();
    let (mut size, mut quiet_since) = (dir_bytes(out), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = dir_bytes(out);
        if now != size || udp_socket(port).rx_queue > 0 {
            (size, quiet_since) = (now, Instant::now());
        }
        let took = started.elapsed();
        if (took >= SETTLE_MIN && quiet_since.elapsed() >= QUIET) || took >= SETTLE_MAX {
            return took;
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a free port")
}

/// One receiver at one rate.
struct RunResult {
    receiver: Receiver,
    rate: u64,
    sent: SendStats,
    verification: Verification,
    socket_drops: u64,
    rcvbuf_errors: u64,
    exit: Exit,
}

impl RunResult {
    fn lost(&self) -> u64 {
        self.verification.lost()
    }
}

/// Sends `load` to a fresh `receiver` and checks what it wrote.
fn run_once(receiver: Receiver, load: &Load, parent: &Path, keep: bool) -> RunResult {
    let run = tempfile::Builder::new()
        .prefix(&format!("listen-{}-{}-", receiver.name(), load.rate))
        .tempdir_in(parent)
        .expect("create run dir");
    let out = run.path().join("out");
    std::fs::create_dir(&out).expect("create out dir");
    let addr = free_port();
    let mut running = Running::start(receiver, addr, run.path(), &out);
    let errors_before = rcvbuf_errors();
    let sent = send_udp(addr, load);
    settle(addr.port(), &out);
    let socket = udp_socket(addr.port());
    let rcvbuf = rcvbuf_errors() - errors_before;
    let exit = running.stop();
    if !exit.status.success() {
        eprintln!(
            "{} exited with {} after SIGTERM: {}",
            receiver.name(),
            exit.status,
            running.stderr_text()
        );
    }
    let verification = loadgen::verify(&out, &sent.sent);
    if keep {
        println!("  kept {}", run.keep().display());
    } else {
        drop(run);
    }
    // Write-back of this run's files must not slow the next one.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    RunResult {
        receiver,
        rate: load.rate,
        sent,
        verification,
        socket_drops: socket.drops,
        rcvbuf_errors: rcvbuf,
        exit,
    }
}

fn print_run(r: &RunResult) {
    println!(
        "{:>8}/s {:<8} sent {} at {:.0}/s{}; {}; socket drops {}, RcvbufErrors +{}; exit {}{}, \
         peak RSS {:.0} MB, CPU {:.1} s; load average {}",
        r.rate,
        r.receiver.name(),
        r.sent.total(),
        r.sent.rate(),
        if r.sent.errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.sent.errors.join("; "))
        },
        r.verification,
        r.socket_drops,
        r.rcvbuf_errors,
        describe(r.exit.status),
        if r.exit.killed { " (killed)" } else { "" },
        r.exit.max_rss_kib as f64 / 1024.0,
        r.exit.cpu.as_secs_f64(),
        load_average(),
    );
}

/// `0`, `1`, or `signal 9`.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The 1-minute load average, to tell a busy machine from a slow receiver.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| Some(l.split_whitespace().next()?.to_owned()))
        .unwrap_or_else(|| "?".into())
}

/// Highest rate with no loss, and whether every rate below it was lossless too.
fn highest_lossless(results: &[&RunResult]) -> String {
    let best = results
        .iter()
        .filter(|r| r.lost() == 0)
        .map(|r| r.rate)
        .max();
    match best {
        None => "none of the rates tried".to_owned(),
        Some(best) => {
            let lossy_below: Vec<String> = results
                .iter()
                .filter(|r| r.rate < best && r.lost() > 0)
                .map(|r| r.rate.to_string())
                .collect();
            if lossy_below.is_empty() {
                format!("{best} msg/s")
            } else {
                format!(
                    "{best} msg/s (but lost at {} msg/s)",
                    lossy_below.join(", ")
                )
            }
        }
    }
}

fn print_summary(results: &[RunResult], receivers: &[Receiver]) {
    println!();
    print!("{:>8}", "rate/s");
    for r in receivers {
        print!(
            " | {:<7} {:>8} {:>9} {:>8} {:>9} {:>9}",
            r.name(),
            "sent/s",
            "lost",
            "lost %",
            "sock drop",
            "rcvbuf +"
        );
    }
    println!();
    let mut rates: Vec<u64> = results.iter().map(|r| r.rate).collect();
    rates.dedup();
    for rate in rates {
        print!("{rate:>8}");
        for receiver in receivers {
            match results
                .iter()
                .find(|r| r.rate == rate && r.receiver == *receiver)
            {
                Some(r) => print!(
                    " | {:<7} {:>8.0} {:>9} {:>7.3}% {:>9} {:>9}",
                    "",
                    r.sent.rate(),
                    r.lost(),
                    r.verification.lost_percent(),
                    r.socket_drops,
                    r.rcvbuf_errors
                ),
                None => print!(" | {:<7} {:>8}", "", "-"),
            }
        }
        println!();
    }
    println!();
    for receiver in receivers {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.receiver == *receiver).collect();
        let peak = runs.iter().map(|r| r.exit.max_rss_kib).max().unwrap_or(0);
        println!(
            "{}: highest zero-loss rate {}; peak RSS {:.0} MB",
            receiver.name(),
            highest_lossless(&runs),
            peak as f64 / 1024.0
        );
    }
}

/// The load generator alone, into a socket nobody reads: flat out, then paced at each rate.
fn measure_sender(rates: &[u64], duration: Duration) {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind sink");
    let addr = sink.local_addr().expect("sink address");
    let loads = std::iter::once(0).chain(rates.iter().copied());
    for rate in loads {
        let load = Load {
            senders: SENDERS,
            rate,
            duration,
            size: MESSAGE_SIZE,
        };
        let cpu_before = own_cpu();
        let sent = send_udp(addr, &load);
        let cpu = own_cpu() - cpu_before;
        println!(
            "sender, {}: {} messages in {:.2} s, {:.0}/s, CPU {:.2} s ({:.0}% of a core), {} retries{}",
            if rate == 0 {
                "flat out".to_owned()
            } else {
                format!("paced at {rate}/s")
            },
            sent.total(),
            sent.elapsed.as_secs_f64(),
            sent.rate(),
            cpu.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / sent.elapsed.as_secs_f64().max(1e-9),
            sent.retries,
            if sent.errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", sent.errors.join("; "))
            },
        );
    }
}

/// User plus system CPU time of this process so far.
fn own_cpu() -> Duration {
    // SAFETY: rusage is plain data that getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to our own rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Whether this build of halyard has the `listen` subcommand.
fn halyard_listens() -> bool {
    Command::new(env!("CARGO_BIN_EXE_halyard"))
        .args(["listen", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let rates: Vec<u64> = std::env::var("HALYARD_LISTEN_RATES")
        .unwrap_or_else(|_| "50000,100000,150000,200000".into())
        .split(',')
        .map(|r| {
            r.trim().replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("HALYARD_LISTEN_RATES: not a rate: {r:?}");
                std::process::exit(2)
            })
        })
        .collect();
    let duration = Duration::from_secs(env_number("HALYARD_LISTEN_SECONDS", 10));
    let only = std::env::var("HALYARD_LISTEN_ONLY").unwrap_or_default();
    let keep = std::env::var("HALYARD_LISTEN_KEEP").is_ok_and(|v| v == "1");
    let parent = PathBuf::from(
        std::env::var("HALYARD_BENCH_DIR").unwrap_or_else(|_| "/var/tmp/halyard-bench".into()),
    );
    std::fs::create_dir_all(&parent).expect("create bench dir");
    if let Err(e) = loadgen::check_messages(MESSAGE_SIZE) {
        panic!("the load's messages are wrong: {e}");
    }
    if only == "sender" {
        return measure_sender(&rates, duration);
    }

    let mut receivers = Vec::new();
    if only != "rsyslog" {
        if !halyard_listens() {
            eprintln!(
                "this halyard has no `listen` subcommand; HALYARD_LISTEN_ONLY=rsyslog runs the \
                 anchor alone"
            );
            std::process::exit(2);
        }
        receivers.push(Receiver::Halyard);
    }
    if only != "halyard" {
        if Path::new(RSYSLOGD).exists() {
            receivers.push(Receiver::Rsyslog);
        } else {
            println!("{RSYSLOGD} not found (apt-get install rsyslog): no anchor this run");
        }
    }
    println!(
        "{SENDERS} senders, {MESSAGE_SIZE}-byte messages over UDP, {} s per rate; \
         receivers: {}; load average {}",
        duration.as_secs(),
        receivers
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", "),
        load_average(),
    );
    let mut results = Vec::new();
    for (k, &rate) in rates.iter().enumerate() {
        let load = Load {
            senders: SENDERS,
            rate,
            duration,
            size: MESSAGE_SIZE,
        };
        // Alternate who goes first, so neither always runs on the other's leftovers.
        let mut order = receivers.clone();
        if k % 2 == 1 {
            order.reverse();
        }
        for receiver in order {
            let result = run_once(receiver, &load, &parent, keep);
            print_run(&result);
            if result.sent.rate() < 0.95 * rate as f64 {
                println!("  the sender fell short of {rate}/s: this rate measures the sender");
            }
            results.push(result);
        }
    }
    print_summary(&results, &receivers);

    let missed: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.receiver == Receiver::Halyard && r.rate <= TARGET_RATE && r.lost() > 0)
        .collect();
    if receivers.contains(&Receiver::Halyard) {
        println!(
            "target: halyard loses nothing at or below {TARGET_RATE} msg/s: {}",
            if missed.is_empty() { "met" } else { "MISSED" }
        );
    }
    for r in &missed {
        println!(
            "  halyard lost {} of {} at {} msg/s",
            r.lost(),
            r.verification.expected(),
            r.rate
        );
    }
    if !missed.is_empty() {
        std::process::exit(1);
    }
}
