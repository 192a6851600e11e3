//! The writer thread: takes batches off the queue, formats and routes each message, writes the
//! files, flushes when the queue goes quiet and at least every second, and rotates on time.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};

use super::archive::Archiver;
use super::counters::Counters;
use super::live::LiveFeed;
use super::output::LineFormatter;
use super::sink::RotatingFile;
use super::Batch;
use crate::config::{ListenerSettings, Selector};

/// How long the queue must stay empty before buffered lines are written.
const QUIET: Duration = Duration::from_millis(50);
/// Buffered lines are written at least this often under steady load.
const MAX_FLUSH_DELAY: Duration = Duration::from_secs(1);

/// Formats, routes and writes received messages.
#[derive(Debug)]
pub(super) struct Writer {
    formatter: LineFormatter,
    files: Vec<RotatingFile>,
    /// Selector and index into `files`, in config order.
    routes: Vec<(Selector, usize)>,
    unmatched: Option<usize>,
    counters: Arc<Counters>,
    targets: Vec<usize>,
    live: Option<LiveFeed>,
}

impl Writer {
    /// Opens every file the settings name (so a bad directory fails at start, not later).
    pub(super) fn open(
        settings: &ListenerSettings,
        archiver: &Archiver,
        counters: Arc<Counters>,
        live: Option<LiveFeed>,
    ) -> io::Result<Writer> {
        let mut files: Vec<RotatingFile> = Vec::new();
        // By path with `.` and repeated separators gone: `h.log` and `./h.log` are one file,
        // which must have one writer (two would rotate it under each other).
        let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
        let mut file_index = |name: &str| -> io::Result<usize> {
            let path: PathBuf = settings.dir.join(name).components().collect();
            if let Some(&i) = by_path.get(&path) {
                return Ok(i);
            }
            let file = RotatingFile::open(
                path.clone(),
                &settings.rotation,
                settings.fsync,
                archiver.clone(),
                counters.clone(),
            )
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            files.push(file);
            by_path.insert(path, files.len() - 1);
            Ok(files.len() - 1)
        };
        let mut routes = Vec::new();
        if settings.routes.is_empty() {
            let everything: Selector = "*.*".parse().map_err(io::Error::other)?;
            routes.push((everything, file_index(&settings.file)?));
        }
        for route in &settings.routes {
            routes.push((route.selector.clone(), file_index(&route.file)?));
        }
        let unmatched = settings
            .unmatched
            .as_deref()
            .map(&mut file_index)
            .transpose()?;
        Ok(Writer {
            formatter: LineFormatter::new(settings.output),
            files,
            routes,
            unmatched,
            counters,
            targets: Vec::new(),
            live,
        })
    }

    /// The paths of the files written, routes first.
    pub(super) fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path().to_owned()).collect()
    }

    /// Runs until every sender of `queue` is gone, then writes what is left.
    pub(super) fn run(mut self, queue: Receiver<Batch>, reopen: Arc<AtomicBool>) {
        let mut last_flush = Instant::now();
        loop {
            let quiet = match queue.recv_timeout(QUIET) {
                Ok(batch) => {
                    self.file_batch(&batch);
                    false
                }
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if reopen.swap(false, Ordering::Relaxed) {
                self.files.iter_mut().for_each(RotatingFile::reopen);
            }
            if quiet || last_flush.elapsed() >= MAX_FLUSH_DELAY {
                let now = Local::now();
                for file in &mut self.files {
                    file.flush();
                    file.tick(now);
                }
                if let Some(live) = &mut self.live {
                    live.send();
                }
                last_flush = Instant::now();
            }
        }
        self.files.iter_mut().for_each(RotatingFile::flush);
    }

    fn file_batch(&mut self, batch: &Batch) {
        let received: DateTime<Local> = batch.received_at.into();
        for (message, peer) in batch.iter() {
            let filed = self.formatter.format(message, peer, &received);
            if !filed.is_syslog {
                Counters::add(&self.counters.not_syslog, 1);
            }
            let (facility, severity) = (filed.priority.facility(), filed.priority.severity());
            self.targets.clear();
            for (selector, file) in &self.routes {
                if selector.matches(facility, severity, filed.tag) && !self.targets.contains(file) {
                    self.targets.push(*file);
                }
            }
            if self.targets.is_empty() {
                Counters::add(&self.counters.unmatched, 1);
                self.targets.extend(self.unmatched);
            }
            for &i in &self.targets {
                self.files[i].write_line(filed.line, received);
            }
            if let Some(live) = &mut self.live {
                live.push(filed.received);
            }
        }
    }
}
