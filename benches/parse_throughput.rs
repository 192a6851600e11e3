//! Parse throughput on a deterministic corpus of mixed lines, with halog as the anchor.
//!
//! `cargo bench --bench parse_throughput` (env: `HALYARD_BENCH_DIR`, default
//! `/var/tmp/halyard-bench`; `HALYARD_BENCH_BYTES`, default 1 GiB; `HALYARD_BENCH_RUNS`,
//! default 5). It reports:
//! 1. single-threaded `parse_line` over the file in memory, all fields (target >= 1 GB/s);
//! 2. `halyard parse --format stats FILE` against `halog -H -srv < FILE` on the same file in the
//!    same run, best of N each, interleaved (target: halyard within 2x of halog's time).
//!
//! Exits 1 when a target is missed, so it can gate a run.

mod anchor;
mod corpus;

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use anchor::{bytes_per_sec, corpus_file, env_number, halog, measure, CORPUS_VERSION, SEED};

use halyard::input::lines;
use halyard::logline::{parse_line, Body};

fn main() {
    let runs: usize = env_number("HALYARD_BENCH_RUNS", 5);
    let file = corpus_file();
    let data = std::fs::read(&file).expect("read corpus");
    println!(
        "corpus: {} ({:.2} GB, seed {SEED}, generator v{CORPUS_VERSION})",
        file.display(),
        data.len() as f64 / 1e9
    );

    let (best, lines, malformed) = (0..runs)
        .map(|_| parse_in_memory(&data))
        .min_by_key(|r| r.0)
        .expect("at least one run");
    let gbps = data.len() as f64 / best.as_secs_f64() / 1e9;
    println!(
        "single-threaded parse_line, all fields: {:.3} s, {gbps:.2} GB/s, {:.2} M lines/s ({lines} lines, {malformed} not understood)",
        best.as_secs_f64(),
        lines as f64 / best.as_secs_f64() / 1e6,
    );
    drop(data);

    let halyard = env!("CARGO_BIN_EXE_halyard");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        // `parse --format stats` exits 1 when the corpus holds malformed lines, as this one does.
        let run = measure(
            Command::new(halyard)
                .args(["parse", "--format", "stats"])
                .arg(&file),
            None,
            &[0, 1],
        );
        ours.push(run.wall);
        if let Some(halog) = halog() {
            let run = measure(Command::new(halog).args(["-H", "-srv"]), Some(&file), &[0]);
            theirs.push(run.wall);
        }
    }
    let ours = ours.into_iter().min().expect("runs");
    println!(
        "halyard parse --format stats: {:.3} s ({:.2} GB/s)",
        ours.as_secs_f64(),
        bytes_per_sec(&file, ours) / 1e9
    );
    let mut ok = gbps >= 1.0;
    match theirs.into_iter().min() {
        Some(halog) => {
            let ratio = ours.as_secs_f64() / halog.as_secs_f64();
            println!(
                "halog -H -srv:                {:.3} s ({:.2} GB/s)\nratio halyard/halog: {ratio:.2} (target <= 2.00)",
                halog.as_secs_f64(),
                bytes_per_sec(&file, halog) / 1e9
            );
            ok &= ratio <= 2.0;
        }
        None => println!("halog not found (apt-get install haproxy): no anchor this run"),
    }
    println!(
        "target single-threaded >= 1.00 GB/s: {}",
        if gbps >= 1.0 { "met" } else { "MISSED" }
    );
    if !ok {
        std::process::exit(1);
    }
}

/// Parses every line; returns the time, the line count and the lines not understood.
fn parse_in_memory(data: &[u8]) -> (Duration, u64, u64) {
    let started = Instant::now();
    let (mut n, mut other) = (0u64, 0u64);
    for line in lines(data) {
        let parsed = black_box(parse_line(black_box(line)));
        n += 1;
        other += matches!(parsed.body, Body::Other(_)) as u64;
    }
    (started.elapsed(), n, other)
}
