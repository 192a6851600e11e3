//! A live syslog stream as a source of lines (`--listen udp@ADDR`): each datagram is one
//! line, made the way `halyard listen` writes it to a file, so tail shows the same thing
//! whether it reads the network or the file.

use std::io;
use std::net::UdpSocket;

use super::Output;
use crate::listener::{message_line, MAX_DATAGRAM};

/// Receives datagrams until `emit` returns `false` (checked as each one arrives).
pub fn receive(socket: &UdpSocket, mut emit: impl FnMut(Output) -> bool) -> io::Result<()> {
    if !emit(Output::Reset { first_line: 1 }) {
        return Ok(());
    }
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, _peer)) => {
                let mut line = Vec::with_capacity(n + 1);
                message_line(&buf[..n], &mut line);
                line.push(b'\n');
                if !emit(Output::Lines(line)) {
                    return Ok(());
                }
            }
            // The read timeout: nothing to do but wait again.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
