//! The syslog receiver: UDP (batched receive) and TCP (RFC 6587 framing) into rotating files,
//! with every message counted from the network to the disk.
//!
//! Receiving threads never wait for the disk: they copy what they read into a [`Batch`] and
//! offer it to a bounded queue; only the writer thread formats, routes and writes, and only the
//! archiving thread compresses. When the queue is full, batches wait in the receiver (bounded
//! in bytes) while it keeps reading, so the kernel's receive buffer keeps draining whatever the
//! disk does; only past that bound are messages dropped, and counted.

mod archive;
mod counters;
mod live;
mod output;
mod sink;
mod socket;
mod tcp;
mod udp;
mod writer;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

pub use counters::CounterSnapshot;
pub use udp::MAX_DATAGRAM;

use crate::config::{Cidr, ListenerSettings};
use counters::Counters;

/// Batches the queue holds (up to 64 messages each from UDP).
const QUEUE_BATCHES: usize = 4096;
/// Bytes all receivers together keep waiting for a full queue before they drop (and count)
/// more. TCP never gets near it: a connection stops reading while its batch waits.
const WAITING_LIMIT: usize = 256 << 20;
/// The longest message accepted (TCP; a UDP datagram is at most 64 KiB anyway).
const MAX_MESSAGE: usize = 1 << 20;

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// A socket could not be bound; `advice` says what to do when there is something to do.
    #[error("cannot bind {proto} {addr}: {error}{}", advice.as_ref().map(|a| format!("; {a}")).unwrap_or_default())]
    Bind {
        /// `UDP` or `TCP`.
        proto: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The system's error (part of the message, not a separate cause, so it is said once).
        error: std::io::Error,
        /// What to do about it.
        advice: Option<String>,
    },
    /// An output file or a thread could not be set up.
    #[error("{0}")]
    Setup(#[from] std::io::Error),
}

impl ListenError {
    fn bind(proto: &'static str, addr: SocketAddr, error: std::io::Error) -> Self {
        let advice = socket::bind_advice(proto, addr, &error);
        ListenError::Bind {
            proto,
            addr,
            error,
            advice,
        }
    }
}

/// Binds a UDP socket as the listener does (large receive buffer, woken every 100 ms), for
/// a reader of the live stream that writes no files (`halyard tail --listen`).
pub fn bind_udp(addr: SocketAddr) -> Result<std::net::UdpSocket, ListenError> {
    let rcvbuf = ListenerSettings::default().rcvbuf;
    socket::bind_udp(addr, rcvbuf, false).map(|bound| bound.socket)
}

/// Writes a received message into `out` as the one line a file gets: the sender's trailing
/// terminators dropped, LF and CR inside escaped as rsyslog does.
pub fn message_line(message: &[u8], out: &mut Vec<u8>) {
    output::escape_into(output::trim_end(message), out);
}

/// Messages received together, on their way to the writer.
#[derive(Debug)]
struct Batch {
    received_at: SystemTime,
    data: Vec<u8>,
    /// End offset in `data` and sender of each message.
    messages: Vec<(usize, SocketAddr)>,
}

impl Batch {
    fn new(received_at: SystemTime) -> Self {
        Batch {
            received_at,
            data: Vec::new(),
            messages: Vec::new(),
        }
    }

    fn push(&mut self, message: &[u8], peer: SocketAddr) {
        self.data.extend_from_slice(message);
        self.messages.push((self.data.len(), peer));
    }

    /// Moves `later`'s messages to the end of this batch.
    fn append(&mut self, later: Batch) {
        let shift = self.data.len();
        self.data.extend_from_slice(&later.data);
        self.messages.extend(
            later
                .messages
                .into_iter()
                .map(|(end, peer)| (end + shift, peer)),
        );
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        let mut start = 0;
        self.messages.iter().map(move |&(end, peer)| {
            let message = &self.data[start..end];
            start = end;
            (message, peer)
        })
    }
}

/// What a receiving thread or task shares with the others.
#[derive(Debug, Clone)]
struct ReceiveContext {
    queue: SyncSender<Batch>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    allow: Arc<[Cidr]>,
    max_message: usize,
    /// Bytes waiting in every receiver's outbox.
    waiting_bytes: Arc<AtomicUsize>,
}

impl ReceiveContext {
    fn allows(&self, ip: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(ip))
    }
}

/// A receiver's hand-off to the writer. A batch the full queue did not take waits here and
/// later ones join it, so a slow disk costs memory (up to [`WAITING_LIMIT`] for all
/// receivers) before it costs messages.
#[derive(Debug, Default)]
struct Outbox {
    waiting: Option<Batch>,
    /// This outbox's share of `ReceiveContext::waiting_bytes`.
    held: usize,
}

impl Outbox {
    /// Counts `batch` as received and offers it; `false` once the writer is gone.
    fn offer(&mut self, ctx: &ReceiveContext, batch: Batch) -> bool {
        let n = batch.messages.len() as u64;
        if n == 0 {
            return true;
        }
        Counters::add(&ctx.counters.received, n);
        Counters::add(&ctx.counters.received_bytes, batch.data.len() as u64);
        let batch = match self.waiting.take() {
            Some(mut waiting) => {
                waiting.append(batch);
                waiting
            }
            None => batch,
        };
        self.send(ctx, batch)
    }

    /// Offers the waiting batch again; `false` once the writer is gone.
    fn retry(&mut self, ctx: &ReceiveContext) -> bool {
        match self.waiting.take() {
            Some(batch) => self.send(ctx, batch),
            None => true,
        }
    }

    /// Whether a batch is waiting for room in the queue.
    fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    /// Waits until the waiting batch is taken (or the writer is gone): a receiving thread's
    /// last step, so that everything it received reaches the writer.
    fn deliver_all(&mut self, ctx: &ReceiveContext) {
        while self.is_waiting() && self.retry(ctx) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn send(&mut self, ctx: &ReceiveContext, batch: Batch) -> bool {
        let released = std::mem::take(&mut self.held);
        ctx.waiting_bytes.fetch_sub(released, Ordering::Relaxed);
        match ctx.queue.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Full(batch)) => {
                let size = batch.data.len();
                let others = ctx.waiting_bytes.load(Ordering::Relaxed);
                if others + size > WAITING_LIMIT {
                    Counters::add(&ctx.counters.queue_dropped, batch.messages.len() as u64);
                } else {
                    ctx.waiting_bytes.fetch_add(size, Ordering::Relaxed);
                    self.held = size;
                    self.waiting = Some(batch);
                }
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// A running listener. Dropping it without [`Listener::stop`] leaves its threads running.
#[derive(Debug)]
pub struct Listener {
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    receive_buffers: Vec<usize>,
    files: Vec<PathBuf>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    tcp_stop: tokio::sync::watch::Sender<bool>,
    reopen: Arc<AtomicBool>,
    receivers: Vec<JoinHandle<()>>,
    writer: JoinHandle<()>,
    archiver: JoinHandle<()>,
    live_rows: Option<live::LiveRows>,
    live: Option<JoinHandle<()>>,
}

impl Listener {
    /// Binds every address, opens every file and starts receiving.
    pub fn start(settings: &ListenerSettings) -> Result<Listener, ListenError> {
        // Files are named absolutely from here on: messages show where they really are, and a
        // later change of working directory changes nothing.
        let dir = std::path::absolute(&settings.dir).map_err(|e| {
            std::io::Error::new(e.kind(), format!("{}: {e}", settings.dir.display()))
        })?;
        let settings = &ListenerSettings {
            dir: dir.clone(),
            ..settings.clone()
        };
        let counters = Arc::new(Counters::default());
        let (archiver, archiver_thread) = archive::start(settings.rotation.clone())?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let (live_feed, live_rows, live_thread) =
            if settings.live || settings.report_every.is_some() {
                let (feed, rows, thread) =
                    live::start(settings.live, settings.report_every, &dir, counters.clone())?;
                (Some(feed), Some(rows), Some(thread))
            } else {
                (None, None, None)
            };
        let writer = writer::Writer::open(settings, &archiver, counters.clone(), live_feed)?;
        drop(archiver);
        let files = writer.paths();

        let max_message = settings.max_message.clamp(64, MAX_MESSAGE);
        let mut udp_receivers = Vec::new();
        let mut udp_addrs = Vec::new();
        let mut receive_buffers = Vec::new();
        for &addr in &settings.udp {
            let mut addr = addr;
            let receivers = settings.receivers.clamp(1, 64);
            for _ in 0..receivers {
                let bound = socket::bind_udp(addr, settings.rcvbuf, receivers > 1)?;
                // With port 0, the other receivers join the port the first one got.
                addr = bound.socket.local_addr()?;
                receive_buffers.push(bound.rcvbuf);
                udp_receivers.push(udp::UdpReceiver::new(bound.socket, max_message));
            }
            udp_addrs.push(addr);
        }
        let mut tcp_listeners = Vec::new();
        let mut tcp_addrs = Vec::new();
        for &addr in &settings.tcp {
            let listener = socket::bind_tcp(addr)?;
            tcp_addrs.push(listener.local_addr()?);
            tcp_listeners.push(listener);
        }

        let (queue, batches) = sync_channel(QUEUE_BATCHES);
        let stop = Arc::new(AtomicBool::new(false));
        let reopen = Arc::new(AtomicBool::new(false));
        let ctx = ReceiveContext {
            queue,
            counters: counters.clone(),
            stop: stop.clone(),
            allow: settings.allow.clone().into(),
            max_message,
            waiting_bytes: Arc::default(),
        };
        let writer = {
            let reopen = reopen.clone();
            std::thread::Builder::new()
                .name("listen-write".into())
                .spawn(move || writer.run(batches, reopen))?
        };
        let mut receivers = Vec::new();
        for receiver in udp_receivers {
            let ctx = ctx.clone();
            receivers.push(
                std::thread::Builder::new()
                    .name("listen-udp".into())
                    .spawn(move || udp::receive(receiver, ctx))?,
            );
        }
        let (tcp_stop, tcp_stopped) = tokio::sync::watch::channel(false);
        if !tcp_listeners.is_empty() {
            receivers.push(tcp::serve(
                tcp_listeners,
                ctx,
                settings.maxconn,
                settings.tcp_idle_timeout,
                tcp_stopped,
            )?);
        }
        Ok(Listener {
            udp_addrs,
            tcp_addrs,
            receive_buffers,
            files,
            counters,
            stop,
            tcp_stop,
            reopen,
            receivers,
            writer,
            archiver: archiver_thread,
            live_rows,
            live: live_thread,
        })
    }

    /// The UDP addresses bound (with the real port when 0 was asked for).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The TCP addresses bound.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// The receive buffer each UDP socket got, in bytes as the kernel reports it.
    pub fn receive_buffers(&self) -> &[usize] {
        &self.receive_buffers
    }

    /// The files being written.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The counters now.
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// The rolling per-server view of the last minute, when live parsing is on.
    pub fn live_rows(&self) -> Option<Vec<crate::report::rolling::RollingRow>> {
        let rows = self.live_rows.as_ref()?;
        Some(rows.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Reopens every file by name at the writer's next turn (SIGHUP).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Stops receiving, writes everything received, finishes archiving and returns the final
    /// counters.
    pub fn stop(self) -> CounterSnapshot {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.tcp_stop.send(true);
        // Receivers drain their sockets and drop their queue senders; the writer then sees the
        // queue close, writes the rest and drops the last archiver handle.
        for thread in self.receivers {
            let _ = thread.join();
        }
        let _ = self.writer.join();
        if let Some(live) = self.live {
            let _ = live.join();
        }
        let _ = self.archiver.join();
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(messages: &[&str]) -> Batch {
        let mut b = Batch::new(SystemTime::now());
        for m in messages {
            b.push(m.as_bytes(), "127.0.0.1:1".parse().unwrap());
        }
        b
    }

    fn texts(b: &Batch) -> Vec<String> {
        b.iter()
            .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn a_full_queue_makes_batches_wait_and_merge_not_drop() {
        let (queue, batches) = sync_channel(1);
        let ctx = ReceiveContext {
            queue,
            counters: Arc::default(),
            stop: Arc::default(),
            allow: Arc::new([]),
            max_message: 100,
            waiting_bytes: Arc::default(),
        };
        let mut outbox = Outbox::default();
        assert!(outbox.offer(&ctx, batch(&["a"])));
        assert!(outbox.offer(&ctx, batch(&["b", "c"])));
        assert!(outbox.offer(&ctx, batch(&["d"])));
        assert!(outbox.is_waiting());
        assert_eq!(texts(&batches.recv().unwrap()), ["a"]);
        assert!(outbox.retry(&ctx));
        assert!(!outbox.is_waiting());
        assert_eq!(texts(&batches.recv().unwrap()), ["b", "c", "d"]);
        let counters = ctx.counters.snapshot();
        assert_eq!((counters.received, counters.queue_dropped), (4, 0));
        drop(batches);
        assert!(!outbox.offer(&ctx, batch(&["e"])), "the writer is gone");
    }
}
