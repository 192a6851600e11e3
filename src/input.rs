//! Log inputs: plain files, gzip files (recognised by their magic bytes, whatever the name) and
//! stdin, read in large chunks that always end at a line boundary.
//!
//! Reading in chunks keeps memory flat on files of any size and lets [`map_chunks`] hand whole
//! chunks to worker threads while results still come out in input order; [`lines`] splits a
//! chunk without copying.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use flate2::read::MultiGzDecoder;
use memchr::{memchr, memrchr};

use crate::logline::{lossy, Malformed};

/// The size chunks are filled to before they are handed out.
pub const CHUNK_SIZE: usize = 4 << 20;

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input (`-`).
    Stdin,
    /// A file; gzip content is decompressed transparently.
    File(PathBuf),
}

impl Source {
    /// `-` is stdin; anything else is a path.
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::File(PathBuf::from(arg))
        }
    }

    /// The name used in messages (`file:line`); `-` for stdin.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".to_owned(),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// The size on disk, when known (compressed size for `.gz`).
    pub fn len_hint(&self) -> Option<u64> {
        match self {
            Source::Stdin => None,
            Source::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }

    /// Opens the source for reading; `counted` sees the raw (possibly compressed) bytes as
    /// they are read, for progress reporting.
    pub fn open(
        &self,
        counted: impl FnMut(usize) + Send + 'static,
    ) -> Result<ChunkReader, InputError> {
        Ok(ChunkReader {
            source: self.clone(),
            inner: self.reader(counted)?,
            carry: Vec::new(),
            eof: false,
        })
    }

    /// Opens the source as a plain reader of its (decompressed) bytes, which returns what is
    /// there as soon as it is there: what reading a live pipe needs.
    pub fn reader(
        &self,
        counted: impl FnMut(usize) + Send + 'static,
    ) -> Result<Box<dyn Read + Send>, InputError> {
        let raw: Box<dyn Read + Send> = match self {
            Source::Stdin => Box::new(io::stdin()),
            Source::File(p) => Box::new(File::open(p).map_err(|e| InputError::open(p, e))?),
        };
        let mut buffered = BufReader::with_capacity(
            256 << 10,
            Counted {
                inner: raw,
                counted,
            },
        );
        let is_gzip = buffered
            .fill_buf()
            .map_err(|e| InputError::read(self, e))?
            .starts_with(&[0x1f, 0x8b]);
        Ok(if is_gzip {
            Box::new(MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        })
    }
}

/// A failure to open or read an input, naming it.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// Reading failed part-way (including corrupt gzip data).
    #[error("{name}: read error: {source}")]
    Read {
        /// The input's name.
        name: String,
        /// Why.
        source: io::Error,
    },
}

impl InputError {
    fn open(path: &Path, source: io::Error) -> Self {
        InputError::Open {
            path: path.display().to_string(),
            source,
        }
    }

    fn read(source_of: &Source, source: io::Error) -> Self {
        InputError::Read {
            name: source_of.name(),
            source,
        }
    }
}

struct Counted<R, F> {
    inner: R,
    counted: F,
}

impl<R: Read, F: FnMut(usize)> Read for Counted<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.counted)(n);
        Ok(n)
    }
}

/// Reads an input as chunks of whole lines.
pub struct ChunkReader {
    source: Source,
    inner: Box<dyn Read + Send>,
    carry: Vec<u8>,
    eof: bool,
}

impl ChunkReader {
    /// Replaces `chunk` with the next run of whole lines (about [`CHUNK_SIZE`] bytes, more when
    /// a single line is longer); the last line of the input may lack its newline. Returns
    /// `false` at the end of the input.
    pub fn next_chunk(&mut self, chunk: &mut Vec<u8>) -> Result<bool, InputError> {
        chunk.clear();
        chunk.append(&mut self.carry);
        loop {
            if self.eof {
                return Ok(!chunk.is_empty());
            }
            let filled = chunk.len();
            if filled >= CHUNK_SIZE {
                if let Some(last_nl) = memrchr(b'\n', chunk) {
                    self.carry.extend_from_slice(&chunk[last_nl + 1..]);
                    chunk.truncate(last_nl + 1);
                    return Ok(true);
                }
            }
            // read_to_end fills the spare capacity without zeroing it first (zeroing 4 MiB per
            // chunk cost as much as a memcpy of the whole input).
            let want = CHUNK_SIZE.max(filled / 2);
            chunk.reserve(want);
            match (&mut self.inner).take(want as u64).read_to_end(chunk) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) => return Err(InputError::read(&self.source, e)),
            }
        }
    }
}

/// A chunk of whole lines and where it sits in its input.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// The lines, with their terminators.
    pub data: &'a [u8],
    /// The 1-based number of the chunk's first line in the input.
    pub first_line: u64,
}

/// Reads `reader` chunk by chunk, runs `work` on each chunk on `threads` worker threads, and
/// hands the results to `merge` on the calling thread in input order. Stops reading when
/// `merge` fails; returns the first error of merging or reading.
pub fn map_chunks<T, E>(
    mut reader: ChunkReader,
    threads: usize,
    work: impl Fn(Chunk<'_>) -> T + Sync,
    mut merge: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
    E: From<InputError>,
{
    let stop = AtomicBool::new(false);
    let (work_tx, work_rx) = mpsc::sync_channel::<(usize, u64, Vec<u8>)>(threads);
    let work_rx = Mutex::new(work_rx);
    // Bounded, so that when merging is the slow part, results wait in the workers instead of
    // piling up in memory.
    let (done_tx, done_rx) = mpsc::sync_channel::<(usize, T)>(threads * 2);
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            let (work_rx, done_tx, spare_tx, work) =
                (&work_rx, done_tx.clone(), spare_tx.clone(), &work);
            scope.spawn(move || loop {
                let job = work_rx.lock().map(|rx| rx.recv());
                let Ok(Ok((seq, first_line, data))) = job else {
                    break;
                };
                let result = work(Chunk {
                    data: &data,
                    first_line,
                });
                // The buffer goes back to the reader at once, not after the merge.
                // A send fails only once the reader is gone; the buffer is then not needed.
                let _ = spare_tx.send(data);
                if done_tx.send((seq, result)).is_err() {
                    break;
                }
            });
        }
        drop(spare_tx);
        drop(done_tx);
        let stop = &stop;
        let reading = scope.spawn(move || {
            let (mut seq, mut next_line) = (0, 1u64);
            while !stop.load(Ordering::Relaxed) {
                let mut data = spare_rx.try_recv().unwrap_or_default();
                if !reader.next_chunk(&mut data)? {
                    break;
                }
                let count =
                    memchr::memchr_iter(b'\n', &data).count() + usize::from(!data.ends_with(b"\n"));
                if work_tx.send((seq, next_line, data)).is_err() {
                    break;
                }
                (seq, next_line) = (seq + 1, next_line + count as u64);
            }
            Ok::<(), InputError>(())
        });
        let mut pending = BTreeMap::new();
        let (mut next, mut merged) = (0, Ok(()));
        // Ends when every worker is done, which follows the reader closing the queue.
        for (seq, result) in done_rx {
            pending.insert(seq, result);
            while merged.is_ok() {
                let Some(result) = pending.remove(&next) else {
                    break;
                };
                next += 1;
                merged = merge(result);
            }
            if merged.is_err() {
                stop.store(true, Ordering::Relaxed);
                pending.clear();
            }
        }
        let read = reading
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        merged?;
        read.map_err(E::from)
    })
}

/// Splits a chunk into lines without their `\n` / `\r\n` terminators.
pub fn lines(chunk: &[u8]) -> Lines<'_> {
    Lines { rest: chunk }
}

/// Iterator returned by [`lines`].
pub struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr(b'\n', self.rest) {
            Some(nl) => (&self.rest[..nl], &self.rest[nl + 1..]),
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        self.rest = rest;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// A line that was not understood, named by its input and line number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MalformedLine {
    /// The input's name (`-` for stdin).
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// What the parser expected, and where.
    pub reason: String,
    /// Up to 100 characters of the line around where parsing stopped, escaped.
    pub text: String,
}

impl MalformedLine {
    /// Names line `line` of `file`, whose text is `text`, as not understood for `why`.
    pub fn new(file: &str, line: u64, text: &[u8], why: &Malformed) -> Self {
        MalformedLine {
            file: file.to_owned(),
            line,
            reason: why.to_string(),
            text: excerpt(text, why.offset),
        }
    }
}

impl std::fmt::Display for MalformedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.reason, self.text
        )
    }
}

/// Up to 100 bytes of a line around `offset` (where parsing stopped), for messages.
fn excerpt(text: &[u8], offset: usize) -> String {
    let start = offset.saturating_sub(70).min(text.len());
    let end = (start + 100).min(text.len());
    let mut out = String::new();
    if start > 0 {
        out.push_str("...");
    }
    out.push_str(&lossy(&text[start..end]).escape_debug().to_string());
    if end < text.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(source: &Source) -> Vec<Vec<u8>> {
        let mut reader = source.open(|_| {}).unwrap();
        let mut chunk = Vec::new();
        let mut out = Vec::new();
        while reader.next_chunk(&mut chunk).unwrap() {
            assert!(chunk.ends_with(b"\n") || !chunk.contains(&b'\n') || reader.eof);
            out.extend(lines(&chunk).map(<[u8]>::to_vec));
        }
        out
    }

    #[test]
    fn lines_strip_lf_and_crlf_and_keep_a_last_line_without_newline() {
        let got: Vec<&[u8]> = lines(b"a\r\nb\n\nc").collect();
        assert_eq!(got, [&b"a"[..], b"b", b"", b"c"]);
    }

    #[test]
    fn chunks_never_split_a_line_and_gzip_is_read_by_magic() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = Vec::new();
        for i in 0..400_000 {
            writeln!(text, "line {i} {}", "x".repeat(i % 50)).unwrap();
        }
        let long_line = vec![b'y'; CHUNK_SIZE * 2 + 3];
        text.extend_from_slice(&long_line);
        text.extend_from_slice(b"\nlast");
        let plain = dir.path().join("a.log");
        std::fs::write(&plain, &text).unwrap();
        let zipped = dir.path().join("a.log.1");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        std::fs::write(&zipped, gz.finish().unwrap()).unwrap();
        for source in [Source::File(plain), Source::File(zipped)] {
            let got = read_all(&source);
            assert_eq!(got.len(), 400_002);
            assert_eq!(
                got[123_456],
                format!("line 123456 {}", "x".repeat(6)).as_bytes()
            );
            assert_eq!(got[400_000], long_line);
            assert_eq!(got[400_001], b"last");
        }
    }

    #[test]
    fn map_chunks_keeps_input_order_and_line_numbers_on_many_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.log");
        let text: String = (1..=1_500_000).map(|i| format!("{i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let reader = Source::File(path).open(|_| {}).unwrap();
        let mut seen = Vec::new();
        map_chunks(
            reader,
            4,
            |chunk| {
                let numbers: Vec<(u64, u64)> = lines(chunk.data)
                    .enumerate()
                    .map(|(i, l)| {
                        let n = std::str::from_utf8(l).unwrap().parse().unwrap();
                        (chunk.first_line + i as u64, n)
                    })
                    .collect();
                numbers
            },
            |numbers| -> Result<(), InputError> {
                seen.extend(numbers);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen.len(), 1_500_000);
        assert!(seen
            .iter()
            .enumerate()
            .all(|(i, &(line, n))| line == n && n == i as u64 + 1));
    }

    #[test]
    fn map_chunks_stops_reading_when_merge_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        std::fs::write(&path, "x\n".repeat(50 << 20)).unwrap();
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = read.clone();
        let reader = Source::File(path)
            .open(move |n| {
                counter.fetch_add(n, Ordering::Relaxed);
            })
            .unwrap();
        let err = map_chunks(
            reader,
            2,
            |chunk| chunk.data.len(),
            |_| {
                Err(InputError::Read {
                    name: "out".into(),
                    source: io::ErrorKind::BrokenPipe.into(),
                })
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("out"));
        assert!(
            read.load(Ordering::Relaxed) < 50 << 20,
            "kept reading after the failure"
        );
    }

    #[test]
    fn a_missing_file_names_itself() {
        let err = Source::from_arg("/nonexistent/x.log")
            .open(|_| {})
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("/nonexistent/x.log: "), "{err}");
    }
}
