//! Waiting for a followed file to change: inotify on its directory where the kernel has it,
//! a short sleep otherwise.
//!
//! Events are only wake-ups: whatever woke us, the follower looks at the file itself (size,
//! identity, content), so a lost or coalesced event costs at most one [`SAFETY_POLL`].
//! Watching the directory rather than the file sees every rotation step (rename, create,
//! delete) and the writes to any file in it, including a file that does not exist yet.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the file is looked at without any event: covers a file renamed into another
/// directory and still written to, and filesystems where inotify sees nothing (NFS).
const SAFETY_POLL: Duration = Duration::from_millis(1000);
/// How often the file is looked at when inotify is not available.
const POLL: Duration = Duration::from_millis(100);

/// Wakes a follower when its file's directory changes.
#[derive(Debug)]
pub struct Watcher {
    dir: PathBuf,
    inotify: Option<OwnedFd>,
    watching: bool,
}

impl Watcher {
    /// A watcher for changes to `file` (its directory is watched; it may not exist yet).
    pub fn new(file: &Path) -> Watcher {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // SAFETY: plain system call; the result is checked before use.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        // SAFETY: a file descriptor just returned by the kernel, owned by nobody else.
        let inotify = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
        let mut watcher = Watcher {
            dir,
            inotify,
            watching: false,
        };
        watcher.add_watch();
        watcher
    }

    /// Whether inotify is watching the directory (else this polls).
    #[cfg(test)]
    fn is_watching(&self) -> bool {
        self.watching
    }

    fn add_watch(&mut self) {
        let (Some(fd), false) = (&self.inotify, self.watching) else {
            return;
        };
        let Ok(path) = CString::new(self.dir.as_os_str().as_bytes()) else {
            return;
        };
        let mask = libc::IN_MODIFY
            | libc::IN_ATTRIB
            | libc::IN_CREATE
            | libc::IN_DELETE
            | libc::IN_MOVED_FROM
            | libc::IN_MOVED_TO
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF;
        // SAFETY: `path` is a valid C string and `fd` an open inotify descriptor.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
        self.watching = wd >= 0;
    }

    /// Returns after something changed in the directory, or after at most `limit` (the
    /// safety poll when watching, a short poll when not), whichever is first.
    pub fn wait(&mut self, limit: Duration) {
        // A directory that did not exist (or could not be watched) is tried again each time.
        self.add_watch();
        let (Some(fd), true) = (&self.inotify, self.watching) else {
            std::thread::sleep(limit.min(POLL));
            return;
        };
        let timeout = limit.min(SAFETY_POLL).as_millis().min(i32::MAX as u128) as i32;
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, timeout) };
        if ready > 0 {
            self.drain();
        }
    }

    /// Reads and discards the pending events; when the directory itself went away, the watch
    /// is gone with it and is added again on the next wait.
    fn drain(&mut self) {
        let Some(fd) = &self.inotify else { return };
        let mut buf = [0u64; 512];
        loop {
            // SAFETY: reading into a buffer we own, of the size given.
            let n = unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    std::mem::size_of_val(&buf),
                )
            };
            if n <= 0 {
                break;
            }
            if events_include(&buf, n as usize, libc::IN_IGNORED) {
                self.watching = false;
            }
        }
    }
}

/// Whether any event in the first `len` bytes of `buf` has `flag` in its mask.
fn events_include(buf: &[u64], len: usize, flag: u32) -> bool {
    // SAFETY: the kernel filled `len` bytes; viewing u64s as bytes is always valid.
    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
    let header = std::mem::size_of::<libc::inotify_event>();
    let mut at = 0;
    while at + header <= bytes.len() {
        let field = |offset: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&bytes[at + offset..at + offset + 4]);
            u32::from_ne_bytes(word)
        };
        // struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; ... }
        if field(4) & flag != 0 {
            return true;
        }
        at += header + field(12) as usize;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_create_in_the_directory_wakes_the_waiter_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("later.log");
        let mut watcher = Watcher::new(&file);
        assert!(watcher.is_watching());
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                std::fs::write(file, "x\n").unwrap();
            })
        };
        let started = Instant::now();
        watcher.wait(Duration::from_secs(30));
        // Without the event, the wait would last the whole safety poll.
        assert!(started.elapsed() < SAFETY_POLL - Duration::from_millis(100));
        writer.join().unwrap();
    }
}
