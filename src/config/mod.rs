//! The haproxy.cfg subset halyard reads: the lexer, sections and directives, with every
//! diagnostic as `file:line: message`.
//!
//! This is the layer every consumer shares: the report takes server weights from it, and the
//! balancer builds its typed configuration on it.

mod compression;
mod lexer;
mod log_forward;
mod net;
mod proxy;
mod proxy_keywords;
mod tls;
mod values;

use std::collections::HashMap;
use std::path::Path;

pub use compression::{Compression, CompressionAlgo};
pub use lexer::split_words;
pub use log_forward::{
    parse_rotate_every, ListenerSettings, OutputFormat, Rotation, Route, Selector, SeverityMatch,
};
pub use net::{parse_bind_addr, Cidr};
pub use proxy::{
    AccessLevel, Backend, Balance, Bind, Capture, CheckedConfig, Condition, CookieMode,
    CookiePersistence, DenyRule, ExpectStatus, Finding, Frontend, Global, HashType, HttpCheck,
    Level, LogTarget, Mode, Options, ProxyConfig, RejectRule, RuleCondition, Server, StatsPage,
    StatsSocket, Timeouts, UseBackend,
};
pub use tls::TlsCertificate;
pub use values::{parse_size, parse_time};

/// A config error or warning, located like `haproxy -c` locates them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct Diagnostic {
    /// The config file.
    pub file: String,
    /// 1-based line (0 when the file could not be read at all).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The kinds of sections halyard knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// `global`
    Global,
    /// `defaults`
    Defaults,
    /// `listen NAME`: a frontend and a backend in one.
    Listen,
    /// `frontend NAME`
    Frontend,
    /// `backend NAME`
    Backend,
    /// `log-forward NAME`: a syslog receiver.
    LogForward,
    /// A section HAProxy knows and halyard does not (`peers`, `userlist`, ...): its keyword.
    /// Its lines are kept apart so they are not read as the previous section's, and ignored.
    Unsupported(&'static str),
}

/// HAProxy 2.6's other section keywords.
const UNSUPPORTED_SECTIONS: &[&str] = &[
    "userlist",
    "peers",
    "resolvers",
    "cache",
    "program",
    "http-errors",
    "ring",
    "mailers",
    "fcgi-app",
];

impl SectionKind {
    fn from_keyword(word: &str) -> Option<Self> {
        Some(match word {
            "global" => SectionKind::Global,
            "defaults" => SectionKind::Defaults,
            "listen" => SectionKind::Listen,
            "frontend" => SectionKind::Frontend,
            "backend" => SectionKind::Backend,
            "log-forward" => SectionKind::LogForward,
            other => SectionKind::Unsupported(UNSUPPORTED_SECTIONS.iter().find(|&&k| k == other)?),
        })
    }

    /// Whether the section must be named.
    fn needs_name(self) -> bool {
        !matches!(self, SectionKind::Global | SectionKind::Defaults)
    }

    /// `defaults`, `listen`, `frontend` or `backend`: the sections that may say
    /// `from DEFAULTS`.
    fn is_proxy(self) -> bool {
        matches!(
            self,
            SectionKind::Defaults
                | SectionKind::Listen
                | SectionKind::Frontend
                | SectionKind::Backend
        )
    }
}

/// One configuration line inside a section: its words, unquoted and unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line number.
    pub line: usize,
    /// The keyword and its arguments.
    pub words: Vec<String>,
}

/// A section and its directives, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// What kind of section.
    pub kind: SectionKind,
    /// Its name (`None` for `global`, and for `defaults` without one).
    pub name: Option<String>,
    /// Line of the section keyword.
    pub line: usize,
    /// `from DEFAULTS` after the name: the named `defaults` section it starts from.
    pub from: Option<String>,
    /// Its directives.
    pub directives: Vec<Directive>,
}

/// A parsed config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file's name, for diagnostics.
    pub file: String,
    /// Sections in file order.
    pub sections: Vec<Section>,
}

/// A server line's traffic settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerWeight {
    /// The server's name.
    pub name: String,
    /// `weight` (HAProxy's default 1).
    pub weight: u32,
    /// Only used when every active server is down.
    pub backup: bool,
    /// Starts in maintenance (`disabled`): takes no traffic until enabled at runtime.
    pub disabled: bool,
}

impl ServerWeight {
    /// The weight round robin gives it among the active servers: 0 for backup and disabled
    /// servers.
    pub fn balanced_weight(&self) -> u32 {
        if self.backup || self.disabled {
            0
        } else {
            self.weight
        }
    }
}

impl ConfigFile {
    /// Reads and splits a config file into sections.
    pub fn read(path: &Path) -> Result<Self, Diagnostic> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Diagnostic {
            file: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&file, &text)
    }

    /// Splits config text into sections; `file` names it in diagnostics.
    pub fn parse(file: &str, text: &str) -> Result<Self, Diagnostic> {
        let (config, errors) = Self::parse_all(file, text);
        match errors.into_iter().next() {
            Some(first) => Err(first),
            None => Ok(config),
        }
    }

    /// Splits config text into sections like [`ConfigFile::parse`], but goes on after an error
    /// and returns every one, as `haproxy -c` lists them all. A line in error is skipped; a
    /// section missing its name is kept without one, so its lines are not taken for the
    /// previous section's.
    pub fn parse_all(file: &str, text: &str) -> (Self, Vec<Diagnostic>) {
        let error = |line, message: String| Diagnostic {
            file: file.to_owned(),
            line,
            message,
        };
        let mut sections: Vec<Section> = Vec::new();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let words = match split_words(raw) {
                Ok(words) => words,
                Err(m) => {
                    errors.push(error(line, m));
                    continue;
                }
            };
            let Some(keyword) = words.first() else {
                continue;
            };
            if let Some(kind) = SectionKind::from_keyword(keyword) {
                let name = words.get(1).cloned();
                if kind.needs_name() && name.is_none() {
                    errors.push(error(line, format!("'{keyword}' needs a name")));
                }
                let from = match words.get(2..).unwrap_or_default() {
                    _ if !kind.is_proxy() => None,
                    [] => None,
                    [from, defaults] if from == "from" => Some(defaults.clone()),
                    extra => {
                        errors.push(error(
                            line,
                            format!(
                                "unexpected '{}' after the name of '{keyword}' (expected nothing \
                                 or 'from DEFAULTS')",
                                extra.join(" ")
                            ),
                        ));
                        None
                    }
                };
                sections.push(Section {
                    kind,
                    name,
                    line,
                    from,
                    directives: Vec::new(),
                });
                continue;
            }
            match sections.last_mut() {
                Some(section) => section.directives.push(Directive { line, words }),
                None => errors.push(error(
                    line,
                    format!("'{keyword}' is outside of any section"),
                )),
            }
        }
        let config = ConfigFile {
            file: file.to_owned(),
            sections,
        };
        (config, errors)
    }

    /// The servers of every backend and listen section, with the weights `default-server`
    /// lines (in `defaults` or the section itself) and `server` lines give them.
    pub fn server_weights(&self) -> Result<HashMap<String, Vec<ServerWeight>>, Diagnostic> {
        let mut out = HashMap::new();
        let mut defaults = ServerDefaults::default();
        for section in &self.sections {
            match section.kind {
                SectionKind::Defaults => {
                    defaults = ServerDefaults::default();
                    for d in &section.directives {
                        if d.words[0] == "default-server" {
                            defaults.apply(&d.words[1..], self.at(d.line))?;
                        }
                    }
                }
                SectionKind::Backend | SectionKind::Listen => {
                    let mut local = defaults.clone();
                    let mut servers = Vec::new();
                    for d in &section.directives {
                        match d.words[0].as_str() {
                            "default-server" => local.apply(&d.words[1..], self.at(d.line))?,
                            "server" => {
                                let Some(name) = d.words.get(1) else {
                                    return Err(self.at(d.line)("'server' needs a name".into()));
                                };
                                let mut own = local.clone();
                                own.apply(d.words.get(3..).unwrap_or_default(), self.at(d.line))?;
                                servers.push(ServerWeight {
                                    name: name.clone(),
                                    weight: own.weight,
                                    backup: own.backup,
                                    disabled: own.disabled,
                                });
                            }
                            _ => {}
                        }
                    }
                    let name = section.name.clone().unwrap_or_default();
                    out.insert(name, servers);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    fn at(&self, line: usize) -> impl Fn(String) -> Diagnostic + '_ {
        move |message| Diagnostic {
            file: self.file.clone(),
            line,
            message,
        }
    }
}

/// The server settings that `default-server` can set and `server` can override.
#[derive(Debug, Clone)]
struct ServerDefaults {
    weight: u32,
    backup: bool,
    disabled: bool,
}

impl Default for ServerDefaults {
    fn default() -> Self {
        ServerDefaults {
            weight: 1,
            backup: false,
            disabled: false,
        }
    }
}

impl ServerDefaults {
    fn apply(
        &mut self,
        options: &[String],
        error: impl Fn(String) -> Diagnostic,
    ) -> Result<(), Diagnostic> {
        let mut words = options.iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "weight" => {
                    let value = words.next().map(String::as_str).unwrap_or_default();
                    self.weight = value.parse().ok().filter(|w| *w <= 256).ok_or_else(|| {
                        error(format!(
                            "'weight' expects an integer from 0 to 256, got '{value}'"
                        ))
                    })?;
                }
                "backup" => self.backup = true,
                "no-backup" => self.backup = false,
                "disabled" => self.disabled = true,
                "enabled" => self.disabled = false,
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "\
global
    log 127.0.0.1 local3
defaults
    mode http
    default-server weight 2
listen myweb
    bind 0.0.0.0:80  # the lab
    balance roundrobin
    server inst1 192.168.10.102:80 check inter 2000 fall 3
    server inst2 192.168.10.103:80 check weight 5
    server spare 192.168.10.104:80 backup
    server off 192.168.10.105:80 disabled
backend api
    default-server weight 3
    server a1 127.0.0.1:81
";

    #[test]
    fn weights_follow_defaults_and_server_lines() {
        let config = ConfigFile::parse("lab.cfg", LAB).unwrap();
        assert_eq!(config.sections.len(), 4);
        let weights = config.server_weights().unwrap();
        let myweb: Vec<(&str, u32, bool)> = weights["myweb"]
            .iter()
            .map(|s| (s.name.as_str(), s.weight, s.backup))
            .collect();
        assert_eq!(
            myweb,
            [
                ("inst1", 2, false),
                ("inst2", 5, false),
                ("spare", 2, true),
                ("off", 2, false)
            ]
        );
        let balanced: Vec<u32> = weights["myweb"]
            .iter()
            .map(ServerWeight::balanced_weight)
            .collect();
        assert_eq!(balanced, [2, 5, 0, 0]);
        assert_eq!(weights["api"][0].weight, 3);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = ConfigFile::parse("x.cfg", "  mode http\n").unwrap_err();
        assert_eq!(err.to_string(), "x.cfg:1: 'mode' is outside of any section");
        let err = ConfigFile::parse("x.cfg", "global\nbackend\n").unwrap_err();
        assert_eq!(err.to_string(), "x.cfg:2: 'backend' needs a name");
        let config =
            ConfigFile::parse("x.cfg", "backend b\n server s 1.2.3.4:80 weight x\n").unwrap();
        assert_eq!(
            config.server_weights().unwrap_err().to_string(),
            "x.cfg:2: 'weight' expects an integer from 0 to 256, got 'x'"
        );
    }
}
