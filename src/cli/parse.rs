//! `halyard parse`: HAProxy log files to JSON lines, CSV, or a count of what they hold.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;
use indicatif::ProgressBar;

use halyard::input::{lines, map_chunks, Chunk, ChunkReader, MalformedLine, Source};
use halyard::logline::{lossy, parse_line, Body, LineKind, Record, RECORD_COLUMNS};

use super::output::byte_progress;

/// Parse HAProxy log lines into JSON lines, CSV, or a summary of what the files hold.
///
/// Reads plain files, gzip files (by content, whatever their name) and stdin (`-`, or no
/// file). Every input line gives one output record; lines that are not HAProxy logs come out
/// with kind `other` and an `error` saying why, and are counted on stderr with file:line.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  halyard parse /var/log/haproxy.log > haproxy.jsonl
  halyard parse --format csv haproxy.log.2.gz > requests.csv
  halyard parse --format stats haproxy.log haproxy.log.1
  zcat haproxy.log.*.gz | halyard parse - | jq 'select(.status >= 500)'

Exit status: 0 when done; with --format stats, 1 when some lines were not understood;
2 on an error (unreadable file, bad arguments).")]
pub struct Args {
    /// Log files to read; `-` (or none) reads stdin.
    #[arg(value_name = "FILE")]
    inputs: Vec<String>,

    /// Output: one JSON object per line, CSV with a header, or counts per kind and server.
    #[arg(long, short, value_enum, default_value_t = Format::Jsonl)]
    format: Format,

    /// How many lines that were not understood to name with file:line (all are counted).
    #[arg(long, value_name = "N", default_value_t = 20)]
    show_malformed: usize,
}

/// The output formats of `halyard parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One JSON object per input line.
    Jsonl,
    /// CSV with a header row; captured header lists joined with `|`.
    Csv,
    /// Line counts per kind and per backend/server, and the lines not understood.
    Stats,
}

/// Runs `halyard parse`.
pub fn run(args: Args) -> Result<ExitCode> {
    let sources: Vec<Source> = if args.inputs.is_empty() {
        vec![Source::Stdin]
    } else {
        args.inputs.iter().map(|a| Source::from_arg(a)).collect()
    };
    let progress = byte_progress(sources.iter().map(Source::len_hint).sum());
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let stats = match args.format {
        Format::Jsonl | Format::Csv => export(args.format, &sources, &progress, &mut out)?,
        Format::Stats => {
            let mut stats = Stats::default();
            for source in &sources {
                stats.merge(count_lines(source, &progress, args.show_malformed)?);
            }
            stats
        }
    };
    progress.finish_and_clear();
    if args.format == Format::Stats {
        stats.write_report(&mut out, args.show_malformed)?;
        out.flush()?;
        return Ok(if stats.malformed_count > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    out.flush()?;
    if let Some(first) = stats.malformed.first() {
        eprintln!(
            "halyard: {} of {} lines were not understood (kind \"other\"); first: {first}",
            stats.malformed_count, stats.lines,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes one JSON object or CSV row per line of `sources`; returns what was counted.
fn export(
    format: Format,
    sources: &[Source],
    progress: &ProgressBar,
    out: &mut impl Write,
) -> Result<Stats> {
    if format == Format::Csv {
        let mut header = csv::Writer::from_writer(Vec::new());
        header.write_record(RECORD_COLUMNS)?;
        out.write_all(&header.into_inner().map_err(|e| e.into_error())?)?;
    }
    let mut stats = Stats::default();
    for source in sources {
        let name = source.name();
        let file = matches!(source, Source::File(_)).then_some(name.as_str());
        let work = |chunk: Chunk<'_>| -> Result<(Stats, Vec<u8>)> {
            let mut part = Stats::default();
            let mut json = Vec::new();
            let mut csv = (format == Format::Csv).then(|| {
                csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::with_capacity(chunk.data.len() * 2))
            });
            if csv.is_none() {
                json.reserve(chunk.data.len() * 4);
            }
            for (i, text) in lines(chunk.data).enumerate() {
                let line = chunk.first_line + i as u64;
                let parsed = parse_line(text);
                part.add(&name, line, text, &parsed.body, 1);
                let record = Record::new(file, line, &parsed);
                match csv.as_mut() {
                    Some(w) => w.write_record(record.csv_cells())?,
                    None => {
                        serde_json::to_writer(&mut json, &record)?;
                        json.push(b'\n');
                    }
                }
            }
            let rows = match csv {
                Some(w) => w.into_inner().map_err(|e| e.into_error())?,
                None => json,
            };
            Ok((part, rows))
        };
        let merge = |done: Result<(Stats, Vec<u8>)>| -> Result<()> {
            let (part, rows) = done?;
            out.write_all(&rows)?;
            stats.merge(part);
            Ok(())
        };
        map_chunks(open(source, progress)?, threads(), work, merge)?;
    }
    Ok(stats)
}

/// Counts the lines of `source` on all cores.
fn count_lines(source: &Source, progress: &ProgressBar, keep: usize) -> Result<Stats> {
    let name = source.name();
    let work = |chunk: Chunk<'_>| {
        let mut part = Stats::default();
        for (i, text) in lines(chunk.data).enumerate() {
            let line = chunk.first_line + i as u64;
            part.add(&name, line, text, &parse_line(text).body, keep);
        }
        part
    };
    let mut total = Stats::default();
    let merge = |part| -> Result<()> {
        total.merge(part);
        Ok(())
    };
    map_chunks(open(source, progress)?, threads(), work, merge)?;
    total.malformed.truncate(keep);
    Ok(total)
}

fn open(source: &Source, progress: &ProgressBar) -> Result<ChunkReader> {
    let counter = progress.clone();
    Ok(source.open(move |n| counter.inc(n as u64))?)
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Counts per kind and per backend/server.
#[derive(Debug, Default)]
struct Stats {
    lines: u64,
    kinds: [u64; LineKind::ALL.len()],
    servers: HashMap<Vec<u8>, HashMap<Vec<u8>, u64>>,
    malformed_count: u64,
    malformed: Vec<MalformedLine>,
}

impl Stats {
    /// Counts one line; a line not understood is named by file:line while fewer than `keep` are.
    fn add(&mut self, file: &str, line: u64, text: &[u8], body: &Body<'_>, keep: usize) {
        self.lines += 1;
        let kind = match body {
            Body::Http(h) => {
                self.count_server(h.session.backend, h.session.server);
                LineKind::Http
            }
            Body::Tcp(t) => {
                self.count_server(t.session.backend, t.session.server);
                LineKind::Tcp
            }
            Body::ServerEvent(_) => LineKind::ServerEvent,
            Body::ProxyEvent(_) => LineKind::ProxyEvent,
            Body::ConnectionError(_) => LineKind::ConnectionError,
            Body::Other(why) => {
                self.malformed_count += 1;
                if self.malformed.len() < keep {
                    self.malformed
                        .push(MalformedLine::new(file, line, text, why));
                }
                LineKind::Other
            }
        };
        self.kinds[kind as usize] += 1;
    }

    fn count_server(&mut self, backend: &[u8], server: &[u8]) {
        let per_backend = match self.servers.get_mut(backend) {
            Some(m) => m,
            None => self.servers.entry(backend.to_vec()).or_default(),
        };
        match per_backend.get_mut(server) {
            Some(n) => *n += 1,
            None => {
                per_backend.insert(server.to_vec(), 1);
            }
        }
    }

    fn merge(&mut self, other: Stats) {
        self.lines += other.lines;
        for (mine, theirs) in self.kinds.iter_mut().zip(other.kinds) {
            *mine += theirs;
        }
        for (backend, servers) in other.servers {
            let mine = self.servers.entry(backend).or_default();
            for (server, n) in servers {
                *mine.entry(server).or_default() += n;
            }
        }
        self.malformed_count += other.malformed_count;
        self.malformed.extend(other.malformed);
    }

    fn write_report(&self, out: &mut impl Write, shown: usize) -> std::io::Result<()> {
        let mut rows: Vec<(String, u64)> = self
            .servers
            .iter()
            .flat_map(|(b, servers)| {
                servers
                    .iter()
                    .map(move |(s, n)| (format!("{}/{}", lossy(b), lossy(s)), *n))
            })
            .collect();
        rows.sort();
        // One label width for every row, so all counts line up in one column.
        let width = rows
            .iter()
            .map(|(k, _)| k.len() + 1)
            .max()
            .unwrap_or(0)
            .max(13);
        writeln!(out, "{:<w$}{:>12}", "lines", self.lines, w = width + 2)?;
        for kind in LineKind::ALL {
            let count = self.kinds[kind as usize];
            writeln!(out, "  {:<width$}{count:>12}", kind.as_str())?;
        }
        if !rows.is_empty() {
            writeln!(out, "\nrequests and sessions per backend/server")?;
            for (key, n) in rows {
                writeln!(out, "  {key:<width$}{n:>12}")?;
            }
        }
        if self.malformed_count > 0 {
            writeln!(out, "\nnot understood: {} lines", self.malformed_count)?;
            for m in self.malformed.iter().take(shown) {
                writeln!(out, "  {m}")?;
            }
            let hidden = self.malformed_count.saturating_sub(shown as u64);
            if hidden > 0 {
                writeln!(
                    out,
                    "  ... and {hidden} more (--show-malformed N shows more)"
                )?;
            }
        }
        Ok(())
    }
}
