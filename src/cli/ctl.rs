//! `halyard ctl`: one command to a running balancer's control socket, its answer on stdout.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use halyard::balancer::is_error_answer;

/// Send a command to a running `halyard run` over its control socket.
///
/// The socket is the config's `stats socket PATH mode 600 level admin` line. The commands are
/// HAProxy's runtime API (what `socat` sends to HAProxy): `show stat`, `show servers state`,
/// `show info`, `set server BE/SRV state ready|drain|maint`, `set weight BE/SRV N|N%`,
/// `get weight BE/SRV`, `disable server BE/SRV`, `enable server BE/SRV`, `help`; and
/// `reload`, which re-reads the config file like SIGHUP. Several commands may be joined with
/// `;`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  halyard ctl /run/halyard/admin.sock show stat
  halyard ctl /run/halyard/admin.sock set server web/inst1 state drain
  halyard ctl /run/halyard/admin.sock 'set weight web/inst2 50%; get weight web/inst2'
  halyard ctl /run/halyard/admin.sock reload

Exit status: 0 when the command was done; 1 when the balancer refused it (no such server,
permission denied, unknown command, failed reload); 2 when the socket cannot be reached.")]
pub struct Args {
    /// The control socket (`stats socket` in the config).
    #[arg(value_name = "SOCKET")]
    socket: PathBuf,
    /// The command and its arguments.
    #[arg(value_name = "COMMAND", required = true, num_args = 1.., trailing_var_arg = true)]
    command: Vec<String>,
}

/// Sends the command, prints the answer.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut stream = UnixStream::connect(&args.socket)
        .with_context(|| format!("cannot reach {}", args.socket.display()))?;
    // A reload re-reads and checks the whole config: give it time.
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let line = format!("{}\n", args.command.join(" "));
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .with_context(|| format!("reading the answer from {}", args.socket.display()))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(answer.as_bytes())?;
    stdout.flush()?;
    Ok(if is_error_answer(&answer) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
