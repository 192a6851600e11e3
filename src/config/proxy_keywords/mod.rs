//! The keywords of `global`, `defaults`, `listen`, `frontend` and `backend` sections: one
//! function per keyword family, each applying one line to a [`Draft`] (or the [`GlobalDraft`]).
//! `proxy.rs` turns the drafts into the typed model, with HAProxy's defaults, once the whole
//! file is read. `bind` and `server` lines are in `addresses.rs`, `acl` and `use_backend` in
//! `acl.rs`, `log` in `log.rs`.
//!
//! Every line ends up in a setting or in a finding: a keyword HAProxy 2.6 knows but halyard does
//! not implement is a warning naming its line, never silently dropped. Where a keyword may be
//! used follows the keyword matrix of HAProxy's configuration manual (section 4.1).

mod acl;
mod addresses;
mod log;
mod stats;

use std::collections::HashMap;

use super::compression::{compression, Compression};
use super::proxy::{
    Balance, Bind, Capture, CookieMode, CookiePersistence, DenyRule, ExpectStatus, Findings,
    HashType, HttpCheck, LogTarget, Mode, Options, RejectRule, Server, StatsPage, StatsSocket,
    Timeouts, UseBackend,
};
use super::values::parse_time;
use super::{Directive, SectionKind};
use acl::{acl, http_request, tcp_request, use_backend};
use addresses::{bind, server};
use log::{log, log_target};
use stats::{global_stats, stats};

pub(super) use acl::Acl;
pub(super) use addresses::ServerParams;
pub(super) use log::LogEntry;

/// The section a line is in, for placement checks and messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx<'a> {
    /// `Defaults`, `Listen`, `Frontend` or `Backend`.
    pub kind: SectionKind,
    /// The section's name (empty for an anonymous `defaults`).
    pub name: &'a str,
}

impl Ctx<'_> {
    fn is_frontend(&self) -> bool {
        matches!(self.kind, SectionKind::Frontend | SectionKind::Listen)
    }

    fn is_backend(&self) -> bool {
        matches!(self.kind, SectionKind::Backend | SectionKind::Listen)
    }

    /// The section keyword: `frontend`, ...
    fn keyword(&self) -> &'static str {
        match self.kind {
            SectionKind::Defaults => "defaults",
            SectionKind::Listen => "listen",
            SectionKind::Frontend => "frontend",
            _ => "backend",
        }
    }

    /// `frontend 'fe'`, as HAProxy names a proxy in messages.
    pub fn describe(&self) -> String {
        format!("{} '{}'", self.keyword(), self.name)
    }
}

/// The settings of a `defaults` section or a proxy while its lines are read: `None` where
/// HAProxy's default applies, resolved once in `proxy.rs`. A proxy starts from a copy of its
/// `defaults` draft.
#[derive(Debug, Clone, Default)]
pub(super) struct Draft {
    pub mode: Option<Mode>,
    pub balance: Option<Balance>,
    pub hash_type: Option<HashType>,
    pub server_defaults: ServerParams,
    /// `option httpchk` (its `expect` is kept apart in `expect`).
    pub http_check: Option<HttpCheck>,
    /// `http-check expect status` and its line.
    pub expect: Option<(ExpectStatus, usize)>,
    pub retries: Option<u32>,
    pub options: Options,
    /// Line of the `option httplog` in effect (0 when none).
    pub httplog_line: usize,
    pub logs: Vec<LogEntry>,
    pub timeouts: Timeouts,
    pub maxconn: Option<usize>,
    /// `default_backend` and its line.
    pub default_backend: Option<(String, usize)>,
    pub binds: Vec<Bind>,
    pub rules: Vec<UseBackend>,
    /// A `use_backend` without condition, and its line: it takes every request the rules
    /// before it did not, so it acts as the default backend.
    pub always: Option<(String, usize)>,
    pub acls: HashMap<String, Acl>,
    pub servers: Vec<Server>,
    pub request_captures: Vec<Capture>,
    pub response_captures: Vec<Capture>,
    pub cookie: Option<CookiePersistence>,
    pub deny: Vec<DenyRule>,
    pub reject: Vec<RejectRule>,
    /// The stats page, and the line of its first `stats` keyword.
    pub stats: Option<(StatsPage, usize)>,
    pub compression: Compression,
    /// A `bind` or `server` line was in error: "no bind" or "no server" would only repeat it.
    pub bind_failed: bool,
    pub server_failed: bool,
}

/// The `global` section while it is read.
#[derive(Debug, Clone, Default)]
pub(super) struct GlobalDraft {
    pub logs: Vec<LogTarget>,
    pub maxconn: Option<usize>,
    pub nbthread: Option<usize>,
    pub stats_sockets: Vec<StatsSocket>,
}

type Outcome = Result<(), String>;

/// Applies one line of a `defaults`, `listen`, `frontend` or `backend` section; errors,
/// warnings and notes go to `out`.
pub(super) fn apply(draft: &mut Draft, ctx: Ctx, d: &Directive, out: &mut Findings) {
    let line = d.line;
    let words: Vec<&str> = d.words.iter().map(String::as_str).collect();
    let (keyword, args) = (words[0], &words[1..]);
    if !placed(ctx, &placement_key(keyword, args), line, out) {
        return;
    }
    let outcome = match keyword {
        "bind" => bind(draft, args, line, out),
        "mode" => mode(draft, args),
        "default_backend" => one(keyword, args).map(|b| {
            draft.default_backend = Some((b.to_owned(), line));
        }),
        "use_backend" => use_backend(draft, args, line, out),
        "acl" => acl(draft, ctx, args, line, out),
        "http-request" => http_request(draft, args, line, out),
        "tcp-request" => tcp_request(draft, args, line, out),
        "balance" => balance(draft, args, line, out),
        "hash-type" => hash_type(draft, args, line, out),
        "server" => server(draft, ctx, args, line, out),
        "default-server" => draft
            .server_defaults
            .apply(args, "'default-server'", line, out),
        "option" => option(draft, args, true, line, out),
        "no" => no(draft, args, line, out),
        "http-check" => http_check(draft, args, line, out),
        "retries" => number(keyword, args).map(|n| draft.retries = Some(n)),
        "timeout" => timeout(&mut draft.timeouts, args, line, out),
        "maxconn" => number(keyword, args).map(|n| draft.maxconn = Some(n)),
        "log" => log(args, line, out).map(|entry| draft.logs.extend(entry)),
        "capture" => capture(draft, args, line, out),
        "cookie" => cookie(draft, args, line, out),
        "stats" => stats(draft, args, line, out),
        "compression" => compression(&mut draft.compression, ctx.kind, args, line, out),
        k if listed(PROXY_KEYWORDS, k) => {
            out.warning(line, format!("'{k}' is not supported yet, ignored"));
            Ok(())
        }
        k => {
            let section = ctx.keyword();
            out.warning(
                line,
                format!("unknown keyword '{k}' in '{section}' section, ignored"),
            );
            Ok(())
        }
    };
    if let Err(message) = outcome {
        draft.bind_failed |= keyword == "bind";
        draft.server_failed |= keyword == "server";
        out.error(line, message);
    }
}

/// The name the keyword matrix gives a line: `option httplog`, `timeout client`, `bind`.
fn placement_key(keyword: &str, args: &[&str]) -> String {
    match (keyword, args) {
        ("option" | "timeout", [what, ..]) => format!("{keyword} {what}"),
        ("no", ["option", what, ..]) => format!("option {what}"),
        ("no", ["log", ..]) => "log".to_owned(),
        _ => keyword.to_owned(),
    }
}

const D: u8 = 1;
const F: u8 = 2;
const B: u8 = 4;

/// Where HAProxy allows a keyword halyard implements (defaults `D`, frontend `F`, backend
/// `B`), and whether using it where it has no meaning is an error (it shapes the proxy) or a
/// warning (a setting that would be ignored, as HAProxy warns).
fn placement(key: &str) -> Option<(u8, bool)> {
    Some(match key {
        "bind" | "use_backend" | "http-request" | "tcp-request" => (F, true),
        "default_backend" => (D | F, true),
        "server" => (B, true),
        "default-server" => (D | B, true),
        "capture" => (F, false),
        "timeout client" | "maxconn" | "option httplog" | "option dontlognull" => (D | F, false),
        "balance"
        | "hash-type"
        | "retries"
        | "http-check"
        | "option httpchk"
        | "option redispatch"
        | "option log-health-checks"
        | "timeout connect"
        | "timeout server"
        | "timeout queue"
        | "timeout check"
        | "cookie" => (D | B, false),
        "compression" => (D | F | B, false),
        _ => return None,
    })
}

/// Whether a keyword may be used in this section; reports it when not.
fn placed(ctx: Ctx, key: &str, line: usize, out: &mut Findings) -> bool {
    let Some((allowed, shapes_proxy)) = placement(key) else {
        return true;
    };
    if ctx.kind == SectionKind::Defaults {
        if allowed & D == 0 {
            out.error(line, format!("'{key}' not allowed in 'defaults' section"));
            return false;
        }
        return true;
    }
    let has = if ctx.is_frontend() { F } else { 0 } | if ctx.is_backend() { B } else { 0 };
    if allowed & has != 0 {
        return true;
    }
    let lacking = if has == F { "backend" } else { "frontend" };
    let proxy = ctx.describe();
    if shapes_proxy {
        out.error(
            line,
            format!("'{key}' not allowed because {proxy} has no {lacking} capability"),
        );
    } else {
        out.warning(
            line,
            format!("'{key}' ignored because {proxy} has no {lacking} capability"),
        );
    }
    false
}

/// The single argument of a keyword.
fn one<'a>(keyword: &str, args: &[&'a str]) -> Result<&'a str, String> {
    match args {
        [value] => Ok(value),
        _ => Err(format!("'{keyword}' expects one argument")),
    }
}

/// A number argument.
fn number<T: std::str::FromStr>(keyword: &str, args: &[&str]) -> Result<T, String> {
    let value = one(keyword, args)?;
    value
        .parse()
        .map_err(|_| format!("'{keyword}' expects a number, got '{value}'"))
}

fn mode(draft: &mut Draft, args: &[&str]) -> Outcome {
    draft.mode = Some(match one("mode", args)? {
        "http" => Mode::Http,
        "tcp" => Mode::Tcp,
        other => return Err(format!("'mode' expects 'http' or 'tcp', got '{other}'")),
    });
    Ok(())
}

/// `balance ALGORITHM [ARGS]`.
fn balance(draft: &mut Draft, args: &[&str], line: usize, out: &mut Findings) -> Outcome {
    let Some((&algo, mut params)) = args.split_first() else {
        return Err("'balance' expects an algorithm".to_owned());
    };
    let balance = match algo {
        "roundrobin" => Balance::RoundRobin,
        "static-rr" => Balance::StaticRr,
        "leastconn" => Balance::LeastConn,
        "first" => Balance::First,
        "source" => Balance::Source,
        "uri" => Balance::Uri,
        "url_param" => {
            let Some((name, rest)) = params.split_first() else {
                return Err("'balance url_param' expects a parameter name".to_owned());
            };
            params = rest;
            Balance::UrlParam((*name).to_owned())
        }
        "random" => Balance::Random(2),
        _ if algo == "rdp-cookie" || algo.starts_with("rdp-cookie(") => {
            out.warning(
                line,
                format!("'balance {algo}' is not supported yet, ignored"),
            );
            return Ok(());
        }
        _ => match inner(algo, "hdr(") {
            Some(name) if !name.is_empty() => Balance::Hdr(name.to_owned()),
            _ => match inner(algo, "random(").map(str::parse::<u32>) {
                Some(Ok(draws)) if draws >= 1 => Balance::Random(draws),
                _ => {
                    return Err(format!(
                        "unknown balance algorithm '{algo}' (expected roundrobin, static-rr, \
                         leastconn, first, source, uri, url_param, hdr(NAME) or random[(N)])"
                    ))
                }
            },
        },
    };
    if !params.is_empty() {
        let params = params.join(" ");
        if matches!(
            balance,
            Balance::Uri | Balance::UrlParam(_) | Balance::Hdr(_)
        ) {
            out.warning(
                line,
                format!("'balance {algo}' options are not supported yet, ignored: {params}"),
            );
        } else {
            return Err(format!(
                "'balance {algo}' takes no argument, got '{params}'"
            ));
        }
    }
    draft.balance = Some(balance);
    Ok(())
}

/// `NAME` in `prefixNAME)`.
fn inner<'a>(word: &'a str, prefix: &str) -> Option<&'a str> {
    word.strip_prefix(prefix)?.strip_suffix(')')
}

/// `hash-type map-based|consistent [FUNCTION [avalanche]]`.
fn hash_type(draft: &mut Draft, args: &[&str], line: usize, out: &mut Findings) -> Outcome {
    let (method, rest) = args.split_first().unwrap_or((&"", &[]));
    draft.hash_type = Some(match *method {
        "map-based" => HashType::MapBased,
        "consistent" => HashType::Consistent,
        other => {
            return Err(format!(
                "'hash-type' expects 'map-based' or 'consistent', got '{other}'"
            ))
        }
    });
    match rest {
        [] => {}
        [function, modifier @ ..]
            if ["sdbm", "djb2", "wt6", "crc32", "none"].contains(function)
                && matches!(modifier, [] | ["avalanche"]) =>
        {
            out.note(
                line,
                format!(
                    "hash function '{}' ignored: halyard has one",
                    rest.join(" ")
                ),
            );
        }
        _ => return Err(format!("unknown hash function '{}'", rest.join(" "))),
    }
    Ok(())
}

/// `option NAME [ARGS]` (`enable`) and `no option NAME` (not `enable`).
fn option(
    draft: &mut Draft,
    args: &[&str],
    enable: bool,
    line: usize,
    out: &mut Findings,
) -> Outcome {
    let Some((&name, rest)) = args.split_first() else {
        return Err("'option' expects an option name".to_owned());
    };
    let o = &mut draft.options;
    let flag = match name {
        "httpchk" => return httpchk(draft, rest, enable),
        "httplog" => {
            draft.httplog_line = if enable { line } else { 0 };
            o.tcplog &= !enable;
            &mut o.httplog
        }
        "tcplog" => {
            o.httplog &= !enable;
            &mut o.tcplog
        }
        "dontlognull" => &mut o.dontlognull,
        "forwardfor" => &mut o.forwardfor,
        "redispatch" => &mut o.redispatch,
        "log-health-checks" => &mut o.log_health_checks,
        _ => {
            let prefix = if enable { "" } else { "no " };
            if listed(OPTIONS, name) {
                out.warning(
                    line,
                    format!("'{prefix}option {name}' is not supported yet, ignored"),
                );
            } else {
                out.warning(line, format!("unknown option '{name}', ignored"));
            }
            return Ok(());
        }
    };
    *flag = enable;
    if !rest.is_empty() {
        out.warning(
            line,
            format!(
                "'option {name}' arguments are not supported yet, ignored: {}",
                rest.join(" ")
            ),
        );
    }
    Ok(())
}

/// `option httpchk [[METHOD] URI [VERSION]]`.
fn httpchk(draft: &mut Draft, args: &[&str], enable: bool) -> Outcome {
    if !enable {
        draft.http_check = None;
        return Ok(());
    }
    let (method, uri, version) = match args {
        [] => ("OPTIONS", "/", "HTTP/1.0"),
        [uri] => ("OPTIONS", *uri, "HTTP/1.0"),
        [method, uri] => (*method, *uri, "HTTP/1.0"),
        [method, uri, version] => (*method, *uri, *version),
        _ => return Err("'option httpchk' expects [[METHOD] URI [VERSION]]".to_owned()),
    };
    draft.http_check = Some(HttpCheck {
        method: method.to_owned(),
        uri: uri.to_owned(),
        version: version.to_owned(),
        expect: None,
    });
    Ok(())
}

/// `no option NAME` and `no log`.
fn no(draft: &mut Draft, args: &[&str], line: usize, out: &mut Findings) -> Outcome {
    match args {
        ["option", rest @ ..] => option(draft, rest, false, line, out),
        ["log"] => {
            draft.logs.clear();
            Ok(())
        }
        ["log", ..] => Err("'no log' takes no argument".to_owned()),
        _ => {
            out.warning(
                line,
                format!("'no {}' is not supported yet, ignored", args.join(" ")),
            );
            Ok(())
        }
    }
}

/// `http-check expect [!] status CODE`; other `http-check` rules are warned about.
fn http_check(draft: &mut Draft, args: &[&str], line: usize, out: &mut Findings) -> Outcome {
    let unsupported = |out: &mut Findings| {
        out.warning(
            line,
            format!(
                "'http-check {}' is not supported yet, ignored",
                args.join(" ")
            ),
        );
        Ok(())
    };
    let ["expect", rule @ ..] = args else {
        return match args {
            [] => Err("'http-check' expects a rule".to_owned()),
            _ => unsupported(out),
        };
    };
    let (negate, rule) = match rule {
        ["!", rest @ ..] => (true, rest.to_vec()),
        [first, rest @ ..] if first.len() > 1 && first.starts_with('!') => {
            let mut words = vec![&first[1..]];
            words.extend_from_slice(rest);
            (true, words)
        }
        _ => (false, rule.to_vec()),
    };
    match rule.as_slice() {
        ["status", code] => match code.parse::<u16>() {
            Ok(status) if (100..=599).contains(&status) => {
                draft.expect = Some((ExpectStatus { negate, status }, line));
                Ok(())
            }
            _ if code.contains([',', '-']) => unsupported(out),
            _ => Err(format!(
                "'http-check expect status' expects a status code, got '{code}'"
            )),
        },
        _ => unsupported(out),
    }
}

/// `timeout NAME TIME`.
fn timeout(timeouts: &mut Timeouts, args: &[&str], line: usize, out: &mut Findings) -> Outcome {
    let [name, value] = args else {
        return Err("'timeout' expects a name and a time".to_owned());
    };
    let slot = match *name {
        "connect" => &mut timeouts.connect,
        "client" => &mut timeouts.client,
        "server" => &mut timeouts.server,
        "http-request" => &mut timeouts.http_request,
        "http-keep-alive" => &mut timeouts.http_keep_alive,
        "queue" => &mut timeouts.queue,
        "check" => &mut timeouts.check,
        "tunnel" | "client-fin" | "server-fin" | "tarpit" => {
            out.warning(
                line,
                format!("'timeout {name}' is not supported yet, ignored"),
            );
            return Ok(());
        }
        other => {
            out.warning(line, format!("unknown timeout '{other}', ignored"));
            return Ok(());
        }
    };
    *slot = Some(parse_time(value).map_err(|e| format!("'timeout {name}': {e}"))?);
    Ok(())
}

/// `cookie NAME insert|rewrite [indirect] [nocache] [httponly] [secure]`.
fn cookie(draft: &mut Draft, args: &[&str], line: usize, out: &mut Findings) -> Outcome {
    let [name, rest @ ..] = args else {
        return Err("'cookie' expects a cookie name".to_owned());
    };
    let mut cookie = CookiePersistence {
        name: (*name).to_owned(),
        mode: CookieMode::Insert,
        indirect: false,
        nocache: false,
        httponly: false,
        secure: false,
    };
    let mut mode = None;
    let mut ignored = Vec::new();
    let mut words = rest.iter();
    while let Some(&word) = words.next() {
        match word {
            "insert" => mode = Some(CookieMode::Insert),
            "rewrite" => mode = Some(CookieMode::Rewrite),
            "indirect" => cookie.indirect = true,
            "nocache" => cookie.nocache = true,
            "httponly" => cookie.httponly = true,
            "secure" => cookie.secure = true,
            "prefix" => mode = Some(CookieMode::Prefix),
            "domain" | "maxidle" | "maxlife" | "dynamic" | "attr" => {
                let value = if matches!(word, "dynamic") {
                    String::new()
                } else {
                    words.next().map_or(String::new(), |v| format!(" {v}"))
                };
                ignored.push(format!("{word}{value}"));
            }
            "preserve" | "postonly" => ignored.push(word.to_owned()),
            other => return Err(format!("'cookie {name}': unknown option '{other}'")),
        }
    }
    let Some(mode) = mode else {
        return Err(format!(
            "'cookie {name}' needs 'insert', 'rewrite' or 'prefix' (passive mode is not supported)"
        ));
    };
    if !ignored.is_empty() {
        out.warning(
            line,
            format!(
                "'cookie {name}': not supported yet, ignored: {}",
                ignored.join(" ")
            ),
        );
    }
    cookie.mode = mode;
    draft.cookie = Some(cookie);
    Ok(())
}

/// `capture request|response header NAME len N`.
fn capture(draft: &mut Draft, args: &[&str], line: usize, out: &mut Findings) -> Outcome {
    let (list, name, len) = match args {
        ["request", "header", name, "len", len] => (&mut draft.request_captures, name, len),
        ["response", "header", name, "len", len] => (&mut draft.response_captures, name, len),
        ["cookie", ..] => {
            out.warning(
                line,
                "'capture cookie' is not supported yet, ignored".to_owned(),
            );
            return Ok(());
        }
        _ => {
            return Err(
                "'capture' expects 'request header NAME len N' or 'response header NAME len N'"
                    .to_owned(),
            )
        }
    };
    let len = len
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("'capture' expects a positive length, got '{len}'"))?;
    list.push(Capture {
        name: (*name).to_owned(),
        len,
    });
    Ok(())
}

/// Applies one line of the `global` section.
pub(super) fn apply_global(global: &mut GlobalDraft, d: &Directive, out: &mut Findings) {
    let line = d.line;
    let words: Vec<&str> = d.words.iter().map(String::as_str).collect();
    let (keyword, args) = (words[0], &words[1..]);
    let outcome = match keyword {
        "log" if args.first() == Some(&"global") => {
            Err("'log global' is only valid in proxies".to_owned())
        }
        "log" => log_target(args, line, out).map(|target| global.logs.extend(target)),
        "maxconn" => number(keyword, args).map(|n| global.maxconn = Some(n)),
        "nbthread" => number(keyword, args).and_then(|n| {
            if (1..=256).contains(&n) {
                global.nbthread = Some(n);
                Ok(())
            } else {
                Err(format!("'nbthread' expects 1 to 256, got {n}"))
            }
        }),
        "stats" => global_stats(global, args, line, out),
        k if listed(GLOBAL_NOT_NEEDED, k)
            || k.starts_with("tune.")
            || k.starts_with("ssl-default-bind-")
            || k.starts_with("ssl-default-server-") =>
        {
            out.note(line, format!("'{k}' is not needed by halyard, ignored"));
            Ok(())
        }
        k if listed(GLOBAL_KEYWORDS, k) => {
            out.warning(line, format!("'{k}' is not supported yet, ignored"));
            Ok(())
        }
        k => {
            out.warning(
                line,
                format!("unknown keyword '{k}' in 'global' section, ignored"),
            );
            Ok(())
        }
    };
    if let Err(message) = outcome {
        out.error(line, message);
    }
}

/// Whether `word` is in a list of blank-separated keywords.
fn listed(list: &str, word: &str) -> bool {
    list.split_ascii_whitespace().any(|w| w == word)
}

/// Global keywords about HAProxy's own process that halyard has no use for: a note.
const GLOBAL_NOT_NEEDED: &str = "\
     chroot daemon user group uid gid pidfile master-worker ca-base crt-base";

/// HAProxy 2.6's other global keywords (configuration manual, section 3).
const GLOBAL_KEYWORDS: &str = "\
     51degrees-cache-size 51degrees-data-file 51degrees-property-name-list \
     51degrees-property-separator cluster-secret cpu-map default-path description \
     deviceatlas-json-file deviceatlas-log-level deviceatlas-properties-cookie \
     deviceatlas-separator expose-experimental-directives external-check fd-hard-limit \
     grace h1-accept-payload-with-any-method h1-case-adjust h1-case-adjust-file \
     h2-workaround-bogus-websocket-clients hard-stop-after httpclient.resolvers.id \
     httpclient.resolvers.prefer httpclient.ssl.ca-file httpclient.ssl.verify \
     insecure-fork-wanted insecure-setuid-wanted issuers-chain-path localpeer \
     log-send-hostname log-tag lua-load lua-load-per-thread lua-prepend-path \
     mworker-max-reloads node numa-cpu-mapping pp2-never-send-local presetenv resetenv \
     set-dumpable set-var setenv ssl-dh-param-file ssl-propquery ssl-provider \
     ssl-provider-path ssl-server-verify ssl-skip-self-issued-ca strict-limits ulimit-n \
     unix-bind unsetenv wurfl-cache-size wurfl-data-file wurfl-information-list \
     wurfl-information-list-separator busy-polling max-spread-checks maxcompcpuusage \
     maxcomprate maxconnrate maxpipes maxsessrate maxsslconn maxsslrate maxzlibmem \
     no-memory-trimming noepoll noevports nogetaddrinfo nokqueue nopoll noreuseport \
     nosplice profiling.tasks server-state-base server-state-file spread-checks ssl-engine \
     ssl-mode-async quiet zero-warning";

/// HAProxy 2.6's proxy keywords (configuration manual, section 4.1).
const PROXY_KEYWORDS: &str = "\
     acl backlog balance bind bind-process capture clitcpka-cnt clitcpka-idle \
     clitcpka-intvl cookie declare default-server default_backend description \
     disabled dispatch email-alert enabled errorfile errorfiles errorloc errorloc302 \
     errorloc303 error-log-format force-persist filter fullconn hash-type \
     http-after-response http-check http-error http-request http-response http-reuse \
     http-send-name-header id ignore-persist load-server-state-from-file log log-format \
     log-format-sd log-tag max-keep-alive-queue maxconn mode monitor monitor-uri option \
     external-check persist rate-limit redirect retries retry-on server \
     server-state-file-name server-template source srvtcpka-cnt srvtcpka-idle \
     srvtcpka-intvl stats stick stick-table tcp-check tcp-request tcp-response timeout \
     unique-id-format unique-id-header use_backend use-fcgi-app use-server";

/// HAProxy 2.6's `option` names (configuration manual, section 4.1).
const OPTIONS: &str = "\
     abortonclose accept-invalid-http-request accept-invalid-http-response allbackups \
     checkcache clitcpka contstats disable-h2-upgrade dontlog-normal \
     h1-case-adjust-bogus-client h1-case-adjust-bogus-server http-buffer-request \
     http-ignore-probes http-keep-alive http-no-delay http-pretend-keepalive \
     http-restrict-req-hdr-names http-server-close http-use-proxy-header httpclose httpslog \
     independent-streams ldap-check external-check log-separate-errors logasap mysql-check \
     nolinger originalto persist pgsql-check prefer-last-server redis-check smtpchk \
     socket-stats splice-auto splice-request splice-response spop-check srvtcpka \
     ssl-hello-chk tcp-check tcp-smart-accept tcp-smart-connect tcpka transparent \
     idle-close-on-response";

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use crate::config::{
        Backend, Balance, Capture, CheckedConfig, CookieMode, CookiePersistence, ExpectStatus,
        Options,
    };

    /// A `defaults` section with the timeouts HAProxy wants, so only what a test is about
    /// shows: 4 lines.
    pub(crate) const TIMEOUTS: &str =
        "defaults\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n";

    /// Findings as `LINE: level: message`.
    pub(crate) fn findings(text: &str) -> Vec<String> {
        CheckedConfig::from_text("t.cfg", text)
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{}: {}: {}",
                    f.diagnostic.line, f.level, f.diagnostic.message
                )
            })
            .collect()
    }

    /// Backend `be` with one server and `lines` from line 7, and the findings.
    pub(crate) fn backend(lines: &str) -> (Option<Backend>, Vec<String>) {
        // `mode http` last, so the lines under test keep their numbers.
        let text = format!("{TIMEOUTS}backend be\n server s 10.0.0.1:80\n{lines}\n mode http\n");
        let checked = CheckedConfig::from_text("t.cfg", &text);
        let backend = checked.config.map(|c| c.backends[0].clone());
        (backend, findings(&text))
    }

    #[test]
    fn keywords_out_of_place_are_errors_or_warnings_as_in_haproxy() {
        let text = "\
defaults
    bind :80
    capture request header Host len 10
frontend fe
    bind :80
    server s 10.0.0.1:80
    default-server inter 1s
    balance leastconn
    timeout server 1s
    timeout client 1s
    default_backend be
backend be
    bind :81
    default_backend be
    use_backend be if { path_beg /x }
    timeout client 1s
    option httplog
    maxconn 10
    timeout connect 1s
    timeout server 1s
    server s 10.0.0.1:80
";
        assert_eq!(
            findings(text),
            [
                "2: error: 'bind' not allowed in 'defaults' section",
                "3: error: 'capture' not allowed in 'defaults' section",
                "6: error: 'server' not allowed because frontend 'fe' has no backend capability",
                "7: error: 'default-server' not allowed because frontend 'fe' has no backend capability",
                "8: warning: 'balance' ignored because frontend 'fe' has no backend capability",
                "9: warning: 'timeout server' ignored because frontend 'fe' has no backend capability",
                "13: error: 'bind' not allowed because backend 'be' has no frontend capability",
                "14: error: 'default_backend' not allowed because backend 'be' has no frontend capability",
                "15: error: 'use_backend' not allowed because backend 'be' has no frontend capability",
                "16: warning: 'timeout client' ignored because backend 'be' has no frontend capability",
                "17: warning: 'option httplog' ignored because backend 'be' has no frontend capability",
                "18: warning: 'maxconn' ignored because backend 'be' has no frontend capability",
            ]
        );
    }

    #[test]
    fn haproxy_settings_halyard_lacks_are_notes_or_warnings() {
        let text = format!(
            "\
global
    chroot /var/lib/haproxy
    daemon
    user haproxy
    group haproxy
    pidfile /run/haproxy.pid
    nbthread 4
    master-worker
    ca-base /etc/ssl/certs
    ssl-default-bind-ciphers ECDHE
    tune.ssl.default-dh-param 2048
    stats socket /run/haproxy/admin.sock mode 660 level admin
    stats timeout 30s
    log-send-hostname
    frobnicate yes
{TIMEOUTS}\
frontend fe
    bind :80 alpn h2 frob
    http-request set-header X-A b
    option http-server-close
    no option http-server-close
    option frobnicate
    timeout tunnel 1h
    timeout bogus 1s
    default_backend be
peers mypeers
    peer a 127.0.0.1:1000
backend be
    cookie SRV insert indirect nocache
    server s 10.0.0.1:80 send-proxy cookie s1 wibble no-sslv3
    mode http
"
        );
        assert!(CheckedConfig::from_text("t.cfg", &text).config.is_some());
        assert_eq!(
            findings(&text),
            [
                "2: note: 'chroot' is not needed by halyard, ignored",
                "3: note: 'daemon' is not needed by halyard, ignored",
                "4: note: 'user' is not needed by halyard, ignored",
                "5: note: 'group' is not needed by halyard, ignored",
                "6: note: 'pidfile' is not needed by halyard, ignored",
                "8: note: 'master-worker' is not needed by halyard, ignored",
                "9: note: 'ca-base' is not needed by halyard, ignored",
                "10: note: 'ssl-default-bind-ciphers' is not needed by halyard, ignored",
                "11: note: 'tune.ssl.default-dh-param' is not needed by halyard, ignored",
                "13: note: 'stats timeout' is not needed by halyard, ignored",
                "14: warning: 'log-send-hostname' is not supported yet, ignored",
                "15: warning: unknown keyword 'frobnicate' in 'global' section, ignored",
                "21: warning: 'bind :80': 'alpn h2' is not supported yet, ignored",
                "21: warning: 'bind :80': unknown keyword 'frob', ignored",
                "22: warning: 'http-request set-header' is not supported yet, ignored",
                "23: warning: 'option http-server-close' is not supported yet, ignored",
                "24: warning: 'no option http-server-close' is not supported yet, ignored",
                "25: warning: unknown option 'frobnicate', ignored",
                "26: warning: 'timeout tunnel' is not supported yet, ignored",
                "27: warning: unknown timeout 'bogus', ignored",
                "29: warning: section 'peers' not supported, ignored",
                "33: warning: 'server be/s': 'send-proxy' is not supported yet, ignored",
                "33: warning: 'server be/s': unknown keyword 'wibble', ignored",
            ]
        );
    }

    #[test]
    fn cookie_persistence_and_server_cookies() {
        let (be, findings) = backend(
            "cookie SRV insert indirect nocache httponly maxidle 30m\n server t 10.0.0.2:80 cookie t1",
        );
        assert_eq!(
            findings,
            ["7: warning: 'cookie SRV': not supported yet, ignored: maxidle 30m"]
        );
        let be = be.unwrap();
        let expected = CookiePersistence {
            name: "SRV".into(),
            mode: CookieMode::Insert,
            indirect: true,
            nocache: true,
            httponly: true,
            secure: false,
        };
        assert_eq!(be.cookie, Some(expected));
        assert_eq!(be.servers[1].cookie.as_deref(), Some("t1"));
        let (be, findings) = backend("cookie SRV rewrite");
        assert_eq!(
            be.unwrap().cookie.map(|c| c.mode),
            Some(CookieMode::Rewrite)
        );
        assert_eq!(findings, Vec::<String>::new());
        let (be, findings) = backend("cookie SRV");
        assert_eq!(be, None);
        assert_eq!(
            findings,
            ["7: error: 'cookie SRV' needs 'insert', 'rewrite' or 'prefix' (passive mode is not supported)"]
        );
    }

    #[test]
    fn balance_algorithms_and_their_arguments() {
        for (line, want) in [
            ("balance roundrobin", Balance::RoundRobin),
            ("balance static-rr", Balance::StaticRr),
            ("balance leastconn", Balance::LeastConn),
            ("balance first", Balance::First),
            ("balance source", Balance::Source),
            ("balance uri", Balance::Uri),
            ("balance url_param id", Balance::UrlParam("id".to_owned())),
            (
                "balance hdr(User-Agent)",
                Balance::Hdr("User-Agent".to_owned()),
            ),
            ("balance random", Balance::Random(2)),
            ("balance random(5)", Balance::Random(5)),
        ] {
            let (be, findings) = backend(line);
            assert_eq!(findings, Vec::<String>::new(), "{line}");
            assert_eq!(be.unwrap().balance, want, "{line}");
        }
        let (be, findings) = backend("balance uri whole depth 2");
        assert_eq!(be.unwrap().balance, Balance::Uri);
        assert_eq!(
            findings,
            ["7: warning: 'balance uri' options are not supported yet, ignored: whole depth 2"]
        );
        let (be, findings) = backend("balance rdp-cookie");
        assert_eq!(be.unwrap().balance, Balance::RoundRobin);
        assert_eq!(
            findings,
            ["7: warning: 'balance rdp-cookie' is not supported yet, ignored"]
        );
        for (line, error) in [
            (
                "balance fastest",
                "unknown balance algorithm 'fastest' (expected roundrobin, static-rr, \
                 leastconn, first, source, uri, url_param, hdr(NAME) or random[(N)])",
            ),
            ("balance random(0)", "unknown balance algorithm 'random(0)' (expected roundrobin, static-rr, leastconn, first, source, uri, url_param, hdr(NAME) or random[(N)])"),
            ("balance roundrobin now", "'balance roundrobin' takes no argument, got 'now'"),
            ("balance url_param", "'balance url_param' expects a parameter name"),
            ("balance", "'balance' expects an algorithm"),
        ] {
            assert_eq!(backend(line).1, [format!("7: error: {error}")], "{line}");
        }
        let (backend_, findings) = backend("hash-type consistent djb2 avalanche");
        assert_eq!(
            backend_.unwrap().hash_type,
            crate::config::HashType::Consistent
        );
        assert_eq!(
            findings,
            ["7: note: hash function 'djb2 avalanche' ignored: halyard has one"]
        );
        assert_eq!(
            backend("hash-type ring").1,
            ["7: error: 'hash-type' expects 'map-based' or 'consistent', got 'ring'"]
        );
    }

    #[test]
    fn http_checks_take_a_uri_a_method_and_one_status() {
        let check = |lines: &str| backend(lines).0.unwrap().http_check.unwrap();
        let c = check("option httpchk /health");
        assert_eq!(
            (c.method.as_str(), c.uri.as_str(), c.version.as_str()),
            ("OPTIONS", "/health", "HTTP/1.0")
        );
        let c = check("option httpchk HEAD /ping HTTP/1.1\nhttp-check expect status 204");
        assert_eq!(
            (c.method.as_str(), c.uri.as_str(), c.version.as_str()),
            ("HEAD", "/ping", "HTTP/1.1")
        );
        assert_eq!(
            c.expect,
            Some(ExpectStatus {
                negate: false,
                status: 204
            })
        );
        for negated in [
            "http-check expect ! status 503",
            "http-check expect !status 503",
        ] {
            let c = check(&format!("option httpchk\n{negated}"));
            assert_eq!(
                c.expect,
                Some(ExpectStatus {
                    negate: true,
                    status: 503
                }),
                "{negated}"
            );
        }
        assert_eq!(
            backend("option httpchk\nhttp-check expect status 200-299").1,
            ["8: warning: 'http-check expect status 200-299' is not supported yet, ignored"]
        );
        assert_eq!(
            backend("option httpchk\nhttp-check expect string OK\nhttp-check send meth GET").1,
            [
                "8: warning: 'http-check expect string OK' is not supported yet, ignored",
                "9: warning: 'http-check send meth GET' is not supported yet, ignored",
            ]
        );
        assert_eq!(
            backend("option httpchk\nhttp-check expect status 99").1,
            ["8: error: 'http-check expect status' expects a status code, got '99'"]
        );
        let (be, findings) = backend("http-check expect status 200");
        assert_eq!(be.unwrap().http_check, None);
        assert_eq!(
            findings,
            ["7: warning: backend 'be' uses http-check rules without 'option httpchk', so the rules are ignored"]
        );
        assert_eq!(
            backend("option httpchk GET / HTTP/1.1 x").1,
            ["7: error: 'option httpchk' expects [[METHOD] URI [VERSION]]"]
        );
    }

    #[test]
    fn options_switch_on_and_off() {
        let text = format!(
            "{TIMEOUTS}\
frontend fe
    mode http
    bind :80
    option httplog
    option tcplog
    option dontlognull
    no option dontlognull
    option forwardfor except 127.0.0.0/8
    option log-health-checks
    default_backend be
backend be
    mode http
    option redispatch
    server s 10.0.0.1:80
"
        );
        let c = CheckedConfig::from_text("t.cfg", &text).config.unwrap();
        assert_eq!(
            c.frontends[0].options,
            Options {
                tcplog: true,
                forwardfor: true,
                ..Options::default()
            }
        );
        assert_eq!(
            c.backends[0].options,
            Options {
                redispatch: true,
                ..Options::default()
            }
        );
        assert_eq!(
            findings(&text),
            [
                "12: warning: 'option forwardfor' arguments are not supported yet, ignored: except 127.0.0.0/8",
                "13: warning: 'option log-health-checks' ignored because frontend 'fe' has no backend capability",
            ]
        );
    }

    #[test]
    fn values_are_checked() {
        for (line, error) in [
            (
                "timeout server 5x",
                "'timeout server': bad time '5x': expected a number with us, ms, s, m, h or d",
            ),
            ("timeout server", "'timeout' expects a name and a time"),
            ("retries many", "'retries' expects a number, got 'many'"),
            (
                "mode health",
                "'mode' expects 'http' or 'tcp', got 'health'",
            ),
            ("option", "'option' expects an option name"),
            ("no log now", "'no log' takes no argument"),
        ] {
            assert_eq!(backend(line).1, [format!("7: error: {error}")], "{line}");
        }
        let (be, _) = backend("retries 5\ntimeout queue 30s\ntimeout check 2s\nmode http");
        let be = be.unwrap();
        assert_eq!(be.retries, 5);
        assert_eq!(be.timeouts.queue, Some(Duration::from_secs(30)));
        assert_eq!(be.timeouts.check, Some(Duration::from_secs(2)));
        assert_eq!(be.mode, crate::config::Mode::Http);
    }

    #[test]
    fn captures_name_a_header_and_a_length() {
        let text = format!(
            "{TIMEOUTS}\
frontend fe
    bind :80
    capture request header Host len 64
    capture response header Content-Type len 32
    capture cookie SRV len 10
    capture request header X-Id len 0
    capture request header X-Id
    maxconn 500
    default_backend be
backend be
    server s 10.0.0.1:80
"
        );
        let fe = &CheckedConfig::from_text(
            "t.cfg",
            &text.replace(
                "    capture request header X-Id len 0\n    capture request header X-Id\n",
                "",
            ),
        )
        .config
        .unwrap()
        .frontends[0];
        assert_eq!(
            fe.request_captures,
            [Capture {
                name: "Host".to_owned(),
                len: 64
            }]
        );
        assert_eq!(
            fe.response_captures,
            [Capture {
                name: "Content-Type".to_owned(),
                len: 32
            }]
        );
        assert_eq!(fe.maxconn, 500);
        assert_eq!(
            findings(&text),
            [
                "9: warning: 'capture cookie' is not supported yet, ignored",
                "10: error: 'capture' expects a positive length, got '0'",
                "11: error: 'capture' expects 'request header NAME len N' or 'response header NAME len N'",
            ]
        );
    }
}
