//! The full report against halog on the same file, in the same run.
//!
//! `cargo bench --bench report_vs_halog` (env as in `parse_throughput`: `HALYARD_BENCH_DIR`,
//! `HALYARD_BENCH_BYTES` (default 1 GiB), `HALYARD_BENCH_RUNS` (default 3)). Runs
//! `halyard report --format json FILE` (all sections) and `halog -H -srv < FILE` interleaved,
//! best of N each, and reports wall time, the ratio and peak RSS.
//! Targets: halyard within 3x of halog's wall time, peak RSS at most 600 MB. Exits 1 when one
//! is missed.

mod anchor;
mod corpus;

use std::process::Command;

use anchor::{bytes_per_sec, corpus_file, env_number, halog, measure, Measured};

const MAX_RATIO: f64 = 3.0;
const MAX_RSS_MB: f64 = 600.0;

fn main() {
    let runs: usize = env_number("HALYARD_BENCH_RUNS", 3);
    let file = corpus_file();
    println!(
        "corpus: {} ({:.2} GB)",
        file.display(),
        std::fs::metadata(&file).map_or(0.0, |m| m.len() as f64 / 1e9)
    );
    let halyard = env!("CARGO_BIN_EXE_halyard");
    let mut ours: Vec<Measured> = Vec::new();
    let mut theirs: Vec<Measured> = Vec::new();
    for _ in 0..runs {
        ours.push(measure(
            Command::new(halyard)
                .args(["report", "--format", "json"])
                .arg(&file),
            None,
            &[0],
        ));
        if let Some(halog) = halog() {
            theirs.push(measure(
                Command::new(halog).args(["-H", "-srv"]),
                Some(&file),
                &[0],
            ));
        }
    }
    let best = ours.iter().min().copied().expect("runs");
    let peak_mb = ours.iter().map(|m| m.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    println!(
        "halyard report --format json (all sections): {:.3} s ({:.2} GB/s), peak RSS {peak_mb:.0} MB",
        best.wall.as_secs_f64(),
        bytes_per_sec(&file, best.wall) / 1e9,
    );
    let mut ok = peak_mb <= MAX_RSS_MB;
    match theirs.iter().min() {
        Some(halog) => {
            let ratio = best.wall.as_secs_f64() / halog.wall.as_secs_f64();
            println!(
                "halog -H -srv:                                {:.3} s ({:.2} GB/s), peak RSS {:.0} MB\nratio halyard/halog: {ratio:.2} (target <= {MAX_RATIO:.2})",
                halog.wall.as_secs_f64(),
                bytes_per_sec(&file, halog.wall) / 1e9,
                halog.max_rss_kib as f64 / 1024.0,
            );
            ok &= ratio <= MAX_RATIO;
        }
        None => println!("halog not found (apt-get install haproxy): no anchor this run"),
    }
    println!(
        "target peak RSS <= {MAX_RSS_MB:.0} MB: {}",
        if peak_mb <= MAX_RSS_MB {
            "met"
        } else {
            "MISSED"
        }
    );
    if !ok {
        std::process::exit(1);
    }
}
