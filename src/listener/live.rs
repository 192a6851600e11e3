//! The live end of the listener: every received message parsed as it arrives, into the rolling
//! per-server view (`--live`) and the periodic report (`--report-every`), on a thread of its
//! own so parsing never delays writing.
//!
//! The files are the record; this is a view of them. When the live thread falls behind, the
//! blocks it cannot take are counted (`live_skipped`) rather than waited for.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};

use super::counters::Counters;
use super::sink::next_boundary;
use crate::input::lines;
use crate::logline::parse_line;
use crate::report::rolling::{Rolling, RollingRow};
use crate::report::{ReportBuilder, ReportOptions, Section};

/// Bytes of messages gathered before a block goes to the live thread.
const BLOCK: usize = 256 << 10;
/// Blocks the live thread may have waiting.
const QUEUE_BLOCKS: usize = 256;
/// The rolling view's window.
const WINDOW_SECS: u32 = 60;
/// Gathered messages go to the live thread at least this often, so the view lags by no more.
const MAX_DELAY: Duration = Duration::from_millis(100);

/// The writer's end: gathers received messages into blocks of lines for the live thread.
#[derive(Debug)]
pub(super) struct LiveFeed {
    blocks: SyncSender<Vec<u8>>,
    block: Vec<u8>,
    lines: u64,
    counters: Arc<Counters>,
    last_send: Instant,
}

impl LiveFeed {
    /// Adds one message (a single line, escaped).
    pub(super) fn push(&mut self, message: &[u8]) {
        self.block.extend_from_slice(message);
        self.block.push(b'\n');
        self.lines += 1;
        if self.block.len() >= BLOCK || self.last_send.elapsed() >= MAX_DELAY {
            self.send();
        }
    }

    /// Hands over what is gathered (the writer calls this when it flushes).
    pub(super) fn send(&mut self) {
        self.last_send = Instant::now();
        if self.block.is_empty() {
            return;
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK + (64 << 10)));
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.blocks.try_send(block)
        {
            Counters::add(&self.counters.live_skipped, self.lines);
        }
        self.lines = 0;
    }
}

impl Drop for LiveFeed {
    fn drop(&mut self) {
        self.send();
    }
}

/// The rolling view as last computed, shared with whoever shows it.
pub(super) type LiveRows = Arc<Mutex<Vec<RollingRow>>>;

/// Starts the live thread; it ends once the [`LiveFeed`] is dropped, writing the report of
/// the last (partial) interval.
/// `rolling` keeps the per-server view; `report_every` writes interval reports into `dir`.
pub(super) fn start(
    rolling: bool,
    report_every: Option<Duration>,
    dir: &Path,
    counters: Arc<Counters>,
) -> std::io::Result<(LiveFeed, LiveRows, JoinHandle<()>)> {
    let (blocks, queue) = sync_channel(QUEUE_BLOCKS);
    let rows = LiveRows::default();
    let shared = rows.clone();
    let dir = dir.to_owned();
    let thread = std::thread::Builder::new()
        .name("listen-live".into())
        .spawn(move || run(queue, shared, rolling, report_every, dir))?;
    let feed = LiveFeed {
        blocks,
        block: Vec::with_capacity(BLOCK + (64 << 10)),
        lines: 0,
        counters,
        last_send: Instant::now(),
    };
    Ok((feed, rows, thread))
}

fn run(
    queue: Receiver<Vec<u8>>,
    rows: LiveRows,
    rolling: bool,
    report_every: Option<Duration>,
    dir: PathBuf,
) {
    let mut rolling = rolling.then(|| Rolling::new(WINDOW_SECS));
    let mut period = report_every.map(|every| ReportPeriod::new(every, &dir));
    let mut writing: Vec<JoinHandle<()>> = Vec::new();
    let mut last_rows = Instant::now();
    loop {
        let block = match queue.recv_timeout(Duration::from_millis(250)) {
            Ok(block) => Some(block),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let now = Local::now();
        if let Some(period) = &mut period {
            writing.extend(period.roll_if_due(now));
            writing.retain(|w| !w.is_finished());
        }
        if let Some(block) = block {
            if let Some(rolling) = &mut rolling {
                for line in lines(&block) {
                    rolling.add(&parse_line(line), now.timestamp());
                }
            }
            if let Some(period) = &mut period {
                period.report.add_lines(&block);
            }
        }
        if let Some(rolling) = rolling
            .as_mut()
            .filter(|_| last_rows.elapsed() >= ONE_SECOND)
        {
            *rows.lock().unwrap_or_else(|e| e.into_inner()) = rolling.rows(now.timestamp());
            last_rows = Instant::now();
        }
    }
    if let Some(period) = period {
        period.write(Local::now());
    }
    // Reports still being computed are finished before the listener says it stopped.
    for report in writing {
        let _ = report.join();
    }
}

const ONE_SECOND: Duration = Duration::from_secs(1);

/// The report of the current interval, and when it ends.
struct ReportPeriod {
    every: Duration,
    dir: PathBuf,
    started: DateTime<Local>,
    ends: DateTime<Local>,
    report: ReportBuilder,
}

impl ReportPeriod {
    fn new(every: Duration, dir: &Path) -> Self {
        let now = Local::now();
        ReportPeriod {
            every,
            dir: dir.to_owned(),
            started: now,
            ends: next_boundary(now, every),
            report: ReportBuilder::new(report_options(every), "live"),
        }
    }

    /// At the end of an interval, writes its report (on a thread of its own) and starts the
    /// next one.
    fn roll_if_due(&mut self, now: DateTime<Local>) -> Option<JoinHandle<()>> {
        if now < self.ends {
            return None;
        }
        let next = ReportPeriod {
            started: self.ends,
            ends: next_boundary(now, self.every),
            report: ReportBuilder::new(report_options(self.every), "live"),
            every: self.every,
            dir: self.dir.clone(),
        };
        let done = std::mem::replace(self, next);
        let until = done.ends;
        let spawned = std::thread::Builder::new()
            .name("listen-report".into())
            .spawn(move || done.write(until));
        spawned
            .map_err(|e| eprintln!("halyard listen: cannot start the interval report: {e}"))
            .ok()
    }

    /// Computes the report and writes it as `report-START.json` (through a temporary name).
    fn write(self, until: DateTime<Local>) {
        if self.report.lines() == 0 {
            return;
        }
        let name = format!("report-{}.json", self.started.format("%Y%m%d-%H%M%S"));
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!(".{name}.tmp"));
        let written = self
            .report
            .finish()
            .map_err(|e| e.to_string())
            .and_then(|report| {
                let document = serde_json::json!({
                    "interval_start": self.started.to_rfc3339(),
                    "interval_end": until.to_rfc3339(),
                    "report": report,
                });
                let text = serde_json::to_vec_pretty(&document).map_err(|e| e.to_string())?;
                std::fs::write(&temp, text).map_err(|e| e.to_string())?;
                std::fs::rename(&temp, &path).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            eprintln!("halyard listen: cannot write {}: {e}", path.display());
        }
    }
}

/// Every section, with a timeline of at most ten-second steps.
fn report_options(every: Duration) -> ReportOptions {
    let interval_ms = (every.as_millis() as i64).clamp(1000, 10_000);
    ReportOptions {
        sections: Section::ALL.to_vec(),
        interval_ms: interval_ms - interval_ms % 1000,
        top: 10,
        filter: Default::default(),
        weights: None,
        threads: 1,
        show_malformed: 5,
        max_transitions: 100,
    }
}
