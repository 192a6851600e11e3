//! Syslog load for `halyard listen` and the receivers it is measured against: numbered HAProxy
//! httplog lines sent over UDP (or TCP with RFC 6587 octet counting) at a set rate, and the
//! check of which of them arrived in a directory of log files.
//!
//! Message `i` of sender `s` requests `/seq/<s>/<i, 10 digits>`, so the verifier tells every
//! loss, duplicate and reordering apart whatever envelope the receiver wrote around the line.
//! A message is counted as sent only once the kernel accepted all of it.
//!
//! Shared by the `listen_vs_rsyslog` bench and the integration tests (which include this file
//! by path), so it uses only std, libc, chrono and halyard.

// Each includer (bench, tests) uses a different part.
#![allow(dead_code)]

use std::fmt;
use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use halyard::input::{lines, Source};
use halyard::logline::{parse_line, Body};

/// Messages handed to the kernel in one call (UDP) or one write (TCP).
const BATCH: usize = 128;
/// Pacing granularity: each sender wakes this often and sends what has fallen due.
const TICK: Duration = Duration::from_millis(1);
/// How long to wait before retrying a send the kernel had no room for.
const BACKOFF: Duration = Duration::from_micros(50);

/// A load to send.
#[derive(Debug, Clone)]
pub struct Load {
    /// Threads sending at once, each with its own socket and its own sequence numbers.
    pub senders: usize,
    /// Messages per second, all senders together; 0 sends as fast as possible for `duration`.
    pub rate: u64,
    /// How long sending lasts at `rate`.
    pub duration: Duration,
    /// Bytes per message (the datagram, or the frame's MSG in TCP); at least what the fixed
    /// text needs, about 170 bytes.
    pub size: usize,
}

impl Load {
    /// Messages per second and messages in all for `sender`: the rate is split evenly, the
    /// first senders taking the remainder.
    fn share(&self, sender: usize) -> (u64, u64) {
        let senders = self.senders.max(1) as u64;
        let rate = self.rate / senders + u64::from((sender as u64) < self.rate % senders);
        let count = (rate as f64 * self.duration.as_secs_f64()).round() as u64;
        (rate, count)
    }
}

/// What a send run did.
#[derive(Debug, Clone, Default)]
pub struct SendStats {
    /// Messages each sender handed to the kernel, by sender index: what the verifier expects.
    pub sent: Vec<u64>,
    /// From the start to the last sender's last message.
    pub elapsed: Duration,
    /// Sends retried because the kernel had no room (EAGAIN, ENOBUFS) or was interrupted.
    pub retries: u64,
    /// Why senders stopped early, if any did (`sender N: error`).
    pub errors: Vec<String>,
}

impl SendStats {
    /// Messages sent by all senders.
    pub fn total(&self) -> u64 {
        self.sent.iter().sum()
    }

    /// Messages per second achieved, all senders together.
    pub fn rate(&self) -> f64 {
        self.total() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sends `load` to `target` over UDP, one socket per sender, paced in batches every
/// millisecond. A paced sender stops after its share of `rate * duration` messages, or at
/// `2 * duration + 1 s` if it cannot keep up (the achieved rate then shows it).
pub fn send_udp(target: SocketAddr, load: &Load) -> SendStats {
    run_senders(load, |sender| {
        let socket = UdpSocket::bind(unspecified(target))?;
        // Connected: the kernel keeps the route, and sendmmsg needs no address per message.
        socket.connect(target)?;
        Ok(Udp {
            socket,
            writer: MessageWriter::new(sender, load.size, true),
            buf: Vec::new(),
            iov: Vec::with_capacity(BATCH),
            headers: Vec::with_capacity(BATCH),
        })
    })
}

/// Sends `load` to `target` over TCP, one connection per sender, each message framed as
/// `LEN SP MSG` (RFC 6587 octet counting) without a trailing newline. Paced as [`send_udp`].
pub fn send_tcp(target: SocketAddr, load: &Load) -> SendStats {
    run_senders(load, |sender| {
        let stream = TcpStream::connect(target)?;
        let writer = MessageWriter::new(sender, load.size, false);
        Ok(Tcp {
            stream,
            frame_head: format!("{} ", writer.len()).into_bytes(),
            writer,
            buf: Vec::new(),
        })
    })
}

/// The wildcard address of `target`'s family, any port.
fn unspecified(target: SocketAddr) -> SocketAddr {
    match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// A way of sending messages `first..first + n` of a sender. On failure it says how many of
/// them went out whole before it.
trait Transport {
    fn send(&mut self, first: u64, n: usize, retries: &mut u64) -> Result<(), (usize, io::Error)>;
}

/// How one sender thread ended.
struct Outcome {
    sent: u64,
    elapsed: Duration,
    retries: u64,
    error: Option<String>,
}

/// Runs one thread per sender with the transport `connect` makes for it; they start together.
fn run_senders<T, F>(load: &Load, connect: F) -> SendStats
where
    T: Transport,
    F: Fn(usize) -> io::Result<T> + Sync,
{
    let senders = load.senders.max(1);
    let start = Barrier::new(senders);
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..senders)
            .map(|sender| {
                let (start, connect) = (&start, &connect);
                scope.spawn(move || {
                    let transport = connect(sender);
                    // Every thread reaches the barrier, even one that failed to connect.
                    start.wait();
                    match transport {
                        Ok(transport) => pace(transport, load, sender),
                        Err(e) => Outcome {
                            sent: 0,
                            elapsed: Duration::ZERO,
                            retries: 0,
                            error: Some(format!("connect: {e}")),
                        },
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    SendStats {
        sent: outcomes.iter().map(|o| o.sent).collect(),
        elapsed: outcomes.iter().map(|o| o.elapsed).max().unwrap_or_default(),
        retries: outcomes.iter().map(|o| o.retries).sum(),
        errors: outcomes
            .iter()
            .enumerate()
            .filter_map(|(s, o)| Some(format!("sender {s}: {}", o.error.as_ref()?)))
            .collect(),
    }
}

/// Sends `sender`'s share of `load`: what has fallen due since the start, in batches, then
/// sleeps to the next tick. Pacing from the start time (not from the last wake-up) means a late
/// wake-up makes the next batch bigger instead of the run slower.
fn pace(mut transport: impl Transport, load: &Load, sender: usize) -> Outcome {
    let (rate, count, deadline) = match load.share(sender) {
        (0, _) if load.rate == 0 => (0, u64::MAX, load.duration),
        (rate, count) => (rate, count, load.duration * 2 + Duration::from_secs(1)),
    };
    let (mut sent, mut retries, mut error) = (0u64, 0u64, None);
    let started = Instant::now();
    let mut last_send = Duration::ZERO;
    loop {
        let elapsed = started.elapsed();
        if sent >= count || elapsed >= deadline {
            break;
        }
        let due = if rate == 0 {
            sent + BATCH as u64
        } else {
            let due = rate as u128 * elapsed.as_nanos() / 1_000_000_000;
            count.min(due as u64)
        };
        if due <= sent {
            let ticks = elapsed.as_nanos() / TICK.as_nanos() + 1;
            let next = TICK * ticks as u32;
            std::thread::sleep(next.saturating_sub(started.elapsed()));
            continue;
        }
        let n = (due - sent).min(BATCH as u64) as usize;
        let result = transport.send(sent, n, &mut retries);
        last_send = started.elapsed();
        match result {
            Ok(()) => sent += n as u64,
            Err((done, e)) => {
                sent += done as u64;
                error = Some(e.to_string());
                break;
            }
        }
    }
    Outcome {
        sent,
        elapsed: last_send,
        retries,
        error,
    }
}

/// One sender's UDP socket and the buffers for a batch of datagrams.
struct Udp {
    socket: UdpSocket,
    writer: MessageWriter,
    buf: Vec<u8>,
    iov: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iov` and `headers` point into `buf` and `iov` of the same value
// and are rebuilt before every use; nothing else holds them.
unsafe impl Send for Udp {}

impl Transport for Udp {
    fn send(&mut self, first: u64, n: usize, retries: &mut u64) -> Result<(), (usize, io::Error)> {
        let len = self.writer.len();
        self.buf.resize(n * len, 0);
        self.writer.restamp();
        for (k, slot) in self.buf.chunks_exact_mut(len).enumerate() {
            self.writer.write(first + k as u64, slot);
        }
        // Rebuilt each batch so no pointer outlives a change to the buffers.
        self.iov.clear();
        self.iov
            .extend(self.buf.chunks_exact_mut(len).map(|slot| libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: len,
            }));
        self.headers.clear();
        for iov in &mut self.iov {
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            self.headers.push(header);
        }
        let mut done = 0;
        while done < n {
            let rest = &mut self.headers[done..];
            // SAFETY: the headers point at live iovecs, which point into `buf`; the socket is
            // connected, so no address is needed.
            let sent = unsafe {
                libc::sendmmsg(
                    self.socket.as_raw_fd(),
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    0,
                )
            };
            if sent > 0 {
                done += sent as usize;
                continue;
            }
            if sent == 0 {
                // Not an error (errno is stale), but no progress either: try again.
                *retries += 1;
                continue;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                // No room in the socket or device queue: wait for it to drain.
                Some(libc::EAGAIN | libc::ENOBUFS) => {
                    *retries += 1;
                    std::thread::sleep(BACKOFF);
                }
                // ECONNREFUSED reports an ICMP error for an earlier datagram (the receiver was
                // not there); this one was not sent and the error is now cleared.
                Some(libc::EINTR | libc::ECONNREFUSED) => *retries += 1,
                _ => return Err((done, err)),
            }
        }
        Ok(())
    }
}

/// One sender's TCP connection and the buffer for a batch of frames.
struct Tcp {
    stream: TcpStream,
    writer: MessageWriter,
    /// `LEN SP`, the same for every message of a sender.
    frame_head: Vec<u8>,
    buf: Vec<u8>,
}

impl Transport for Tcp {
    fn send(&mut self, first: u64, n: usize, retries: &mut u64) -> Result<(), (usize, io::Error)> {
        let head = self.frame_head.len();
        let frame = head + self.writer.len();
        self.buf.resize(n * frame, 0);
        self.writer.restamp();
        for (k, slot) in self.buf.chunks_exact_mut(frame).enumerate() {
            slot[..head].copy_from_slice(&self.frame_head);
            self.writer.write(first + k as u64, &mut slot[head..]);
        }
        let mut written = 0;
        while written < self.buf.len() {
            match self.stream.write(&self.buf[written..]) {
                Ok(0) => return Err((written / frame, io::ErrorKind::WriteZero.into())),
                Ok(w) => written += w,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => *retries += 1,
                // Only whole frames count as sent.
                Err(e) => return Err((written / frame, e)),
            }
        }
        Ok(())
    }
}

/// Writes the messages of one sender, as HAProxy sends an httplog line over syslog:
///
/// `<158>Nov 25 01:50:00 haproxy[4242]: 127.0.0.1:40000 [25/Nov/2026:01:50:00.123] fe be/srv1
/// 0/0/1/2/3 200 512 - - ---- 1/1/0/0/0 0/0 "GET /seq/<s>/<i>?pad=xx…x HTTP/1.1"`
///
/// with the local time, and the `pad` query string sized so the message is `size` bytes
/// (HAProxy ends each datagram with `\n`, counted in the size). Only the clock and the number
/// change between messages, so the text around the number is built once per batch.
#[derive(Debug, Clone)]
pub struct MessageWriter {
    sender: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// Digits of the sequence number, zero-padded.
const SEQ_DIGITS: usize = 10;

impl MessageWriter {
    /// The writer for `sender`'s messages of `size` bytes, ending in `\n` when `newline`.
    pub fn new(sender: usize, size: usize, newline: bool) -> Self {
        let mut writer = MessageWriter {
            sender,
            head: Vec::new(),
            tail: Vec::new(),
        };
        writer.restamp();
        let end: &[u8] = if newline {
            b" HTTP/1.1\"\n"
        } else {
            b" HTTP/1.1\""
        };
        let fixed = writer.head.len() + SEQ_DIGITS + b"?pad=".len() + end.len();
        writer.tail.extend_from_slice(b"?pad=");
        writer.tail.resize(5 + size.saturating_sub(fixed), b'x');
        writer.tail.extend_from_slice(end);
        writer
    }

    /// Reads the clock for the timestamps of the messages written next. The text keeps its
    /// length (`%e` pads the day with a space, milliseconds are always three digits).
    pub fn restamp(&mut self) {
        let now = chrono::Local::now();
        self.head.clear();
        // Writing to a Vec cannot fail.
        let _ = write!(
            self.head,
            "<158>{} haproxy[4242]: 127.0.0.1:40000 [{}] fe be/srv1 0/0/1/2/3 200 512 - - ---- \
             1/1/0/0/0 0/0 \"GET /seq/{}/",
            now.format("%b %e %H:%M:%S"),
            now.format("%d/%b/%Y:%H:%M:%S%.3f"),
            self.sender,
        );
    }

    /// Bytes per message.
    pub fn len(&self) -> usize {
        self.head.len() + SEQ_DIGITS + self.tail.len()
    }

    /// Writes message `seq` into `out`, which is [`MessageWriter::len`] bytes long.
    pub fn write(&self, seq: u64, out: &mut [u8]) {
        let (head, rest) = out.split_at_mut(self.head.len());
        let (digits, tail) = rest.split_at_mut(SEQ_DIGITS);
        head.copy_from_slice(&self.head);
        let mut n = seq;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        tail.copy_from_slice(&self.tail);
    }

    /// Message `seq` as a new buffer.
    pub fn message(&self, seq: u64) -> Vec<u8> {
        let mut out = vec![0; self.len()];
        self.write(seq, &mut out);
        out
    }
}

/// Checks that the messages are what the verifier and a live parser expect: `size` bytes,
/// parsed by halyard as an HTTP log whose URI gives back the sender and number. Returns what is
/// wrong otherwise.
pub fn check_messages(size: usize) -> Result<(), String> {
    for (sender, seq, newline) in [(0, 0, true), (1, 9_876_543_210, true), (12, 7, false)] {
        let message = MessageWriter::new(sender, size, newline).message(seq);
        let text = String::from_utf8_lossy(&message).into_owned();
        if message.len() != size {
            return Err(format!("{} bytes, not {size}: {text}", message.len()));
        }
        let parsed = parse_line(&message);
        let Body::Http(http) = &parsed.body else {
            return Err(format!("not an HTTP log ({:?}): {text}", parsed.body));
        };
        let found = http.request.uri.and_then(sequence_of);
        if found != Some((sender, seq)) {
            return Err(format!(
                "URI gives {found:?}, not {:?}: {text}",
                (sender, seq)
            ));
        }
    }
    Ok(())
}

/// `(sender, number)` from a URI `/seq/<sender>/<number>[?…]`.
fn sequence_of(uri: &[u8]) -> Option<(usize, u64)> {
    let rest = uri.strip_prefix(b"/seq/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let sender = decimal(&rest[..slash])?;
    let number = &rest[slash + 1..];
    let end = number
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(number.len());
    Some((usize::try_from(sender).ok()?, decimal(&number[..end])?))
}

/// A non-empty run of ASCII digits as a number, if it fits.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

/// What arrived from one sender.
#[derive(Debug, Clone, Default)]
pub struct SenderTally {
    /// Messages the sender sent (numbered `0..expected`).
    pub expected: u64,
    /// Distinct numbers below `expected` that arrived.
    pub received: u64,
    /// Arrivals of a number already seen.
    pub duplicates: u64,
    /// First arrivals of a number lower than one seen before it (in file rotation order).
    pub reordered: u64,
    /// Numbers at or above `expected`.
    pub out_of_range: u64,
    /// One bit per number, set once it arrived.
    seen: Vec<u64>,
    /// The highest number seen so far, plus one (0: none yet).
    high: u64,
}

impl SenderTally {
    fn new(expected: u64) -> Self {
        SenderTally {
            expected,
            seen: vec![0; expected.div_ceil(64) as usize],
            ..Default::default()
        }
    }

    /// Messages sent that did not arrive.
    pub fn missing(&self) -> u64 {
        self.expected - self.received
    }

    fn arrived(&mut self, seq: u64) {
        if seq >= self.expected {
            self.out_of_range += 1;
            return;
        }
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= bit;
        self.received += 1;
        if seq < self.high {
            self.reordered += 1;
        }
        self.high = self.high.max(seq + 1);
    }
}

/// What a directory of log files holds of a load.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Per sender, by index.
    pub senders: Vec<SenderTally>,
    /// The files read, in the order read (see [`log_files`]).
    pub files: Vec<PathBuf>,
    /// Lines read, of every kind.
    pub lines: u64,
    /// Lines that are not HAProxy HTTP logs (blank, damaged, other kinds).
    pub not_http: u64,
    /// HTTP logs whose URI is not `/seq/<sender>/<n>` of a known sender.
    pub foreign: u64,
    /// Files or directories that could not be read (to the end), with why.
    pub errors: Vec<String>,
}

impl Verification {
    /// Messages sent that did not arrive, all senders.
    pub fn lost(&self) -> u64 {
        self.senders.iter().map(SenderTally::missing).sum()
    }

    /// Messages sent, all senders.
    pub fn expected(&self) -> u64 {
        self.senders.iter().map(|s| s.expected).sum()
    }

    /// Lost messages as a percentage of those sent.
    pub fn lost_percent(&self) -> f64 {
        100.0 * self.lost() as f64 / self.expected().max(1) as f64
    }

    /// Arrivals of a number already seen, all senders.
    pub fn duplicates(&self) -> u64 {
        self.senders.iter().map(|s| s.duplicates).sum()
    }

    /// Out-of-order first arrivals, all senders.
    pub fn reordered(&self) -> u64 {
        self.senders.iter().map(|s| s.reordered).sum()
    }

    /// Whether every message arrived exactly once, in order, and nothing else was found.
    pub fn is_exact(&self) -> bool {
        self.lost() == 0
            && self.duplicates() == 0
            && self.reordered() == 0
            && self.not_http == 0
            && self.foreign == 0
            && self.errors.is_empty()
            && self.senders.iter().all(|s| s.out_of_range == 0)
    }

    fn read(&mut self, path: &Path) {
        let mut reader = match Source::File(path.to_owned()).open(|_| {}) {
            Ok(reader) => reader,
            Err(e) => return self.errors.push(e.to_string()),
        };
        let mut chunk = Vec::new();
        loop {
            match reader.next_chunk(&mut chunk) {
                Ok(true) => lines(&chunk).for_each(|line| self.tally(line)),
                Ok(false) => break,
                Err(e) => return self.errors.push(e.to_string()),
            }
        }
    }

    fn tally(&mut self, line: &[u8]) {
        self.lines += 1;
        let Body::Http(http) = parse_line(line).body else {
            self.not_http += 1;
            return;
        };
        match http.request.uri.and_then(sequence_of) {
            Some((sender, seq)) if sender < self.senders.len() => {
                self.senders[sender].arrived(seq);
            }
            _ => self.foreign += 1,
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let out_of_range: u64 = self.senders.iter().map(|s| s.out_of_range).sum();
        write!(
            f,
            "lost {} of {} ({:.3}%), {} duplicates, {} reordered, {out_of_range} out of range; \
             {} lines in {} files, {} not http, {} foreign, {} read errors",
            self.lost(),
            self.expected(),
            self.lost_percent(),
            self.duplicates(),
            self.reordered(),
            self.lines,
            self.files.len(),
            self.not_http,
            self.foreign,
            self.errors.len(),
        )?;
        if let Some(first) = self.errors.first() {
            write!(f, " (first: {first})")?;
        }
        Ok(())
    }
}

/// Reads every regular file in `dir` (plain or gzip, by content) in rotation order and counts
/// which of the messages `expect[s]` sender `s` sent arrived. Never fails: unreadable files and
/// lines that are not the load's are counted in the result.
pub fn verify(dir: &Path, expect: &[u64]) -> Verification {
    let mut verification = Verification {
        senders: expect.iter().map(|&n| SenderTally::new(n)).collect(),
        ..Default::default()
    };
    match log_files(dir) {
        Ok(files) => {
            for file in &files {
                verification.read(file);
            }
            verification.files = files;
        }
        Err(e) => verification.errors.push(format!("{}: {e}", dir.display())),
    }
    verification
}

/// Where a file sits in its rotation; files sort oldest content first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// `BASE-STAMP` or `BASE-STAMP.gz` (logrotate's `dateext`, `halyard listen --dateext`):
    /// the lowest stamp is the oldest.
    Dated(String),
    /// `BASE.N` or `BASE.N.gz`: the highest `N` is the oldest.
    Numbered(std::cmp::Reverse<u64>),
    /// Derived from a base but not numbered: staging files such as
    /// `haproxy.log.pending-NANOS`, rotated out but not yet numbered; ordered by name.
    Staged,
    /// `BASE`, the file being written.
    Current,
}

/// The regular files of `dir` but hidden ones (a gzip still being written) and `*.json`
/// (`halyard listen --report-every` writes its reports beside the logs), oldest content first, so that arrival order reads across them:
/// 1. dated files `BASE-STAMP[.gz]`, by stamp;
/// 2. numbered files `BASE.N[.gz]`, highest `N` first;
/// 3. other files derived from a base (`BASE.anything`), by name: `halyard listen` renames the
///    live file to `BASE.pending-NANOS` and numbers it only once it is archived, one at a time
///    in order, so a staged file is newer than every numbered one and its zero-padded stamp
///    orders it among the staged (their modification times do not: a staged file compressed
///    late is touched after the next was rotated);
/// 4. current files `BASE` (the names that derive from no other).
///
/// A name derives from another when it starts with that other name (or the base of a numbered
/// file) and a dot. Files of several bases sort together by rank; ties are broken by name.
pub fn log_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // `halyard listen --report-every` writes its JSON reports beside the logs.
        let log = !name.starts_with('.') && !name.ends_with(".json");
        if log && entry.metadata()?.is_file() {
            names.push(name);
        }
    }
    let mut roots: Vec<&str> = names.iter().map(String::as_str).collect();
    roots.extend(names.iter().filter_map(|n| Some(numbered(n)?.0)));
    let derived = |name: &str| {
        roots.iter().any(|root| {
            name.len() > root.len() + 1
                && name.starts_with(root)
                && name.as_bytes()[root.len()] == b'.'
        })
    };
    let dated = |name: &str| {
        roots.iter().find_map(|root| {
            let stamp = name.strip_prefix(root)?.strip_prefix('-')?;
            let stamp = stamp.strip_suffix(".gz").unwrap_or(stamp);
            let is_stamp = stamp.starts_with(|c: char| c.is_ascii_digit())
                && stamp
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '-' || c == '.');
            (is_stamp && !derived(root)).then(|| stamp.to_owned())
        })
    };
    let mut ranked: Vec<(Rank, &str)> = names
        .iter()
        .map(|name| {
            let rank = match (numbered(name), dated(name)) {
                (_, Some(stamp)) => Rank::Dated(stamp),
                (Some((base, n)), _) if !derived(base) => Rank::Numbered(std::cmp::Reverse(n)),
                _ if derived(name) => Rank::Staged,
                _ => Rank::Current,
            };
            (rank, name.as_str())
        })
        .collect();
    ranked.sort();
    Ok(ranked.into_iter().map(|(_, name)| dir.join(name)).collect())
}

/// `(BASE, N)` for a name `BASE.N` or `BASE.N.gz`.
fn numbered(name: &str) -> Option<(&str, u64)> {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    let (base, n) = name.rsplit_once('.')?;
    if base.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, decimal(n.as_bytes())?))
}

#[cfg(test)]
mod tests {
    // The bench that includes this file builds with cfg(test) but drops #[test] functions.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn messages_are_the_size_asked_and_parse_as_http_logs() {
        check_messages(300).unwrap();
        check_messages(512).unwrap();
    }

    #[test]
    fn rotation_order_is_numbered_then_staged_then_current() {
        let names = |files: &[&str]| {
            let dir = tempfile::tempdir().unwrap();
            for name in files {
                std::fs::write(dir.path().join(name), "").unwrap();
            }
            let found: Vec<String> = log_files(dir.path())
                .unwrap()
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            found
        };
        assert_eq!(
            names(&[
                "haproxy.log",
                "haproxy.log.1.gz",
                "haproxy.log.10.gz",
                "haproxy.log.2",
                "haproxy.log.pending-00000000000000000009",
                "haproxy.log.pending-00000000000000000007.gz",
                ".haproxy.log.pending-00000000000000000007.gz.tmp",
                "report-20261125-021137.json",
            ]),
            [
                "haproxy.log.10.gz",
                "haproxy.log.2",
                "haproxy.log.1.gz",
                "haproxy.log.pending-00000000000000000007.gz",
                "haproxy.log.pending-00000000000000000009",
                "haproxy.log",
            ]
        );
        assert_eq!(
            names(&[
                "haproxy.log",
                "haproxy.log-20261125-013000.gz",
                "haproxy.log-20261124-235959",
            ]),
            [
                "haproxy.log-20261124-235959",
                "haproxy.log-20261125-013000.gz",
                "haproxy.log",
            ]
        );
    }

    #[test]
    fn verify_counts_losses_duplicates_reordering_and_lines_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let writer = |s| MessageWriter::new(s, 300, true);
        let (a, b) = (writer(0), writer(1));
        // Sender 0 sent 0..5: 2 is lost, 3 arrives twice. Sender 1 sent 0..3: 1 comes late.
        let mut old = Vec::new();
        for seq in [0, 1, 3] {
            old.extend(a.message(seq));
        }
        old.extend(b.message(0));
        old.extend(b.message(2));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&old).unwrap();
        std::fs::write(dir.path().join("haproxy.log.1.gz"), gz.finish().unwrap()).unwrap();
        let mut new = Vec::new();
        for seq in [3, 4] {
            new.extend(a.message(seq));
        }
        new.extend(b.message(1));
        new.extend(b.message(9));
        new.extend_from_slice(b"garbage\n\n");
        new.extend(writer(7).message(0));
        new.extend_from_slice(&a.message(4)[..100]);
        std::fs::write(dir.path().join("haproxy.log"), new).unwrap();

        let v = verify(dir.path(), &[5, 3]);
        assert_eq!(v.lost(), 1, "{v}");
        assert_eq!(v.senders[0].missing(), 1);
        assert_eq!(v.duplicates(), 1);
        assert_eq!(v.reordered(), 1);
        assert_eq!(v.senders[1].out_of_range, 1);
        assert_eq!((v.not_http, v.foreign), (3, 1), "{v}");
        assert!(v.errors.is_empty() && !v.is_exact());
        assert!(v.to_string().starts_with("lost 1 of 8 (12.500%)"), "{v}");
    }

    /// 1,000 messages of 300 bytes from 2 senders over half a second.
    fn two_senders_half_a_second() -> Load {
        Load {
            senders: 2,
            rate: 2_000,
            duration: Duration::from_millis(500),
            size: 300,
        }
    }

    /// Writes what a receiver got as a log file in `dir` and checks it holds every message
    /// sent, once and in order.
    fn assert_arrived_exactly(dir: &Path, stats: &SendStats, received: Vec<u8>) {
        assert_eq!(stats.sent, [500, 500], "{stats:?}");
        std::fs::write(dir.join("haproxy.log"), received).unwrap();
        let v = verify(dir, &stats.sent);
        assert!(v.is_exact(), "{v}");
    }

    #[test]
    fn tcp_load_arrives_whole_in_octet_counted_frames() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        let load = two_senders_half_a_second();
        let dir = tempfile::tempdir().unwrap();
        let (stats, file) = std::thread::scope(|scope| {
            let accept = scope.spawn(|| {
                let mut file = Vec::new();
                for _ in 0..2 {
                    let (stream, _) = listener.accept().unwrap();
                    let mut data = Vec::new();
                    io::Read::read_to_end(&mut &stream, &mut data).unwrap();
                    // Each frame is `300 MSG`, the message without a newline.
                    for frame in data.chunks(4 + 300) {
                        assert_eq!(&frame[..4], b"300 ");
                        file.extend_from_slice(&frame[4..]);
                        file.push(b'\n');
                    }
                }
                file
            });
            (send_tcp(target, &load), accept.join().unwrap())
        });
        assert_arrived_exactly(dir.path(), &stats, file);
    }

    #[test]
    fn a_missing_directory_is_an_error_in_the_result() {
        let v = verify(Path::new("/nonexistent/halyard"), &[3]);
        assert_eq!(v.lost(), 3);
        assert_eq!(v.errors.len(), 1);
    }

    #[test]
    fn udp_load_arrives_whole_at_a_socket_that_keeps_up() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Room for a second of load, so a test thread descheduled for a while loses nothing.
        let room: libc::c_int = 4 << 20;
        // SAFETY: setting an int option on our own socket with a valid pointer and length.
        let set = unsafe {
            libc::setsockopt(
                receiver.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&room as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0, "{}", io::Error::last_os_error());
        receiver
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let target = receiver.local_addr().unwrap();
        let load = two_senders_half_a_second();
        let dir = tempfile::tempdir().unwrap();
        let (stats, file) = std::thread::scope(|scope| {
            let recv = scope.spawn(|| {
                let mut file = Vec::new();
                let mut buf = [0u8; 2048];
                while let Ok(n) = receiver.recv(&mut buf) {
                    assert_eq!(n, 300);
                    file.extend_from_slice(&buf[..n]);
                }
                file
            });
            (send_udp(target, &load), recv.join().unwrap())
        });
        assert_arrived_exactly(dir.path(), &stats, file);
    }
}
