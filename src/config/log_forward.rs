//! `log-forward NAME` sections: HAProxy's syslog receiver syntax (`dgram-bind` for UDP, `bind`
//! for TCP, `maxconn`, `timeout client`), extended with what halyard's listener does beyond
//! forwarding: the file it writes, rotation, routes and the periodic report.
//!
//! `halyard listen` builds the same [`ListenerSettings`] from its flags, with the same value
//! parsers, so a flag and its config keyword always mean the same thing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::net::{parse_bind_addr, Cidr};
use super::values::{parse_size, parse_time};
use super::{ConfigFile, Diagnostic, Directive, SectionKind};
use crate::logline::Priority;

/// Everything the syslog listener needs, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSettings {
    /// UDP addresses to receive on.
    pub udp: Vec<SocketAddr>,
    /// TCP addresses to receive on (RFC 6587 octet counting or LF framing).
    pub tcp: Vec<SocketAddr>,
    /// Directory of the files written (in a config file: relative to the file).
    pub dir: PathBuf,
    /// The file everything goes to when there are no routes.
    pub file: String,
    /// When and how files are rotated.
    pub rotation: Rotation,
    /// How lines are written.
    pub output: OutputFormat,
    /// Senders accepted; empty accepts everyone.
    pub allow: Vec<Cidr>,
    /// Which messages go to which file; empty sends everything to `file`.
    pub routes: Vec<Route>,
    /// Where messages that match no route go (counted and dropped when unset).
    pub unmatched: Option<String>,
    /// Receive buffer to ask the kernel for, per UDP socket.
    pub rcvbuf: usize,
    /// Receiving threads per UDP address (more than one uses SO_REUSEPORT).
    pub receivers: usize,
    /// Longer messages are truncated to this many bytes (and counted).
    pub max_message: usize,
    /// fsync each written batch.
    pub fsync: bool,
    /// Concurrent TCP connections accepted.
    pub maxconn: usize,
    /// A TCP connection idle this long is closed (zero: never, as `timeout client 0`).
    pub tcp_idle_timeout: Duration,
    /// Write the report JSON of each interval this long into `dir`.
    pub report_every: Option<Duration>,
    /// Keep the rolling per-server view of the last minute.
    pub live: bool,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            udp: Vec::new(),
            tcp: Vec::new(),
            dir: PathBuf::from("."),
            file: "haproxy.log".to_owned(),
            rotation: Rotation::default(),
            output: OutputFormat::Traditional,
            allow: Vec::new(),
            routes: Vec::new(),
            unmatched: None,
            rcvbuf: 32 << 20,
            receivers: 1,
            max_message: 64 << 10,
            fsync: false,
            maxconn: 1000,
            tcp_idle_timeout: Duration::from_secs(600),
            report_every: None,
            live: false,
        }
    }
}

/// When files are rotated and what becomes of the old ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before a line would take the file past this many bytes.
    pub size: Option<u64>,
    /// Rotate at each multiple of this period on the local clock (hourly, daily, ...).
    pub every: Option<Duration>,
    /// Rotated files kept (0 keeps all).
    pub keep: usize,
    /// gzip rotated files (off the receive path).
    pub compress: bool,
    /// Name rotated files by date (`haproxy.log-20261125-013000`) instead of number.
    pub dateext: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            size: None,
            every: None,
            keep: 10,
            compress: false,
            dateext: false,
        }
    }
}

/// Parses `hourly`, `daily` or a period like `10m`.
pub fn parse_rotate_every(spec: &str) -> Result<Duration, String> {
    match spec {
        "hourly" => Ok(Duration::from_secs(3600)),
        "daily" => Ok(Duration::from_secs(86_400)),
        _ => parse_time(spec)
            .ok()
            .filter(|d| d.as_secs() >= 1)
            .ok_or_else(|| format!("bad period '{spec}': expected hourly, daily or e.g. 10m")),
    }
}

/// How received messages are written to files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// rsyslog's traditional file format: `Mmm dd hh:mm:ss HOST TAG[PID]: MSG`.
    Traditional,
    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`, as rsyslog's RFC 5424 template.
    Rfc5424,
    /// The message exactly as received.
    Raw,
    /// One JSON object per message: `halyard parse`'s fields plus receive time and sender.
    Jsonl,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "traditional" => OutputFormat::Traditional,
            "rfc5424" => OutputFormat::Rfc5424,
            "raw" => OutputFormat::Raw,
            "jsonl" => OutputFormat::Jsonl,
            _ => {
                return Err(format!(
                    "unknown output format '{s}': expected traditional, rfc5424, raw or jsonl"
                ))
            }
        })
    }
}

/// A routing rule, like rsyslog's `local3.* /var/log/haproxy.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Which messages.
    pub selector: Selector,
    /// The file they go to, relative to the listener's directory.
    pub file: String,
}

/// Which messages a route takes: `FACILITY[,FACILITY...].SEVERITY`, optionally a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Facility numbers accepted; `None` for `*`.
    pub facilities: Option<Vec<u8>>,
    /// Severities accepted.
    pub severity: SeverityMatch,
    /// Only messages with this tag (program name).
    pub tag: Option<String>,
}

/// The severity part of a selector, with rsyslog's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeverityMatch {
    /// `*`: every severity.
    Any,
    /// `info`: this severity or a more severe one.
    AtLeast(u8),
    /// `=info`: exactly this one.
    Exactly(u8),
    /// `!info`: only less severe ones.
    Below(u8),
}

impl Selector {
    /// Whether a message with this facility, severity and tag is selected.
    pub fn matches(&self, facility: u8, severity: u8, tag: Option<&[u8]>) -> bool {
        let facility_ok = self
            .facilities
            .as_ref()
            .is_none_or(|list| list.contains(&facility));
        let severity_ok = match self.severity {
            SeverityMatch::Any => true,
            SeverityMatch::AtLeast(s) => severity <= s,
            SeverityMatch::Exactly(s) => severity == s,
            SeverityMatch::Below(s) => severity > s,
        };
        let tag_ok = self
            .tag
            .as_ref()
            .is_none_or(|want| tag == Some(want.as_bytes()));
        facility_ok && severity_ok && tag_ok
    }
}

impl FromStr for Selector {
    type Err = String;

    /// `local3.*`, `local3,local4.info`, `*.=err`, `daemon.!debug`.
    fn from_str(spec: &str) -> Result<Self, String> {
        let (facilities, severity) = spec.rsplit_once('.').ok_or_else(|| {
            format!("bad selector '{spec}': expected FACILITY.SEVERITY, e.g. local3.*")
        })?;
        let facilities = match facilities {
            "*" => None,
            list => Some(
                list.split(',')
                    .map(|name| {
                        Priority::facility_by_name(name)
                            .ok_or_else(|| format!("unknown facility '{name}' in '{spec}'"))
                    })
                    .collect::<Result<Vec<u8>, String>>()?,
            ),
        };
        let severity_number = |name: &str| {
            Priority::severity_by_name(name)
                .ok_or_else(|| format!("unknown severity '{name}' in '{spec}'"))
        };
        let severity = match severity {
            "*" => SeverityMatch::Any,
            s => match (s.strip_prefix('='), s.strip_prefix('!')) {
                (Some(exact), _) => SeverityMatch::Exactly(severity_number(exact)?),
                (_, Some(below)) => SeverityMatch::Below(severity_number(below)?),
                _ => SeverityMatch::AtLeast(severity_number(s)?),
            },
        };
        Ok(Selector {
            facilities,
            severity,
            tag: None,
        })
    }
}

impl Route {
    /// Parses `SELECTOR [tag TAG | tag=TAG] FILE`, from config words or a flag split on blanks.
    pub fn from_words<S: AsRef<str>>(words: &[S]) -> Result<Route, String> {
        let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
        let usage = "expected SELECTOR [tag TAG] FILE, e.g. 'local3.* haproxy.log'";
        let (selector, file, tag) = match words.as_slice() {
            [selector, file] => (selector, file, None),
            [selector, tag, file] => match tag.strip_prefix("tag=") {
                Some(tag) => (selector, file, Some(tag)),
                None => return Err(format!("bad route: {usage}")),
            },
            [selector, "tag", tag, file] => (selector, file, Some(*tag)),
            _ => return Err(format!("bad route: {usage}")),
        };
        let mut selector: Selector = selector.parse()?;
        selector.tag = tag.map(str::to_owned);
        Ok(Route {
            selector,
            file: (*file).to_owned(),
        })
    }
}

impl ConfigFile {
    /// The listener settings of the `log-forward` section `name` (the only one when `None`),
    /// with warnings for what is accepted but not acted on.
    pub fn log_forward(
        &self,
        name: Option<&str>,
    ) -> Result<(ListenerSettings, Vec<Diagnostic>), Diagnostic> {
        let mut sections = self.sections.iter().filter(|s| {
            s.kind == SectionKind::LogForward && name.is_none_or(|n| s.name.as_deref() == Some(n))
        });
        let Some(section) = sections.next() else {
            let what = name.map_or("log-forward section".to_owned(), |n| {
                format!("log-forward section '{n}'")
            });
            return Err(self.at(0)(format!("no {what}")));
        };
        if name.is_none() {
            if let Some(other) = sections.next() {
                return Err(self.at(other.line)(
                    "several log-forward sections: name the one to use".to_owned(),
                ));
            }
        }
        let mut settings = ListenerSettings::default();
        let mut warnings = Vec::new();
        for d in &section.directives {
            if let Some(warning) = apply(&mut settings, d).map_err(self.at(d.line))? {
                warnings.push(self.at(d.line)(warning));
            }
        }
        // A relative `dir` is relative to the config file, not to wherever halyard was started
        // (under systemd that would be `/`).
        if settings.dir.is_relative() {
            if let Some(base) = Path::new(&self.file).parent() {
                settings.dir = base.join(&settings.dir);
            }
        }
        if settings.udp.is_empty() && settings.tcp.is_empty() {
            return Err(self.at(section.line)(
                "log-forward needs a 'dgram-bind' (UDP) or 'bind' (TCP) address".to_owned(),
            ));
        }
        Ok((settings, warnings))
    }
}

/// Applies one directive; `Ok(Some(warning))` for one accepted with a caveat.
fn apply(settings: &mut ListenerSettings, d: &Directive) -> Result<Option<String>, String> {
    let keyword = d.words[0].as_str();
    let args: Vec<&str> = d.words[1..].iter().map(String::as_str).collect();
    let one = || match args.as_slice() {
        [value] => Ok(*value),
        _ => Err(format!("'{keyword}' expects one value")),
    };
    let number = || {
        one()?
            .parse::<usize>()
            .map_err(|_| format!("'{keyword}' expects a number"))
    };
    let mut warning = None;
    match keyword {
        "dgram-bind" | "bind" => {
            let Some((addr, params)) = args.split_first() else {
                return Err(format!("'{keyword}' expects an address"));
            };
            let addr = parse_bind_addr(addr)?;
            if keyword == "bind" {
                settings.tcp.push(addr);
            } else {
                settings.udp.push(addr);
            }
            if !params.is_empty() {
                warning = Some(format!("'{keyword}' options ignored: {}", params.join(" ")));
            }
        }
        "maxconn" => settings.maxconn = number()?,
        "backlog" => warning = Some("'backlog' ignored: the system default is used".to_owned()),
        "timeout" => match args.as_slice() {
            ["client", value] => settings.tcp_idle_timeout = parse_time(value)?,
            _ => return Err("'timeout' expects 'client' and a time in log-forward".to_owned()),
        },
        "log" => {
            warning = Some(
                "'log' (forwarding to another server) is not supported: messages are written \
                 to files ('file', 'route')"
                    .to_owned(),
            )
        }
        "file" => settings.file = one()?.to_owned(),
        "dir" => settings.dir = PathBuf::from(one()?),
        "rotate-size" => settings.rotation.size = Some(parse_size(one()?)?),
        "rotate-every" => settings.rotation.every = Some(parse_rotate_every(one()?)?),
        "keep" => settings.rotation.keep = number()?,
        "compress" => settings.rotation.compress = true,
        "dateext" => settings.rotation.dateext = true,
        "output-format" => settings.output = one()?.parse()?,
        "allow" => {
            for net in &args {
                settings.allow.push(net.parse()?);
            }
        }
        "route" => settings.routes.push(Route::from_words(&args)?),
        "unmatched" => settings.unmatched = Some(one()?.to_owned()),
        "rcvbuf" => settings.rcvbuf = to_usize(parse_size(one()?)?),
        "receivers" => settings.receivers = number()?.max(1),
        "max-message-size" => settings.max_message = to_usize(parse_size(one()?)?).max(64),
        "fsync" => settings.fsync = true,
        "report-every" => settings.report_every = Some(parse_time(one()?)?),
        "live" => settings.live = true,
        _ => {
            warning = Some(format!(
                "unknown keyword '{keyword}' in log-forward, ignored"
            ))
        }
    }
    Ok(warning)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
log-forward syslog
    dgram-bind 127.0.0.1:5514
    bind :5514
    maxconn 20
    timeout client 30s
    log 10.0.0.9:514 local0
    dir /var/log/halyard
    rotate-size 10M
    rotate-every hourly
    keep 5
    compress
    route local3.* haproxy.log
    route *.err tag haproxy errors.log
    unmatched other.log
    allow 10.0.0.0/8 127.0.0.1
    flush-everything now
";

    #[test]
    fn haproxy_keywords_and_extensions_become_settings() {
        let config = ConfigFile::parse("lf.cfg", CONFIG).unwrap();
        let (s, warnings) = config.log_forward(None).unwrap();
        assert_eq!(s.udp, ["127.0.0.1:5514".parse().unwrap()]);
        assert_eq!(s.tcp, ["0.0.0.0:5514".parse().unwrap()]);
        assert_eq!(s.maxconn, 20);
        assert_eq!(s.tcp_idle_timeout, Duration::from_secs(30));
        assert_eq!(s.dir, PathBuf::from("/var/log/halyard"));
        assert_eq!(
            s.rotation,
            Rotation {
                size: Some(10 << 20),
                every: Some(Duration::from_secs(3600)),
                keep: 5,
                compress: true,
                dateext: false,
            }
        );
        assert_eq!(s.routes.len(), 2);
        assert_eq!(s.routes[1].selector.tag.as_deref(), Some("haproxy"));
        assert_eq!(s.unmatched.as_deref(), Some("other.log"));
        assert_eq!(s.allow.len(), 2);
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("lf.cfg:6: 'log' (forwarding"));
        assert_eq!(
            warnings[1],
            "lf.cfg:16: unknown keyword 'flush-everything' in log-forward, ignored"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = |text: &str| {
            ConfigFile::parse("x.cfg", text)
                .unwrap()
                .log_forward(None)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("log-forward a\n dgram-bind 127.0.0.1\n"),
            "x.cfg:2: bad address '127.0.0.1': expected ADDR:PORT, :PORT, [IPv6]:PORT or a port number"
        );
        assert_eq!(
            err("log-forward a\n file x\n"),
            "x.cfg:1: log-forward needs a 'dgram-bind' (UDP) or 'bind' (TCP) address"
        );
        assert_eq!(
            err("log-forward a\n dgram-bind :1\n route local9.* x\n"),
            "x.cfg:3: unknown facility 'local9' in 'local9.*'"
        );
        assert_eq!(err("global\n"), "x.cfg:0: no log-forward section");
    }

    #[test]
    fn selectors_follow_rsyslog() {
        let s: Selector = "local3,local4.info".parse().unwrap();
        assert!(s.matches(19, 6, None));
        assert!(s.matches(20, 3, None));
        assert!(!s.matches(19, 7, None), "debug is less severe than info");
        assert!(!s.matches(16, 6, None));
        let exact: Selector = "*.=err".parse().unwrap();
        assert!(exact.matches(0, 3, None) && !exact.matches(0, 2, None));
        let below: Selector = "*.!info".parse().unwrap();
        assert!(below.matches(0, 7, None) && !below.matches(0, 6, None));
        let route = Route::from_words(&["local3.*", "tag=haproxy", "h.log"]).unwrap();
        assert!(route.selector.matches(19, 0, Some(b"haproxy")));
        assert!(!route.selector.matches(19, 0, Some(b"nginx")));
        assert!(!route.selector.matches(19, 0, None));
        for bad in ["local3", "local3.loud", "x.*", ".info"] {
            assert!(bad.parse::<Selector>().is_err(), "{bad}");
        }
    }
}
