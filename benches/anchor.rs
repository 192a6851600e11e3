//! What the benchmarks share: the corpus file, the anchors (halog) and measuring a command's
//! wall time and peak memory.

// Each bench uses a different part.
#![allow(dead_code)]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::corpus;

pub const SEED: u64 = 2026;
/// Bump when the generator changes, so a stale corpus is rebuilt.
pub const CORPUS_VERSION: u32 = 1;

/// A number from the environment, or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The corpus of `HALYARD_BENCH_BYTES` (default 1 GiB) in `HALYARD_BENCH_DIR` (default
/// `/var/tmp/halyard-bench`), generated first unless a complete one of this version exists.
pub fn corpus_file() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("HALYARD_BENCH_DIR").unwrap_or_else(|_| "/var/tmp/halyard-bench".into()),
    );
    let bytes: u64 = env_number("HALYARD_BENCH_BYTES", 1 << 30);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let file = dir.join(format!("corpus-v{CORPUS_VERSION}-s{SEED}-{bytes}.log"));
    let done = file.with_extension("done");
    if !done.exists() {
        eprintln!("generating {} ...", file.display());
        let started = Instant::now();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("create corpus"));
        let lines = corpus::CorpusGen::new(SEED)
            .write_corpus(&mut out, bytes)
            .expect("write corpus");
        std::io::Write::flush(&mut out).expect("flush corpus");
        std::fs::write(&done, lines.to_string()).expect("mark corpus done");
        eprintln!(
            "generated {lines} lines in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    file
}

/// halog from Debian's haproxy package, if installed.
pub fn halog() -> Option<&'static str> {
    ["/usr/sbin/halog", "/usr/bin/halog"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// How one run of a command went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Measured {
    /// Wall time from spawn to exit.
    pub wall: Duration,
    /// Peak resident set size, KiB.
    pub max_rss_kib: u64,
}

/// Runs `cmd` (stdin from `stdin` if given, output discarded) and measures it; panics unless
/// it exits with a code in `ok_codes`.
pub fn measure(cmd: &mut Command, stdin: Option<&Path>, ok_codes: &[i32]) -> Measured {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(path) = stdin {
        cmd.stdin(std::fs::File::open(path).expect("open corpus"));
    }
    let started = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped by wait4 below
    let child = cmd.spawn().expect("run command");
    // wait4 rather than Child::wait: it also gives this child's own peak RSS.
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let exit = ExitStatus::from_raw(status);
    assert!(
        exit.code().is_some_and(|c| ok_codes.contains(&c)),
        "{cmd:?} failed: {exit}"
    );
    Measured {
        wall,
        max_rss_kib: usage.ru_maxrss as u64,
    }
}

/// Bytes per second of `file` read in `took`.
pub fn bytes_per_sec(file: &Path, took: Duration) -> f64 {
    std::fs::metadata(file).map_or(0.0, |m| m.len() as f64) / took.as_secs_f64()
}
