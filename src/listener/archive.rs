//! What happens to a file after rotation, on a thread of its own so that gzip never delays
//! receiving: compress, shift the numbered names (`.1` -> `.2` ...) or give a dated name, and
//! prune to `keep`.
//!
//! The writer only renames the live file to a staging name (`haproxy.log.pending-NANOS`) and
//! queues it here. This thread is the only one that touches rotated names, one rotation at a
//! time and in order, so rotating faster than gzip queues work instead of racing: the staged
//! files wait, still readable by `halyard report haproxy.log*`, until their turn.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use chrono::{DateTime, Local};
use flate2::write::GzEncoder;

use crate::config::Rotation;

/// Hands rotated files to the archiving thread.
#[derive(Debug, Clone)]
pub(super) struct Archiver {
    jobs: mpsc::Sender<Job>,
}

#[derive(Debug)]
struct Job {
    staged: PathBuf,
    live: PathBuf,
    rotated_at: DateTime<Local>,
}

/// The marker between a live file's name and the staging stamp.
const STAGED: &str = ".pending-";

/// Starts the archiving thread; it ends once every [`Archiver`] is dropped and its queue is
/// done.
pub(super) fn start(policy: Rotation) -> io::Result<(Archiver, JoinHandle<()>)> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let thread = std::thread::Builder::new()
        .name("listen-archive".into())
        .spawn(move || {
            lower_priority();
            for job in queue {
                if let Err(e) = archive(&job, &policy) {
                    eprintln!(
                        "halyard listen: archiving {} failed, left as it is: {e}",
                        job.staged.display()
                    );
                }
            }
        })?;
    Ok((Archiver { jobs }, thread))
}

impl Archiver {
    /// Moves the live file aside under a staging name and queues it; the caller then opens a
    /// new live file.
    pub(super) fn rotate(&self, live: &Path, now: DateTime<Local>) -> io::Result<()> {
        let stamp = now.timestamp_nanos_opt().unwrap_or_default();
        let staged = sibling(live, &format!("{STAGED}{stamp:020}"));
        fs::rename(live, &staged)?;
        self.queue(staged, live, now);
        Ok(())
    }

    /// Queues staged files a previous run left behind, oldest first.
    pub(super) fn recover(&self, live: &Path) {
        let prefix = format!("{}{STAGED}", file_name(live));
        let mut staged: Vec<PathBuf> = siblings(live)
            .into_iter()
            .filter(|p| file_name(p).starts_with(&prefix))
            .collect();
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
    let (ready, ext) = if policy.compress {
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
/// log files never sees half a gzip file), then removes `path`.
fn gzip(path: &Path) -> io::Result<PathBuf> {
    let done = sibling(path, ".gz");
    let temp = path.with_file_name(format!(".{}.gz.tmp", file_name(path)));
    let mut input = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut output = GzEncoder::new(
        BufWriter::with_capacity(1 << 20, File::create(&temp)?),
        flate2::Compression::default(),
    );
    io::copy(&mut input, &mut output)?;
    output.finish()?.flush()?;
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

/// Deletes the oldest dated files beyond `keep` (0 keeps all).
fn prune_dated(live: &Path, keep: usize) -> io::Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let prefix = format!("{}-", file_name(live));
    let mut dated: Vec<PathBuf> = siblings(live)
        .into_iter()
        .filter(|p| file_name(p).starts_with(&prefix))
        .collect();
    dated.sort();
    let excess = dated.len().saturating_sub(keep);
    for path in &dated[..excess] {
        fs::remove_file(path)?;
    }
    Ok(())
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
        let (archiver, thread) = start(Rotation::default()).unwrap();
        archiver.recover(&live);
        drop(archiver);
        thread.join().unwrap();
        assert_eq!(names(dir.path()), ["haproxy.log.1", "haproxy.log.2"]);
        let newest = fs::read_to_string(dir.path().join("haproxy.log.1")).unwrap();
        assert_eq!(newest, "newer\n");
    }
}
