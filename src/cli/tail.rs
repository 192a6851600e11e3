//! `halyard tail`: a `tail -F` that knows HAProxy's fields: filters, colours, follows through
//! rotation, and summarises what it sees.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use clap::ValueEnum;

use halyard::config::parse_bind_addr;
use halyard::follow::{
    spawn, summary_block, Filter, Input, Mode, Output, Pretty, PrettyOptions, Start,
};
use halyard::input::lines;
use halyard::logline::{parse_line, Body, LogLine, Record};
use halyard::report::filter::parse_duration_ms;
use halyard::report::rolling::Rolling;

use super::output::{terminal_width, use_color};

/// Follow HAProxy logs as they are written: filter by field, colour what matters, keep
/// following through log rotation, and summarise per server.
///
/// Shows the last 10 lines of each FILE (stdin is read from its start), then with -f or -F
/// every line added. -F follows the name as `tail -F` does: through rename and create,
/// copytruncate, deletion and re-creation, and a file that does not exist yet; the old file
/// is read to its end before the new one, so no line is lost or shown twice. A gzip file is
/// read once. With several inputs each line starts with its file's name.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Filter expressions compare a field with a value: =, != (status also takes 5xx, 500-503, \
404,502), <, <=, >, >= for numbers, ~ and !~ for regular expressions. Fields: status, TR, \
Tw, Tc, Tr, Ta, Tt, bytes, retries, client (an address or a network: client=10.0.0.0/8), \
frontend, backend, server (or backend/server), kind (http, tcp, server_event, proxy_event), \
method, uri, tsc (tsc=sH compares the first two characters), event (down, up, ...), host. \
Combine with and, or, not and parentheses; several --filter must all match. With a filter, \
lines that are not HAProxy logs are skipped and counted.

Examples:
  halyard tail -F /var/log/haproxy.log
  halyard tail -F /var/log/haproxy.log --filter 'status>=500 or Ta>1000' --slow 1000
  halyard tail -F haproxy.log --filter 'backend~^be_api and not client=10.0.0.0/8'
  halyard tail -n +1 --format jsonl --filter status=5xx haproxy.log.1.gz | jq .uri
  halyard tail -F haproxy.log --summary 10s --filter kind=http
  halyard tail --listen udp@127.0.0.1:5514

Exit status: 0 at the end of the input, when interrupted (SIGINT, SIGTERM) or when the reader \
of the output goes away; 2 on an error (bad arguments or filter, an input that cannot be \
read, an address that cannot be bound).")]
pub struct Args {
    /// Files to read; `-` reads stdin (also the default when no file and no --listen).
    #[arg(value_name = "FILE")]
    inputs: Vec<String>,

    /// Show the last N lines of each file first (default 10); `+N` starts at line N.
    #[arg(
        short = 'n',
        long = "lines",
        value_name = "N",
        allow_hyphen_values = false
    )]
    lines: Option<Start>,

    /// Keep reading each file as it grows (the file opened, whatever its name becomes).
    #[arg(short = 'f', conflicts_with = "follow_name")]
    follow: bool,

    /// Keep reading whatever file has the name, through rotation, truncation and deletion.
    #[arg(short = 'F')]
    follow_name: bool,

    /// Keep only lines matching EXPR, e.g. 'status>=500 and server=app1'; several must all match.
    #[arg(long, value_name = "EXPR", value_parser = parse_filter)]
    filter: Vec<Filter>,

    /// Output: aligned coloured columns, each line as it is, or JSON objects as `halyard parse`.
    #[arg(long, value_enum, default_value_t = Format::Pretty)]
    format: Format,

    /// Colour: on a terminal without NO_COLOR (auto), always, or never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,

    /// Mark requests whose total time (Ta, or Tt for TCP) is above MS milliseconds.
    #[arg(long, value_name = "MS")]
    slow: Option<u64>,

    /// Every DURATION (e.g. 10s), a per-server block: req/s, 4xx, 5xx, p50/p99 Ta, events.
    /// On a terminal it stays below the lines; otherwise it goes to stderr.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    summary: Option<Duration>,

    /// Also show syslog messages received on ADDR, e.g. udp@127.0.0.1:5514 (until interrupted).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
}

/// The output formats of `halyard tail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned columns, status coloured by class, slow requests and server events marked.
    Pretty,
    /// Each line as it was read.
    Raw,
    /// One JSON object per line, as `halyard parse` writes them.
    Jsonl,
}

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Color {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

fn parse_filter(spec: &str) -> Result<Filter, String> {
    Filter::parse(spec).map_err(|e| e.to_string())
}

fn parse_interval(spec: &str) -> Result<Duration, String> {
    let ms = parse_duration_ms(spec)?;
    if ms < 1000 {
        return Err(format!(
            "{spec} is too short: the summary counts whole seconds"
        ));
    }
    Ok(Duration::from_millis(ms.unsigned_abs()))
}

fn parse_listen(spec: &str) -> Result<SocketAddr, String> {
    if spec.starts_with("tcp") {
        return Err(format!("{spec}: tail listens on UDP only (udp@ADDR:PORT)"));
    }
    parse_bind_addr(spec)
}

/// Set by SIGINT and SIGTERM: stop at the next turn, after saying what was skipped.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// How long the loop waits for lines before looking at the clock and the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// Output is written when this much is gathered, and whenever no more lines are waiting.
const WRITE_AT: usize = 256 << 10;

/// Runs `halyard tail`.
pub fn run(args: Args) -> Result<ExitCode> {
    let (inputs, names) = inputs(&args);
    let mode = match (args.follow_name, args.follow) {
        (true, _) => Mode::Name,
        (_, true) => Mode::Descriptor,
        _ => Mode::Once,
    };
    let (tx, rx) = sync_channel(16);
    let numbered = args.format == Format::Jsonl;
    for (index, input) in inputs.into_iter().enumerate() {
        // A pipe or a socket is shown as it comes, from its start.
        let start = match (&input, args.lines) {
            (Input::File(_), lines) => lines.unwrap_or(Start::Last(10)),
            (_, lines) => lines.unwrap_or(Start::From(1)),
        };
        spawn(index, input, mode, start, numbered, tx.clone())?;
    }
    drop(tx);
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let handler = request_stop as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    let mut tail = Tail::new(&args, names);
    let result = tail.run(&rx);
    // What was seen is said even when the output failed.
    if tail.skipped > 0 {
        eprintln!(
            "halyard: {} lines were not HAProxy logs and were skipped (--filter)",
            tail.skipped
        );
    }
    result?;
    if tail.failed {
        bail!("some inputs could not be read");
    }
    Ok(ExitCode::SUCCESS)
}

/// The inputs and the name shown for each.
fn inputs(args: &Args) -> (Vec<Input>, Vec<String>) {
    let mut inputs: Vec<Input> = args
        .inputs
        .iter()
        .map(|a| match a.as_str() {
            "-" => Input::Stdin,
            path => Input::File(PathBuf::from(path)),
        })
        .collect();
    let mut names = args.inputs.clone();
    if let Some(addr) = args.listen {
        inputs.push(Input::Udp(addr));
        names.push(format!("udp@{addr}"));
    } else if inputs.is_empty() {
        inputs.push(Input::Stdin);
        names.push("-".to_owned());
    }
    (inputs, names)
}

/// The reading end: parses, filters, renders and writes.
struct Tail {
    names: Vec<String>,
    /// The number of the next line of each input.
    next_line: Vec<u64>,
    filters: Vec<Filter>,
    format: Format,
    prefix: bool,
    color: bool,
    pretty: Pretty,
    summary: Option<Summary>,
    out: Vec<u8>,
    skipped: u64,
    failed: bool,
}

/// The `--summary` state: the rolling view and where its block goes.
struct Summary {
    rolling: Rolling,
    every: Duration,
    next: Instant,
    /// On a terminal, the block stays below the lines: how many lines it has now.
    area: Option<Vec<String>>,
    drawn: usize,
}

impl Tail {
    fn new(args: &Args, names: Vec<String>) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let color = match args.color {
            Color::Auto => use_color(terminal),
            Color::Always => true,
            Color::Never => false,
        };
        let summary = args.summary.map(|every| Summary {
            rolling: Rolling::new(u32::try_from(every.as_secs()).unwrap_or(u32::MAX)),
            every,
            next: Instant::now() + every,
            area: terminal.then(Vec::new),
            drawn: 0,
        });
        Tail {
            next_line: vec![1; names.len()],
            prefix: names.len() > 1,
            names,
            filters: args.filter.clone(),
            format: args.format,
            color,
            pretty: Pretty::new(PrettyOptions {
                color,
                slow_ms: args.slow,
            }),
            summary,
            out: Vec::with_capacity(WRITE_AT * 2),
            skipped: 0,
            failed: false,
        }
    }

    /// Until every input is done, or a signal says stop.
    fn run(&mut self, rx: &Receiver<(usize, Output)>) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        while !STOP.load(Ordering::Relaxed) {
            let wait = self
                .summary
                .as_ref()
                .map_or(TICK, |s| s.next.saturating_duration_since(Instant::now()))
                .min(TICK);
            match rx.recv_timeout(wait) {
                Ok((source, output)) => {
                    self.take(source, output, &mut stdout)?;
                    // Everything already waiting goes out in one write.
                    while let Ok((source, output)) = rx.try_recv() {
                        self.take(source, output, &mut stdout)?;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.tick_summary()?;
            self.write_out(&mut stdout, true)?;
        }
        self.final_summary(&mut stdout)
    }

    fn take(&mut self, source: usize, output: Output, stdout: &mut impl Write) -> Result<()> {
        match output {
            Output::Lines(data) => {
                self.lines(source, &data);
                if self.out.len() >= WRITE_AT {
                    self.write_out(stdout, false)?;
                }
            }
            Output::Reset { first_line } => self.next_line[source] = first_line,
            Output::Notice(text) => eprintln!("halyard tail: {text}"),
            Output::Failed(text) => {
                eprintln!("halyard: {text}");
                self.failed = true;
            }
        }
        Ok(())
    }

    /// Renders the lines of `data` that pass the filters.
    fn lines(&mut self, source: usize, data: &[u8]) {
        let plain = self.format == Format::Raw && self.filters.is_empty() && self.summary.is_none();
        let now = unix_seconds();
        for text in lines(data) {
            let number = self.next_line[source];
            self.next_line[source] += 1;
            if plain {
                self.push_prefix(source);
                self.out.extend_from_slice(text);
                self.out.push(b'\n');
                continue;
            }
            let parsed = parse_line(text);
            if !self.filters.is_empty() {
                if matches!(parsed.body, Body::Other(_)) {
                    self.skipped += 1;
                    continue;
                }
                if !self.filters.iter().all(|f| f.matches(&parsed)) {
                    continue;
                }
            }
            if let Some(summary) = &mut self.summary {
                summary.rolling.add(&parsed, now);
            }
            self.render(source, number, text, &parsed);
        }
    }

    fn render(&mut self, source: usize, number: u64, text: &[u8], parsed: &LogLine<'_>) {
        match self.format {
            Format::Raw => {
                self.push_prefix(source);
                self.out.extend_from_slice(text);
                self.out.push(b'\n');
            }
            Format::Pretty => {
                self.push_prefix(source);
                self.pretty.write(text, parsed, &mut self.out);
            }
            Format::Jsonl => {
                // The record names its file: JSON lines get no prefix.
                let name = self.names[source].as_str();
                let file = (name != "-" && !name.starts_with("udp@")).then_some(name);
                let record = Record::new(file, number, parsed);
                // Serializing plain data into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut self.out, &record);
                self.out.push(b'\n');
            }
        }
    }

    fn push_prefix(&mut self, source: usize) {
        if !self.prefix {
            return;
        }
        let name = self.names[source].as_bytes();
        if self.color {
            self.out.extend_from_slice(b"\x1b[2m");
            self.out.extend_from_slice(name);
            self.out.extend_from_slice(b":\x1b[0m ");
        } else {
            self.out.extend_from_slice(name);
            self.out.extend_from_slice(b": ");
        }
    }

    /// Writes what is gathered; on a terminal with a summary, the block is taken away first
    /// and, when `redraw`, drawn again below the new lines.
    fn write_out(&mut self, stdout: &mut impl Write, redraw: bool) -> Result<()> {
        let Some(Summary {
            area: Some(area),
            drawn,
            ..
        }) = &mut self.summary
        else {
            if !self.out.is_empty() {
                stdout.write_all(&self.out)?;
                stdout.flush()?;
                self.out.clear();
            }
            return Ok(());
        };
        if self.out.is_empty() && *drawn == area.len() {
            return Ok(());
        }
        let mut screen = Vec::with_capacity(self.out.len() + 1024);
        if *drawn > 0 {
            // Up to the block's first line, then clear to the end of the screen.
            write!(screen, "\x1b[{drawn}F\x1b[J")?;
            *drawn = 0;
        }
        screen.append(&mut self.out);
        if redraw {
            for line in area.iter() {
                screen.extend_from_slice(line.as_bytes());
                screen.push(b'\n');
            }
            *drawn = area.len();
        }
        stdout.write_all(&screen)?;
        stdout.flush()?;
        Ok(())
    }

    /// At each interval: the block, in the status area or on stderr.
    fn tick_summary(&mut self) -> Result<()> {
        let color = self.color;
        let Some(summary) = &mut self.summary else {
            return Ok(());
        };
        if Instant::now() < summary.next {
            return Ok(());
        }
        summary.next += summary.every;
        let block = summary.block(color);
        match &mut summary.area {
            Some(area) => *area = block,
            None => eprint!("{}", block.join("\n") + "\n"),
        }
        Ok(())
    }

    /// At the end, the last block stays on the screen (or goes to stderr).
    fn final_summary(&mut self, stdout: &mut impl Write) -> Result<()> {
        if let Some(summary) = &mut self.summary {
            summary.next = Instant::now();
        }
        self.tick_summary()?;
        self.write_out(stdout, true)
    }
}

impl Summary {
    fn block(&mut self, color: bool) -> Vec<String> {
        let rows = self.rolling.rows(unix_seconds());
        // A terminal that reports no usable width (some pseudo-terminals say 0) is not cut.
        let width = self
            .area
            .as_ref()
            .and_then(|_| terminal_width())
            .filter(|w| *w >= 20);
        summary_block(
            &rows,
            self.every.as_secs(),
            color,
            width.map(|w| usize::from(w).saturating_sub(1)),
        )
    }
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("tail", args)
    }

    #[test]
    fn flags_are_checked_before_any_work() {
        let args = parse(&["-F", "-n", "+1", "--filter", "status>=500", "x.log"]).unwrap();
        assert!(args.follow_name && args.lines == Some(Start::From(1)));
        assert_eq!(args.filter.len(), 1);
        let err = parse(&["--filter", "status>>500"]).unwrap_err().to_string();
        assert!(
            err.contains("bad filter") && err.contains("\n  status>>500\n"),
            "{err}"
        );
        assert!(parse(&["-f", "-F"]).is_err());
        assert!(parse(&["--summary", "500ms"]).is_err());
        assert_eq!(
            parse(&["--summary", "1m"]).unwrap().summary,
            Some(Duration::from_secs(60))
        );
        assert!(parse(&["--listen", "tcp@127.0.0.1:1"]).is_err());
        let listen = parse(&["--listen", "udp@127.0.0.1:5514"]).unwrap();
        let (inputs, names) = inputs(&listen);
        assert_eq!(inputs, [Input::Udp("127.0.0.1:5514".parse().unwrap())]);
        assert_eq!(names, ["udp@127.0.0.1:5514"]);
        assert_eq!(inputs_of(&[]), [Input::Stdin]);
    }

    fn inputs_of(args: &[&str]) -> Vec<Input> {
        inputs(&parse(args).unwrap()).0
    }
}
