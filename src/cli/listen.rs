//! `halyard listen`: the syslog receiver, from flags or a `log-forward` section.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use halyard::config::{
    parse_bind_addr, parse_rotate_every, parse_size, parse_time, Cidr, ConfigFile,
    ListenerSettings, OutputFormat, Route,
};
use halyard::listener::{CounterSnapshot, Listener};
use halyard::report::rolling;

use super::output::{terminal_width, use_color};

/// Receive syslog over UDP and TCP and write it to rotating files, losing nothing.
///
/// Reads RFC 3164 (as HAProxy sends it, with or without hostname), RFC 5424, ISO-stamped
/// lines and bare lines; over TCP, RFC 6587 octet counting or one message per line. Writes
/// rsyslog's traditional file format by default, so halog, lnav and `halyard report` read the
/// files as they are. One message is one line: newlines inside it are written as #012.
///
/// Signals: SIGHUP reopens the files (for an external logrotate with `create`); SIGUSR1 prints
/// the counters; SIGTERM and SIGINT write everything received and exit.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  halyard listen --udp 127.0.0.1:5514 --dir /var/log/haproxy --rotate-size 100M --compress
  halyard listen --udp :514 --tcp :514 --route 'local3.* haproxy.log' --unmatched other.log
  halyard listen -f /etc/halyard/halyard.cfg --section syslog

Exit status: 0 when stopped with nothing lost; 1 when messages were lost (dropped by the
kernel, the queue, or a failed write: see the counters printed at exit); 2 when it could not
start (the error says why and, for a port, what to do).")]
pub struct Args {
    /// UDP address to receive on (`ADDR:PORT`, `:PORT`, `[IPv6]:PORT`); repeatable. Default
    /// 0.0.0.0:514 when neither --udp nor --tcp is given.
    #[arg(long, value_name = "ADDR", value_parser = parse_bind_addr)]
    udp: Vec<SocketAddr>,

    /// TCP address to receive on; repeatable.
    #[arg(long, value_name = "ADDR", value_parser = parse_bind_addr)]
    tcp: Vec<SocketAddr>,

    /// Directory of the files written (default: the current directory).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// File everything goes to when there are no routes (default: haproxy.log).
    #[arg(long, value_name = "NAME")]
    file: Option<String>,

    /// Rotate before a file passes this size (e.g. 100M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    rotate_size: Option<u64>,

    /// Rotate on the clock: hourly, daily, or a period like 10m.
    #[arg(long, value_name = "PERIOD", value_parser = parse_rotate_every)]
    rotate_every: Option<Duration>,

    /// Rotated files to keep per file; 0 keeps all (default: 10).
    #[arg(long, value_name = "N")]
    keep: Option<usize>,

    /// gzip rotated files, off the receive path.
    #[arg(long)]
    compress: bool,

    /// Name rotated files by date (haproxy.log-20261125-013000) instead of number (.1, .2.gz).
    #[arg(long)]
    dateext: bool,

    /// Line format: traditional (rsyslog's, the default), rfc5424, raw (as received) or jsonl.
    #[arg(long, value_name = "FORMAT", value_parser = str::parse::<OutputFormat>)]
    output_format: Option<OutputFormat>,

    /// Accept only senders in this network (e.g. 10.0.0.0/8); repeatable. Others are counted
    /// as rejected.
    #[arg(long, value_name = "CIDR", value_parser = str::parse::<Cidr>)]
    allow: Vec<Cidr>,

    /// Route 'SELECTOR [tag=TAG] FILE' like rsyslog: 'local3.* haproxy.log', '*.err errors.log';
    /// repeatable; a message goes to every route it matches.
    #[arg(long, value_name = "ROUTE", value_parser = parse_route)]
    route: Vec<Route>,

    /// File for messages no route matches (otherwise they are counted and dropped).
    #[arg(long, value_name = "FILE")]
    unmatched: Option<String>,

    /// Receive buffer to ask for per UDP socket, beyond net.core.rmem_max when root
    /// (default: 32M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    rcvbuf: Option<u64>,

    /// Receiving threads per UDP address; more than one shares the port with SO_REUSEPORT
    /// (default: 1, at most 64).
    #[arg(long, value_name = "N")]
    receivers: Option<usize>,

    /// Longer messages are truncated to this size and counted (default: 64k, at most 1M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_message_size: Option<u64>,

    /// fsync the files after each write.
    #[arg(long)]
    fsync: bool,

    /// Show a per-server table of the last minute (req/s, 5xx, p50/p99 Ta, last DOWN/UP),
    /// refreshed every second on a terminal, printed every 10 s otherwise.
    #[arg(long)]
    live: bool,

    /// Write the `halyard report` JSON of each interval of this length into DIR
    /// (report-YYYYmmdd-HHMMSS.json), e.g. 1m.
    #[arg(long, value_name = "DURATION", value_parser = parse_time)]
    report_every: Option<Duration>,

    /// Take the settings from a config file's `log-forward` section instead of flags.
    #[arg(
        long,
        short = 'f',
        value_name = "FILE",
        conflicts_with_all = [
            "udp", "tcp", "dir", "file", "rotate_size", "rotate_every", "keep", "compress",
            "dateext", "output_format", "allow", "route", "unmatched", "rcvbuf", "receivers",
            "max_message_size", "fsync", "report_every",
        ]
    )]
    config: Option<PathBuf>,

    /// The `log-forward` section to use when the config has several.
    #[arg(long, value_name = "NAME", requires = "config")]
    section: Option<String>,
}

fn parse_route(spec: &str) -> Result<Route, String> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    Route::from_words(&words)
}

/// Runs `halyard listen` until SIGTERM or SIGINT.
pub fn run(args: Args) -> Result<ExitCode> {
    let settings = settings(&args)?;
    let listener = Listener::start(&settings)?;
    announce(&listener, &settings);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let counters = runtime.block_on(async {
        wait_for_stop(&listener, settings.live).await?;
        stop(listener).await
    })?;
    eprintln!("halyard listen: stopped: {counters}");
    Ok(exit_code(&counters))
}

/// Stops the listener (writing everything received); a second SIGTERM or SIGINT while it
/// drains exits at once.
async fn stop(listener: Listener) -> Result<CounterSnapshot> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let stopping = tokio::task::spawn_blocking(move || listener.stop());
    tokio::select! {
        stopped = stopping => Ok(stopped?),
        _ = term.recv() => exit_now(),
        _ = int.recv() => exit_now(),
    }
}

/// Flags (or the config section) checked into settings.
fn settings(args: &Args) -> Result<ListenerSettings> {
    if let Some(path) = &args.config {
        let config = ConfigFile::read(path)?;
        let (mut settings, warnings) = config.log_forward(args.section.as_deref())?;
        for warning in warnings {
            eprintln!("halyard listen: warning: {warning}");
        }
        settings.live |= args.live;
        return Ok(settings);
    }
    // Defaults live in one place, `ListenerSettings::default()`; a flag overrides its field.
    let defaults = ListenerSettings::default();
    let size = |flag: Option<u64>, default: usize| {
        flag.map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let mut settings = ListenerSettings {
        udp: args.udp.clone(),
        tcp: args.tcp.clone(),
        dir: args.dir.clone().unwrap_or(defaults.dir.clone()),
        file: args.file.clone().unwrap_or(defaults.file.clone()),
        output: args.output_format.unwrap_or(defaults.output),
        allow: args.allow.clone(),
        routes: args.route.clone(),
        unmatched: args.unmatched.clone(),
        rcvbuf: size(args.rcvbuf, defaults.rcvbuf),
        receivers: args.receivers.unwrap_or(defaults.receivers),
        max_message: size(args.max_message_size, defaults.max_message),
        fsync: args.fsync,
        report_every: args.report_every,
        live: args.live,
        ..defaults.clone()
    };
    settings.rotation.size = args.rotate_size;
    settings.rotation.every = args.rotate_every;
    settings.rotation.keep = args.keep.unwrap_or(defaults.rotation.keep);
    settings.rotation.compress = args.compress;
    settings.rotation.dateext = args.dateext;
    if settings.udp.is_empty() && settings.tcp.is_empty() {
        settings
            .udp
            .push(parse_bind_addr(":514").map_err(anyhow::Error::msg)?);
    }
    Ok(settings)
}

/// Says on stderr what is received where and written to which files.
fn announce(listener: &Listener, settings: &ListenerSettings) {
    let mut parts = Vec::new();
    for addr in listener.udp_addrs() {
        parts.push(format!("UDP {addr}"));
    }
    for addr in listener.tcp_addrs() {
        parts.push(format!("TCP {addr}"));
    }
    let files: Vec<String> = listener
        .files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    eprintln!(
        "halyard listen: receiving on {}; writing {}",
        parts.join(", "),
        files.join(", ")
    );
    if let Some(&granted) = listener.receive_buffers().iter().min() {
        // Linux reports twice what it grants for use (the rest is its bookkeeping).
        let note = if granted < settings.rcvbuf.saturating_mul(2) {
            " (less than asked: raise net.core.rmem_max, or run as root to exceed it)"
        } else {
            ""
        };
        eprintln!(
            "halyard listen: UDP receive buffer {} MiB, asked {} MiB{note}",
            (granted / 2) >> 20,
            settings.rcvbuf >> 20
        );
    }
}

/// Serves SIGHUP (reopen) and SIGUSR1 (counters), and refreshes the live view, until SIGTERM
/// or SIGINT.
async fn wait_for_stop(listener: &Listener, live: bool) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing SIGUSR1 handler")?;
    let mut view = LiveView::new();
    let mut refresh = tokio::time::interval(view.every);
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                listener.reopen();
                eprintln!("halyard listen: SIGHUP: reopening files");
            }
            _ = usr1.recv() => eprintln!("halyard listen: {}", listener.counters()),
            _ = refresh.tick(), if live && view.working => {
                if let Err(e) = view.show(listener) {
                    // A closed pipe or a gone terminal ends the view, never the listener.
                    eprintln!("halyard listen: live view stopped: {e}");
                    view.working = false;
                }
            }
        }
    }
}

/// The `--live` table: redrawn in place on a terminal, appended every 10 s to a pipe.
struct LiveView {
    /// Cleared when the view cannot be written any more.
    working: bool,
    terminal: bool,
    color: bool,
    every: Duration,
    started: std::time::Instant,
}

impl LiveView {
    fn new() -> Self {
        let terminal = std::io::stdout().is_terminal();
        LiveView {
            working: true,
            terminal,
            color: use_color(terminal),
            every: Duration::from_secs(if terminal { 1 } else { 10 }),
            started: std::time::Instant::now(),
        }
    }

    fn show(&self, listener: &Listener) -> Result<()> {
        use std::io::Write;
        let width = terminal_width().filter(|_| self.terminal);
        let mut text = String::new();
        if self.terminal {
            // Home and clear: the table replaces the last one instead of scrolling.
            text.push_str("\x1b[H\x1b[2J");
        }
        text.push_str(&live_text(listener, self.started, width, self.color));
        text.push('\n');
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

/// The live view's text: a line of counters since `started`, then the per-server table of
/// the last minute (without a final newline).
pub(super) fn live_text(
    listener: &Listener,
    started: std::time::Instant,
    width: Option<u16>,
    color: bool,
) -> String {
    let rows = listener.live_rows().unwrap_or_default();
    let counters = listener.counters();
    format!(
        "{} up {}s: received {}, written {}, lost {}, not syslog {}\n{}",
        chrono::Local::now().format("%H:%M:%S"),
        started.elapsed().as_secs(),
        counters.received,
        counters.written,
        counters.lost(),
        counters.not_syslog,
        rolling::render(&rows, width, color)
    )
}

/// The second signal: leave without waiting for the writer (what it had not written is lost,
/// hence status 1).
fn exit_now() -> ! {
    eprintln!("halyard listen: signalled again while stopping: exiting without waiting");
    std::process::exit(1)
}

fn exit_code(counters: &CounterSnapshot) -> ExitCode {
    if counters.lost() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ListenerSettings> {
        settings(&crate::cli::parse_args("listen", args)?)
    }

    #[test]
    fn defaults_receive_udp_514_into_haproxy_log() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.udp, ["0.0.0.0:514".parse().unwrap()]);
        assert!(s.tcp.is_empty());
        assert_eq!(s.dir, PathBuf::from("."));
        assert_eq!(s.file, "haproxy.log");
        assert_eq!(s.rcvbuf, 32 << 20);
        assert_eq!(s.output, OutputFormat::Traditional);
    }

    #[test]
    fn flags_become_settings() {
        let s = parse(&[
            "--tcp",
            "127.0.0.1:6514",
            "--rotate-size",
            "10M",
            "--rotate-every",
            "hourly",
            "--keep",
            "0",
            "--compress",
            "--route",
            "local3.* tag=haproxy h.log",
            "--output-format",
            "jsonl",
            "--allow",
            "10.0.0.0/8",
        ])
        .unwrap();
        assert!(s.udp.is_empty(), "--tcp alone does not add UDP");
        assert_eq!(s.rotation.size, Some(10 << 20));
        assert_eq!(s.rotation.every, Some(Duration::from_secs(3600)));
        assert_eq!((s.rotation.keep, s.rotation.compress), (0, true));
        assert_eq!(s.routes[0].file, "h.log");
        assert_eq!(s.output, OutputFormat::Jsonl);
        for bad in [
            &["--udp", "host:514"][..],
            &["--rotate-size", "10T"],
            &["--route", "local3.*"],
            &["--output-format", "xml"],
            &["-f", "x.cfg", "--udp", ":5514"],
            &["--section", "x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
