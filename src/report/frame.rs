//! Parsed lines -> columns: one row per HTTP request or TCP session that passes the filter, in
//! a polars [`DataFrame`], with backend/server names interned as `u32` ids.
//!
//! A row is 38 bytes of fixed-width columns, so a 1 GB log (~5M rows) fits in a few hundred
//! MB. URLs and client addresses only feed sums (the top lists), so they are summed per name
//! while reading ([`Tally`]) instead of becoming columns. Workers parse chunks with their own
//! interners; the merge (in input order, on the calling thread) maps their ids to the global
//! ones, so the output does not depend on the thread count.

use chrono::NaiveDateTime;
use polars::prelude::*;

use super::intern::Interner;
use super::{ReportError, ReportOptions};
use crate::input::{lines, map_chunks, Chunk, InputError, MalformedLine, Source};
use crate::logline::{
    lossy, parse_line, Body, EventSource, LogLine, ServerEventKind, Session, TerminationState,
    Timestamp,
};

/// Column names of the request frame.
pub(super) mod col {
    /// Accept time in whole seconds since 1970, in the log's local time (u32: 1970 to 2106;
    /// dates outside are clamped). Intervals are whole seconds, so this is all they need.
    pub const SECOND: &str = "second";
    /// Server id (see [`super::Frame::servers`]).
    pub const SERVER: &str = "server";
    /// Whether the row is an HTTP request (else a TCP session).
    pub const HTTP: &str = "http";
    /// HTTP status, -1 for none (and for TCP sessions).
    pub const STATUS: &str = "status";
    /// Ta for HTTP, Tt for TCP; null when HAProxy logged -1.
    pub const TA: &str = "Ta";
    /// Tr, null when not reached (and for TCP).
    pub const TR: &str = "Tr";
    /// Tc, null when not reached.
    pub const TC: &str = "Tc";
    /// Tw, null when not reached.
    pub const TW: &str = "Tw";
    /// TR (time to receive the request), null when not reached (and for TCP).
    pub const TREQ: &str = "TR";
    /// First two termination-state characters, packed big-endian into a u32.
    pub const TSC: &str = "tsc";
    /// A 5xx, an HTTP request without a response, or a TCP session that did not end normally.
    pub const ERROR: &str = "error";
}

/// Everything read from the inputs: the request frame, its dictionaries, events and counts.
pub(super) struct Frame {
    /// One row per request or session (see [`col`]).
    pub df: DataFrame,
    /// `(backend, server)` per server id.
    pub servers: Vec<(String, String)>,
    /// Requests, time and errors per URL path.
    pub urls: Tally,
    /// Requests, time and errors per client address.
    pub clients: Tally,
    /// Server state changes, in input order, timestamps resolved.
    pub events: Vec<ServerChange>,
    /// Line counts.
    pub counts: LineCounts,
    /// The first malformed lines.
    pub malformed: Vec<MalformedLine>,
    /// Accept time of the last request or session, or the last event (for open outages).
    pub end: Option<NaiveDateTime>,
    /// Accept times of the first and last request or session.
    pub span: Option<(NaiveDateTime, NaiveDateTime)>,
}

/// How many lines of each kind were read.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LineCounts {
    pub lines: u64,
    pub http: u64,
    pub tcp: u64,
    pub events: u64,
    pub malformed: u64,
    pub filtered_out: u64,
}

impl LineCounts {
    fn add(&mut self, other: &LineCounts) {
        self.lines += other.lines;
        self.http += other.http;
        self.tcp += other.tcp;
        self.events += other.events;
        self.malformed += other.malformed;
        self.filtered_out += other.filtered_out;
    }
}

/// A server changing state, as the events section needs it.
#[derive(Debug, Clone)]
pub(super) struct ServerChange {
    pub time: Option<NaiveDateTime>,
    pub backend: String,
    pub server: String,
    pub kind: ServerEventKind,
    pub reason: String,
}

/// Fixed-width columns being filled.
#[derive(Default)]
struct Columns {
    second: Vec<u32>,
    server: Vec<u32>,
    http: Vec<bool>,
    status: Vec<i32>,
    ta: Vec<i32>,
    tr: Vec<i32>,
    tc: Vec<i32>,
    tw: Vec<i32>,
    treq: Vec<i32>,
    tsc: Vec<u32>,
    error: Vec<bool>,
}

impl Columns {
    fn reserve(&mut self, rows: usize) {
        self.second.reserve(rows);
        self.server.reserve(rows);
        self.http.reserve(rows);
        self.status.reserve(rows);
        for timer in [
            &mut self.ta,
            &mut self.tr,
            &mut self.tc,
            &mut self.tw,
            &mut self.treq,
        ] {
            timer.reserve(rows);
        }
        self.tsc.reserve(rows);
        self.error.reserve(rows);
    }

    /// Moves the columns into a frame (the vectors become polars' buffers; bools are packed).
    fn into_frame(self) -> PolarsResult<DataFrame> {
        let height = self.second.len();
        DataFrame::new(
            height,
            vec![
                UInt32Chunked::from_vec(col::SECOND.into(), self.second).into_column(),
                UInt32Chunked::from_vec(col::SERVER.into(), self.server).into_column(),
                Column::new(col::HTTP.into(), self.http),
                Int32Chunked::from_vec(col::STATUS.into(), self.status).into_column(),
                timer_column(col::TA, self.ta),
                timer_column(col::TR, self.tr),
                timer_column(col::TC, self.tc),
                timer_column(col::TW, self.tw),
                timer_column(col::TREQ, self.treq),
                UInt32Chunked::from_vec(col::TSC.into(), self.tsc).into_column(),
                Column::new(col::ERROR.into(), self.error),
            ],
        )
    }
}

/// A local time as the seconds column holds it: seconds since 1970, clamped to u32.
pub(super) fn second_of(t: NaiveDateTime) -> u32 {
    t.and_utc().timestamp().clamp(0, i64::from(u32::MAX)) as u32
}

/// Requests, total time and errors per name (URL path, client address), summed while reading:
/// the top lists need only these sums, not a column of names per row.
#[derive(Default)]
pub(super) struct Tally {
    /// The names.
    pub names: Interner,
    /// Per name id: requests, sum of Ta in ms (timers logged as -1 count 0), errors.
    pub totals: Vec<[u64; 3]>,
}

impl Tally {
    fn add(&mut self, name: &[u8], ta: Option<u64>, error: bool) {
        let id = self.names.id(name);
        let t = self.totals_of(id);
        t[0] += 1;
        t[1] += ta.unwrap_or(0);
        t[2] += u64::from(error);
    }

    /// The totals of `id`, starting at zero for a name just interned: new names get the next
    /// id, so they land just past the end.
    fn totals_of(&mut self, id: u32) -> &mut [u64; 3] {
        let id = id as usize;
        if id == self.totals.len() {
            self.totals.push([0; 3]);
        }
        &mut self.totals[id]
    }

    fn merge(&mut self, other: &Tally) {
        for (id, theirs) in self
            .names
            .merge(&other.names)
            .into_iter()
            .zip(&other.totals)
        {
            for (mine, theirs) in self.totals_of(id).iter_mut().zip(theirs) {
                *mine += theirs;
            }
        }
    }
}

/// A timer column with nulls where HAProxy logged -1, so that polars' aggregations skip them.
fn timer_column(name: &str, values: Vec<i32>) -> Column {
    let reached: BooleanChunked = values.iter().map(|&v| v >= 0).collect();
    let validity = reached.downcast_iter().next().map(|a| a.values().clone());
    Int32Chunked::from_vec_validity(name.into(), values, validity).into_column()
}

/// One chunk's rows, with ids local to the chunk.
#[derive(Default)]
struct ChunkRows {
    columns: Columns,
    servers: Interner,
    urls: Tally,
    clients: Tally,
    counts: LineCounts,
    malformed: Vec<MalformedLine>,
    events: Vec<RawChange>,
    last_accept: Option<NaiveDateTime>,
    first_accept: Option<NaiveDateTime>,
    /// Scratch space for `backend\nserver`, the server dictionary's key.
    server_key: Vec<u8>,
}

/// A server change before its timestamp is placed in a year.
struct RawChange {
    time: Option<Timestamp>,
    /// The accept date of the request line before it in the chunk: the year to place a BSD
    /// timestamp in.
    near: Option<NaiveDateTime>,
    backend: String,
    server: String,
    kind: ServerEventKind,
    reason: String,
}

/// Reads every source in order into one [`Frame`].
pub(super) fn read(
    sources: &[Source],
    options: &ReportOptions,
    progress: impl Fn(u64) + Clone + Send + 'static,
) -> Result<Frame, ReportError> {
    // Growing by doubling would leave up to half of every column unused (and copy it): reserve
    // for a typical line length instead (185 bytes in the benchmark corpus, 150-300 in real logs).
    let bytes: u64 = sources.iter().filter_map(Source::len_hint).sum();
    let mut builder = FrameBuilder::with_capacity((bytes / 180) as usize);
    for source in sources {
        let name = source.name();
        let counter = progress.clone();
        let reader =
            source
                .open(move |n| counter(n as u64))
                .map_err(|source| ReportError::Input {
                    source,
                    lines_read: 0,
                })?;
        let mut lines_read = 0u64;
        let work = |chunk: Chunk<'_>| read_chunk(chunk, &name, options);
        let merge = |part: ChunkRows| -> Result<(), InputError> {
            lines_read += part.counts.lines;
            builder.append(part, options.show_malformed);
            Ok(())
        };
        map_chunks(reader, options.threads, work, merge)
            .map_err(|source| ReportError::Input { source, lines_read })?;
    }
    builder.finish()
}

/// A [`Frame`] being built from parsed chunks, in input order: the rows of every chunk so far,
/// with ids global to all of them.
#[derive(Default)]
pub(super) struct FrameBuilder(ChunkRows);

impl FrameBuilder {
    /// An empty builder with room for `rows` rows.
    fn with_capacity(rows: usize) -> Self {
        let mut builder = FrameBuilder::default();
        builder.0.columns.reserve(rows);
        builder
    }

    /// Parses `data` (whole lines) from `file` and appends its rows.
    pub(super) fn add_lines(&mut self, data: &[u8], file: &str, options: &ReportOptions) {
        let first_line = self.0.counts.lines + 1;
        let part = read_chunk(Chunk { data, first_line }, file, options);
        self.append(part, options.show_malformed);
    }

    /// Lines read so far.
    pub(super) fn lines(&self) -> u64 {
        self.0.counts.lines
    }

    /// Appends a parsed chunk, keeping at most `show_malformed` malformed lines in all.
    fn append(&mut self, mut part: ChunkRows, show_malformed: usize) {
        let all = &mut self.0;
        all.counts.add(&part.counts);
        let keep = show_malformed.saturating_sub(all.malformed.len());
        all.malformed.extend(part.malformed.drain(..).take(keep));
        all.events.append(&mut part.events);
        all.last_accept = all.last_accept.max(part.last_accept);
        all.first_accept = match (all.first_accept, part.first_accept) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        append(
            &mut all.columns,
            part,
            &mut all.servers,
            &mut all.urls,
            &mut all.clients,
        );
    }

    /// The finished frame.
    pub(super) fn finish(self) -> Result<Frame, ReportError> {
        let all = self.0;
        let df = all.columns.into_frame()?;
        let events = place_events(all.events, all.last_accept);
        let end = all
            .last_accept
            .max(events.iter().filter_map(|e| e.time).max());
        Ok(Frame {
            df,
            servers: split_server_keys(all.servers),
            urls: all.urls,
            clients: all.clients,
            events,
            counts: all.counts,
            malformed: all.malformed,
            end,
            span: all.first_accept.zip(all.last_accept),
        })
    }
}

/// Appends a chunk's rows, mapping its local ids to the global dictionaries.
fn append(
    columns: &mut Columns,
    part: ChunkRows,
    servers: &mut Interner,
    urls: &mut Tally,
    clients: &mut Tally,
) {
    let server_ids = servers.merge(&part.servers);
    urls.merge(&part.urls);
    clients.merge(&part.clients);
    let rows = part.columns;
    columns.second.extend_from_slice(&rows.second);
    columns
        .server
        .extend(rows.server.iter().map(|&i| server_ids[i as usize]));
    columns.http.extend_from_slice(&rows.http);
    columns.status.extend_from_slice(&rows.status);
    columns.ta.extend_from_slice(&rows.ta);
    columns.tr.extend_from_slice(&rows.tr);
    columns.tc.extend_from_slice(&rows.tc);
    columns.tw.extend_from_slice(&rows.tw);
    columns.treq.extend_from_slice(&rows.treq);
    columns.tsc.extend_from_slice(&rows.tsc);
    columns.error.extend_from_slice(&rows.error);
}

/// Parses one chunk into rows.
fn read_chunk(chunk: Chunk<'_>, file: &str, options: &ReportOptions) -> ChunkRows {
    // Sized for a chunk of distinct URLs: growing the table is most of interning's cost.
    let mut rows = ChunkRows {
        urls: Tally {
            names: Interner::with_capacity(chunk.data.len() / 256),
            totals: Vec::new(),
        },
        ..ChunkRows::default()
    };
    // Room for lines of typical length, so the columns rarely grow (and copy) mid-chunk.
    rows.columns.reserve(chunk.data.len() / 160);
    for (i, text) in lines(chunk.data).enumerate() {
        rows.counts.lines += 1;
        let parsed = parse_line(text);
        match &parsed.body {
            Body::Http(h) => {
                let status = h.status.map(i32::from);
                if !options.filter.accepts_session(&h.session, Some(status)) {
                    rows.counts.filtered_out += 1;
                    continue;
                }
                rows.counts.http += 1;
                let url = h.request.uri.map(path_of);
                let t = &h.timers;
                let timers = [t.active, t.response, t.connect, t.queue, t.request];
                let state = h.termination_state;
                rows.push_session(&h.session, true, status.unwrap_or(-1), timers, state, url);
            }
            Body::Tcp(t) => {
                if !options.filter.accepts_session(&t.session, None) {
                    rows.counts.filtered_out += 1;
                    continue;
                }
                rows.counts.tcp += 1;
                let m = &t.timers;
                let timers = [m.total, None, m.connect, m.queue, None];
                rows.push_session(&t.session, false, -1, timers, t.termination_state, None);
            }
            Body::ServerEvent(e) => {
                rows.counts.events += 1;
                // A SIGHUP state dump restates every server's state: it is not a change.
                let is_change = matches!(
                    e.kind,
                    ServerEventKind::Down
                        | ServerEventKind::Up
                        | ServerEventKind::Maintenance
                        | ServerEventKind::Drain
                ) && e.source != EventSource::StateDump;
                if is_change && options.filter.accepts_server(e.backend, e.server) {
                    rows.push_event(&parsed, e);
                }
            }
            Body::ProxyEvent(_) | Body::ConnectionError(_) => rows.counts.events += 1,
            Body::Other(why) => {
                rows.counts.malformed += 1;
                if rows.malformed.len() < options.show_malformed {
                    let line = chunk.first_line + i as u64;
                    rows.malformed
                        .push(MalformedLine::new(file, line, text, why));
                }
            }
        }
    }
    rows
}

impl ChunkRows {
    fn push_session(
        &mut self,
        session: &Session<'_>,
        http: bool,
        status: i32,
        [ta, tr, tc, tw, treq]: [Option<u64>; 5],
        state: TerminationState,
        url: Option<&[u8]>,
    ) {
        let c = &mut self.columns;
        c.second.push(second_of(session.accept_date));
        let key = &mut self.server_key;
        key.clear();
        key.extend_from_slice(session.backend);
        key.push(b'\n');
        key.extend_from_slice(session.server);
        c.server.push(self.servers.id(key));
        c.http.push(http);
        c.status.push(status);
        for (column, value) in [
            (&mut c.ta, ta),
            (&mut c.tr, tr),
            (&mut c.tc, tc),
            (&mut c.tw, tw),
            (&mut c.treq, treq),
        ] {
            column.push(value.map_or(-1, |v| v.min(i32::MAX as u64) as i32));
        }
        let code = state.as_bytes();
        c.tsc.push(u32::from(code[0]) << 8 | u32::from(code[1]));
        let error = if http {
            status == -1 || (500..=599).contains(&status)
        } else {
            state.cause() != b'-'
        };
        c.error.push(error);
        if let Some(url) = url {
            self.urls.add(url, ta, error);
        }
        self.clients.add(session.client_ip, ta, error);
        self.last_accept = self.last_accept.max(Some(session.accept_date));
        self.first_accept = Some(
            self.first_accept
                .map_or(session.accept_date, |t| t.min(session.accept_date)),
        );
    }

    fn push_event(&mut self, line: &LogLine<'_>, e: &crate::logline::ServerEvent<'_>) {
        let reason = e.reason.unwrap_or(e.detail);
        self.events.push(RawChange {
            time: line.envelope.timestamp,
            near: self.last_accept,
            backend: lossy(e.backend).into_owned(),
            server: lossy(e.server).into_owned(),
            kind: e.kind,
            reason: lossy(reason).trim().to_owned(),
        });
    }
}

/// The path of a URI: the query string removed, and an absolute-form URI's scheme and host too.
fn path_of(uri: &[u8]) -> &[u8] {
    let path = match memchr::memmem::find(uri, b"://") {
        Some(at) if uri.first() != Some(&b'/') => {
            let rest = &uri[at + 3..];
            memchr::memchr(b'/', rest).map_or(&b"/"[..], |slash| &rest[slash..])
        }
        _ => uri,
    };
    match memchr::memchr(b'?', path) {
        Some(q) => &path[..q],
        None => path,
    }
}

/// Splits `backend\nserver` keys back into names.
fn split_server_keys(servers: Interner) -> Vec<(String, String)> {
    servers
        .iter()
        .map(|key| {
            let nl = memchr::memchr(b'\n', key).unwrap_or(key.len());
            let server = key.get(nl + 1..).unwrap_or_default();
            (lossy(&key[..nl]).into_owned(), lossy(server).into_owned())
        })
        .collect()
}

/// Gives each event a full date. A BSD syslog timestamp has no year: it takes the year of the
/// request logged just before it, else of the last request, else the current year; when that
/// puts it more than half a year after its neighbour, the log crossed New Year the other way.
fn place_events(raw: Vec<RawChange>, last_accept: Option<NaiveDateTime>) -> Vec<ServerChange> {
    use chrono::Datelike;
    let fallback = last_accept.unwrap_or_else(|| chrono::Local::now().naive_local());
    let mut events: Vec<ServerChange> = raw
        .into_iter()
        .map(|e| {
            let near = e.near.unwrap_or(fallback);
            let time = e.time.and_then(|t| {
                let guess = t.local_in_year(near.year())?;
                let half_year = chrono::Duration::days(183);
                if guess - near > half_year {
                    t.local_in_year(near.year() - 1)
                } else if near - guess > half_year {
                    t.local_in_year(near.year() + 1)
                } else {
                    Some(guess)
                }
            });
            ServerChange {
                time,
                backend: e.backend,
                server: e.server,
                kind: e.kind,
                reason: e.reason,
            }
        })
        .collect();
    // Rotated files are often given newest first (`haproxy.log haproxy.log.1`); a stable sort
    // puts changes in time order and keeps input order for equal (or missing) times.
    events.sort_by_key(|e| e.time);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_query_string_and_absolute_form_its_host() {
        assert_eq!(path_of(b"/search?q=1"), b"/search");
        assert_eq!(path_of(b"/a/b"), b"/a/b");
        assert_eq!(path_of(b"http://example.com/x?y"), b"/x");
        assert_eq!(path_of(b"http://example.com"), b"/");
        assert_eq!(path_of(b"/r?next=http://x/y"), b"/r");
        assert_eq!(path_of(b"*"), b"*");
    }
}
