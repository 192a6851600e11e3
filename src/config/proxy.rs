//! The balancer's checked configuration: `global`, `defaults`, `listen`, `frontend` and
//! `backend` sections turned into typed proxies, with HAProxy's defaults applied in one place.
//!
//! A `listen` section becomes a frontend and a backend of the same name. Durations are
//! [`Duration`]s, addresses are resolved [`SocketAddr`]s, and every value keeps the config line
//! it came from for later messages.
//!
//! [`ConfigFile::proxy_config`] builds it the way `haproxy -c` checks a file: every line is
//! read, every error, warning and note is collected as a [`Finding`] with its `file:line`, and
//! the configuration exists only when there is no error. The keywords themselves are in
//! `proxy_keywords.rs`; this file applies `defaults`, HAProxy's defaults and the checks that
//! need the whole file (backend names, modes, timeouts).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::compression::Compression;
use super::proxy_keywords::{apply, apply_global, Ctx, Draft, GlobalDraft, LogEntry};
use super::tls::TlsCertificate;
use super::{ConfigFile, Diagnostic, ListenerSettings, Section, SectionKind};

/// Everything `halyard run` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// `global` settings.
    pub global: Global,
    /// Frontends (and the frontend half of each `listen`), in file order.
    pub frontends: Vec<Frontend>,
    /// Backends (and the backend half of each `listen`), in file order.
    pub backends: Vec<Backend>,
    /// The `log-forward` section, if any: the listener `halyard run` starts in-process.
    pub log_forward: Option<ListenerSettings>,
}

/// The `global` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// `log` targets (used by proxies with `log global`).
    pub logs: Vec<LogTarget>,
    /// `maxconn`: concurrent connections for the whole process (HAProxy's default is derived
    /// from ulimit; halyard uses 4096 when unset).
    pub maxconn: usize,
    /// `nbthread`: worker threads, each serving every frontend (default: one per CPU).
    pub nbthread: Option<usize>,
    /// `stats socket` lines: the control sockets `halyard ctl` talks to.
    pub stats_sockets: Vec<StatsSocket>,
}

/// `stats socket PATH [mode OCTAL] [level user|operator|admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSocket {
    /// The Unix socket's path.
    pub path: std::path::PathBuf,
    /// Its permissions (`mode 600`); the umask's when unset.
    pub mode: Option<u32>,
    /// What its clients may do.
    pub level: AccessLevel,
    /// Config line, for messages.
    pub line: usize,
}

/// A control socket's `level`: `user` and `operator` may look, `admin` may also change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccessLevel {
    /// Read-only.
    User,
    /// Read-only here too (HAProxy's operator level adds commands halyard does not have);
    /// HAProxy's default.
    Operator,
    /// Everything.
    Admin,
}

/// `stats enable|uri|auth|realm|refresh`: the stats page a proxy serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsPage {
    /// Requests whose path and query start with this get the page (HAProxy's default
    /// `/haproxy?stats`).
    pub uri: String,
    /// `stats auth USER:PASSWORD` entries; without any, no login is asked.
    pub users: Vec<(String, String)>,
    /// `stats realm`, shown by the browser's login prompt.
    pub realm: String,
    /// `stats refresh`: the page reloads itself this often.
    pub refresh: Option<Duration>,
}

/// Where and how to send logs: `log ADDR[:PORT] FACILITY [LEVEL [MINLEVEL]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    /// UDP address (port 514 when not written).
    pub addr: SocketAddr,
    /// Facility number (`local3` = 19).
    pub facility: u8,
    /// Only messages at least this severe are sent (7 = debug: everything).
    pub max_level: u8,
    /// Config line, for messages.
    pub line: usize,
}

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Layer 7.
    Http,
    /// Layer 4.
    Tcp,
}

/// Timeouts, as `timeout NAME VALUE` sets them; `None` where unset (HAProxy warns about
/// missing client/server/connect timeouts, and `halyard check` does too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    /// `timeout connect`
    pub connect: Option<Duration>,
    /// `timeout client`
    pub client: Option<Duration>,
    /// `timeout server`
    pub server: Option<Duration>,
    /// `timeout http-request`: the whole request headers must arrive within this.
    pub http_request: Option<Duration>,
    /// `timeout http-keep-alive`: idle time allowed between requests.
    pub http_keep_alive: Option<Duration>,
    /// `timeout queue`
    pub queue: Option<Duration>,
    /// `timeout check`: an established health check must answer within this.
    pub check: Option<Duration>,
}

/// The `option`s that change what is logged and how requests are forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// `option httplog`
    pub httplog: bool,
    /// `option tcplog`
    pub tcplog: bool,
    /// `option dontlognull`: no log line for connections that sent nothing.
    pub dontlognull: bool,
    /// `option forwardfor`: add `X-Forwarded-For: CLIENT`.
    pub forwardfor: bool,
    /// `option redispatch`: a retry may go to another server.
    pub redispatch: bool,
    /// `option log-health-checks`: log every check result, not only state changes.
    pub log_health_checks: bool,
}

/// A header captured into the log: `capture request|response header NAME len N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// Header name as written.
    pub name: String,
    /// At most this many bytes are logged.
    pub len: usize,
}

/// A frontend: where clients connect and which backend serves them.
#[derive(Debug, Clone, PartialEq)]
pub struct Frontend {
    /// Section name.
    pub name: String,
    /// Line of the section keyword.
    pub line: usize,
    /// `bind` addresses (several, IPv4 and IPv6), in order: a listener's number in the log
    /// (`fe/1`) is its place here, from 1.
    pub binds: Vec<Bind>,
    /// `mode`
    pub mode: Mode,
    /// `default_backend` (for `listen`: its own backend).
    pub default_backend: Option<String>,
    /// `use_backend` rules, in order; the first that matches wins.
    pub rules: Vec<UseBackend>,
    /// Logging and forwarding options.
    pub options: Options,
    /// Resolved log targets (`log global` expanded); empty means no logging.
    pub logs: Vec<LogTarget>,
    /// Timeouts (client side).
    pub timeouts: Timeouts,
    /// `maxconn`
    pub maxconn: usize,
    /// `capture request header` entries, in order.
    pub request_captures: Vec<Capture>,
    /// `capture response header` entries, in order.
    pub response_captures: Vec<Capture>,
    /// `http-request deny` rules, in order: the first that applies answers.
    pub deny: Vec<DenyRule>,
    /// `tcp-request connection reject` rules: a connection one applies to is closed at once.
    pub reject: Vec<RejectRule>,
    /// The stats page, when enabled.
    pub stats: Option<StatsPage>,
    /// `compression`: used for a request when its backend has no `compression algo`.
    pub compression: Compression,
}

/// One address a frontend listens on.
#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    /// The address.
    pub addr: SocketAddr,
    /// `ssl crt FILE`: TLS is terminated here with this certificate.
    pub tls: Option<Arc<TlsCertificate>>,
}

/// `if COND` or `unless COND` on a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCondition {
    /// The condition.
    pub condition: Condition,
    /// `unless`, or a negated named ACL (`!name`).
    pub negate: bool,
}

/// `http-request deny [deny_status N] [if|unless COND]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyRule {
    /// The status answered (403 unless `deny_status`).
    pub status: u16,
    /// When it applies (always without a condition).
    pub when: Option<RuleCondition>,
    /// Config line.
    pub line: usize,
}

/// `tcp-request connection reject [if|unless COND]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRule {
    /// When it applies (always without a condition); only `src` is known this early.
    pub when: Option<RuleCondition>,
    /// Config line.
    pub line: usize,
}

/// `use_backend NAME if|unless CONDITION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseBackend {
    /// The backend chosen.
    pub backend: String,
    /// When.
    pub condition: Condition,
    /// `unless` instead of `if`.
    pub negate: bool,
    /// Config line.
    pub line: usize,
}

/// An ACL condition halyard evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `{ path_beg /a /b }`: the path starts with one of these.
    PathBeg(Vec<String>),
    /// `{ hdr(host) -i a b }`: the Host header (port removed) is one of these; `-i` compares
    /// without case.
    Host {
        /// Accepted values.
        values: Vec<String>,
        /// `-i`
        ignore_case: bool,
    },
    /// `{ src 10.0.0.0/8 192.168.1.5 }`: the client address is in one of these networks.
    Src(Vec<crate::config::Cidr>),
}

/// `balance` algorithms, with HAProxy's semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Smooth weighted round robin; weights may change at run time.
    RoundRobin,
    /// Weighted round robin with weights fixed at start.
    StaticRr,
    /// The server with the fewest active connections (weighted); round robin among equals.
    LeastConn,
    /// The first server (by id order) with a free connection slot.
    First,
    /// Hash of the client address.
    Source,
    /// Hash of the URI up to the `?`, as HAProxy's `balance uri` does by default.
    Uri,
    /// Hash of a query-string parameter; round robin when absent.
    UrlParam(String),
    /// Hash of a request header; round robin when absent.
    Hdr(String),
    /// Random, best of `n` draws by load (power of n choices); `random` alone is n = 2.
    Random(u32),
}

/// `hash-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashType {
    /// The hash modulo the total weight: cheap, but most keys move when a server goes down.
    MapBased,
    /// A hash ring: only the keys of the server that went down move.
    Consistent,
}

/// A backend: the servers and how to choose among them.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// Section name.
    pub name: String,
    /// Line of the section keyword.
    pub line: usize,
    /// `mode`
    pub mode: Mode,
    /// `balance`
    pub balance: Balance,
    /// `hash-type`
    pub hash_type: HashType,
    /// Servers in file order.
    pub servers: Vec<Server>,
    /// `option httpchk` (HTTP checks instead of TCP connect).
    pub http_check: Option<HttpCheck>,
    /// `retries`: connection attempts after the first failed one (HAProxy's default 3).
    pub retries: u32,
    /// Options (redispatch, forwardfor, log-health-checks, ...).
    pub options: Options,
    /// Resolved log targets, for server events.
    pub logs: Vec<LogTarget>,
    /// Timeouts (server side and checks).
    pub timeouts: Timeouts,
    /// `cookie NAME insert|rewrite ...`: requests that present a server's cookie go to it.
    pub cookie: Option<CookiePersistence>,
    /// The stats page, when enabled: requests routed here for its URI get it.
    pub stats: Option<StatsPage>,
    /// `compression`: the backend's settings win over its frontend's.
    pub compression: Compression,
}

/// `cookie NAME insert|rewrite [indirect] [nocache] [httponly] [secure]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookiePersistence {
    /// The cookie's name.
    pub name: String,
    /// Who sets the cookie.
    pub mode: CookieMode,
    /// `indirect`: the cookie is not sent again to a client that has a valid one, and (insert
    /// mode) is removed from requests before they reach the server.
    pub indirect: bool,
    /// `nocache`: responses with an inserted cookie get `Cache-Control: private`.
    pub nocache: bool,
    /// `httponly`, `secure`: attributes of the inserted cookie.
    pub httponly: bool,
    /// See `httponly`.
    pub secure: bool,
}

/// How the persistence cookie reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    /// halyard adds `Set-Cookie: NAME=SERVER` to responses.
    Insert,
    /// The server sets the cookie; halyard rewrites its value to the server's.
    Rewrite,
    /// The server sets the cookie (a session id); halyard prefixes its value with the
    /// server's and `~`, and strips that again from the requests.
    Prefix,
}

/// `option httpchk [METHOD URI [VERSION]]` with `http-check expect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// Default `OPTIONS`.
    pub method: String,
    /// Default `/`.
    pub uri: String,
    /// Default `HTTP/1.0`.
    pub version: String,
    /// `http-check expect [!] status CODE`; `None` accepts 2xx and 3xx.
    pub expect: Option<ExpectStatus>,
}

/// `http-check expect [!] status CODE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectStatus {
    /// `!`: pass when the status is *not* this.
    pub negate: bool,
    /// The status code (HAProxy also accepts a list and ranges; halyard takes one code).
    pub status: u16,
}

/// A `server` line with `default-server` applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Server name.
    pub name: String,
    /// Resolved address.
    pub addr: SocketAddr,
    /// `check`: health-check this server (otherwise it is always up).
    pub check: bool,
    /// `inter` (default 2 s): time between checks.
    pub inter: Duration,
    /// `fastinter` (default `inter`): time between checks while a state change is pending.
    pub fastinter: Duration,
    /// `downinter` (default `inter`): time between checks while down.
    pub downinter: Duration,
    /// `rise` (default 2): consecutive successes to go up.
    pub rise: u32,
    /// `fall` (default 3): consecutive failures to go down.
    pub fall: u32,
    /// `weight` (default 1, 0..=256).
    pub weight: u32,
    /// `backup`: only used when no active server is up.
    pub backup: bool,
    /// `disabled`: starts in maintenance.
    pub disabled: bool,
    /// `maxconn` (0: no limit).
    pub maxconn: usize,
    /// `maxqueue` (0: no limit): requests waiting for this server beyond it go to the
    /// backend's queue, for any server.
    pub maxqueue: usize,
    /// `slowstart`: after coming back up, the server's weight grows from almost nothing to
    /// its full value over this time.
    pub slowstart: Option<Duration>,
    /// `cookie VALUE`: the persistence cookie's value for this server.
    pub cookie: Option<String>,
    /// Config line.
    pub line: usize,
}

/// `maxconn` of the process when `global` does not set it.
const DEFAULT_GLOBAL_MAXCONN: usize = 4096;
/// HAProxy's `retries` when unset.
const DEFAULT_RETRIES: u32 = 3;

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The configuration cannot be used.
    Error,
    /// Accepted, but something in it is ignored or likely wrong.
    Warning,
    /// Accepted and ignored on purpose (HAProxy settings halyard has no use for).
    Note,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        })
    }
}

/// One message about a config file: `FILE:LINE: error: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error, warning or note.
    pub level: Level,
    /// Where and what.
    pub diagnostic: Diagnostic,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Diagnostic {
            file,
            line,
            message,
        } = &self.diagnostic;
        write!(f, "{file}:{line}: {}: {message}", self.level)
    }
}

/// A config file checked as `halyard check` and `halyard run` read it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedConfig {
    /// The configuration; `None` when there is any error.
    pub config: Option<ProxyConfig>,
    /// Every error, warning and note, by line.
    pub findings: Vec<Finding>,
}

impl CheckedConfig {
    /// Splits and checks config text; `file` names it in findings. Unlike
    /// [`ConfigFile::parse`] followed by [`ConfigFile::proxy_config`], a line the splitter
    /// rejects (an unterminated quote, a line before any section) is one more error, not the
    /// end of the check.
    pub fn from_text(file: &str, text: &str) -> Self {
        let (config, errors) = ConfigFile::parse_all(file, text);
        let mut checked = config.proxy_config();
        if !errors.is_empty() {
            checked.config = None;
            checked
                .findings
                .extend(errors.into_iter().map(|diagnostic| Finding {
                    level: Level::Error,
                    diagnostic,
                }));
            checked.findings.sort_by_key(|f| f.diagnostic.line);
        }
        checked
    }

    /// How many findings have this level.
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    /// The last line of `halyard check`, as `haproxy -c` words it: `Configuration file is
    /// valid` or `Configuration file has 2 errors`.
    pub fn summary(&self) -> String {
        match self.count(Level::Error) {
            0 => "Configuration file is valid".to_owned(),
            1 => "Configuration file has 1 error".to_owned(),
            n => format!("Configuration file has {n} errors"),
        }
    }
}

/// Findings being collected for one file.
#[derive(Debug)]
pub(super) struct Findings {
    file: String,
    list: Vec<Finding>,
}

impl Findings {
    fn push(&mut self, level: Level, line: usize, message: String) {
        self.list.push(Finding {
            level,
            diagnostic: Diagnostic {
                file: self.file.clone(),
                line,
                message,
            },
        });
    }

    /// The configuration cannot be used.
    pub(super) fn error(&mut self, line: usize, message: String) {
        self.push(Level::Error, line, message);
    }

    /// Something is ignored or likely wrong.
    pub(super) fn warning(&mut self, line: usize, message: String) {
        self.push(Level::Warning, line, message);
    }

    /// Ignored on purpose.
    pub(super) fn note(&mut self, line: usize, message: String) {
        self.push(Level::Note, line, message);
    }
}

impl ConfigFile {
    /// The balancer's configuration, with HAProxy 2.6's semantics and defaults, and every
    /// error, warning and note found on the way.
    pub fn proxy_config(&self) -> CheckedConfig {
        let mut builder = Builder {
            out: Findings {
                file: self.file.clone(),
                list: Vec::new(),
            },
            global: GlobalDraft::default(),
            defaults: Draft::default(),
            defaults_name: None,
            named: HashMap::new(),
            referenced: HashSet::new(),
            proxies: Vec::new(),
        };
        for section in &self.sections {
            builder.section(section);
        }
        builder.finish(self)
    }
}

/// A `listen`, `frontend` or `backend` section, read.
struct ProxyDraft {
    kind: SectionKind,
    name: String,
    line: usize,
    draft: Draft,
}

impl ProxyDraft {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            kind: self.kind,
            name: &self.name,
        }
    }

    fn is_frontend(&self) -> bool {
        matches!(self.kind, SectionKind::Frontend | SectionKind::Listen)
    }

    fn is_backend(&self) -> bool {
        matches!(self.kind, SectionKind::Backend | SectionKind::Listen)
    }
}

/// Reads sections in file order; `finish` applies HAProxy's defaults and the checks that need
/// the whole file.
struct Builder {
    out: Findings,
    global: GlobalDraft,
    /// The last `defaults` section: what a proxy without `from` starts from.
    defaults: Draft,
    /// Its name, if it has one.
    defaults_name: Option<String>,
    /// Named `defaults` sections, for `from NAME`.
    named: HashMap<String, Draft>,
    /// Named `defaults` sections some proxy names with `from`.
    referenced: HashSet<String>,
    proxies: Vec<ProxyDraft>,
}

impl Builder {
    fn section(&mut self, section: &Section) {
        match section.kind {
            SectionKind::Global => {
                for d in &section.directives {
                    apply_global(&mut self.global, d, &mut self.out);
                }
            }
            SectionKind::Defaults
            | SectionKind::Listen
            | SectionKind::Frontend
            | SectionKind::Backend => self.proxy_section(section),
            // Read by `log_forward()` in `finish`.
            SectionKind::LogForward => {}
            SectionKind::Unsupported(keyword) => self.out.warning(
                section.line,
                format!("section '{keyword}' not supported, ignored"),
            ),
        }
    }

    /// A `defaults` or proxy section: its starting point, then its lines.
    fn proxy_section(&mut self, section: &Section) {
        let is_defaults = section.kind == SectionKind::Defaults;
        // A proxy without a name has been reported by the splitter.
        let Some(name) = section.name.as_deref().or(is_defaults.then_some("")) else {
            return;
        };
        let mut draft = self.starting_point(section);
        let ctx = Ctx {
            kind: section.kind,
            name,
        };
        for d in &section.directives {
            apply(&mut draft, ctx, d, &mut self.out);
        }
        if is_defaults {
            if let Some(name) = &section.name {
                self.named.insert(name.clone(), draft.clone());
            }
            self.defaults = draft;
            self.defaults_name = section.name.clone();
        } else {
            self.proxies.push(ProxyDraft {
                kind: section.kind,
                name: name.to_owned(),
                line: section.line,
                draft,
            });
        }
    }

    /// What a section starts from: the `defaults` it names with `from`; else HAProxy's
    /// defaults for a `defaults` section (each one replaces the previous), the last `defaults`
    /// for a proxy.
    fn starting_point(&mut self, section: &Section) -> Draft {
        let Some(from) = &section.from else {
            if section.kind == SectionKind::Defaults {
                return Draft::default();
            }
            if let Some(name) = &self.defaults_name {
                if self.referenced.contains(name) {
                    self.out.error(
                        section.line,
                        format!(
                            "defaults section '{name}' is explicitly referenced by another \
                             proxy and implicitly used here: use 'from' everywhere, or add a \
                             last defaults section no proxy names"
                        ),
                    );
                }
            }
            return self.defaults.clone();
        };
        self.referenced.insert(from.clone());
        match self.named.get(from) {
            Some(draft) => draft.clone(),
            None => {
                self.out.error(
                    section.line,
                    format!("no defaults section named '{from}' before this line"),
                );
                self.defaults.clone()
            }
        }
    }

    fn finish(mut self, file: &ConfigFile) -> CheckedConfig {
        let global = Global {
            logs: std::mem::take(&mut self.global.logs),
            maxconn: self.global.maxconn.unwrap_or(DEFAULT_GLOBAL_MAXCONN),
            nbthread: self.global.nbthread,
            stats_sockets: self.global.stats_sockets.clone(),
        };
        self.check_names();
        let mut frontends = Vec::new();
        let mut backends = Vec::new();
        for proxy in &self.proxies {
            if proxy.is_frontend() {
                frontends.push(frontend(proxy, &global, &mut self.out));
            }
            if proxy.is_backend() {
                backends.push(backend(proxy, &global, &mut self.out));
            }
        }
        self.check_routes(&frontends, &backends);
        self.check_completeness();
        let log_forward = self.log_forward(file);
        let mut findings = self.out.list;
        findings.sort_by_key(|f| f.diagnostic.line);
        let config = (!findings.iter().any(|f| f.level == Level::Error)).then_some(ProxyConfig {
            global,
            frontends,
            backends,
            log_forward,
        });
        CheckedConfig { config, findings }
    }

    /// Two frontends (or two backends) with one name; `listen` is both.
    fn check_names(&mut self) {
        let mut frontends: HashMap<&str, &ProxyDraft> = HashMap::new();
        let mut backends: HashMap<&str, &ProxyDraft> = HashMap::new();
        for proxy in &self.proxies {
            let mut first = None;
            if proxy.is_frontend() {
                first = frontends.insert(&proxy.name, proxy).or(first);
            }
            if proxy.is_backend() {
                first = backends.insert(&proxy.name, proxy).or(first);
            }
            if let Some(first) = first {
                self.out.error(
                    proxy.line,
                    format!(
                        "{} has the same name as {} declared at line {}",
                        proxy.ctx().describe(),
                        first.ctx().describe(),
                        first.line
                    ),
                );
            }
        }
    }

    /// Every backend a frontend names exists (the first of that name) and can carry its
    /// traffic: an HTTP frontend cannot use a TCP backend.
    fn check_routes(&mut self, frontends: &[Frontend], backends: &[Backend]) {
        let mut by_name: HashMap<&str, &Backend> = HashMap::new();
        for backend in backends {
            by_name.entry(&backend.name).or_insert(backend);
        }
        let drafts = self.proxies.iter().filter(|p| p.is_frontend());
        for (proxy, frontend) in drafts.zip(frontends) {
            let d = &proxy.draft;
            let default = d.always.as_ref().or(d.default_backend.as_ref());
            let targets = default
                .map(|(name, line)| (name, *line, "default_backend"))
                .into_iter()
                .chain(d.rules.iter().map(|r| (&r.backend, r.line, "use_backend")));
            for (name, line, keyword) in targets {
                let describe = proxy.ctx().describe();
                match by_name.get(name.as_str()) {
                    None => self.out.error(
                        line,
                        format!("{describe}: unable to find required {keyword} '{name}'"),
                    ),
                    Some(backend) if frontend.mode == Mode::Http && backend.mode == Mode::Tcp => {
                        self.out.error(
                            line,
                            format!(
                                "http {describe} tries to use incompatible tcp backend \
                                 '{name}' (line {}) with '{keyword}' (see 'mode')",
                                backend.line
                            ),
                        )
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// Binds, servers, a way to a backend and the timeouts HAProxy warns about.
    fn check_completeness(&mut self) {
        for proxy in &self.proxies {
            let d = &proxy.draft;
            let describe = proxy.ctx().describe();
            let mut missing = Vec::new();
            if proxy.is_frontend() {
                if d.binds.is_empty() && !d.bind_failed {
                    let message = format!("{describe} has no 'bind' directive");
                    self.out.error(proxy.line, message);
                }
                let no_backend = d.default_backend.is_none() && d.always.is_none();
                if proxy.kind == SectionKind::Frontend && no_backend && d.rules.is_empty() {
                    let message =
                        format!("{describe} has no 'default_backend' nor 'use_backend' rule");
                    self.out.warning(proxy.line, message);
                }
                missing.extend(unset(d.timeouts.client, "client"));
            }
            if proxy.is_backend() {
                if d.servers.is_empty() {
                    if !d.server_failed {
                        let message = format!("{describe} has no server");
                        self.out.warning(proxy.line, message);
                    }
                } else {
                    missing.extend(unset(d.timeouts.connect, "connect"));
                    missing.extend(unset(d.timeouts.server, "server"));
                }
            }
            if !missing.is_empty() {
                let message = format!(
                    "missing timeouts for {describe}: {} not set (HAProxy and halyard expect \
                     'client', 'connect' and 'server' timeouts to be non-zero)",
                    missing.join(", ")
                );
                self.out.warning(proxy.line, message);
            }
        }
    }

    /// The `log-forward` section's listener, its warnings as findings.
    fn log_forward(&mut self, file: &ConfigFile) -> Option<ListenerSettings> {
        if !file
            .sections
            .iter()
            .any(|s| s.kind == SectionKind::LogForward)
        {
            return None;
        }
        match file.log_forward(None) {
            Ok((settings, warnings)) => {
                for w in warnings {
                    self.out.warning(w.line, w.message);
                }
                Some(settings)
            }
            Err(e) => {
                self.out.error(e.line, e.message);
                None
            }
        }
    }
}

/// `'timeout NAME'` when it is unset or zero.
fn unset(timeout: Option<Duration>, name: &str) -> Option<String> {
    timeout
        .is_none_or(|t| t.is_zero())
        .then(|| format!("'timeout {name}'"))
}

/// `log global` replaced by the global targets.
fn resolve_logs(entries: &[LogEntry], global: &Global) -> Vec<LogTarget> {
    entries
        .iter()
        .flat_map(|entry| match entry {
            LogEntry::Global => global.logs.clone(),
            LogEntry::Target(target) => vec![target.clone()],
        })
        .collect()
}

/// The frontend half of a proxy, with HAProxy's defaults.
fn frontend(proxy: &ProxyDraft, global: &Global, out: &mut Findings) -> Frontend {
    let d = &proxy.draft;
    let mode = d.mode.unwrap_or(Mode::Tcp);
    let mut options = d.options;
    if mode == Mode::Tcp && options.httplog {
        out.warning(
            d.httplog_line,
            format!(
                "'option httplog' not usable with {} (needs 'mode http'), falling back to \
                 'option tcplog'",
                proxy.ctx().describe()
            ),
        );
        options.httplog = false;
        options.tcplog = true;
    }
    // Both rule conditions (`path_beg`, `hdr(host)`) read the HTTP request.
    let rules = if mode == Mode::Tcp {
        for rule in &d.rules {
            out.warning(
                rule.line,
                format!(
                    "'use_backend {}' in {} will never match: its condition needs \
                     'mode http'; rule ignored",
                    rule.backend,
                    proxy.ctx().describe()
                ),
            );
        }
        Vec::new()
    } else {
        d.rules.clone()
    };
    // An unconditional `use_backend` takes what the rules before it leave.
    let default_backend = d
        .always
        .as_ref()
        .or(d.default_backend.as_ref())
        .map(|(name, _)| name.clone())
        .or_else(|| (proxy.kind == SectionKind::Listen).then(|| proxy.name.clone()));
    Frontend {
        name: proxy.name.clone(),
        line: proxy.line,
        binds: d.binds.clone(),
        mode,
        default_backend,
        rules,
        options,
        logs: resolve_logs(&d.logs, global),
        timeouts: d.timeouts,
        maxconn: d.maxconn.unwrap_or(global.maxconn),
        request_captures: d.request_captures.clone(),
        response_captures: d.response_captures.clone(),
        deny: http_only(mode, &d.deny, |r| r.line, "'http-request deny'", proxy, out),
        reject: d.reject.clone(),
        stats: stats_page(mode, d, proxy, out),
        // A `listen` section is warned about once, by its backend half.
        compression: http_compression(mode, proxy, proxy.kind == SectionKind::Frontend, out),
    }
}

/// The backend half of a proxy, with HAProxy's defaults.
fn backend(proxy: &ProxyDraft, global: &Global, out: &mut Findings) -> Backend {
    let d = &proxy.draft;
    let http_check = d.http_check.clone().map(|check| HttpCheck {
        expect: d.expect.as_ref().map(|(expect, _)| expect.clone()),
        ..check
    });
    if let (None, Some((_, line))) = (&d.http_check, &d.expect) {
        out.warning(
            *line,
            format!(
                "{} uses http-check rules without 'option httpchk', so the rules are ignored",
                proxy.ctx().describe()
            ),
        );
    }
    let mode = d.mode.unwrap_or(Mode::Tcp);
    let mut balance = d.balance.clone().unwrap_or(Balance::RoundRobin);
    if mode == Mode::Tcp
        && matches!(
            balance,
            Balance::Uri | Balance::UrlParam(_) | Balance::Hdr(_)
        )
    {
        out.warning(
            proxy.line,
            format!(
                "Layer 7 hash not possible for {} (needs 'mode http'). Falling back to round \
                 robin.",
                proxy.ctx().describe()
            ),
        );
        balance = Balance::RoundRobin;
    }
    Backend {
        name: proxy.name.clone(),
        line: proxy.line,
        mode,
        balance,
        hash_type: d.hash_type.unwrap_or(HashType::MapBased),
        servers: d.servers.clone(),
        http_check,
        retries: d.retries.unwrap_or(DEFAULT_RETRIES),
        options: d.options,
        logs: resolve_logs(&d.logs, global),
        timeouts: d.timeouts,
        cookie: d.cookie.clone().filter(|_| {
            if mode == Mode::Tcp {
                out.warning(
                    proxy.line,
                    format!(
                        "'cookie' in {} needs 'mode http': no persistence, ignored",
                        proxy.ctx().describe()
                    ),
                );
            }
            mode == Mode::Http
        }),
        stats: if proxy.kind == SectionKind::Listen {
            // A listen section's page is served by its frontend half.
            None
        } else {
            stats_page(mode, d, proxy, out)
        },
        compression: http_compression(mode, proxy, true, out),
    }
}

/// The stats page a proxy serves: `mode http` only, warned about (once) otherwise.
fn stats_page(mode: Mode, d: &Draft, proxy: &ProxyDraft, out: &mut Findings) -> Option<StatsPage> {
    let (page, line) = d.stats.as_ref()?;
    if mode == Mode::Tcp {
        out.warning(
            *line,
            format!(
                "'stats' in {} needs 'mode http': no stats page, ignored",
                proxy.ctx().describe()
            ),
        );
        return None;
    }
    Some(page.clone())
}

/// The proxy's `compression` settings in `mode http`; in `mode tcp` there is nothing to
/// compress: warned about (when `warn`) and dropped.
fn http_compression(mode: Mode, proxy: &ProxyDraft, warn: bool, out: &mut Findings) -> Compression {
    let settings = &proxy.draft.compression;
    if mode == Mode::Http || settings.algos.is_empty() {
        return settings.clone();
    }
    if warn {
        let proxy_name = proxy.ctx().describe();
        out.warning(
            proxy.line,
            format!("'compression' in {proxy_name} needs 'mode http', ignored"),
        );
    }
    Compression::default()
}

/// Rules that read HTTP requests: kept in `mode http`; in `mode tcp` each is warned about
/// and dropped, as HAProxy does (it would never apply).
fn http_only<T: Clone>(
    mode: Mode,
    rules: &[T],
    line: impl Fn(&T) -> usize,
    what: &str,
    proxy: &ProxyDraft,
    out: &mut Findings,
) -> Vec<T> {
    if mode == Mode::Http {
        return rules.to_vec();
    }
    for rule in rules {
        out.warning(
            line(rule),
            format!(
                "{what} in {} needs 'mode http', ignored",
                proxy.ctx().describe()
            ),
        );
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::super::proxy_keywords::tests::findings;
    use super::*;

    const LAB: &str = include_str!("../../fixtures/configs/lab.cfg");

    fn check(text: &str) -> CheckedConfig {
        CheckedConfig::from_text("t.cfg", text)
    }

    fn config(text: &str) -> ProxyConfig {
        let checked = check(text);
        let shown: Vec<String> = checked.findings.iter().map(ToString::to_string).collect();
        checked
            .config
            .unwrap_or_else(|| panic!("errors: {shown:#?}"))
    }

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    /// A proxy section with the timeouts HAProxy wants, so only what a test is about shows.
    const TIMEOUTS: &str =
        "defaults\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n";

    #[test]
    fn lab_config_becomes_typed_values() {
        let checked = CheckedConfig::from_text("lab.cfg", LAB);
        assert_eq!(checked.findings, []);
        assert_eq!(checked.summary(), "Configuration file is valid");
        let log = LogTarget {
            addr: "127.0.0.1:514".parse().unwrap(),
            facility: 19,
            max_level: 7,
            line: 2,
        };
        let timeouts = Timeouts {
            connect: secs(5),
            client: secs(60),
            server: secs(60),
            http_request: secs(5),
            http_keep_alive: secs(5),
            queue: secs(60),
            check: secs(5),
        };
        let options = Options {
            httplog: true,
            dontlognull: true,
            ..Options::default()
        };
        let server = |name: &str, addr: &str, line| Server {
            name: name.to_owned(),
            addr: addr.parse().unwrap(),
            check: true,
            inter: Duration::from_secs(2),
            fastinter: Duration::from_secs(2),
            downinter: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            weight: 1,
            backup: false,
            disabled: false,
            maxconn: 0,
            maxqueue: 0,
            slowstart: None,
            cookie: None,
            line,
        };
        let expected = ProxyConfig {
            global: Global {
                logs: vec![log.clone()],
                maxconn: 4000,
                nbthread: None,
                stats_sockets: Vec::new(),
            },
            frontends: vec![Frontend {
                name: "myweb".to_owned(),
                line: 18,
                binds: vec![Bind {
                    addr: "0.0.0.0:80".parse().unwrap(),
                    tls: None,
                }],
                mode: Mode::Http,
                default_backend: Some("myweb".to_owned()),
                rules: vec![],
                options,
                logs: vec![log.clone()],
                timeouts,
                maxconn: 3000,
                request_captures: vec![],
                response_captures: vec![],
                deny: vec![],
                reject: vec![],
                stats: None,
                compression: Compression::default(),
            }],
            backends: vec![Backend {
                name: "myweb".to_owned(),
                line: 18,
                mode: Mode::Http,
                balance: Balance::RoundRobin,
                hash_type: HashType::MapBased,
                servers: vec![
                    server("inst1", "192.168.10.102:80", 22),
                    server("inst2", "192.168.10.103:80", 23),
                ],
                http_check: Some(HttpCheck {
                    method: "GET".to_owned(),
                    uri: "/index.html".to_owned(),
                    version: "HTTP/1.0".to_owned(),
                    expect: None,
                }),
                retries: 3,
                options,
                logs: vec![log],
                timeouts,
                cookie: None,
                stats: None,
                compression: Compression::default(),
            }],
            log_forward: None,
        };
        assert_eq!(checked.config, Some(expected));
    }

    #[test]
    fn haproxy_defaults_apply_when_nothing_is_set() {
        let c = config(
            "frontend fe\n bind :80\n default_backend be\nbackend be\n server s 10.0.0.1:80\n",
        );
        assert_eq!(c.global.maxconn, 4096);
        assert!(c.global.logs.is_empty());
        let (fe, be) = (&c.frontends[0], &c.backends[0]);
        assert_eq!((fe.mode, be.mode), (Mode::Tcp, Mode::Tcp));
        assert_eq!(fe.maxconn, 4096, "a frontend's maxconn is the global one");
        assert_eq!(fe.timeouts, Timeouts::default());
        assert!(fe.logs.is_empty());
        assert_eq!(be.balance, Balance::RoundRobin);
        assert_eq!(be.hash_type, HashType::MapBased);
        assert_eq!(be.retries, 3);
        assert_eq!(be.http_check, None);
        let s = &be.servers[0];
        assert!(!s.check);
        assert_eq!(
            (s.inter, s.fastinter, s.downinter),
            (
                Duration::from_secs(2),
                Duration::from_secs(2),
                Duration::from_secs(2)
            )
        );
        assert_eq!((s.rise, s.fall, s.weight, s.maxconn), (2, 3, 1, 0));
        let c = config(&format!(
            "{TIMEOUTS}backend be\n option httpchk\n server s 10.0.0.1:80\n"
        ));
        let check = c.backends[0].http_check.clone().unwrap();
        assert_eq!(
            (
                check.method.as_str(),
                check.uri.as_str(),
                check.version.as_str()
            ),
            ("OPTIONS", "/", "HTTP/1.0")
        );
    }

    #[test]
    fn a_later_defaults_section_replaces_the_earlier_one() {
        let text = "\
global
    log 127.0.0.1:5514 local0 info
defaults
    mode http
    log global
    balance leastconn
    default-server inter 3s rise 4 weight 7
    option redispatch
    timeout client 5s
    timeout connect 1s
    timeout server 1s
    maxconn 100
backend first
    server a 10.0.0.1:80 inter 1s
    server b 10.0.0.2:80
defaults
    timeout client 1s
    timeout connect 1s
    timeout server 1s
backend second
    server c 10.0.0.3:80
";
        let c = config(text);
        let (first, second) = (&c.backends[0], &c.backends[1]);
        assert_eq!(first.mode, Mode::Http);
        assert_eq!(first.balance, Balance::LeastConn);
        assert!(first.options.redispatch);
        assert_eq!(first.logs.len(), 1);
        assert_eq!(first.logs[0].max_level, 6);
        let a = &first.servers[0];
        assert_eq!(
            (a.inter, a.fastinter, a.rise, a.weight),
            (Duration::from_secs(1), Duration::from_secs(1), 4, 7)
        );
        let b = &first.servers[1];
        assert_eq!(
            (b.inter, b.downinter),
            (Duration::from_secs(3), Duration::from_secs(3))
        );
        assert_eq!(second.mode, Mode::Tcp);
        assert_eq!(second.balance, Balance::RoundRobin);
        assert!(!second.options.redispatch);
        assert!(second.logs.is_empty());
        let c3 = &second.servers[0];
        assert_eq!(
            (c3.inter, c3.rise, c3.weight),
            (Duration::from_secs(2), 2, 1)
        );
        assert_eq!(second.timeouts.client, secs(1));
    }

    #[test]
    fn named_defaults_are_used_with_from() {
        let text = "\
defaults web
    mode http
    timeout client 1s
    timeout connect 1s
    timeout server 1s
defaults plain
    mode tcp
    timeout client 1s
    timeout connect 1s
    timeout server 1s
backend be from web
    server s 10.0.0.1:80
frontend fe from web
    bind :80
    default_backend be
";
        let c = config(text);
        assert_eq!(c.backends[0].mode, Mode::Http);
        assert_eq!(c.frontends[0].mode, Mode::Http);
        assert_eq!(
            findings("frontend fe from nope\n bind :80\n"),
            [
                "1: error: no defaults section named 'nope' before this line",
                "1: warning: frontend 'fe' has no 'default_backend' nor 'use_backend' rule",
                "1: warning: missing timeouts for frontend 'fe': 'timeout client' not set (HAProxy and halyard expect 'client', 'connect' and 'server' timeouts to be non-zero)",
            ]
        );
        let mixed = "defaults web\n mode http\nbackend a from web\nbackend b\n";
        assert!(findings(mixed).contains(
            &"4: error: defaults section 'web' is explicitly referenced by another proxy and \
              implicitly used here: use 'from' everywhere, or add a last defaults section no \
              proxy names"
                .to_owned()
        ));
    }

    #[test]
    fn tcp_mode_drops_what_needs_http_with_a_warning() {
        let text = format!(
            "{TIMEOUTS}\
frontend db
    mode tcp
    bind :5432
    use_backend other if {{ path_beg /x }}
    default_backend pg
    http-request deny
backend pg
    mode tcp
    balance uri
    cookie SRV insert
    server s 10.0.0.1:5432 cookie s
backend other
    mode tcp
    balance source
    server s 10.0.0.2:5432
"
        );
        assert_eq!(
            findings(&text),
            [
                "8: warning: 'use_backend other' in frontend 'db' will never match: its condition needs 'mode http'; rule ignored",
                "10: warning: 'http-request deny' in frontend 'db' needs 'mode http', ignored",
                "11: warning: Layer 7 hash not possible for backend 'pg' (needs 'mode http'). Falling back to round robin.",
                "11: warning: 'cookie' in backend 'pg' needs 'mode http': no persistence, ignored",
            ]
        );
        let c = config(&text);
        assert_eq!(c.frontends[0].rules, []);
        assert_eq!(c.frontends[0].deny, []);
        assert_eq!(c.backends[0].cookie, None);
        assert_eq!(c.backends[0].balance, Balance::RoundRobin);
        assert_eq!(c.backends[1].balance, Balance::Source);
    }

    #[test]
    fn cross_checks_need_the_whole_file() {
        let text = format!(
            "{TIMEOUTS}\
frontend fe
    mode http
    bind :80
    default_backend nope
    use_backend tcpbe if {{ path_beg /x }}
frontend nobind
    default_backend tcpbe
frontend tcpfe
    mode tcp
    option httplog
    bind :81
    default_backend tcpbe
backend tcpbe
    mode tcp
    server s 10.0.0.1:80
backend empty
backend tcpbe
listen tcpfe
    bind :82
    server s 10.0.0.1:80
frontend lost
    bind :83
"
        );
        assert_eq!(
            findings(&text),
            [
                "8: error: frontend 'fe': unable to find required default_backend 'nope'",
                "9: error: http frontend 'fe' tries to use incompatible tcp backend 'tcpbe' (line 17) with 'use_backend' (see 'mode')",
                "10: error: frontend 'nobind' has no 'bind' directive",
                "14: warning: 'option httplog' not usable with frontend 'tcpfe' (needs 'mode http'), falling back to 'option tcplog'",
                "20: warning: backend 'empty' has no server",
                "21: error: backend 'tcpbe' has the same name as backend 'tcpbe' declared at line 17",
                "21: warning: backend 'tcpbe' has no server",
                "22: error: listen 'tcpfe' has the same name as frontend 'tcpfe' declared at line 12",
                "25: warning: frontend 'lost' has no 'default_backend' nor 'use_backend' rule",
            ]
        );
        let checked = check(&text);
        assert_eq!(checked.config, None);
        assert_eq!(checked.count(Level::Error), 5);
        assert_eq!(checked.summary(), "Configuration file has 5 errors");
    }

    #[test]
    fn missing_timeouts_are_warnings_like_haproxy() {
        let text = "\
frontend fe
    bind :80
    default_backend be
backend be
    server s 10.0.0.1:80
listen both
    bind :81
    timeout client 1s
    timeout connect 0
    server s 10.0.0.1:80
backend idle
";
        let c = check(text);
        assert!(c.config.is_some(), "warnings only");
        let tail = " not set (HAProxy and halyard expect 'client', 'connect' and 'server' \
                    timeouts to be non-zero)";
        assert_eq!(
            findings(text),
            [
                format!("1: warning: missing timeouts for frontend 'fe': 'timeout client'{tail}"),
                format!(
                    "4: warning: missing timeouts for backend 'be': 'timeout connect', \
                     'timeout server'{tail}"
                ),
                format!(
                    "6: warning: missing timeouts for listen 'both': 'timeout connect', \
                     'timeout server'{tail}"
                ),
                "11: warning: backend 'idle' has no server".to_owned(),
            ]
        );
    }

    #[test]
    fn splitter_errors_are_findings_and_the_check_goes_on() {
        let text = "\
mode http
global
    log \"127.0.0.1 local0
frontend
    bind :80
userlist admins
    user admin insecure-password x
backend be
    server s 10.0.0.1
";
        let checked = check(text);
        assert_eq!(checked.config, None);
        let shown: Vec<String> = checked.findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "t.cfg:1: error: 'mode' is outside of any section",
                "t.cfg:3: error: unterminated quote (\")",
                "t.cfg:4: error: 'frontend' needs a name",
                "t.cfg:6: warning: section 'userlist' not supported, ignored",
                "t.cfg:9: error: 'server be/s': address '10.0.0.1' has no port: halyard does not \
                 forward to the client's destination port, write ADDR:PORT",
            ]
        );
        assert_eq!(checked.summary(), "Configuration file has 4 errors");
        assert!(
            ConfigFile::parse("t.cfg", text).is_err(),
            "parse stops at the first"
        );
    }

    #[test]
    fn log_forward_sections_are_read_by_their_own_builder() {
        let c = config("log-forward syslog\n dgram-bind 127.0.0.1:5514\n flush now\n");
        assert_eq!(
            c.log_forward.unwrap().udp,
            ["127.0.0.1:5514".parse().unwrap()]
        );
        assert!(c.frontends.is_empty() && c.backends.is_empty());
        assert_eq!(
            findings("log-forward syslog\n dgram-bind 127.0.0.1:5514\n flush now\n"),
            ["3: warning: unknown keyword 'flush' in log-forward, ignored"]
        );
        assert_eq!(
            findings("log-forward syslog\n file x.log\n"),
            ["1: error: log-forward needs a 'dgram-bind' (UDP) or 'bind' (TCP) address"]
        );
    }

    #[test]
    fn rules_keep_their_order_and_listen_serves_itself() {
        let text = format!(
            "{TIMEOUTS}\
frontend fe
    mode http
    bind :80
    acl api path_beg /api /v2
    acl api path_beg /v3
    acl web hdr(host) -i www.example.com
    use_backend api if api
    use_backend web unless !web
    use_backend web if {{ hdr(Host) example.com }}
    use_backend api
    use_backend web if {{ path_beg /static }}
    default_backend web
backend api
    mode http
    server a 10.0.0.1:80
listen web
    mode http
    bind :81
    server w 10.0.0.2:80
"
        );
        let c = config(&text);
        let fe = &c.frontends[0];
        let rule = |backend: &str, condition, negate, line| UseBackend {
            backend: backend.to_owned(),
            condition,
            negate,
            line,
        };
        let paths = |p: &[&str]| Condition::PathBeg(p.iter().map(|s| s.to_string()).collect());
        let host = |h: &str, ignore_case| Condition::Host {
            values: vec![h.to_owned()],
            ignore_case,
        };
        assert_eq!(
            fe.rules,
            [
                rule("api", paths(&["/api", "/v2", "/v3"]), false, 11),
                rule("web", host("www.example.com", true), false, 12),
                rule("web", host("example.com", false), false, 13),
            ]
        );
        assert_eq!(
            fe.default_backend.as_deref(),
            Some("api"),
            "line 14 has no condition"
        );
        assert_eq!(c.frontends[1].default_backend.as_deref(), Some("web"));
        assert_eq!(
            findings(&text),
            ["15: note: 'use_backend web' is never used: 'use_backend api' at line 14 has no condition"]
        );
    }

    #[test]
    fn findings_print_as_file_line_level_message() {
        let finding = Finding {
            level: Level::Warning,
            diagnostic: Diagnostic {
                file: "/etc/haproxy/haproxy.cfg".to_owned(),
                line: 12,
                message: "'cookie' is not supported yet, ignored".to_owned(),
            },
        };
        assert_eq!(
            finding.to_string(),
            "/etc/haproxy/haproxy.cfg:12: warning: 'cookie' is not supported yet, ignored"
        );
        assert_eq!(
            check("global\n maxconn x\n").summary(),
            "Configuration file has 1 error"
        );
    }
}
