//! Opening the listening sockets, with errors that say what to do about them.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

use super::ListenError;

/// A bound UDP socket and the receive buffer the kernel granted.
pub(super) struct UdpBound {
    pub socket: std::net::UdpSocket,
    pub rcvbuf: usize,
}

/// Binds a UDP socket with a large receive buffer and kernel drop counting (SO_RXQ_OVFL);
/// `reuse_port` lets several receiving threads share the address.
pub(super) fn bind_udp(
    addr: SocketAddr,
    rcvbuf: usize,
    reuse_port: bool,
) -> Result<UdpBound, ListenError> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| ListenError::bind("UDP", addr, e))?;
    if reuse_port {
        socket
            .set_reuse_port(true)
            .map_err(|e| ListenError::bind("UDP", addr, e))?;
    }
    socket
        .bind(&addr.into())
        .map_err(|e| ListenError::bind("UDP", addr, e))?;
    let rcvbuf = grow_receive_buffer(&socket, rcvbuf);
    set_int_option(&socket, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
        .map_err(|e| ListenError::bind("UDP", addr, e))?;
    // The receiving thread wakes this often to notice a stop request.
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .map_err(|e| ListenError::bind("UDP", addr, e))?;
    Ok(UdpBound {
        socket: socket.into(),
        rcvbuf,
    })
}

/// Binds a TCP listening socket.
pub(super) fn bind_tcp(addr: SocketAddr) -> Result<std::net::TcpListener, ListenError> {
    let bind = || -> io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    bind().map_err(|e| ListenError::bind("TCP", addr, e))
}

/// Asks for `wanted` bytes of receive buffer, beyond `net.core.rmem_max` when privileged
/// (SO_RCVBUFFORCE); returns what the kernel reports having granted.
fn grow_receive_buffer(socket: &Socket, wanted: usize) -> usize {
    let _ = socket.set_recv_buffer_size(wanted);
    let granted = socket.recv_buffer_size().unwrap_or(0);
    // Linux reports twice the size asked for (its bookkeeping overhead).
    if granted < wanted.saturating_mul(2) {
        let forced = i32::try_from(wanted).unwrap_or(i32::MAX);
        let _ = set_int_option(socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, forced);
    }
    socket.recv_buffer_size().unwrap_or(granted)
}

fn set_int_option(socket: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the fd is open for the socket's lifetime and `value` outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What to do about a bind error, for the two that have an answer.
pub(super) fn bind_advice(proto: &str, addr: SocketAddr, err: &io::Error) -> Option<String> {
    match err.raw_os_error() {
        Some(libc::EACCES) if addr.port() < 1024 => Some(format!(
            "ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, grant it with \
             `setcap cap_net_bind_service=+ep $(command -v halyard)`, or use a port from 1024 \
             up (e.g. {} {}:5514)",
            if proto == "UDP" { "--udp" } else { "--tcp" },
            addr.ip()
        )),
        Some(libc::EADDRINUSE) => Some(match port_holder(proto, addr.port()) {
            Some(holder) => format!(
                "{holder} holds {proto} port {}: stop it (e.g. `systemctl stop rsyslog`) or \
                 choose another port",
                addr.port()
            ),
            None => format!(
                "another program holds {proto} port {}: find it with `ss -lunp` / `ss -ltnp`, \
                 stop it or choose another port",
                addr.port()
            ),
        }),
        _ => None,
    }
}

/// The process holding a local port, as `rsyslogd (pid 412)`, when /proc tells.
fn port_holder(proto: &str, port: u16) -> Option<String> {
    let tables: &[&str] = if proto == "UDP" {
        &["/proc/net/udp", "/proc/net/udp6"]
    } else {
        &["/proc/net/tcp", "/proc/net/tcp6"]
    };
    let inode = tables
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .find_map(|table| socket_inode(&table, port, proto == "TCP"))?;
    let wanted = format!("socket:[{inode}]");
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = proc_entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == &*wanted));
        if holds {
            let comm = std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
            return Some(format!("{} (pid {pid})", comm.trim()));
        }
    }
    None
}

/// The inode of the socket bound to `port` in a /proc/net table (listening only, for TCP).
fn socket_inode(table: &str, port: u16, listening_only: bool) -> Option<String> {
    let port_hex = format!(":{port:04X}");
    table.lines().skip(1).find_map(|row| {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let local = cols.get(1)?;
        let state = cols.get(3)?;
        let bound = local.ends_with(&port_hex) && (!listening_only || *state == "0A");
        bound
            .then(|| cols.get(9).map(|s| (*s).to_owned()))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_names_its_holder() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = match bind_udp(addr, 1 << 20, false) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("bound a taken port"),
        };
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert!(
            err.contains(&format!("{} (pid {})", me.trim(), std::process::id())),
            "{err}"
        );
        assert!(
            err.starts_with(&format!("cannot bind UDP {addr}: ")),
            "{err}"
        );
    }

    #[test]
    fn receive_buffer_is_reported() {
        let bound = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20, true).unwrap();
        assert!(bound.rcvbuf >= 1 << 20, "{}", bound.rcvbuf);
    }
}
