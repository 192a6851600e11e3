//! Receiving UDP syslog: a thread per socket, up to [`BATCH`] datagrams per system call
//! (recvmmsg), handed to the writer without ever waiting for it.

use std::io;
use std::mem::size_of_val;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::counters::Counters;
use super::{Batch, Outbox, ReceiveContext};

/// Datagrams read per recvmmsg call.
const BATCH: usize = 64;

/// Room for one SO_RXQ_OVFL control message (8-byte aligned, as cmsghdr needs).
type ControlBuf = [u64; 8];

/// The largest UDP payload (IPv4); a receive slot never needs more.
pub const MAX_DATAGRAM: usize = 65_535;
/// How long stopping may spend draining the socket: a sender that never pauses must not keep
/// the listener from stopping.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// A bound socket with its receive buffers, made before the listener says it is receiving
/// so that a failure to allocate them is an error at start.
pub(super) struct UdpReceiver {
    socket: UdpSocket,
    ring: Ring,
}

impl UdpReceiver {
    /// Buffers for datagrams of up to `max_message` bytes (at most [`MAX_DATAGRAM`]).
    pub(super) fn new(socket: UdpSocket, max_message: usize) -> Self {
        UdpReceiver {
            socket,
            ring: Ring::new(max_message.clamp(1, MAX_DATAGRAM)),
        }
    }
}

/// Receives until `ctx.stop` is set, then drains what the kernel still holds (for at most
/// [`DRAIN_LIMIT`]), hands everything to the writer and returns.
pub(super) fn receive(receiver: UdpReceiver, ctx: ReceiveContext) {
    let UdpReceiver { socket, mut ring } = receiver;
    let mut drops = KernelDrops::default();
    let mut drain_until: Option<Instant> = None;
    let mut outbox = Outbox::default();
    loop {
        if drain_until.is_none() && ctx.stop.load(Ordering::Relaxed) {
            drain_until = Some(Instant::now() + DRAIN_LIMIT);
        }
        if drain_until.is_some_and(|limit| Instant::now() >= limit) {
            break;
        }
        let flags = if drain_until.is_some() {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        match ring.receive(&socket, flags) {
            Ok(n) => {
                let batch = ring.take_batch(n, &ctx, &mut drops);
                if !outbox.offer(&ctx, batch) {
                    return;
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                // Quiet: drops that happened after the last datagram are only visible here.
                drops.poll(&socket, &ctx.counters);
                if !outbox.retry(&ctx) || drain_until.is_some() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("halyard listen: receive error, retrying: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    drops.poll(&socket, &ctx.counters);
    outbox.deliver_all(&ctx);
}

/// The socket's cumulative kernel drop counter as last seen. The kernel reports it with each
/// datagram (SO_RXQ_OVFL) and on request (SO_MEMINFO); either way it only grows.
#[derive(Debug, Default)]
struct KernelDrops {
    seen: u32,
}

impl KernelDrops {
    fn update(&mut self, total: u32, counters: &Counters) {
        if total > self.seen {
            Counters::add(&counters.kernel_dropped, u64::from(total - self.seen));
            self.seen = total;
        }
    }

    /// Asks the kernel for the counter (SK_MEMINFO_DROPS).
    fn poll(&mut self, socket: &UdpSocket, counters: &Counters) {
        let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
        let mut len = size_of_val(&info) as libc::socklen_t;
        // SAFETY: `info` has room for `len` bytes, and the kernel writes at most that.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc == 0 && len as usize >= size_of_val(&info) {
            self.update(info[libc::SK_MEMINFO_DROPS as usize], counters);
        }
    }
}

/// The buffers recvmmsg fills: one slot of `max_message` bytes per datagram, with its
/// sender's address and control data. The headers point into the other vectors, which are
/// never resized after construction.
struct Ring {
    max_message: usize,
    data: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    controls: Vec<ControlBuf>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `headers` and `iovecs` point only into the heap buffers of this
// same Ring, which move with it; nothing else holds them, so sending the Ring to the receiving
// thread sends everything they point to.
unsafe impl Send for Ring {}

impl Ring {
    fn new(max_message: usize) -> Ring {
        let mut ring = Ring {
            max_message,
            data: vec![0; BATCH * max_message],
            // SAFETY: all-zero is a valid sockaddr_storage.
            names: vec![unsafe { zeroed() }; BATCH],
            controls: vec![[0; 8]; BATCH],
            iovecs: Vec::with_capacity(BATCH),
            headers: Vec::with_capacity(BATCH),
        };
        for i in 0..BATCH {
            let slot = ring.data[i * max_message..].as_mut_ptr();
            ring.iovecs.push(libc::iovec {
                iov_base: slot.cast(),
                iov_len: max_message,
            });
        }
        for i in 0..BATCH {
            // SAFETY: all-zero is a valid mmsghdr; the pointers set below stay valid because
            // the vectors they point into are never resized.
            let mut header: libc::mmsghdr = unsafe { zeroed() };
            header.msg_hdr.msg_iov = &mut ring.iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_name = (&mut ring.names[i] as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_control = ring.controls[i].as_mut_ptr().cast();
            ring.headers.push(header);
        }
        ring
    }

    /// One recvmmsg call; the number of datagrams received.
    fn receive(&mut self, socket: &UdpSocket, flags: i32) -> io::Result<usize> {
        for header in &mut self.headers {
            // The kernel shrinks these to what it wrote; give back the full room each time.
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_controllen = size_of::<ControlBuf>() as _;
            header.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points at live buffers of the sizes it states.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Copies the first `n` datagrams into a batch, counting and checking each.
    fn take_batch(&mut self, n: usize, ctx: &ReceiveContext, drops: &mut KernelDrops) -> Batch {
        let mut batch = Batch::new(SystemTime::now());
        for i in 0..n {
            let header = &self.headers[i];
            let len = (header.msg_len as usize).min(self.max_message);
            if let Some(total) = self.kernel_drops(i) {
                drops.update(total, &ctx.counters);
            }
            let Some(peer) = peer_address(&self.names[i]) else {
                continue;
            };
            if !ctx.allows(peer.ip()) {
                Counters::add(&ctx.counters.rejected, 1);
                continue;
            }
            if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                Counters::add(&ctx.counters.truncated, 1);
            }
            let start = i * self.max_message;
            batch.push(&self.data[start..start + len], peer);
        }
        batch
    }

    /// The socket's cumulative kernel drop count, if datagram `i` carried it.
    fn kernel_drops(&self, i: usize) -> Option<u32> {
        let msg = &self.headers[i].msg_hdr;
        // SAFETY: the kernel filled msg_control up to msg_controllen with well-formed
        // cmsghdrs; CMSG_* walk only within that length.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL
                {
                    return Some(std::ptr::read_unaligned(
                        libc::CMSG_DATA(cmsg).cast::<u32>(),
                    ));
                }
                cmsg = libc::CMSG_NXTHDR(msg, cmsg);
            }
        }
        None
    }
}

/// The sender of a datagram.
fn peer_address(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
            Some(SocketAddr::new(ip, u16::from_be(sin6.sin6_port)))
        }
        _ => None,
    }
}
