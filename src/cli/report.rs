//! `halyard report`: status codes, per-server latency, balancing fairness and more over
//! HAProxy log files.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use halyard::config::ConfigFile;
use halyard::input::Source;
use halyard::report::filter::{parse_duration_ms, parse_statuses, parse_time};
use halyard::report::{self, Filter, ReportOptions, Section, Weights};

use super::output::{byte_progress, terminal_width, use_color};

/// Report status codes, per-server latency percentiles and balancing fairness.
///
/// Reads plain files, gzip files (by content, whatever their name) and stdin (`-`, or no
/// file); several files are one input. Percentiles are exact and nearest-rank: p99 of n
/// values is the value at rank ceil(0.99 n) in ascending order, always a value that was
/// logged. Timers HAProxy logged as -1 are left out of percentiles and counted as aborted.
/// For TCP sessions, Ta is the total time Tt.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  halyard report /var/log/haproxy.log /var/log/haproxy.log.1 /var/log/haproxy.log.2.gz
  halyard report --sections servers,fairness --config /etc/haproxy/haproxy.cfg haproxy.log
  halyard report --since 2h --backend be_app --status 5xx haproxy.log
  halyard report --format html --output report.html haproxy.log*
  halyard report --format csv --output report-csv/ haproxy.log

Exit status: 0 when done (also for empty input); 2 on an error (unreadable file, truncated
gzip, bad arguments or config).")]
pub struct Args {
    /// Log files to read; `-` (or none) reads stdin.
    #[arg(value_name = "FILE")]
    inputs: Vec<String>,

    /// Output format; csv writes one file per section into the --output directory.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Write to this file (a directory for csv) instead of stdout.
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,

    /// Sections to compute, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    sections: Vec<Section>,

    /// Width of timeline and fairness intervals (e.g. 10s, 1m, 1h).
    #[arg(long, default_value = "1m", value_parser = parse_interval, value_name = "DURATION")]
    interval: i64,

    /// Rows in each top list.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,

    /// Only requests accepted at or after this local time (2026-11-24T21:00, or 2h ago as 2h).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,

    /// Only requests accepted before this local time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,

    /// Only this frontend (repeatable).
    #[arg(long, value_name = "NAME")]
    frontend: Vec<String>,

    /// Only this backend (repeatable).
    #[arg(long, value_name = "NAME")]
    backend: Vec<String>,

    /// Only this server, as NAME or BACKEND/NAME (repeatable).
    #[arg(long, value_name = "NAME")]
    server: Vec<String>,

    /// Only these statuses: 5xx, 404, 500-599, or a comma-separated list (HTTP only).
    #[arg(long, value_name = "CODES")]
    status: Option<String>,

    /// haproxy.cfg whose server weights give each server's expected share.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// How many malformed lines the summary names with file:line (all are counted).
    #[arg(long, value_name = "N", default_value_t = 5)]
    show_malformed: usize,

    /// How many server transitions the events section lists (all count towards downtime).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    transitions: usize,

    /// Colour in tables: auto (when stdout is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
}

/// The output formats of `halyard report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    /// Tables for the terminal.
    Table,
    /// One JSON document.
    Json,
    /// One CSV file per section.
    Csv,
    /// One self-contained HTML page with charts.
    Html,
}

/// When to colour tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// An interval of whole seconds (a report per millisecond would be noise, and whole seconds
/// let the report keep one 4-byte time per request).
fn parse_interval(spec: &str) -> Result<i64, String> {
    let ms = parse_duration_ms(spec)?;
    if ms < 1000 || ms % 1000 != 0 {
        return Err(format!(
            "interval {spec:?} is not a whole number of seconds"
        ));
    }
    Ok(ms)
}

/// Runs `halyard report`.
pub fn run(args: Args) -> Result<ExitCode> {
    let now = chrono::Local::now().naive_local();
    let time = |spec: &Option<String>| -> Result<_> {
        spec.as_deref()
            .map(|s| parse_time(s, now))
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let filter = Filter {
        since: time(&args.since)?,
        until: time(&args.until)?,
        frontends: args.frontend.clone(),
        backends: args.backend.clone(),
        servers: args.server.clone(),
        statuses: match &args.status {
            Some(spec) => parse_statuses(spec).map_err(anyhow::Error::msg)?,
            None => Vec::new(),
        },
    };
    let weights = args.config.as_deref().map(read_weights).transpose()?;
    let mut sections = if args.sections.is_empty() {
        Section::ALL.to_vec()
    } else {
        args.sections.clone()
    };
    sections.sort();
    sections.dedup();
    if args.format == Format::Csv && args.output.is_none() {
        bail!("--format csv writes one file per section: give a directory with --output DIR");
    }
    let sources: Vec<Source> = if args.inputs.is_empty() {
        vec![Source::Stdin]
    } else {
        args.inputs.iter().map(|a| Source::from_arg(a)).collect()
    };
    let options = ReportOptions {
        sections,
        interval_ms: args.interval,
        top: args.top,
        filter,
        weights,
        threads: parse_threads(),
        show_malformed: args.show_malformed,
        max_transitions: args.transitions,
    };
    let report = build_report(&sources, &options)?;
    if let Some(s) = report.summary.as_ref().filter(|s| s.malformed > 0) {
        if args.format != Format::Table || args.output.is_some() {
            if let Some(first) = s.malformed_lines.first() {
                eprintln!(
                    "halyard: {} of {} lines were not understood (counted in the summary); first: {first}",
                    s.malformed, s.lines_read
                );
            }
        }
    }
    match (args.format, &args.output) {
        (Format::Csv, Some(dir)) => report::csv::write_dir(&report, dir)
            .with_context(|| format!("writing CSV files into {}", dir.display()))?,
        (format, Some(path)) => {
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = BufWriter::new(file);
            write_report(&report, format, false, &mut out)?;
            out.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        (format, None) => print_report(&report, format, args.color)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Threads that parse the inputs: one per CPU.
pub(super) fn parse_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Reads `sources` into a report, with a progress bar on stderr while it reads.
pub(super) fn build_report(sources: &[Source], options: &ReportOptions) -> Result<report::Report> {
    let progress = byte_progress(sources.iter().map(Source::len_hint).sum());
    let counter = progress.clone();
    let built = report::build(sources, options, move |n| counter.inc(n));
    progress.finish_and_clear();
    Ok(built?)
}

/// Writes the report to stdout, coloured as `color` says.
pub(super) fn print_report(
    report: &report::Report,
    format: Format,
    color: ColorChoice,
) -> Result<()> {
    let stdout = std::io::stdout();
    let color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => use_color(stdout.is_terminal()),
    };
    let mut out = BufWriter::new(stdout.lock());
    write_report(report, format, color, &mut out)?;
    out.flush()?;
    Ok(())
}

fn write_report(
    report: &report::Report,
    format: Format,
    color: bool,
    out: &mut impl Write,
) -> Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")?;
        }
        Format::Html => out.write_all(report::html::render(report).as_bytes())?,
        Format::Table | Format::Csv => {
            let width = terminal_width();
            out.write_all(report::table::render(report, width, color).as_bytes())?;
        }
    }
    Ok(())
}

/// The server weights of a haproxy.cfg.
fn read_weights(path: &std::path::Path) -> Result<Weights> {
    Ok(ConfigFile::read(path)?.server_weights()?)
}
