//! Where reading starts: the last N lines (`-n N`) or from line N on (`-n +N`), found by
//! seeking backwards in a plain file and by reading through a stream (stdin, `.gz`).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use memchr::{memchr_iter, memrchr};

use super::Output;

/// Where in its input reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The last N lines (`-n N`).
    Last(u64),
    /// From the Nth line on, 1-based (`-n +N`).
    From(u64),
}

impl std::str::FromStr for Start {
    type Err = String;

    /// `N` or `+N`, as `tail -n` takes them.
    fn from_str(spec: &str) -> Result<Self, String> {
        let bad = || format!("bad line count '{spec}': expected N (the last N lines) or +N");
        match spec.strip_prefix('+') {
            Some(n) => n
                .parse()
                .map(|n: u64| Start::From(n.max(1)))
                .map_err(|_| bad()),
            None => spec.parse().map(Start::Last).map_err(|_| bad()),
        }
    }
}

/// Bytes read per step when seeking backwards or counting.
const STEP: usize = 256 << 10;

/// The byte offset where reading `file` from `start` begins, and that line's 1-based number
/// when `numbered` (counting it costs a read of everything before it, so only when asked).
pub fn start_offset(file: &File, start: Start, numbered: bool) -> io::Result<(u64, u64)> {
    match start {
        Start::From(n) => line_offset(file, n),
        Start::Last(n) => {
            let offset = last_lines_offset(file, n)?;
            let first = if numbered {
                count_newlines(file, offset)? + 1
            } else {
                1
            };
            Ok((offset, first))
        }
    }
}

/// Where the last `n` lines of `file` begin. A last line without its newline counts as a line.
fn last_lines_offset(file: &File, n: u64) -> io::Result<u64> {
    let len = file.metadata()?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut buf = vec![0; STEP];
    let mut end = len;
    // The newline that ends the file ends the last line; it separates nothing.
    let mut skip_final = true;
    let mut found = 0;
    while end > 0 {
        let start = end.saturating_sub(STEP as u64);
        let part = &mut buf[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        let mut region = &part[..];
        if skip_final {
            skip_final = false;
            if region.last() == Some(&b'\n') {
                region = &region[..region.len() - 1];
            }
        }
        while let Some(nl) = memrchr(b'\n', region) {
            found += 1;
            if found == n {
                return Ok(start + nl as u64 + 1);
            }
            region = &region[..nl];
        }
        end = start;
    }
    Ok(0)
}

/// Where line `n` (1-based) of `file` begins (its end when it has fewer lines), and `n`.
fn line_offset(file: &File, n: u64) -> io::Result<(u64, u64)> {
    let mut buf = vec![0; STEP];
    let (mut at, mut line) = (0u64, 1u64);
    while line < n {
        let got = file.read_at(&mut buf, at)?;
        if got == 0 {
            break;
        }
        let mut consumed = got;
        for nl in memchr_iter(b'\n', &buf[..got]) {
            line += 1;
            if line == n {
                consumed = nl + 1;
                break;
            }
        }
        at += consumed as u64;
    }
    Ok((at, line))
}

/// The number of newlines in the first `upto` bytes of `file`.
fn count_newlines(file: &File, upto: u64) -> io::Result<u64> {
    let mut buf = vec![0; STEP];
    let (mut at, mut count) = (0u64, 0u64);
    while at < upto {
        let want = (upto - at).min(STEP as u64) as usize;
        let got = file.read_at(&mut buf[..want], at)?;
        if got == 0 {
            break;
        }
        count += memchr_iter(b'\n', &buf[..got]).count() as u64;
        at += got as u64;
    }
    Ok(count)
}

/// Reads a stream (stdin, a gzip file) from `start` to its end, handing on whole lines as
/// they arrive (`+N`) or the last N at the end (`N`, kept in a buffer that never holds much
/// more than them). `emit` returns `false` to stop.
pub fn read_stream(
    mut reader: impl Read,
    start: Start,
    mut emit: impl FnMut(Output) -> bool,
) -> io::Result<()> {
    let mut buf = vec![0; STEP];
    let mut pending = Vec::new();
    let mut stream = Stream {
        start,
        line: 1,
        started: false,
        kept: Vec::new(),
    };
    loop {
        let got = match reader.read(&mut buf) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if got == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..got]);
        let Some(last) = memrchr(b'\n', &pending) else {
            continue;
        };
        let rest = pending.split_off(last + 1);
        let lines = std::mem::replace(&mut pending, rest);
        if !stream.take(lines, &mut emit) {
            return Ok(());
        }
    }
    if !pending.is_empty() {
        pending.push(b'\n');
        if !stream.take(pending, &mut emit) {
            return Ok(());
        }
    }
    if let Start::Last(_) = start {
        let count = memchr_iter(b'\n', &stream.kept).count() as u64;
        if emit(Output::Reset {
            first_line: stream.line - count,
        }) && !stream.kept.is_empty()
        {
            emit(Output::Lines(stream.kept));
        }
    }
    Ok(())
}

/// Where a stream is: the number of the next line, and the last lines kept for `-n N`.
struct Stream {
    start: Start,
    line: u64,
    started: bool,
    kept: Vec<u8>,
}

impl Stream {
    /// Takes whole lines; returns `false` once `emit` does.
    fn take(&mut self, mut lines: Vec<u8>, emit: &mut impl FnMut(Output) -> bool) -> bool {
        let count = memchr_iter(b'\n', &lines).count() as u64;
        let first = self.line;
        self.line += count;
        match self.start {
            Start::Last(n) => {
                self.kept.extend_from_slice(&lines);
                let from = last_lines_in(&self.kept, n);
                self.kept.drain(..from);
                true
            }
            Start::From(n) => {
                // The lines before line n are skipped.
                let skip = n.saturating_sub(first);
                if skip >= count {
                    return true;
                }
                if skip > 0 {
                    let from = memchr_iter(b'\n', &lines)
                        .nth(skip as usize - 1)
                        .map_or(lines.len(), |nl| nl + 1);
                    lines.drain(..from);
                }
                if !std::mem::replace(&mut self.started, true)
                    && !emit(Output::Reset {
                        first_line: first + skip,
                    })
                {
                    return false;
                }
                emit(Output::Lines(lines))
            }
        }
    }
}

/// Where the last `n` lines of `data` (whole lines, ending in a newline) begin.
fn last_lines_in(data: &[u8], n: u64) -> usize {
    if n == 0 {
        return data.len();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    memrchr_iter_nth(body, n).map_or(0, |nl| nl + 1)
}

/// The position of the `n`th newline counting from the end.
fn memrchr_iter_nth(data: &[u8], n: u64) -> Option<usize> {
    memchr::memrchr_iter(b'\n', data).nth(usize::try_from(n - 1).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn from(text: &str, start: Start) -> (String, u64) {
        let (_dir, path) = file_with(text);
        let file = File::open(&path).unwrap();
        let (offset, line) = start_offset(&file, start, true).unwrap();
        (text[offset as usize..].to_owned(), line)
    }

    /// Streamed through a reader that returns a few bytes at a time, as a pipe does.
    fn streamed(text: &str, start: Start) -> (String, u64) {
        let reader = Trickle(text.as_bytes());
        let (mut out, mut first) = (String::new(), 0);
        read_stream(reader, start, |o| {
            match o {
                Output::Reset { first_line } => first = first_line,
                Output::Lines(data) => out.push_str(std::str::from_utf8(&data).unwrap()),
                Output::Notice(n) | Output::Failed(n) => panic!("{n}"),
            }
            true
        })
        .unwrap();
        (out, first)
    }

    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn last_lines_and_from_line_n_in_files_and_streams() {
        let text: String = (1..=100_000).map(|i| format!("line {i}\n")).collect();
        let last3 = "line 99998\nline 99999\nline 100000\n";
        assert_eq!(from(&text, Start::Last(3)), (last3.to_owned(), 99_998));
        assert_eq!(streamed(&text, Start::Last(3)), (last3.to_owned(), 99_998));
        let tail = &text[text.find("line 99999\n").unwrap()..];
        assert_eq!(from(&text, Start::From(99_999)), (tail.to_owned(), 99_999));
        assert_eq!(
            streamed(&text, Start::From(99_999)),
            (tail.to_owned(), 99_999)
        );
        assert_eq!(from(&text, Start::From(1)).0, text);
        assert_eq!(from(&text, Start::Last(0)).0, "");
        assert_eq!(from("a\nb", Start::Last(1)).0, "b");
        assert_eq!(from("a\nb\n", Start::Last(5)), ("a\nb\n".to_owned(), 1));
        assert_eq!(streamed("a\nb", Start::Last(1)), ("b\n".to_owned(), 2));
    }

    #[test]
    fn counts_parse_like_tail() {
        assert_eq!("10".parse(), Ok(Start::Last(10)));
        assert_eq!("+1".parse(), Ok(Start::From(1)));
        assert_eq!("+0".parse(), Ok(Start::From(1)));
        assert!("x".parse::<Start>().is_err());
    }
}
