//! Receiving syslog over TCP: RFC 6587 octet counting (`LEN SP MSG`, what HAProxy's log rings
//! send) and LF-terminated lines, told apart per frame as rsyslog does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::counters::Counters;
use super::{Batch, Outbox, ReceiveContext};

/// Runs the TCP listeners on a runtime of their own until `stop` turns true; connections then
/// read what the kernel already holds and finish.
pub(super) fn serve(
    listeners: Vec<std::net::TcpListener>,
    ctx: ReceiveContext,
    maxconn: usize,
    idle: Duration,
    stop: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("listen-tcp".into())
        .spawn(move || {
            runtime.block_on(async move {
                let permits = Arc::new(Semaphore::new(maxconn.max(1)));
                let mut tasks = tokio::task::JoinSet::new();
                for listener in listeners {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            tasks.spawn(accept_loop(
                                listener,
                                ctx.clone(),
                                permits.clone(),
                                idle,
                                stop.clone(),
                            ));
                        }
                        Err(e) => eprintln!("halyard listen: TCP listener unusable: {e}"),
                    }
                }
                while tasks.join_next().await.is_some() {}
            })
        })
}

async fn accept_loop(
    listener: TcpListener,
    ctx: ReceiveContext,
    permits: Arc<Semaphore>,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("halyard listen: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !ctx.allows(peer.ip()) {
            Counters::add(&ctx.counters.rejected, 1);
            continue;
        }
        Counters::add(&ctx.counters.tcp_connections, 1);
        let (ctx, stop) = (ctx.clone(), stop.clone());
        connections.spawn(async move {
            read_connection(stream, peer, ctx, idle, stop).await;
            drop(permit);
        });
    }
    while connections.join_next().await.is_some() {}
}

/// Reads frames from one connection until it closes, idles out, or the listener stops. While
/// a batch waits for room in the writer's queue the connection is not read, so the sender is
/// slowed by TCP itself instead of losing messages.
async fn read_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: ReceiveContext,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut framer = Framer::new(ctx.max_message);
    let mut outbox = Outbox::default();
    let mut buf = vec![0u8; 64 << 10];
    let mut last_read = Instant::now();
    // `timeout client 0` means no timeout, as in HAProxy.
    let idle = if idle.is_zero() { Duration::MAX } else { idle };
    loop {
        if outbox.is_waiting() {
            tokio::time::sleep(RETRY).await;
            if !outbox.retry(&ctx) {
                return;
            }
            continue;
        }
        let wait = idle.saturating_sub(last_read.elapsed());
        let read = tokio::select! {
            read = tokio::time::timeout(wait, stream.read(&mut buf)) => read,
            _ = stop.wait_for(|s| *s) => {
                drain(&mut stream, &mut buf, &mut framer, peer, &ctx, &mut outbox);
                break;
            }
        };
        match read {
            Ok(Ok(n @ 1..)) => {
                last_read = Instant::now();
                if !deliver(&mut framer, &buf[..n], peer, &ctx, &mut outbox) {
                    return;
                }
            }
            _ => break,
        }
    }
    let mut batch = Batch::new(SystemTime::now());
    framer.finish(|frame, truncated| push_frame(&mut batch, frame, truncated, peer, &ctx));
    let mut open = outbox.offer(&ctx, batch);
    // Everything read reaches the writer before the connection's task ends.
    while open && outbox.is_waiting() {
        tokio::time::sleep(RETRY).await;
        open = outbox.retry(&ctx);
    }
}

/// At stop: takes what the kernel already holds for this connection, up to [`DRAIN_BYTES`],
/// so a sender that never pauses cannot keep the listener from stopping.
fn drain(
    stream: &mut TcpStream,
    buf: &mut [u8],
    framer: &mut Framer,
    peer: SocketAddr,
    ctx: &ReceiveContext,
    outbox: &mut Outbox,
) {
    let mut taken = 0;
    while taken < DRAIN_BYTES {
        match stream.try_read(buf) {
            Ok(n @ 1..) => {
                taken += n;
                if !deliver(framer, &buf[..n], peer, ctx, outbox) {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// The most a connection reads after the listener was asked to stop.
const DRAIN_BYTES: usize = 16 << 20;

/// How often a batch waiting for room in the queue is offered again.
const RETRY: Duration = Duration::from_millis(5);

/// Frames `data` and offers the complete frames; `false` once the writer is gone.
fn deliver(
    framer: &mut Framer,
    data: &[u8],
    peer: SocketAddr,
    ctx: &ReceiveContext,
    outbox: &mut Outbox,
) -> bool {
    let mut batch = Batch::new(SystemTime::now());
    framer.feed(data, |frame, truncated| {
        push_frame(&mut batch, frame, truncated, peer, ctx)
    });
    outbox.offer(ctx, batch)
}

fn push_frame(
    batch: &mut Batch,
    frame: &[u8],
    truncated: bool,
    peer: SocketAddr,
    ctx: &ReceiveContext,
) {
    if truncated {
        Counters::add(&ctx.counters.truncated, 1);
    }
    batch.push(frame, peer);
}

/// Splits a TCP byte stream into syslog frames. A frame starting with digits and a space is
/// octet-counted; anything else runs to the next LF. Frames longer than the maximum are cut
/// to it (flagged truncated) and the rest is skipped.
#[derive(Debug)]
pub(super) struct Framer {
    pending: Vec<u8>,
    skip: Skip,
    max: usize,
}

/// What to throw away before the next frame: the rest of a truncated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Nothing,
    Octets(usize),
    ToNewline,
}

/// Digits of an octet count, at most: 999,999,999 bytes.
const MAX_COUNT_DIGITS: usize = 9;

impl Framer {
    pub(super) fn new(max: usize) -> Self {
        Framer {
            pending: Vec::new(),
            skip: Skip::Nothing,
            max,
        }
    }

    /// Adds bytes read and calls `emit(frame, truncated)` for each complete frame.
    pub(super) fn feed(&mut self, data: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        self.pending.extend_from_slice(data);
        let mut pos = 0;
        while let Some(used) = next_frame(&mut self.skip, self.max, &self.pending[pos..], &mut emit)
        {
            pos += used;
        }
        self.pending.drain(..pos);
    }

    /// At end of stream: whatever is left is a last frame (truncated if its count said more).
    pub(super) fn finish(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        let rest = std::mem::take(&mut self.pending);
        if rest.is_empty() || self.skip != Skip::Nothing {
            return;
        }
        match octet_count(&rest) {
            Some((header, _)) => emit(&rest[header..], true),
            None => emit(trim_cr(&rest), false),
        }
    }
}

/// Emits the frame at the start of `rest`, if complete; returns the bytes it used, or
/// `None` when more input is needed.
fn next_frame(
    skip: &mut Skip,
    max: usize,
    rest: &[u8],
    emit: &mut impl FnMut(&[u8], bool),
) -> Option<usize> {
    if rest.is_empty() {
        return None;
    }
    match *skip {
        Skip::Octets(n) => {
            let used = n.min(rest.len());
            *skip = if used == n {
                Skip::Nothing
            } else {
                Skip::Octets(n - used)
            };
            return Some(used);
        }
        Skip::ToNewline => {
            return Some(match memchr::memchr(b'\n', rest) {
                Some(k) => {
                    *skip = Skip::Nothing;
                    k + 1
                }
                None => rest.len(),
            });
        }
        Skip::Nothing => {}
    }
    if rest[0].is_ascii_digit() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == rest.len() && digits <= MAX_COUNT_DIGITS {
            return None; // the count itself is still arriving
        }
        if let Some((header, len)) = octet_count(rest) {
            if len <= max {
                let frame = rest.get(header..header + len)?;
                emit(frame, false);
                return Some(header + len);
            }
            let frame = rest.get(header..header + max)?;
            emit(frame, true);
            *skip = Skip::Octets(len - max);
            return Some(header + max);
        }
    }
    match memchr::memchr(b'\n', rest) {
        Some(k) => {
            let line = trim_cr(&rest[..k]);
            if line.len() > max {
                emit(&line[..max], true);
            } else if !line.is_empty() {
                emit(line, false);
            }
            Some(k + 1)
        }
        None if rest.len() > max => {
            emit(&rest[..max], true);
            *skip = Skip::ToNewline;
            Some(rest.len())
        }
        None => None,
    }
}

/// `LEN SP` at the start of `input`: the header's length and LEN.
fn octet_count(input: &[u8]) -> Option<(usize, usize)> {
    let digits = input.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > MAX_COUNT_DIGITS || input.get(digits) != Some(&b' ') {
        return None;
    }
    let len = std::str::from_utf8(&input[..digits]).ok()?.parse().ok()?;
    Some((digits + 1, len))
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, pieces: &[&[u8]]) -> Vec<(String, bool)> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        for piece in pieces {
            framer.feed(piece, |f, t| {
                out.push((String::from_utf8_lossy(f).into_owned(), t))
            });
        }
        framer.finish(|f, t| out.push((String::from_utf8_lossy(f).into_owned(), t)));
        out
    }

    fn whole(items: &[&str]) -> Vec<(String, bool)> {
        items.iter().map(|s| (s.to_string(), false)).collect()
    }

    #[test]
    fn octet_counted_frames_split_anywhere() {
        let stream = b"11 <13>hello\nx5 <1>ab";
        let want = whole(&["<13>hello\nx", "<1>ab"]);
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(frames(100, &[a, b]), want, "cut at {cut}");
        }
    }

    #[test]
    fn lf_frames_and_mixed_framing() {
        assert_eq!(
            frames(
                100,
                &[b"<13>a\r\n<13>b\n", b"4 <1>", b"\n127.0.0.1:5 x\n\n"]
            ),
            whole(&["<13>a", "<13>b", "<1>\n", "127.0.0.1:5 x"])
        );
        // No terminator at the end of the stream: the line still counts.
        assert_eq!(frames(100, &[b"<13>tail"]), whole(&["<13>tail"]));
    }

    #[test]
    fn oversized_frames_are_cut_and_the_rest_skipped() {
        let got = frames(4, &[b"10 0123456789", b"3 abc", b"\nlonger-line\nok\n"]);
        assert_eq!(
            got,
            [
                ("0123".to_string(), true),
                ("abc".to_string(), false),
                ("long".to_string(), true),
                ("ok".to_string(), false)
            ]
        );
        let got = frames(4, &[b"abcdefgh", b"ij\nok\n"]);
        assert_eq!(got, [("abcd".to_string(), true), ("ok".to_string(), false)]);
        // A count promising more than the stream held.
        assert_eq!(frames(100, &[b"50 short"]), [("short".to_string(), true)]);
    }
}
