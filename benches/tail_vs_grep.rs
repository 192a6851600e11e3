//! `halyard tail` against `tail -F | grep` and lnav, on the same work in the same run.
//!
//! `cargo bench --bench tail_vs_grep` (env: `HALYARD_BENCH_DIR`, `HALYARD_BENCH_BYTES`
//! (default 1 GiB) as in the other benches; `HALYARD_BENCH_RUNS` (default 2);
//! `HALYARD_BENCH_FOLLOW_SECS` (default 60), how long to follow at
//! `HALYARD_BENCH_FOLLOW_RATE` (default 20000) lines/s for the memory check). It reports:
//! 1. catch-up over the corpus to /dev/null: `halyard tail -n +1 --format raw --filter
//!    'status>=500'` against `tail -n +1 FILE | grep -E ' 5[0-9]{2} '` and `lnav -n -c
//!    ':filter-in  5[0-9]{2} '`, and `--format pretty` (every line rendered), in lines/s;
//! 2. follow latency: lines appended to a followed file, time until each is printed, p50,
//!    p99 and max, against `tail -F FILE | grep --line-buffered`;
//! 3. memory while following at a steady rate, with a rotation every 10 s: RSS sampled
//!    each second.
//!
//! Targets: >= 1M lines/s raw with a filter, >= 500k lines/s pretty, p99 latency <= 200 ms,
//! RSS growth after the first 5 s <= 10 MB. Exits 1 when one is missed.

mod anchor;
mod corpus;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anchor::{corpus_file, env_number, measure, Measured};

const MIN_RAW_LINES_PER_SEC: f64 = 1e6;
const MIN_PRETTY_LINES_PER_SEC: f64 = 5e5;
const MAX_P99_LATENCY: Duration = Duration::from_millis(200);
const MAX_RSS_GROWTH_MB: f64 = 10.0;

fn main() {
    let file = corpus_file();
    let lines: u64 = std::fs::read_to_string(file.with_extension("done"))
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .expect("corpus line count");
    println!(
        "corpus: {} ({:.2} GB, {lines} lines)",
        file.display(),
        std::fs::metadata(&file).map_or(0.0, |m| m.len() as f64 / 1e9)
    );
    let mut ok = catch_up(&file, lines);
    ok &= follow_latency();
    ok &= memory_while_following();
    if !ok {
        std::process::exit(1);
    }
}

/// The best of N runs of each command, interleaved, as lines per second.
fn catch_up(file: &Path, lines: u64) -> bool {
    let runs: usize = env_number("HALYARD_BENCH_RUNS", 2);
    let halyard = env!("CARGO_BIN_EXE_halyard");
    let path = file.to_str().expect("utf-8 path");
    let raw = || {
        let mut c = Command::new(halyard);
        c.args([
            "tail",
            "-n",
            "+1",
            "--format",
            "raw",
            "--filter",
            "status>=500",
            path,
        ]);
        c
    };
    let pretty = || {
        let mut c = Command::new(halyard);
        c.args([
            "tail", "-n", "+1", "--format", "pretty", "--color", "never", path,
        ]);
        c
    };
    let grep = || {
        let mut c = Command::new("sh");
        c.args(["-c", "tail -n +1 \"$0\" | grep -E ' 5[0-9]{2} '", path]);
        c
    };
    let lnav = || {
        let mut c = Command::new("lnav");
        c.args(["-n", "-c", ":filter-in  5[0-9]{2} ", path]);
        c
    };
    let mut best: [Option<Measured>; 4] = [None; 4];
    for _ in 0..runs {
        for (i, make) in [&raw as &dyn Fn() -> Command, &pretty, &grep, &lnav]
            .into_iter()
            .enumerate()
        {
            // grep exits 1 when nothing matches; that is still a run.
            let m = measure(&mut make(), None, &[0, 1]);
            best[i] = Some(best[i].map_or(m, |b| b.min(m)));
        }
    }
    let rate = |m: Option<Measured>| lines as f64 / m.map_or(f64::NAN, |m| m.wall.as_secs_f64());
    let [raw, pretty, grep, lnav] = best.map(rate);
    let peak = |i: usize| best[i].map_or(0, |m| m.max_rss_kib) / 1024;
    println!("catch-up to /dev/null, best of {runs}:");
    println!(
        "  halyard tail --format raw --filter 'status>=500': {:>6.2} M lines/s (peak RSS {} MB)",
        raw / 1e6,
        peak(0)
    );
    println!(
        "  halyard tail --format pretty:                     {:>6.2} M lines/s (peak RSS {} MB)",
        pretty / 1e6,
        peak(1)
    );
    println!(
        "  tail -n +1 | grep -E ' 5[0-9]{{2}} ':               {:>6.2} M lines/s",
        grep / 1e6
    );
    println!(
        "  lnav -n -c ':filter-in  5[0-9]{{2}} ':              {:>6.2} M lines/s (peak RSS {} MB)",
        lnav / 1e6,
        peak(3)
    );
    println!(
        "  ratios: halyard raw+filter / tail|grep {:.2}, / lnav {:.1}; halyard pretty / lnav {:.1}",
        raw / grep,
        raw / lnav,
        pretty / lnav
    );
    let raw_ok = raw >= MIN_RAW_LINES_PER_SEC;
    let pretty_ok = pretty >= MIN_PRETTY_LINES_PER_SEC;
    println!(
        "  targets: raw+filter >= 1M lines/s {}, pretty >= 500k lines/s {}",
        verdict(raw_ok),
        verdict(pretty_ok)
    );
    raw_ok && pretty_ok
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// A followed file, and lines appended to it one at a time: how long until each is printed.
fn follow_latency() -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("follow.log");
    std::fs::write(&path, "").expect("create followed file");
    let name = path.to_str().expect("utf-8 path");
    let mut ours = Command::new(env!("CARGO_BIN_EXE_halyard"));
    ours.args(["tail", "-F", "--format", "raw", name]);
    let mut theirs = Command::new("sh");
    theirs.args(["-c", "tail -F \"$0\" | grep --line-buffered mark=", name]);
    let samples: usize = env_number("HALYARD_BENCH_LATENCY_SAMPLES", 100);
    let halyard = latencies(&mut ours, &path, samples);
    let grep = latencies(&mut theirs, &path, samples);
    let show = |what: &str, l: &[Duration]| {
        println!(
            "  {what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(percentile(l, 50)),
            ms(percentile(l, 99)),
            ms(percentile(l, 100))
        )
    };
    println!("follow latency, {samples} lines appended 20 ms apart:");
    show("halyard tail -F         ", &halyard);
    show("tail -F | grep          ", &grep);
    let ok = percentile(&halyard, 99) <= MAX_P99_LATENCY;
    println!(
        "  ratio of p50s halyard / tail|grep: {:.2}; target p99 <= 200 ms {}",
        ms(percentile(&halyard, 50)) / ms(percentile(&grep, 50)).max(0.001),
        verdict(ok)
    );
    ok
}

/// Starts `command` (which prints the lines of `path` that contain `mark=`), appends marked
/// lines and times each until it is printed.
fn latencies(command: &mut Command, path: &Path, samples: usize) -> Vec<Duration> {
    // Its own process group, so that a shell pipeline is stopped whole.
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start follower");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    // Both tools need a moment to start and open the file; no line is timed before that.
    std::thread::sleep(Duration::from_millis(500));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open followed file");
    let mut out = Vec::new();
    for i in 0..samples {
        let line = format!(
            "<158>Nov 24 00:00:00 haproxy[1]: mark={i:06} {:x<100}\n",
            ""
        );
        let sent = Instant::now();
        file.write_all(line.as_bytes()).expect("append");
        let want = format!("mark={i:06}");
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok((at, got)) if got.contains(&want) => {
                    out.push(at - sent);
                    break;
                }
                Ok(_) => {}
                Err(_) => {
                    out.push(Duration::from_secs(10));
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(child);
    out
}

/// Stops `child` and everything in its process group.
fn stop(mut child: Child) {
    // SAFETY: signalling the process group our own child leads.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGTERM);
    }
    let _ = child.wait();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(values: &[Duration], p: usize) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

/// Follows a file written at a steady rate (rotated every 10 s) with the pretty renderer and
/// a summary, and samples the follower's RSS once a second.
fn memory_while_following() -> bool {
    let secs: u64 = env_number("HALYARD_BENCH_FOLLOW_SECS", 60);
    let rate: u64 = env_number("HALYARD_BENCH_FOLLOW_RATE", 20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("steady.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_halyard"))
        .args(["tail", "-F", "--format", "pretty", "--summary", "10s"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start halyard tail");
    let mut generator = corpus::CorpusGen::new(anchor::SEED);
    let mut file = std::fs::File::create(&path).expect("create steady file");
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut written = 0u64;
    let mut batch = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        // Catch up with the rate in batches of 10 ms.
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        batch.clear();
        while written < due {
            generator.write_line(&mut batch);
            written += 1;
        }
        file.write_all(&batch).expect("append");
        let second = started.elapsed().as_secs();
        if samples.len() as u64 <= second {
            samples.push(rss_kib(child.id()));
            if second > 0 && second % 10 == 0 {
                let rotated = path.with_extension(format!("log.{second}"));
                std::fs::rename(&path, &rotated).expect("rotate");
                file = std::fs::File::create(&path).expect("recreate");
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let settled = samples.get(5).copied().unwrap_or(0);
    let peak = samples.iter().copied().max().unwrap_or(0);
    let last = samples.last().copied().unwrap_or(0);
    let growth = (peak.saturating_sub(settled)) as f64 / 1024.0;
    let ok = growth <= MAX_RSS_GROWTH_MB;
    println!(
        "memory following for {secs} s at {rate} lines/s ({written} lines, rotated every 10 s, \
         --format pretty --summary 10s):\n  RSS at 5 s {:.1} MB, peak {:.1} MB, at the end {:.1} MB; \
         growth {growth:.1} MB (target <= {MAX_RSS_GROWTH_MB} MB) {}",
        settled as f64 / 1024.0,
        peak as f64 / 1024.0,
        last as f64 / 1024.0,
        verdict(ok)
    );
    ok
}

/// Resident set size of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
