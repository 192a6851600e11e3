//! Following one plain file: `-f` reads the open file as it grows; `-F` follows the name
//! through rotation as `tail -F` does, without losing or repeating a line.
//!
//! Invariants:
//! - Only whole lines are handed on; an unfinished last line is held until its newline comes
//!   (or until its file is left behind, when it is handed on as it is).
//! - Before switching to the file now under the name, the old one is read to its end *after*
//!   the name was seen to change: whatever a writer put in the old file before the new one
//!   appeared is read, and nothing from the new one is read twice.
//! - Truncation (copytruncate) is noticed when the file is shorter than what was read, and
//!   also when it has already grown past that point again: the last bytes read are kept and
//!   compared with what the file now holds there. Either way reading restarts at 0.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use memchr::memrchr;

use super::backlog::{start_offset, Start};
use super::Output;

/// Bytes read per step.
const READ_SIZE: usize = 1 << 20;
/// Bytes kept from the end of what was read, to recognise a file truncated and rewritten.
const FINGERPRINT: usize = 64;

/// How a file is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read to the end once.
    Once,
    /// Keep reading the file opened first (`-f`).
    Descriptor,
    /// Keep reading whatever file has the name (`-F`).
    Name,
}

/// The file being read.
#[derive(Debug)]
struct OpenFile {
    file: File,
    id: (u64, u64),
    offset: u64,
    /// The last bytes read (up to [`FINGERPRINT`]), ending at `offset`.
    seen: Vec<u8>,
    /// An unfinished last line.
    partial: Vec<u8>,
}

/// Follows one file; [`Follower::poll`] does one step.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    mode: Mode,
    /// Applied to the first file opened; later files are read from their start.
    start: Option<Start>,
    numbered: bool,
    open: Option<OpenFile>,
    /// Whether the user was told that the name is missing (said once until it is back).
    told_missing: bool,
    buf: Vec<u8>,
}

impl Follower {
    /// A follower of `path`, starting at `start`; `numbered` counts the lines before a
    /// `-n N` start so that line numbers are right (it reads the whole file once).
    pub fn new(path: &Path, mode: Mode, start: Start, numbered: bool) -> Self {
        Follower {
            path: path.to_path_buf(),
            mode,
            start: Some(start),
            numbered,
            open: None,
            told_missing: false,
            buf: Vec::new(),
        }
    }

    /// How the file is followed.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// One step: reads what is there (at most one block), or looks for the file under the
    /// name. Returns whether to call again at once (more may be there) rather than wait.
    pub fn poll(&mut self, out: &mut Vec<Output>) -> io::Result<bool> {
        let Some(open) = self.open.as_mut() else {
            return self.open_file(out);
        };
        if open.truncated()? {
            let name = self.path.display();
            out.push(Output::Notice(format!("{name}: file truncated")));
            open.restart(out)?;
        }
        if open.read_block(&mut self.buf, out)? > 0 {
            return Ok(true);
        }
        match self.mode {
            Mode::Name => self.check_name(out),
            Mode::Descriptor => Ok(false),
            Mode::Once => {
                open.finish(out);
                Ok(false)
            }
        }
    }

    /// At the end of the open file: has the name moved on?
    fn check_name(&mut self, out: &mut Vec<Output>) -> io::Result<bool> {
        let now = identity(&self.path);
        let Some(open) = self.open.as_mut() else {
            return Ok(false);
        };
        if now == Some(open.id) {
            return Ok(false);
        }
        // Gone or replaced: the name changed before this read, so the writes the old file
        // got before that are all visible now.
        if open.read_block(&mut self.buf, out)? > 0 {
            return Ok(true);
        }
        if now.is_none() {
            if !self.told_missing {
                self.told_missing = true;
                let name = self.name();
                out.push(Output::Notice(format!(
                    "{name}: has gone away; reading what is left and waiting for it to come back"
                )));
            }
            return Ok(false);
        }
        open.finish(out);
        self.open = None;
        out.push(Output::Notice(format!(
            "{}: has been replaced; following the new file",
            self.name()
        )));
        self.open_file(out)
    }

    /// Opens the file under the name; returns whether it is open.
    fn open_file(&mut self, out: &mut Vec<Output>) -> io::Result<bool> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if self.mode == Mode::Name => {
                // Whenever it appears, it is a new file: all of it is read (as `tail -F`).
                self.start = None;
                if !self.told_missing {
                    self.told_missing = true;
                    out.push(Output::Notice(format!(
                        "{}: cannot open ({e}); following its name",
                        self.name()
                    )));
                }
                return Ok(false);
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", self.name()))),
        };
        if std::mem::take(&mut self.told_missing) {
            out.push(Output::Notice(format!(
                "{}: has appeared; following it",
                self.name()
            )));
        }
        let meta = file.metadata()?;
        // A file that appears after the start is new: all of it is read.
        let (offset, first_line) = match self.start.take() {
            Some(start) => start_offset(&file, start, self.numbered)?,
            None => (0, 1),
        };
        file.seek(SeekFrom::Start(offset))?;
        let mut open = OpenFile {
            file,
            id: (meta.dev(), meta.ino()),
            offset,
            seen: Vec::new(),
            partial: Vec::new(),
        };
        open.remember_before(offset)?;
        out.push(Output::Reset { first_line });
        self.open = Some(open);
        Ok(true)
    }
}

impl OpenFile {
    /// Reads one block; hands on the whole lines in it. Returns the bytes read.
    fn read_block(&mut self, buf: &mut Vec<u8>, out: &mut Vec<Output>) -> io::Result<usize> {
        buf.resize(READ_SIZE, 0);
        let n = loop {
            match self.file.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let data = &buf[..n];
        self.offset += n as u64;
        let keep = self.seen.len().min(FINGERPRINT.saturating_sub(n));
        self.seen.drain(..self.seen.len() - keep);
        self.seen
            .extend_from_slice(&data[n.saturating_sub(FINGERPRINT)..]);
        match memrchr(b'\n', data) {
            Some(last) => {
                let mut lines = std::mem::take(&mut self.partial);
                lines.extend_from_slice(&data[..=last]);
                self.partial.extend_from_slice(&data[last + 1..]);
                out.push(Output::Lines(lines));
            }
            None => self.partial.extend_from_slice(data),
        }
        Ok(n)
    }

    /// Whether the file was truncated since the last read, even if it grew again since.
    fn truncated(&mut self) -> io::Result<bool> {
        let len = self.file.metadata()?.len();
        if len < self.offset {
            return Ok(true);
        }
        let mut now = [0u8; FINGERPRINT];
        let now = &mut now[..self.seen.len()];
        match self
            .file
            .read_exact_at(now, self.offset - self.seen.len() as u64)
        {
            Ok(()) => Ok(*now != *self.seen),
            // Shorter by now: truncated between the two looks.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Reads again from the start (after a truncation).
    fn restart(&mut self, out: &mut Vec<Output>) -> io::Result<()> {
        self.finish(out);
        self.file.seek(SeekFrom::Start(0))?;
        self.offset = 0;
        self.seen.clear();
        out.push(Output::Reset { first_line: 1 });
        Ok(())
    }

    /// Hands on the unfinished last line as it is: its file is being left behind.
    fn finish(&mut self, out: &mut Vec<Output>) {
        if !self.partial.is_empty() {
            let mut line = std::mem::take(&mut self.partial);
            line.push(b'\n');
            out.push(Output::Lines(line));
        }
    }

    /// Keeps the bytes just before `offset` (where reading starts) as the fingerprint.
    fn remember_before(&mut self, offset: u64) -> io::Result<()> {
        let len = offset.min(FINGERPRINT as u64) as usize;
        self.seen.resize(len, 0);
        self.file.read_exact_at(&mut self.seen, offset - len as u64)
    }
}

/// `(device, inode)` of the file under `path`, `None` when there is none.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Polls until nothing more comes at once; returns the text of the lines handed on.
    fn drain(follower: &mut Follower) -> String {
        let mut out = Vec::new();
        while follower.poll(&mut out).unwrap() {}
        out.iter()
            .filter_map(|o| match o {
                Output::Lines(l) => Some(String::from_utf8_lossy(l).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn holds_a_partial_line_until_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"one\ntw").unwrap();
        let mut f = Follower::new(&path, Mode::Descriptor, Start::From(1), false);
        assert_eq!(drain(&mut f), "one\n");
        file.write_all(b"o\nthree\n").unwrap();
        assert_eq!(drain(&mut f), "two\nthree\n");
    }

    #[test]
    fn truncated_and_regrown_past_the_old_end_restarts_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "1\n2\n").unwrap();
        let mut f = Follower::new(&path, Mode::Name, Start::From(1), false);
        assert_eq!(drain(&mut f), "1\n2\n");
        // copytruncate, then the writer goes on before the follower looks again.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(0).unwrap();
        std::fs::write(&path, "3\n4\n5\n").unwrap();
        assert_eq!(drain(&mut f), "3\n4\n5\n");
    }

    #[test]
    fn a_file_missing_at_the_start_is_read_whole_when_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later/a.log");
        let mut f = Follower::new(&path, Mode::Name, Start::Last(2), false);
        assert_eq!(drain(&mut f), "");
        std::fs::create_dir(dir.path().join("later")).unwrap();
        std::fs::write(&path, "1\n2\n3\n4\n").unwrap();
        assert_eq!(drain(&mut f), "1\n2\n3\n4\n", "not just the last 2 lines");
    }

    #[test]
    fn drains_the_renamed_file_before_the_new_one_and_waits_for_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut f = Follower::new(&path, Mode::Name, Start::Last(10), false);
        assert_eq!(drain(&mut f), "");
        let mut old = File::create(&path).unwrap();
        old.write_all(b"1\n").unwrap();
        assert_eq!(drain(&mut f), "1\n");
        old.write_all(b"2\npart").unwrap();
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        std::fs::write(&path, "3\n").unwrap();
        assert_eq!(drain(&mut f), "2\npart\n3\n");
    }
}
