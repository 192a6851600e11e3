//! What happens to a file after rotation, on a thread of its own so that gzip never delays
//! receiving: compress, shift the numbered names (`.1` -> `.2` ...) or give a dated name, and
//! prune to `keep`.
//!
//! The writer only renames the live file to a staging name (`haproxy.log.pending-NANOS`) and
//! queues it here. This thread is the only one that touches rotated names, one rotation at a
//! time and in order, so rotating faster than gzip queues work instead of racing: the staged
//! files wait, still readable by `halyard report haproxy.log*`, until their turn.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Local};
use flate2::write::GzEncoder;

use crate::config::Rotation;

/// Hands rotated files to the archiving thread.
#[derive(Debug, Clone)]
pub(super) struct Archiver {
    jobs: mpsc::Sender<Job>,
    /// The last staging stamp given: stamps only grow, so two rotations in the same
    /// nanosecond (one batch crossing the size limit twice) never share a name.
    last_stamp: Arc<AtomicI64>,
}

#[derive(Debug)]
struct Job {
    /// The staged file; already gzipped when it ends in `.gz` (a crash interrupted it).
    staged: PathBuf,
    live: PathBuf,
    rotated_at: DateTime<Local>,
}

/// The marker between a live file's name and the staging stamp.
const STAGED: &str = ".pending-";
/// How long a failed job waits before it is tried again.
const RETRY: Duration = Duration::from_secs(10);

/// Starts the archiving thread; it ends once every [`Archiver`] is dropped and its queue is
/// done.
pub(super) fn start(policy: Rotation) -> io::Result<(Archiver, JoinHandle<()>)> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let thread = std::thread::Builder::new()
        .name("listen-archive".into())
        .spawn(move || {
            lower_priority();
            run(&queue, &policy);
        })?;
    let archiver = Archiver {
        jobs,
        last_stamp: Arc::new(AtomicI64::new(0)),
    };
    Ok((archiver, thread))
}

/// Archives jobs strictly in order: a job that fails (a full disk) is retried before any
/// later one, so the numbered names always follow the rotation order.
fn run(queue: &mpsc::Receiver<Job>, policy: &Rotation) {
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut open = true;
    loop {
        let next = if pending.is_empty() {
            queue.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else if open {
            queue.recv_timeout(RETRY)
        } else {
            Err(RecvTimeoutError::Disconnected)
        };
        match next {
            Ok(job) => pending.push_back(job),
            Err(RecvTimeoutError::Disconnected) if pending.is_empty() => return,
            Err(RecvTimeoutError::Disconnected) => open = false,
            Err(RecvTimeoutError::Timeout) => {}
        }
        while let Some(job) = pending.front() {
            match archive(job, policy) {
                Ok(()) => {
                    pending.pop_front();
                }
                Err(e) => {
                    eprintln!(
                        "halyard listen: archiving {} failed, retrying in {} s: {e}",
                        job.staged.display(),
                        RETRY.as_secs()
                    );
                    if !open {
                        // Stopping: leave it staged; the next start picks it up.
                        return;
                    }
                    break;
                }
            }
        }
    }
}

impl Archiver {
    /// Moves the live file aside under a staging name and queues it; the caller then opens a
    /// new live file.
    pub(super) fn rotate(&self, live: &Path, now: DateTime<Local>) -> io::Result<()> {
        let now_nanos = now.timestamp_nanos_opt().unwrap_or_default();
        let previous = self
            .last_stamp
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now_nanos.max(last + 1))
            })
            .unwrap_or(now_nanos);
        let stamp = now_nanos.max(previous + 1);
        let staged = sibling(live, &format!("{STAGED}{stamp:020}"));
        if staged.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", staged.display()),
            ));
        }
        fs::rename(live, &staged)?;
        self.queue(staged, live, now);
        Ok(())
    }

    /// Queues staged files a previous run left behind, oldest first. A staged file gzipped
    /// but not yet removed when the run ended is archived from its plain copy.
    pub(super) fn recover(&self, live: &Path) {
        let prefix = format!("{}{STAGED}", file_name(live));
        let names: Vec<PathBuf> = siblings(live)
            .into_iter()
            .filter(|p| file_name(p).starts_with(&prefix))
            .collect();
        let mut staged: Vec<PathBuf> = Vec::new();
        for path in &names {
            let name = file_name(path);
            match name.strip_suffix(".gz") {
                Some(plain) if names.iter().any(|p| file_name(p) == plain) => {
                    let _ = fs::remove_file(path);
                }
                _ => staged.push(path.clone()),
            }
        }
        staged.sort();
        for path in staged {
            self.queue(path, live, Local::now());
        }
    }

    fn queue(&self, staged: PathBuf, live: &Path, rotated_at: DateTime<Local>) {
        let job = Job {
            staged,
            live: live.to_owned(),
            rotated_at,
        };
        // The thread only ends when every sender is gone, so this cannot fail while we hold one.
        let _ = self.jobs.send(job);
    }
}

fn archive(job: &Job, policy: &Rotation) -> io::Result<()> {
    let already_gzipped = job.staged.extension().is_some_and(|e| e == "gz");
    let (ready, ext) = if already_gzipped {
        (job.staged.clone(), ".gz")
    } else if policy.compress {
        (gzip(&job.staged)?, ".gz")
    } else {
        (job.staged.clone(), "")
    };
    if policy.dateext {
        let stamp = job.rotated_at.format("-%Y%m%d-%H%M%S").to_string();
        let mut target = sibling(&job.live, &format!("{stamp}{ext}"));
        let mut n = 1;
        while target.exists() {
            target = sibling(&job.live, &format!("{stamp}.{n}{ext}"));
            n += 1;
        }
        fs::rename(&ready, &target)?;
        prune_dated(&job.live, policy.keep)
    } else {
        shift_numbered(&job.live, policy.keep)?;
        fs::rename(&ready, sibling(&job.live, &format!(".1{ext}")))
    }
}

/// Compresses `path` to `path.gz` through a hidden temporary name (so that a glob over the
/// log files never sees half a gzip file), then removes `path`. The result has the live
/// file's permissions (0640).
fn gzip(path: &Path) -> io::Result<PathBuf> {
    let done = sibling(path, ".gz");
    let temp = path.with_file_name(format!(".{}.gz.tmp", file_name(path)));
    let written = (|| {
        let mut input = BufReader::with_capacity(1 << 20, File::open(path)?);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&temp)?;
        let mut output = GzEncoder::new(
            BufWriter::with_capacity(1 << 20, file),
            flate2::Compression::default(),
        );
        io::copy(&mut input, &mut output)?;
        output.finish()?.flush()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    fs::rename(&temp, &done)?;
    fs::remove_file(path)?;
    Ok(done)
}

/// `live.N[.gz]` -> `live.N+1[.gz]`, newest last so nothing is overwritten; those that would
/// pass `keep` are deleted.
fn shift_numbered(live: &Path, keep: usize) -> io::Result<()> {
    let base = file_name(live);
    let mut numbered: Vec<(usize, &'static str, PathBuf)> = siblings(live)
        .into_iter()
        .filter_map(|path| {
            let rest = file_name(&path)
                .strip_prefix(&format!("{base}."))?
                .to_owned();
            let (number, ext) = match rest.strip_suffix(".gz") {
                Some(n) => (n.to_owned(), ".gz"),
                None => (rest, ""),
            };
            let n: usize = number
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| number.parse().ok())??;
            Some((n, ext, path))
        })
        .collect();
    numbered.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    for (n, ext, path) in numbered {
        if keep > 0 && n >= keep {
            fs::remove_file(&path)?;
        } else {
            fs::rename(&path, sibling(live, &format!(".{}{ext}", n + 1)))?;
        }
    }
    Ok(())
}

/// Deletes the oldest dated files beyond `keep` (0 keeps all). Only names this archiver
/// writes count (`live-YYYYmmdd-HHMMSS[.N][.gz]`), ordered by stamp and then N, so another
/// file that merely starts with the same name is never touched.
fn prune_dated(live: &Path, keep: usize) -> io::Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let base = file_name(live);
    let mut dated: Vec<((String, u32), PathBuf)> = siblings(live)
        .into_iter()
        .filter_map(|p| Some((dated_key(&base, &file_name(&p))?, p)))
        .collect();
    dated.sort();
    let excess = dated.len().saturating_sub(keep);
    for (_, path) in &dated[..excess] {
        fs::remove_file(path)?;
    }
    Ok(())
}

/// `(stamp, n)` of a dated name `base-YYYYmmdd-HHMMSS[.N][.gz]`.
fn dated_key(base: &str, name: &str) -> Option<(String, u32)> {
    let rest = name.strip_prefix(base)?.strip_prefix('-')?;
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    let (stamp, n) = match rest.split_once('.') {
        Some((stamp, n)) => (stamp, n.parse().ok()?),
        None => (rest, 0),
    };
    let well_formed = stamp.len() == 15
        && stamp.bytes().enumerate().all(|(i, b)| {
            if i == 8 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    well_formed.then(|| (stamp.to_owned(), n))
}

/// `live` with `suffix` appended to its file name.
fn sibling(live: &Path, suffix: &str) -> PathBuf {
    live.with_file_name(format!("{}{suffix}", file_name(live)))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The files in `live`'s directory.
fn siblings(live: &Path) -> Vec<PathBuf> {
    let dir = match live.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Compression must not take CPU from receiving on a busy machine.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread; failure leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn rotate_n(policy: Rotation, contents: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("haproxy.log");
        let (archiver, thread) = start(policy).unwrap();
        for (i, text) in contents.iter().enumerate() {
            fs::write(&live, text).unwrap();
            let at = Local::now() + chrono::Duration::seconds(i as i64);
            archiver.rotate(&live, at).unwrap();
        }
        drop(archiver);
        thread.join().unwrap();
        dir
    }

    #[test]
    fn numbered_names_shift_compress_and_keep() {
        let policy = Rotation {
            keep: 3,
            compress: true,
            ..Rotation::default()
        };
        let dir = rotate_n(policy, &["a\n", "b\n", "c\n", "d\n"]);
        assert_eq!(
            names(dir.path()),
            ["haproxy.log.1.gz", "haproxy.log.2.gz", "haproxy.log.3.gz"]
        );
        let read = |n| {
            let f = File::open(dir.path().join(format!("haproxy.log.{n}.gz"))).unwrap();
            io::read_to_string(flate2::read::GzDecoder::new(f)).unwrap()
        };
        assert_eq!([read(1), read(2), read(3)], ["d\n", "c\n", "b\n"]);
    }

    #[test]
    fn dated_names_and_keep_all() {
        let policy = Rotation {
            keep: 0,
            dateext: true,
            ..Rotation::default()
        };
        let dir = rotate_n(policy, &["a\n", "b\n"]);
        let got = names(dir.path());
        assert_eq!(got.len(), 2);
        assert!(
            got.iter().all(|n| n.starts_with("haproxy.log-20")),
            "{got:?}"
        );
    }

    #[test]
    fn staged_files_left_by_a_crash_are_archived_on_start() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("haproxy.log");
        fs::write(dir.path().join("haproxy.log.pending-001"), "old\n").unwrap();
        fs::write(dir.path().join("haproxy.log.pending-002"), "newer\n").unwrap();
        // Gzipped, but the run ended before the plain copy was removed.
        fs::write(dir.path().join("haproxy.log.pending-002.gz"), "half done").unwrap();
        let (archiver, thread) = start(Rotation::default()).unwrap();
        archiver.recover(&live);
        drop(archiver);
        thread.join().unwrap();
        assert_eq!(names(dir.path()), ["haproxy.log.1", "haproxy.log.2"]);
        let newest = fs::read_to_string(dir.path().join("haproxy.log.1")).unwrap();
        assert_eq!(newest, "newer\n");
    }

    #[test]
    fn dated_pruning_orders_by_stamp_then_number_and_spares_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("haproxy.log");
        for name in [
            "haproxy.log-20261125-010000.gz",
            "haproxy.log-20261125-010000.1.gz",
            "haproxy.log-20261125-010000.10.gz",
            "haproxy.log-20261125-010000.2.gz",
            "haproxy.log-errors",
        ] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        prune_dated(&live, 2).unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "haproxy.log-20261125-010000.10.gz",
                "haproxy.log-20261125-010000.2.gz",
                "haproxy.log-errors"
            ]
        );
    }

    #[test]
    fn rotations_in_the_same_instant_get_distinct_names() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("haproxy.log");
        let policy = Rotation {
            keep: 0,
            ..Rotation::default()
        };
        let (archiver, thread) = start(policy).unwrap();
        let now = Local::now();
        for text in ["a\n", "b\n", "c\n"] {
            fs::write(&live, text).unwrap();
            archiver.rotate(&live, now).unwrap();
        }
        drop(archiver);
        thread.join().unwrap();
        let read = |n: u32| fs::read_to_string(dir.path().join(format!("haproxy.log.{n}")));
        assert_eq!(
            [read(3).unwrap(), read(2).unwrap(), read(1).unwrap()],
            ["a\n", "b\n", "c\n"]
        );
    }

    #[test]
    fn gzip_leaves_nothing_behind_on_failure_and_writes_0640() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("x.pending-1");
        assert!(gzip(&staged).is_err(), "no such file");
        assert_eq!(names(dir.path()), Vec::<String>::new());
        fs::write(&staged, "line\n").unwrap();
        let done = gzip(&staged).unwrap();
        let mode = fs::metadata(&done).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(names(dir.path()), ["x.pending-1.gz"]);
    }
}
