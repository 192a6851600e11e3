//! Integration tests, one binary: real fixture lines, the CLI as a user runs it, and halog.

mod acl;
mod balance;
mod check;
mod cli_parse;
mod compression;
mod ctl;
mod demo;
mod fixtures;
mod halog;
mod help;
mod listen;
mod listen_haproxy;
// The syslog load generator of the listen benchmark: its own tests run here.
#[path = "../../benches/loadgen.rs"]
mod loadgen;
mod properties;
mod queue;
mod readme;
mod reload;
mod report;
mod report_html;
mod run;
mod stats;
mod streaming;
mod tail;
mod tcp;
mod test_backend;
mod tls;

use std::path::{Path, PathBuf};

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every line of a fixture file, without terminators.
pub fn fixture_lines(relative: &str) -> Vec<Vec<u8>> {
    let path = fixtures_dir().join(relative);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    halyard::input::lines(&data).map(<[u8]>::to_vec).collect()
}

/// The `halyard` binary built for these tests.
pub fn halyard() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_halyard"))
}

/// A child process whose stderr is collected as it is written, for tests that wait for what
/// a long-running command says.
pub struct Collected {
    pub child: std::process::Child,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Collected {
    /// Spawns `command` with stderr piped into [`Collected::stderr`].
    pub fn spawn(mut command: std::process::Command) -> Collected {
        use std::io::BufRead;
        let mut child = command
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Collected { child, stderr }
    }
}
