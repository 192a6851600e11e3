//! `halyard tail`: following growing and rotating log files (and stdin, and a live syslog
//! stream), filter expressions over parsed lines, and the pretty renderer.
//!
//! Each input is read on a thread of its own ([`spawn`]) that hands [`Output`]s, in order,
//! to one channel; whoever reads the channel parses, filters and prints. Reading never waits
//! for parsing except through the channel's bound, so memory stays flat while following.

mod backlog;
mod filter;
mod follower;
mod pretty;
mod summary;
mod udp;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

pub use backlog::Start;
pub use filter::{Filter, FilterError};
pub use follower::Mode;
pub use pretty::{Pretty, PrettyOptions};
pub use summary::summary_block;

use crate::input::Source;
use follower::Follower;
use watch::Watcher;

/// What a source hands on, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Whole lines, each with its newline.
    Lines(Vec<u8>),
    /// The next line is line `first_line` of its file: at the start, after a truncation, on
    /// a new file.
    Reset {
        /// 1-based.
        first_line: u64,
    },
    /// Something to tell the user on stderr: rotation, truncation, a missing file.
    Notice(String),
    /// The source failed and stopped (a file that cannot be read).
    Failed(String),
}

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file, plain (followed) or gzip (read once).
    File(PathBuf),
    /// Standard input, read to its end.
    Stdin,
    /// Syslog datagrams received on a UDP address.
    Udp(SocketAddr),
}

/// The longest a follower sleeps without an event before looking at its file again.
const WAIT: Duration = Duration::from_secs(1);

/// Starts reading `input` on a thread of its own; its outputs go to `tx` tagged with
/// `index`. The thread ends at the end of the input (or when `tx`'s reader is gone); when
/// following, it runs for as long as the process does.
pub fn spawn(
    index: usize,
    input: Input,
    mode: Mode,
    start: Start,
    numbered: bool,
    tx: SyncSender<(usize, Output)>,
) -> std::io::Result<()> {
    let emit = move |output: Output| tx.send((index, output)).is_ok();
    let name = format!("tail-{index}");
    let work = move || match input {
        Input::File(path) if is_gzip(&path) => read_stream(Source::File(path), start, emit),
        Input::File(path) => follow(Follower::new(&path, mode, start, numbered), &path, emit),
        Input::Stdin => read_stream(Source::Stdin, start, emit),
        Input::Udp(addr) => listen(addr, emit),
    };
    std::thread::Builder::new().name(name).spawn(work)?;
    Ok(())
}

/// Polls `follower` as long as there is data, then waits for a change.
fn follow(mut follower: Follower, path: &std::path::Path, mut emit: impl FnMut(Output) -> bool) {
    let follows = follower.mode() != Mode::Once;
    let mut watcher = follows.then(|| Watcher::new(path));
    let mut out = Vec::new();
    loop {
        let more = match follower.poll(&mut out) {
            Ok(more) => more,
            Err(e) if follower.mode() == Mode::Name => {
                out.push(Output::Notice(format!("{}: {e}", path.display())));
                false
            }
            Err(e) => {
                emit(Output::Failed(e.to_string()));
                return;
            }
        };
        for output in out.drain(..) {
            if !emit(output) {
                return;
            }
        }
        match &mut watcher {
            _ if more => {}
            Some(watcher) => watcher.wait(WAIT),
            None => return,
        }
    }
}

fn read_stream(source: Source, start: Start, mut emit: impl FnMut(Output) -> bool) {
    let done = source
        .reader(|_| {})
        .map_err(|e| e.to_string())
        .and_then(|reader| {
            backlog::read_stream(reader, start, &mut emit)
                .map_err(|e| format!("{}: {e}", source.name()))
        });
    if let Err(e) = done {
        emit(Output::Failed(e));
    }
}

fn listen(addr: SocketAddr, mut emit: impl FnMut(Output) -> bool) {
    let done = crate::listener::bind_udp(addr)
        .map_err(|e| e.to_string())
        .and_then(|socket| {
            let bound = socket.local_addr().unwrap_or(addr);
            emit(Output::Notice(format!("receiving syslog on UDP {bound}")));
            udp::receive(&socket, &mut emit).map_err(|e| e.to_string())
        });
    if let Err(e) = done {
        emit(Output::Failed(e));
    }
}

/// Whether a file holds gzip data (by its first bytes, as `halyard parse` decides).
fn is_gzip(path: &std::path::Path) -> bool {
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| magic == [0x1f, 0x8b])
}
