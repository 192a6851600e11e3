//! A deterministic generator of a mixed HAProxy log file as rsyslog writes it to disk
//! (`Mmm dd hh:mm:ss HOST haproxy[PID]: MSG`): HTTP with and without captured headers, TCP,
//! server and proxy events, and malformed lines. Shared by the parse benchmark and the halog
//! interoperability test (`tests/it` includes this file by path).
//!
//! Lines are built as `LogLine`s and written by halyard's formatter, so the corpus is exactly
//! what the formatter produces; the same seed always gives the same bytes.

// Each includer (bench, tests) uses a different part.
#![allow(dead_code)]

use std::io::{self, Write};

use chrono::{Duration, NaiveDate, NaiveDateTime, Timelike};

use halyard::logline::{
    Body, Connections, Envelope, EnvelopeSyntax, HeaderBlock, HttpLog, HttpSyntax, HttpTimers,
    LogLine, Malformed, Queues, Request, Session, TcpLog, TcpTimers, TerminationState, Timestamp,
};

/// Backends and their servers, with a weight each for the traffic split.
const HTTP_BACKENDS: [(&str, &[(&str, u32)]); 3] = [
    (
        "be_app",
        &[("app1", 3), ("app2", 3), ("app3", 2), ("app4", 1)],
    ),
    ("be_api", &[("api1", 1), ("api2", 1), ("api3", 1)]),
    ("be_static", &[("st1", 1), ("st2", 1)]),
];
const TCP_BACKEND: (&str, &[(&str, u32)]) = ("be_db", &[("db1", 1), ("db2", 1)]);
const PATHS: [&str; 8] = [
    "/",
    "/index.html",
    "/api/v1/users/",
    "/api/v1/orders/",
    "/static/app.js",
    "/static/img/logo.png",
    "/search?q=",
    "/checkout/cart?id=",
];
const AGENTS: [&str; 4] = [
    "curl/7.88.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
    "kube-probe/1.29",
];

/// Generates corpus lines.
pub struct CorpusGen {
    state: u64,
    malformed: bool,
    clock: NaiveDateTime,
    uri: Vec<u8>,
    headers: Vec<u8>,
    line: Vec<u8>,
}

impl CorpusGen {
    /// A generator whose output depends only on `seed`; about 2% of its lines are malformed.
    pub fn new(seed: u64) -> Self {
        CorpusGen {
            state: seed,
            malformed: true,
            clock: NaiveDate::from_ymd_opt(2026, 11, 24)
                .and_then(|d| d.and_hms_milli_opt(0, 0, 0, 0))
                .expect("valid start date"),
            uri: Vec::new(),
            headers: Vec::new(),
            line: Vec::new(),
        }
    }

    /// The same generator with well-formed lines in place of the malformed ones.
    pub fn well_formed(mut self) -> Self {
        self.malformed = false;
        self
    }

    /// splitmix64
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick_weighted(&mut self, servers: &[(&'static str, u32)]) -> &'static str {
        let total: u32 = servers.iter().map(|s| s.1).sum();
        let mut roll = self.below(total as u64) as u32;
        for (name, w) in servers {
            if roll < *w {
                return name;
            }
            roll -= w;
        }
        servers[0].0
    }

    /// Appends one line and its newline to `out`.
    pub fn write_line(&mut self, out: &mut Vec<u8>) {
        let step = 200 + self.below(800) as i64;
        self.clock += Duration::microseconds(step);
        let roll = self.below(1000);
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        match roll {
            0..=719 => self.http(false, &mut line),
            720..=839 => self.http(true, &mut line),
            840..=939 => self.tcp(&mut line),
            940..=969 => self.server_event(&mut line),
            970..=979 => self.proxy_event(&mut line),
            _ if self.malformed => self.malformed(&mut line),
            _ => self.http(false, &mut line),
        }
        out.extend_from_slice(&line);
        out.push(b'\n');
        self.line = line;
    }

    /// Writes lines to `out` until at least `bytes` have been written; returns the line count.
    pub fn write_corpus(&mut self, out: &mut impl Write, bytes: u64) -> io::Result<u64> {
        let mut buf = Vec::with_capacity(1 << 20);
        let (mut written, mut lines) = (0u64, 0u64);
        while written < bytes {
            buf.clear();
            while buf.len() < (1 << 20) - 4096 {
                self.write_line(&mut buf);
                lines += 1;
            }
            out.write_all(&buf)?;
            written += buf.len() as u64;
        }
        Ok(lines)
    }

    fn envelope(&self) -> Envelope<'static> {
        use chrono::Datelike;
        Envelope {
            syntax: EnvelopeSyntax::Bsd,
            priority: None,
            timestamp: Some(Timestamp::Bsd {
                month: self.clock.month(),
                day: self.clock.day(),
                time: self.clock.time().with_nanosecond(0).unwrap_or_default(),
            }),
            hostname: Some(b"lb1"),
            tag: Some(b"haproxy"),
            pid: Some(b"4242"),
        }
    }

    fn session(
        &mut self,
        frontend: &'static str,
        backend: &'static str,
        server: &'static str,
    ) -> Session<'static> {
        const CLIENTS: [&str; 6] = [
            "10.0.0.7",
            "10.0.3.19",
            "192.0.2.44",
            "198.51.100.2",
            "::1",
            "2001:db8::17",
        ];
        Session {
            client_ip: CLIENTS[self.below(CLIENTS.len() as u64) as usize].as_bytes(),
            client_port: 1024 + self.below(64000) as u16,
            accept_date: self.clock,
            frontend: frontend.as_bytes(),
            backend: backend.as_bytes(),
            server: server.as_bytes(),
        }
    }

    fn http(&mut self, captures: bool, out: &mut Vec<u8>) {
        let (backend, servers) = HTTP_BACKENDS[self.below(3) as usize];
        let frontend = if backend == "be_api" {
            "fe_api~"
        } else {
            "fe_main"
        };
        let status_roll = self.below(100);
        let nosrv = status_roll == 99;
        let server = if nosrv {
            "<NOSRV>"
        } else {
            self.pick_weighted(servers)
        };
        let (status, tsc) = match status_roll {
            0..=79 => (Some(200), *b"----"),
            80..=84 => (Some(304), *b"----"),
            85..=91 => (Some(404), *b"----"),
            92..=94 => (Some(500), *b"----"),
            95..=96 => (Some(502), *b"SH--"),
            97 => (Some(504), *b"sH--"),
            98 => (None, *b"CD--"),
            _ => (Some(503), *b"SC--"),
        };
        let response = if tsc == *b"sH--" || nosrv {
            None
        } else {
            Some(self.below(900))
        };
        let connect = if nosrv { None } else { Some(self.below(3)) };
        let total = response.unwrap_or(1000) + self.below(50);
        let path = PATHS[self.below(PATHS.len() as u64) as usize];
        self.uri.clear();
        self.uri.extend_from_slice(path.as_bytes());
        if path.ends_with('/') || path.ends_with('=') {
            let id = self.below(1_000_000);
            self.uri.extend_from_slice(id.to_string().as_bytes());
        }
        self.headers.clear();
        let host_and_agent_end;
        if captures {
            self.headers.extend_from_slice(b"www.example.com|");
            let agent = AGENTS[self.below(4) as usize];
            self.headers.extend_from_slice(agent.as_bytes());
            host_and_agent_end = self.headers.len();
            self.headers.extend_from_slice(b"text/html; charset=utf-8");
        } else {
            host_and_agent_end = 0;
        }
        let method: &'static [u8] = if self.below(10) == 0 { b"POST" } else { b"GET" };
        let retries = if self.below(200) == 0 { 1 } else { 0 };
        let session = self.session(frontend, backend, server);
        let redispatched = retries > 0 && self.below(2) == 0;
        let r: [u64; 6] = std::array::from_fn(|_| self.next());
        let (req_block, resp_block) = self.headers.split_at(host_and_agent_end);
        let line = LogLine {
            envelope: self.envelope(),
            message: b"",
            body: Body::Http(HttpLog {
                session,
                timers: HttpTimers {
                    request: Some(r[0] % 5),
                    queue: Some(0),
                    connect,
                    response,
                    active: Some(total),
                    active_partial: false,
                },
                status,
                bytes_read: r[1] % 200_000,
                bytes_partial: false,
                request_cookie: None,
                response_cookie: None,
                termination_state: TerminationState::new(&tsc).expect("4 graphic bytes"),
                connections: Connections {
                    active: 40 + (r[2] % 20) as u32,
                    frontend: 30 + (r[3] % 10) as u32,
                    backend: 10 + (r[4] % 10) as u32,
                    server: (r[5] % 8) as u32,
                    retries,
                    redispatched,
                },
                queues: Queues::default(),
                request_headers: captures.then_some(HeaderBlock(req_block)),
                response_headers: captures.then_some(HeaderBlock(resp_block)),
                request: Request {
                    method,
                    uri: Some(&self.uri),
                    version: Some(b"HTTP/1.1"),
                    truncated: false,
                },
                syntax: HttpSyntax::HttpLog,
            }),
        };
        line.write_to(out);
    }

    fn tcp(&mut self, out: &mut Vec<u8>) {
        let (backend, servers) = TCP_BACKEND;
        let server = self.pick_weighted(servers);
        let session = self.session("fe_db", backend, server);
        let line = LogLine {
            envelope: self.envelope(),
            message: b"",
            body: Body::Tcp(TcpLog {
                session,
                timers: TcpTimers {
                    queue: Some(0),
                    connect: Some(self.below(3)),
                    total: Some(self.below(60_000)),
                    total_partial: false,
                },
                bytes_read: self.below(5_000_000),
                bytes_partial: false,
                termination_state: TerminationState::new(b"--").expect("2 graphic bytes"),
                connections: Connections {
                    active: 40,
                    frontend: 3,
                    backend: 2,
                    server: 1,
                    retries: 0,
                    redispatched: false,
                },
                queues: Queues::default(),
            }),
        };
        line.write_to(out);
    }

    fn server_event(&mut self, out: &mut Vec<u8>) {
        let (backend, servers) = HTTP_BACKENDS[self.below(3) as usize];
        let server = servers[self.below(servers.len() as u64) as usize].0;
        let text = if self.below(2) == 0 {
            format!("Server {backend}/{server} is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. {} active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.", servers.len() - 1)
        } else {
            format!("Server {backend}/{server} is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. {} active and 0 backup servers online. 0 sessions requeued, 0 total in queue.", servers.len())
        };
        self.message_line(text.as_bytes(), out);
    }

    fn proxy_event(&mut self, out: &mut Vec<u8>) {
        let (backend, _) = HTTP_BACKENDS[self.below(3) as usize];
        let text = match self.below(3) {
            0 => format!("backend {backend} has no server available!"),
            1 => format!("Proxy {backend} started."),
            _ => format!("Proxy {backend} stopped (cumulated conns: FE: 0, BE: 1234)."),
        };
        self.message_line(text.as_bytes(), out);
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        let mut full = Vec::new();
        self.http(false, &mut full);
        // Cut inside the message (after the envelope), never inside the request line.
        let cut = 45 + self.below(60) as usize;
        out.extend_from_slice(&full[..cut.min(full.len())]);
        if self.below(2) == 0 {
            out.extend_from_slice(b" \xff\xfe garbage");
        }
    }

    fn message_line(&self, text: &[u8], out: &mut Vec<u8>) {
        let line = LogLine {
            envelope: self.envelope(),
            message: text,
            body: Body::Other(Malformed {
                reason: "written verbatim",
                offset: 0,
            }),
        };
        line.write_to(out);
    }
}
