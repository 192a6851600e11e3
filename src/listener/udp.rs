//! Receiving UDP syslog: a thread per socket, up to [`BATCH`] datagrams per system call
//! (recvmmsg), handed to the writer without ever waiting for it.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::counters::Counters;
use super::{Batch, Outbox, ReceiveContext};

/// Datagrams read per recvmmsg call.
const BATCH: usize = 64;

/// Room for one SO_RXQ_OVFL control message (8-byte aligned, as cmsghdr needs).
type ControlBuf = [u64; 8];

/// Receives until `ctx.stop` is set, then drains what the kernel still holds and returns.
pub(super) fn receive(socket: UdpSocket, ctx: ReceiveContext) {
    let mut ring = Ring::new(ctx.max_message);
    let mut kernel_drops_seen: u32 = 0;
    let mut draining = false;
    let mut outbox = Outbox::default();
    loop {
        if !draining && ctx.stop.load(Ordering::Relaxed) {
            draining = true;
        }
        let flags = if draining {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        match ring.receive(&socket, flags) {
            Ok(n) => {
                let batch = ring.take_batch(n, &ctx, &mut kernel_drops_seen);
                if !outbox.offer(&ctx, batch) {
                    return;
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                if !outbox.retry(&ctx) {
                    return;
                }
                if draining {
                    // Everything received reaches the writer before this thread ends.
                    while outbox.is_waiting() {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        if !outbox.retry(&ctx) {
                            return;
                        }
                    }
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("halyard listen: receive error, retrying: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
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

impl Ring {
    fn new(max_message: usize) -> Box<Ring> {
        let mut ring = Box::new(Ring {
            max_message,
            data: vec![0; BATCH * max_message],
            // SAFETY: all-zero is a valid sockaddr_storage.
            names: vec![unsafe { zeroed() }; BATCH],
            controls: vec![[0; 8]; BATCH],
            iovecs: Vec::with_capacity(BATCH),
            headers: Vec::with_capacity(BATCH),
        });
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
    fn take_batch(&mut self, n: usize, ctx: &ReceiveContext, drops_seen: &mut u32) -> Batch {
        let mut batch = Batch::new(SystemTime::now());
        for i in 0..n {
            let header = &self.headers[i];
            let len = (header.msg_len as usize).min(self.max_message);
            if let Some(total) = self.kernel_drops(i) {
                Counters::add(
                    &ctx.counters.kernel_dropped,
                    total.wrapping_sub(*drops_seen).into(),
                );
                *drops_seen = total;
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
