//! A log file that rotates: lines are buffered whole and written whole, a rotation only ever
//! happens between lines, and a failed write (disk full) loses only the lines of that write:
//! they are counted, the file is cut back to its last whole line, and the next flush writes
//! again, so reception never stops.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Offset, TimeZone};

use super::archive::Archiver;
use super::counters::Counters;
use crate::config::Rotation;

/// Buffered bytes that trigger a write before the periodic flush.
const FLUSH_AT: usize = 256 << 10;
/// How long after a failed rotation the next one is tried.
const ROTATION_RETRY: Duration = Duration::from_secs(10);

/// One output file and its rotation state.
#[derive(Debug)]
pub(super) struct RotatingFile {
    path: PathBuf,
    file: Option<File>,
    /// Bytes in the file that are whole lines we wrote (or found on opening).
    size: u64,
    buffer: Vec<u8>,
    buffered_lines: u64,
    size_limit: Option<u64>,
    period: Option<Duration>,
    next_rotation: Option<DateTime<Local>>,
    fsync: bool,
    archiver: Archiver,
    counters: Arc<Counters>,
    /// Set while writes fail, so the failure is reported once and the recovery too.
    failing: Option<u64>,
    /// After a failed rotation, when to try again.
    rotation_blocked_until: Option<Instant>,
}

impl RotatingFile {
    /// Opens (creating) `path` for appending; archives staged files a previous run left.
    pub(super) fn open(
        path: PathBuf,
        rotation: &Rotation,
        fsync: bool,
        archiver: Archiver,
        counters: Arc<Counters>,
    ) -> io::Result<Self> {
        archiver.recover(&path);
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            next_rotation: rotation.every.map(|p| next_boundary(Local::now(), p)),
            path,
            file: Some(file),
            size,
            buffer: Vec::with_capacity(FLUSH_AT + (64 << 10)),
            buffered_lines: 0,
            size_limit: rotation.size,
            period: rotation.every,
            fsync,
            archiver,
            counters,
            failing: None,
            rotation_blocked_until: None,
        })
    }

    /// The file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (without its terminator), rotating first if it would pass the size
    /// limit.
    pub(super) fn write_line(&mut self, line: &[u8], now: DateTime<Local>) {
        let pending = self.size + self.buffer.len() as u64;
        if let Some(limit) = self.size_limit {
            if pending > 0 && pending + line.len() as u64 + 1 > limit {
                self.rotate(now);
            }
        }
        self.buffer.extend_from_slice(line);
        self.buffer.push(b'\n');
        self.buffered_lines += 1;
        if self.buffer.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Rotates if the clock passed a period boundary and the file has something in it.
    pub(super) fn tick(&mut self, now: DateTime<Local>) {
        let (Some(due), Some(period)) = (self.next_rotation, self.period) else {
            return;
        };
        if now >= due {
            if self.size + self.buffer.len() as u64 > 0 {
                self.rotate(now);
            }
            self.next_rotation = Some(next_boundary(now, period));
        }
    }

    /// Writes the buffered lines. On failure they are counted as lost and the file is cut
    /// back to its last whole line, so the next write starts a line cleanly.
    pub(super) fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        match self.write_buffer() {
            Ok(()) => {
                self.size += self.buffer.len() as u64;
                Counters::add(&self.counters.written, self.buffered_lines);
                if let Some(lost) = self.failing.take() {
                    eprintln!(
                        "halyard listen: writing {} works again ({lost} lines were lost)",
                        self.path.display()
                    );
                }
            }
            Err(e) => {
                if let Some(file) = &self.file {
                    let _ = file.set_len(self.size);
                }
                Counters::add(&self.counters.write_lost, self.buffered_lines);
                match &mut self.failing {
                    Some(lost) => *lost += self.buffered_lines,
                    None => {
                        eprintln!(
                            "halyard listen: cannot write {}: {e}; still receiving, counting \
                             the lines lost until it works again",
                            self.path.display()
                        );
                        self.failing = Some(self.buffered_lines);
                    }
                }
            }
        }
        self.buffer.clear();
        self.buffered_lines = 0;
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(open_append(&self.path)?);
            self.size = self
                .file
                .as_ref()
                .map_or(Ok(0), |f| f.metadata().map(|m| m.len()))?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("file not open"));
        };
        file.write_all(&self.buffer)?;
        if self.fsync {
            file.sync_data()?;
        }
        Ok(())
    }

    /// Closes and reopens the file by name (after an external rename, as logrotate's `create`
    /// does), writing what is buffered to the old file first.
    pub(super) fn reopen(&mut self) {
        self.flush();
        self.file = None;
        match open_append(&self.path).and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((size, file)) => {
                self.size = size;
                self.file = Some(file);
            }
            // Retried at the next flush; lines meanwhile are counted if that fails too.
            Err(e) => eprintln!("halyard listen: cannot reopen {}: {e}", self.path.display()),
        }
    }

    fn rotate(&mut self, now: DateTime<Local>) {
        if self
            .rotation_blocked_until
            .is_some_and(|until| Instant::now() < until)
        {
            return;
        }
        self.flush();
        self.file = None;
        match self.archiver.rotate(&self.path, now) {
            Ok(()) => {
                Counters::add(&self.counters.rotations, 1);
                self.rotation_blocked_until = None;
            }
            Err(e) => {
                // A read-only directory or the like: keep writing the file as it is, and try
                // again later rather than on every line.
                eprintln!(
                    "halyard listen: cannot rotate {}, trying again in {} s: {e}",
                    self.path.display(),
                    ROTATION_RETRY.as_secs()
                );
                self.rotation_blocked_until = Some(Instant::now() + ROTATION_RETRY);
            }
        }
        self.size = 0;
        match open_append(&self.path) {
            Ok(file) => {
                self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(file);
            }
            Err(e) => eprintln!("halyard listen: cannot create {}: {e}", self.path.display()),
        }
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        self.flush();
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// The next multiple of `period` (whole seconds, at least one) on the local clock after
/// `now`: hourly rotation happens on the hour, daily at midnight. Counted on the wall clock of
/// the day, so a day with a daylight-saving change still rotates once, at midnight.
pub(super) fn next_boundary<Tz: TimeZone>(now: DateTime<Tz>, period: Duration) -> DateTime<Tz> {
    let step = period.as_secs().max(1) as i64;
    let zone = now.timezone();
    let fallback = now.clone() + chrono::Duration::seconds(step);
    if step > 86_400 || 86_400 % step != 0 {
        // Periods that do not divide a day run from the epoch, in local time.
        let offset = i64::from(now.offset().fix().local_minus_utc());
        let local = now.timestamp() + offset;
        let next = (local / step + 1) * step - offset;
        return DateTime::from_timestamp(next, 0).map_or(fallback, |t| t.with_timezone(&zone));
    }
    let local = now.naive_local();
    let midnight = local.date().and_time(chrono::NaiveTime::MIN);
    let into_day = (local - midnight).num_seconds();
    let next = midnight + chrono::Duration::seconds((into_day / step + 1) * step);
    // A wall-clock time skipped by a DST change falls to the first instant after the gap.
    let mut candidate = next;
    for _ in 0..3 {
        if let Some(t) = zone.from_local_datetime(&candidate).earliest() {
            return t;
        }
        candidate += chrono::Duration::minutes(30);
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A zone like Europe/Berlin in autumn 2026: UTC+2 until 2026-10-25 01:00 UTC, then UTC+1.
    #[derive(Debug, Clone, Copy)]
    struct Autumn;

    impl Autumn {
        const CHANGE: i64 = 1_792_890_000; // 2026-10-25T01:00:00Z

        fn at_utc(t: i64) -> chrono::FixedOffset {
            let hours = if t < Self::CHANGE { 2 } else { 1 };
            chrono::FixedOffset::east_opt(hours * 3600).unwrap()
        }
    }

    impl TimeZone for Autumn {
        type Offset = chrono::FixedOffset;

        fn from_offset(_: &chrono::FixedOffset) -> Self {
            Autumn
        }

        fn offset_from_local_date(
            &self,
            local: &chrono::NaiveDate,
        ) -> chrono::LocalResult<chrono::FixedOffset> {
            self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
        }

        fn offset_from_local_datetime(
            &self,
            local: &chrono::NaiveDateTime,
        ) -> chrono::LocalResult<chrono::FixedOffset> {
            let as_utc = local.and_utc().timestamp();
            let summer = Self::at_utc(as_utc - 7200);
            let winter = Self::at_utc(as_utc - 3600);
            match (summer.local_minus_utc(), winter.local_minus_utc()) {
                (7200, 3600) => chrono::LocalResult::Ambiguous(summer, winter),
                (7200, _) => chrono::LocalResult::Single(summer),
                _ => chrono::LocalResult::Single(winter),
            }
        }

        fn offset_from_utc_date(&self, utc: &chrono::NaiveDate) -> chrono::FixedOffset {
            self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
        }

        fn offset_from_utc_datetime(&self, utc: &chrono::NaiveDateTime) -> chrono::FixedOffset {
            Self::at_utc(utc.and_utc().timestamp())
        }
    }

    #[test]
    fn a_dst_change_does_not_move_midnight() {
        let before = Autumn.with_ymd_and_hms(2026, 10, 24, 23, 30, 0).unwrap();
        let midnight = next_boundary(before, Duration::from_secs(86_400));
        assert_eq!(midnight.format("%F %T").to_string(), "2026-10-25 00:00:00");
        let next = next_boundary(midnight, Duration::from_secs(86_400));
        assert_eq!(next.format("%F %T").to_string(), "2026-10-26 00:00:00");
        assert_eq!((next - midnight).num_hours(), 25, "the day has 25 hours");
        let hourly = next_boundary(midnight, Duration::from_secs(3600));
        assert_eq!(hourly.format("%T").to_string(), "01:00:00");
    }

    #[test]
    fn boundaries_follow_the_local_clock() {
        let now = Local.with_ymd_and_hms(2026, 11, 25, 13, 47, 10).unwrap();
        let hour = next_boundary(now, Duration::from_secs(3600));
        assert_eq!(hour.format("%H:%M:%S").to_string(), "14:00:00");
        let day = next_boundary(now, Duration::from_secs(86_400));
        assert_eq!(day.format("%d %H:%M").to_string(), "26 00:00");
    }

    #[test]
    fn size_rotation_keeps_lines_whole_and_under_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation {
            size: Some(100),
            keep: 0,
            ..Rotation::default()
        };
        let (archiver, thread) = super::super::archive::start(rotation.clone()).unwrap();
        let counters = Arc::new(Counters::default());
        let path = dir.path().join("x.log");
        let mut file =
            RotatingFile::open(path, &rotation, false, archiver, counters.clone()).unwrap();
        for i in 0..100 {
            file.write_line(format!("line {i:04} padding").as_bytes(), Local::now());
        }
        drop(file);
        thread.join().unwrap();
        let mut seen = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        // Oldest first: the highest number, then down to the live file.
        names.sort_by_key(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            std::cmp::Reverse(name.rsplit('.').next().and_then(|n| n.parse::<u32>().ok()))
        });
        for entry in names {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            assert!(
                text.len() <= 100,
                "{} has {}",
                entry.path().display(),
                text.len()
            );
            assert!(text.ends_with('\n'));
            seen.extend(text.lines().map(str::to_owned));
        }
        let want: Vec<String> = (0..100).map(|i| format!("line {i:04} padding")).collect();
        assert_eq!(seen, want);
        let c = counters.snapshot();
        assert_eq!((c.written, c.rotations), (100, 19));
    }
}
