//! `halyard report`: what a set of HAProxy log files says about status codes, servers, latency
//! and how evenly the balancer spread the load.
//!
//! [`build`] reads the inputs once, in parallel, into columns ([`frame`]), and computes every
//! section from them with polars ([`analysis`], [`fairness`], [`events`]). The result is a
//! [`Report`]: plain data that serialises to JSON as it is, and that the renderers ([`table`],
//! [`csv`], [`html`]) lay out.
//!
//! Percentiles are exact and nearest-rank: p99 of n values is the value at rank ⌈0.99·n⌉ in
//! ascending order, always one that was logged.

mod analysis;
pub mod csv;
mod events;
mod fairness;
pub mod filter;
mod frame;
pub mod html;
mod intern;
pub mod rolling;
pub mod table;
mod termination;

use std::collections::HashMap;

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::config::ServerWeight;
use crate::input::{InputError, MalformedLine, Source};

pub use filter::Filter;

/// The sections of a report, in the order they are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Section {
    /// Lines read, requests, sessions, events, malformed lines, time span and request rates.
    Summary,
    /// Count and share per status code and class, overall and per backend.
    Status,
    /// Termination-state codes with counts and their meaning.
    Termination,
    /// Per backend/server: traffic share, status classes, errors and timer percentiles.
    Servers,
    /// Per backend: how evenly the load followed the weights.
    Fairness,
    /// Per interval and server: requests, errors and p99 of Ta.
    Timeline,
    /// URLs by count, total time and errors; clients by count.
    Top,
    /// Server DOWN/UP transitions and downtime per server.
    Events,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 8] = [
        Section::Summary,
        Section::Status,
        Section::Termination,
        Section::Servers,
        Section::Fairness,
        Section::Timeline,
        Section::Top,
        Section::Events,
    ];

    /// The section's name on the command line, in JSON and in CSV file names.
    pub fn name(self) -> &'static str {
        match self {
            Section::Summary => "summary",
            Section::Status => "status",
            Section::Termination => "termination",
            Section::Servers => "servers",
            Section::Fairness => "fairness",
            Section::Timeline => "timeline",
            Section::Top => "top",
            Section::Events => "events",
        }
    }
}

/// What to compute and over which lines.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The sections to compute.
    pub sections: Vec<Section>,
    /// Width of the timeline and fairness intervals, in milliseconds.
    pub interval_ms: i64,
    /// How many rows each `top` list keeps.
    pub top: usize,
    /// Which lines count.
    pub filter: Filter,
    /// Server weights per backend (from `--config`); equal weights when absent.
    pub weights: Option<Weights>,
    /// Worker threads for parsing.
    pub threads: usize,
    /// How many malformed lines the summary names.
    pub show_malformed: usize,
    /// How many server transitions the events section lists (all are counted).
    pub max_transitions: usize,
}

/// Configured servers per backend, in config order.
pub type Weights = HashMap<String, Vec<ServerWeight>>;

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An input could not be opened, or failed part-way.
    #[error("{source}{}", after_lines(*.lines_read))]
    Input {
        /// What failed.
        source: InputError,
        /// Lines of that input read before it failed.
        lines_read: u64,
    },
    /// The aggregation engine failed (a bug, not bad input).
    #[error("aggregation failed: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

fn after_lines(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" (after {n} lines)")
    }
}

/// A finished report: every computed section, as plain data.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// See [`Section::Summary`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Status codes over all backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<StatusRow>>,
    /// Status classes (`2xx`...) over all backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_classes: Option<Vec<StatusRow>>,
    /// Status codes per backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_by_backend: Option<Vec<BackendStatusRow>>,
    /// See [`Section::Termination`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination: Option<Vec<TerminationRow>>,
    /// See [`Section::Servers`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<ServerRow>>,
    /// See [`Section::Fairness`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fairness: Option<Vec<FairnessRow>>,
    /// See [`Section::Timeline`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineRow>>,
    /// See [`Section::Top`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<Top>,
    /// See [`Section::Events`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Events>,
    /// The interval width used by the timeline and fairness, in seconds.
    pub interval_seconds: f64,
}

/// Counts over the whole input.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Every line read, understood or not.
    pub lines_read: u64,
    /// HTTP request logs that passed the filters.
    pub http_requests: u64,
    /// TCP session logs that passed the filters.
    pub tcp_sessions: u64,
    /// Server and proxy event lines.
    pub events: u64,
    /// Lines not understood.
    pub malformed: u64,
    /// The first few of them, by file:line.
    pub malformed_lines: Vec<MalformedLine>,
    /// Request and session lines left out by the filters.
    pub filtered_out: u64,
    /// Accept time of the first request or session.
    pub first: Option<String>,
    /// Accept time of the last request or session.
    pub last: Option<String>,
    /// HTTP requests per second between first and last.
    pub mean_rps: Option<f64>,
    /// The most HTTP requests accepted in one second.
    pub peak_rps: Option<u64>,
    /// That second.
    pub peak_second: Option<String>,
}

/// Requests with one status code (or class).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusRow {
    /// The code (`-1` when no response was sent), or the class's first code for class rows.
    pub status: i32,
    /// `1xx`..`5xx`, or `none`.
    pub class: String,
    /// Requests with it.
    pub count: u64,
    /// Fraction of all requests.
    pub share: f64,
}

/// Requests of one backend with one status code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendStatusRow {
    /// The backend.
    pub backend: String,
    /// The code, `-1` when no response was sent.
    pub status: i32,
    /// `1xx`..`5xx`, or `none`.
    pub class: String,
    /// Requests with it.
    pub count: u64,
    /// Fraction of the backend's requests.
    pub share: f64,
}

/// One termination state (its first two characters).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TerminationRow {
    /// Two characters, e.g. `sH`.
    pub code: String,
    /// Requests and sessions that ended so.
    pub count: u64,
    /// Fraction of all requests and sessions.
    pub share: f64,
    /// What the code means.
    pub meaning: String,
}

/// Distribution of one timer, in milliseconds, over the requests that reached it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TimerStats {
    /// Median (nearest rank).
    pub p50: Option<f64>,
    /// 90th percentile (nearest rank).
    pub p90: Option<f64>,
    /// 99th percentile (nearest rank).
    pub p99: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Values that went into the figures above.
    pub count: u64,
    /// Requests where HAProxy logged -1 (the phase was never reached).
    pub aborted: u64,
}

/// Traffic and latency of one server (or `<NOSRV>`) of a backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerRow {
    /// The backend.
    pub backend: String,
    /// The server, `<NOSRV>` for requests no server took.
    pub server: String,
    /// HTTP requests and TCP sessions.
    pub requests: u64,
    /// Fraction of the backend's requests.
    pub share: f64,
    /// The fraction its weight entitles it to (`None` for `<NOSRV>` and unknown servers).
    pub expected_share: Option<f64>,
    /// 2xx responses.
    pub status_2xx: u64,
    /// 3xx responses.
    pub status_3xx: u64,
    /// 4xx responses.
    pub status_4xx: u64,
    /// 5xx responses.
    pub status_5xx: u64,
    /// 5xx responses, HTTP requests without a response and TCP sessions that did not end
    /// normally.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Total active time (`Tt` for TCP sessions).
    #[serde(rename = "Ta")]
    pub ta: TimerStats,
    /// Server response time.
    #[serde(rename = "Tr")]
    pub tr: TimerStats,
    /// Connect time.
    #[serde(rename = "Tc")]
    pub tc: TimerStats,
    /// Time waiting in queues.
    #[serde(rename = "Tw")]
    pub tw: TimerStats,
    /// Time to receive the full request.
    #[serde(rename = "TR")]
    pub treq: TimerStats,
}

/// How evenly one backend's load followed its weights.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FairnessRow {
    /// The backend.
    pub backend: String,
    /// Servers counted (active, weight > 0).
    pub servers: usize,
    /// Jain's index of weight-normalised load: 1 is perfectly even, 1/n is one server doing all.
    pub jain_index: Option<f64>,
    /// Largest over smallest weight-normalised load (`None` when a server got nothing).
    pub max_min_ratio: Option<f64>,
    /// Coefficient of variation of weight-normalised load (0 is perfectly even).
    pub cv: Option<f64>,
    /// The lowest Jain index of any interval with at least one request per server.
    pub worst_interval_jain: Option<f64>,
    /// Start of that interval.
    pub worst_interval_start: Option<String>,
    /// Servers that received nothing while others in the backend did.
    pub idle_servers: Vec<String>,
    /// Per server, the intervals in which it received nothing while others did.
    pub idle_intervals: Vec<IdleIntervals>,
    /// Jain's index per interval, for the fairness-over-time chart.
    pub jain_by_interval: Vec<IntervalJain>,
}

/// Intervals in which a server was passed over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdleIntervals {
    /// The server.
    pub server: String,
    /// How many intervals.
    pub intervals: u64,
}

/// Jain's index of one interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalJain {
    /// Start of the interval.
    pub start: String,
    /// Jain's index over the interval's weight-normalised loads.
    pub jain: f64,
}

/// One server in one interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineRow {
    /// Start of the interval.
    pub start: String,
    /// The backend.
    pub backend: String,
    /// The server.
    pub server: String,
    /// Requests and sessions accepted in the interval.
    pub requests: u64,
    /// Errors among them (as in [`ServerRow::errors`]).
    pub errors: u64,
    /// 99th percentile of Ta.
    pub ta_p99: Option<f64>,
}

/// The busiest URLs and clients.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Top {
    /// URLs (path, query string removed) by request count.
    pub urls_by_count: Vec<UrlRow>,
    /// URLs by total Ta.
    pub urls_by_time: Vec<UrlRow>,
    /// URLs by errors.
    pub urls_by_errors: Vec<UrlRow>,
    /// Client addresses by requests and sessions.
    pub clients: Vec<ClientRow>,
}

/// One URL's traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UrlRow {
    /// The path, without its query string.
    pub url: String,
    /// Requests.
    pub requests: u64,
    /// Sum of Ta, in milliseconds.
    pub total_time_ms: u64,
    /// Errors (as in [`ServerRow::errors`]).
    pub errors: u64,
}

/// One client's traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientRow {
    /// The client address.
    pub client: String,
    /// Requests and sessions.
    pub requests: u64,
}

/// Server state changes and what they cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Events {
    /// DOWN, UP, maintenance and drain transitions in time order (the first
    /// `--transitions N`).
    pub transitions: Vec<Transition>,
    /// All transitions, listed or not.
    pub transitions_total: u64,
    /// Per server that went down: how often and for how long.
    pub downtime: Vec<Downtime>,
}

/// A server changing state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// When it was logged (local time), if the line had a timestamp.
    pub time: Option<String>,
    /// The backend.
    pub backend: String,
    /// The server.
    pub server: String,
    /// `down`, `up`, `maintenance` or `drain`.
    pub state: String,
    /// Why, as HAProxy wrote it.
    pub reason: String,
}

/// Total time a server spent out of service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Downtime {
    /// The backend.
    pub backend: String,
    /// The server.
    pub server: String,
    /// Times it went out of service (DOWN or maintenance).
    pub outages: u64,
    /// Seconds out of service; an outage still open at the end runs to the last line's time.
    pub seconds: f64,
    /// Whether it was still out of service at the end of the input.
    pub still_down: bool,
}

/// Reads `sources` (in order, as one stream) and computes the report `options` ask for.
/// `progress` sees the raw bytes read.
pub fn build(
    sources: &[Source],
    options: &ReportOptions,
    progress: impl Fn(u64) + Clone + Send + 'static,
) -> Result<Report, ReportError> {
    let frame = frame::read(sources, options, progress)?;
    sections(frame, options)
}

/// A report over lines as they arrive (the listener's periodic report): the same sections as
/// [`build`], fed whole lines instead of files.
pub struct ReportBuilder {
    options: ReportOptions,
    frame: frame::FrameBuilder,
    name: String,
}

impl ReportBuilder {
    /// An empty report; `name` stands for the input in malformed-line locations.
    pub fn new(options: ReportOptions, name: &str) -> Self {
        ReportBuilder {
            options,
            frame: frame::FrameBuilder::default(),
            name: name.to_owned(),
        }
    }

    /// Reads whole lines (each ending in `\n`).
    pub fn add_lines(&mut self, data: &[u8]) {
        self.frame.add_lines(data, &self.name, &self.options);
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.frame.lines()
    }

    /// Computes the report over every line read.
    pub fn finish(self) -> Result<Report, ReportError> {
        sections(self.frame.finish()?, &self.options)
    }
}

/// Computes the sections `options` ask for over a frame.
fn sections(frame: frame::Frame, options: &ReportOptions) -> Result<Report, ReportError> {
    let wants = |s| options.sections.contains(&s);
    // The servers section keeps both cores busy on its own; the others are mostly serial, so
    // they run beside it rather than after it.
    let (servers, report) = std::thread::scope(|scope| {
        let servers = wants(Section::Servers)
            .then(|| scope.spawn(|| analysis::servers(&frame, options.weights.as_ref())));
        let rest = other_sections(&frame, options);
        let servers = servers
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .transpose();
        (servers, rest)
    });
    let mut report = report?;
    report.servers = servers?;
    report.interval_seconds = options.interval_ms as f64 / 1000.0;
    Ok(report)
}

/// Every section but `servers`, from the frame.
fn other_sections(frame: &frame::Frame, options: &ReportOptions) -> Result<Report, ReportError> {
    let wants = |s| options.sections.contains(&s);
    let mut report = Report::default();
    if wants(Section::Summary) {
        report.summary = Some(analysis::summary(frame)?);
    }
    if wants(Section::Status) {
        let (codes, classes, by_backend) = analysis::status(frame)?;
        report.status = Some(codes);
        report.status_classes = Some(classes);
        report.status_by_backend = Some(by_backend);
    }
    if wants(Section::Termination) {
        report.termination = Some(analysis::termination(frame)?);
    }
    if wants(Section::Timeline) || wants(Section::Fairness) {
        let timeline = analysis::timeline(frame, options.interval_ms, wants(Section::Timeline))?;
        if wants(Section::Fairness) {
            report.fairness = Some(fairness::fairness(
                frame,
                &timeline,
                options.weights.as_ref(),
            ));
        }
        if wants(Section::Timeline) {
            report.timeline = Some(timeline.rows(frame));
        }
    }
    if wants(Section::Top) {
        report.top = Some(analysis::top(frame, options.top)?);
    }
    if wants(Section::Events) {
        report.events = Some(events::events(
            frame,
            &options.filter,
            options.max_transitions,
        ));
    }
    Ok(report)
}

/// Formats a local time as the report shows it.
fn show_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

/// `1xx`..`5xx` for a status code, `none` for -1 and anything else.
pub fn status_class(status: i32) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}
