//! The client socket as hyper reads it, with HAProxy's request timeouts on top.
//!
//! hyper's own `header_read_timeout` cannot do what HAProxy does: it runs while a keep-alive
//! connection sits idle (so an idle client would be logged as a 408), and when it fires hyper
//! closes without a response. HAProxy distinguishes two waits between requests:
//! - `timeout http-keep-alive`: nothing of the next request has arrived; the connection is
//!   closed silently, nothing is logged;
//! - `timeout http-request`: the request headers must be complete within this, counted from
//!   the accept for the first request and from its first byte for later ones; when it fires
//!   the client gets the 408 page and the log a `<BADREQ>` line with `cR--`.
//!
//! Both are watched here, in the read path hyper polls while it waits for a request head. The
//! service marks the time it spends on a request with a [`Phase`] guard, so a slow response
//! or a long download is never mistaken for a slow request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::tls::ClientStream;

/// Whether the service is busy with a request, and how many requests have ended: shared by
/// the service (which writes it) and the connection's reader (which reads it).
#[derive(Debug, Default)]
pub(super) struct Phase {
    busy: AtomicBool,
    ended: AtomicU64,
    timed_out: AtomicU8,
    /// Bytes read from the client, and how many of them requests have counted.
    read: AtomicU64,
    counted: AtomicU64,
    /// The reader, parked while a request is served, to wake when it ends (its wait for the
    /// next request starts then, with no read to start it).
    reader: Mutex<Option<Waker>>,
}

/// How a request timed out, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestTimeout {
    /// `timeout http-request` passed with part of a request received.
    Incomplete,
    /// `timeout http-request` passed on a new connection that sent nothing.
    Empty,
}

/// Marks a request being served; dropping it ends the request.
#[derive(Debug)]
pub(super) struct Busy(Arc<Phase>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::Relaxed);
        self.0.busy.store(false, Ordering::Release);
        let reader = self
            .0
            .reader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

impl Phase {
    /// Marks a request as being served until the guard is dropped.
    pub(super) fn begin(self: &Arc<Self>) -> Busy {
        self.busy.store(true, Ordering::Release);
        Busy(self.clone())
    }

    /// How the connection's last request timed out, if it did.
    pub(super) fn timed_out(&self) -> Option<RequestTimeout> {
        match self.timed_out.load(Ordering::Relaxed) {
            1 => Some(RequestTimeout::Incomplete),
            2 => Some(RequestTimeout::Empty),
            _ => None,
        }
    }

    /// Bytes read from the client since the last call: the ending request's bytes in.
    pub(super) fn take_read(&self) -> u64 {
        let read = self.read.load(Ordering::Relaxed);
        read.saturating_sub(self.counted.swap(read, Ordering::Relaxed))
    }

    fn set_timed_out(&self, how: RequestTimeout) {
        let code = match how {
            RequestTimeout::Incomplete => 1,
            RequestTimeout::Empty => 2,
        };
        self.timed_out.store(code, Ordering::Relaxed);
    }
}

/// The two limits on waiting for a request.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestLimits {
    /// `timeout http-request` (or `timeout client`): the whole head.
    pub head: Option<Duration>,
    /// `timeout http-keep-alive` (or the above): idle between requests.
    pub idle: Option<Duration>,
}

/// A client connection's socket, watching the request timeouts while hyper waits for a head.
pub(super) struct ClientIo {
    stream: ClientStream,
    phase: Arc<Phase>,
    limits: RequestLimits,
    /// The answer written to the socket when a request times out.
    timeout_page: &'static [u8],
    /// Requests ended as of the last read (a change means a new wait has begun).
    seen_ended: u64,
    /// The connection's first request has not been read yet.
    first: bool,
    /// When the current wait for a request began (accept, or the previous request's end).
    waiting_since: Instant,
    /// When the first byte of the request being waited for arrived.
    head_started: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl ClientIo {
    /// Wraps an accepted client connection.
    pub(super) fn new(
        stream: ClientStream,
        phase: Arc<Phase>,
        limits: RequestLimits,
        timeout_page: &'static [u8],
    ) -> ClientIo {
        let now = Instant::now();
        ClientIo {
            stream,
            phase,
            limits,
            timeout_page,
            seen_ended: 0,
            first: true,
            waiting_since: now,
            head_started: None,
            timer: Box::pin(tokio::time::sleep_until(now)),
        }
    }

    /// Starts a new wait if a request ended since the last read.
    fn follow_requests(&mut self) {
        let ended = self.phase.ended.load(Ordering::Relaxed);
        if ended != self.seen_ended {
            self.seen_ended = ended;
            self.first = false;
            self.waiting_since = Instant::now();
            self.head_started = None;
        }
    }

    /// When the wait for the next request ends, if it is limited.
    fn deadline(&self) -> Option<Instant> {
        if self.first {
            return self.limits.head.map(|l| self.waiting_since + l);
        }
        match self.head_started {
            Some(started) => self.limits.head.map(|l| started + l),
            None => self.limits.idle.map(|l| self.waiting_since + l),
        }
    }

    /// Called when a read would block: ends the wait if its deadline has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.phase.busy.load(Ordering::Acquire) {
            *self.phase.reader.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            // The request may have ended between the check and the registration.
            if self.phase.busy.load(Ordering::Acquire) {
                return Poll::Pending;
            }
            self.follow_requests();
        }
        let Some(deadline) = self.deadline() else {
            return Poll::Pending;
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if !self.first && self.head_started.is_none() {
            // Idle keep-alive connection: closed silently, as if the client had closed.
            return Poll::Ready(Ok(()));
        }
        let how = if self.head_started.is_some() {
            RequestTimeout::Incomplete
        } else {
            RequestTimeout::Empty
        };
        self.phase.set_timed_out(how);
        // hyper writes nothing while it waits for a head, so the page cannot interleave with
        // another response; a socket buffer that cannot take ~250 bytes is not worth waiting
        // for (over TLS the page goes through the session's buffer, flushed once).
        let page = self.timeout_page;
        if let Poll::Ready(Ok(_)) = Pin::new(&mut self.stream).poll_write(cx, page) {
            let _ = Pin::new(&mut self.stream).poll_flush(cx);
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "timeout http-request",
        )))
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.follow_requests();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len() - before;
                this.phase.read.fetch_add(got as u64, Ordering::Relaxed);
                let busy = this.phase.busy.load(Ordering::Acquire);
                if got > 0 && this.head_started.is_none() && !busy {
                    this.head_started = Some(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx),
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
