//! `bind` and `server` lines: addresses as HAProxy writes them (IPv4, IPv6, host names resolved
//! at start, port ranges for `bind`), `server`/`default-server` parameters, and warnings for
//! the parameters halyard does not implement.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{listed, Ctx, Draft, Outcome};
use crate::config::net::parse_bind_addr;
use crate::config::proxy::{Bind, Findings, Server};
use crate::config::tls::load_certificate;
use crate::config::values::parse_time;

/// What `default-server` sets and each `server` line may override; `None` where HAProxy's
/// default depends on another value (`fastinter` and `downinter` default to `inter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::config) struct ServerParams {
    pub check: bool,
    pub inter: Option<Duration>,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: u32,
    pub fall: u32,
    pub weight: u32,
    pub backup: bool,
    pub disabled: bool,
    pub maxconn: usize,
    pub maxqueue: usize,
    pub slowstart: Option<Duration>,
    pub cookie: Option<String>,
}

/// HAProxy's `inter` when unset.
const DEFAULT_INTER: Duration = Duration::from_millis(2000);

impl Default for ServerParams {
    fn default() -> Self {
        ServerParams {
            check: false,
            inter: None,
            fastinter: None,
            downinter: None,
            rise: 2,
            fall: 3,
            weight: 1,
            backup: false,
            disabled: false,
            maxconn: 0,
            maxqueue: 0,
            slowstart: None,
            cookie: None,
        }
    }
}

/// `bind ADDR[,ADDR...] [params]`: `*:80`, `:80`, `[::]:80`, port ranges `:8080-8082`;
/// `ssl crt FILE` terminates TLS on every address of the line.
pub(super) fn bind(draft: &mut Draft, args: &[&str], line: usize, out: &mut Findings) -> Outcome {
    let Some((list, params)) = args.split_first() else {
        return Err("'bind' expects an address".to_owned());
    };
    let mut addrs = Vec::new();
    for spec in list.split(',') {
        if spec.starts_with('/')
            || spec
                .split_once('@')
                .is_some_and(|(f, _)| !INET.contains(&f))
        {
            out.warning(
                line,
                format!("'bind {spec}': only TCP addresses are supported yet, ignored"),
            );
            continue;
        }
        addrs.extend(bind_addrs(spec)?);
    }
    let who = format!("'bind {list}'");
    let (tls, others) = tls_params(params, &who)?;
    let tls = match tls {
        TlsParams {
            ssl: true,
            crt: None,
        } => {
            return Err(format!(
                "no SSL certificate specified for {who} (use 'crt')"
            ));
        }
        TlsParams {
            ssl: true,
            crt: Some(crt),
        } => {
            let loaded = load_certificate(Path::new(crt)).map_err(|e| format!("{who}: {e}"))?;
            Some(Arc::new(loaded))
        }
        TlsParams { ssl: false, crt } => {
            if let Some(crt) = crt {
                out.warning(
                    line,
                    format!("{who}: 'crt {crt}' without 'ssl' is ignored, the bind is plain TCP"),
                );
            }
            None
        }
    };
    draft.binds.extend(addrs.into_iter().map(|addr| Bind {
        addr,
        tls: tls.clone(),
    }));
    skip_params(&others, BIND_PARAMS_WITH_VALUE, BIND_FLAGS, &who, line, out)
}

/// The TLS parameters of a `bind` line.
struct TlsParams<'a> {
    ssl: bool,
    crt: Option<&'a str>,
}

/// Takes `ssl` and `crt FILE` out of a `bind` line's parameters; the others are returned.
fn tls_params<'a>(params: &[&'a str], who: &str) -> Result<(TlsParams<'a>, Vec<&'a str>), String> {
    let mut tls = TlsParams {
        ssl: false,
        crt: None,
    };
    let mut others = Vec::new();
    let mut params = params.iter();
    while let Some(&p) = params.next() {
        match p {
            "ssl" => tls.ssl = true,
            "crt" => {
                let file = params
                    .next()
                    .ok_or_else(|| format!("{who}: 'crt' expects a value"))?;
                tls.crt = Some(file);
            }
            _ => others.push(p),
        }
    }
    Ok((tls, others))
}

/// The address families of `bind` halyard listens on.
const INET: [&str; 5] = ["ipv4", "ipv6", "tcp", "tcp4", "tcp6"];

/// The addresses of one `bind` address spec.
fn bind_addrs(spec: &str) -> Result<Vec<SocketAddr>, String> {
    let spec = match spec.strip_prefix('*') {
        Some(rest) if rest.starts_with(':') => rest,
        _ => spec,
    };
    let Some((host, ports)) = spec.rsplit_once(':') else {
        return Ok(vec![parse_bind_addr(spec)?]);
    };
    let Some((low, high)) = ports.split_once('-') else {
        return Ok(vec![parse_bind_addr(spec)?]);
    };
    let bad = || format!("bad port range '{ports}' in '{spec}'");
    let low: u16 = low.parse().map_err(|_| bad())?;
    let high: u16 = high.parse().map_err(|_| bad())?;
    if low > high {
        return Err(bad());
    }
    (low..=high)
        .map(|port| parse_bind_addr(&format!("{host}:{port}")))
        .collect()
}

/// Warns about each parameter of a `bind` or `server` line halyard does not implement,
/// consuming the value of those that take one.
fn skip_params(
    params: &[&str],
    with_value: &str,
    flags: &str,
    who: &str,
    line: usize,
    out: &mut Findings,
) -> Outcome {
    let mut params = params.iter();
    while let Some(&p) = params.next() {
        if listed(with_value, p) {
            let value = params
                .next()
                .ok_or_else(|| format!("{who}: '{p}' expects a value"))?;
            out.warning(
                line,
                format!("{who}: '{p} {value}' is not supported yet, ignored"),
            );
        } else if p.starts_with("no-") && listed(flags, p) {
            // Turns off something halyard never does.
        } else if listed(flags, p) {
            out.warning(line, format!("{who}: '{p}' is not supported yet, ignored"));
        } else {
            out.warning(line, format!("{who}: unknown keyword '{p}', ignored"));
        }
    }
    Ok(())
}

/// `server NAME ADDR:PORT [params]`, with the `default-server` settings under it.
pub(super) fn server(
    draft: &mut Draft,
    ctx: Ctx,
    args: &[&str],
    line: usize,
    out: &mut Findings,
) -> Outcome {
    let [name, addr, params @ ..] = args else {
        return Err("'server' expects a name and an address".to_owned());
    };
    let who = format!("'server {}/{name}'", ctx.name);
    if let Some(first) = draft.servers.iter().find(|s| s.name == *name) {
        return Err(format!(
            "{}, another server named '{name}' was already defined at line {}, please use \
             distinct names",
            ctx.describe(),
            first.line
        ));
    }
    let addr = parse_server_addr(addr).map_err(|e| format!("{who}: {e}"))?;
    let mut settings = draft.server_defaults.clone();
    settings.apply(params, &who, line, out)?;
    let inter = settings.inter.unwrap_or(DEFAULT_INTER);
    draft.servers.push(Server {
        name: (*name).to_owned(),
        addr,
        check: settings.check,
        inter,
        fastinter: settings.fastinter.unwrap_or(inter),
        downinter: settings.downinter.unwrap_or(inter),
        rise: settings.rise,
        fall: settings.fall,
        weight: settings.weight,
        backup: settings.backup,
        disabled: settings.disabled,
        maxconn: settings.maxconn,
        maxqueue: settings.maxqueue,
        slowstart: settings.slowstart,
        cookie: settings.cookie.clone(),
        line,
    });
    Ok(())
}

/// A server address: `IP:PORT`, `[IPv6]:PORT`, `IPv6:PORT` or `HOST:PORT` (resolved now, as
/// HAProxy does at start), optionally after `ipv4@` or `ipv6@`.
fn parse_server_addr(spec: &str) -> Result<SocketAddr, String> {
    let bare = spec
        .strip_prefix("ipv4@")
        .or_else(|| spec.strip_prefix("ipv6@"))
        .unwrap_or(spec);
    if bare.contains('@') || bare.starts_with('/') {
        return Err(format!(
            "address '{spec}' is not supported: halyard connects to TCP addresses only"
        ));
    }
    let no_port = || {
        format!(
            "address '{spec}' has no port: halyard does not forward to the client's \
             destination port, write ADDR:PORT"
        )
    };
    match ip_and_port(bare) {
        Some((ip, Some(port))) => return Ok(SocketAddr::new(ip, port)),
        Some((_, None)) => return Err(no_port()),
        None => {}
    }
    let (host, port) = bare.rsplit_once(':').ok_or_else(no_port)?;
    if port.is_empty() {
        return Err(no_port());
    }
    let port = digits(port).ok_or_else(|| {
        format!("bad port '{port}' in '{spec}' (port offsets and ranges are not supported)")
    })?;
    resolve(host, port)
}

/// An IP address and its port if written: `IP:PORT`, `[IPv6]:PORT`, `IPv6:PORT` (the last
/// colon separates the port, as HAProxy reads it), `IP:` or `IP`. `None` for a host name.
pub(super) fn ip_and_port(spec: &str) -> Option<(IpAddr, Option<u16>)> {
    let unbracket = |s: &str| s.trim_start_matches('[').trim_end_matches(']').to_owned();
    if let Ok(addr) = spec.parse::<SocketAddr>() {
        return Some((addr.ip(), Some(addr.port())));
    }
    if let Some((host, port)) = spec.rsplit_once(':') {
        if let Ok(ip) = unbracket(host).parse::<IpAddr>() {
            if port.is_empty() {
                return Some((ip, None));
            }
            if let Some(port) = digits(port) {
                return Some((ip, Some(port)));
            }
        }
    }
    unbracket(spec).parse().ok().map(|ip| (ip, None))
}

/// A port written as digits only (`+1` is an offset to HAProxy, not a port).
pub(super) fn digits(port: &str) -> Option<u16> {
    port.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| port.parse().ok())
        .flatten()
}

/// An IP literal or a name resolved with the system resolver (first address).
pub(super) fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("could not resolve address '{host}'"))
}

impl ServerParams {
    /// Applies the parameters of a `server` or `default-server` line; `who` names it.
    pub(super) fn apply(
        &mut self,
        params: &[&str],
        who: &str,
        line: usize,
        out: &mut Findings,
    ) -> Outcome {
        let mut words = params.iter();
        while let Some(&p) = words.next() {
            let mut value = || {
                words
                    .next()
                    .copied()
                    .ok_or_else(|| format!("{who}: '{p}' expects a value"))
            };
            match p {
                "check" => self.check = true,
                "no-check" => self.check = false,
                "inter" => self.inter = Some(positive_time(who, p, value()?)?),
                "fastinter" => self.fastinter = Some(positive_time(who, p, value()?)?),
                "downinter" => self.downinter = Some(positive_time(who, p, value()?)?),
                "rise" => self.rise = count(who, p, value()?, 1..=u32::MAX)?,
                "fall" => self.fall = count(who, p, value()?, 1..=u32::MAX)?,
                "weight" => self.weight = count(who, p, value()?, 0..=256)?,
                "maxconn" => self.maxconn = count(who, p, value()?, 0..=u32::MAX)? as usize,
                "maxqueue" => self.maxqueue = count(who, p, value()?, 0..=u32::MAX)? as usize,
                // 0 turns it off, as in HAProxy.
                "slowstart" => {
                    let time =
                        parse_time(value()?).map_err(|e| format!("{who}: 'slowstart': {e}"))?;
                    self.slowstart = Some(time).filter(|t| !t.is_zero());
                }
                "cookie" => self.cookie = Some(value()?.to_owned()),
                "backup" => self.backup = true,
                "no-backup" => self.backup = false,
                "disabled" => self.disabled = true,
                "enabled" => self.disabled = false,
                _ if listed(SERVER_PARAMS_WITH_VALUE, p) => {
                    let v = value()?;
                    out.warning(
                        line,
                        format!("{who}: '{p} {v}' is not supported yet, ignored"),
                    );
                }
                _ => skip_params(&[p], "", SERVER_FLAGS, who, line, out)?,
            }
        }
        Ok(())
    }
}

fn positive_time(who: &str, keyword: &str, value: &str) -> Result<Duration, String> {
    parse_time(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{who}: '{keyword}' expects a positive time, got '{value}'"))
}

fn count(
    who: &str,
    keyword: &str,
    value: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, String> {
    value
        .parse()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "{who}: '{keyword}' expects an integer from {} to {}, got '{value}'",
                range.start(),
                range.end()
            )
        })
}

/// `bind` parameters taking a value (configuration manual, section 5.1).
const BIND_PARAMS_WITH_VALUE: &str = "\
     accept-netscaler-cip alpn backlog curves ecdhe ca-file ca-ignore-err ca-sign-file \
     ca-sign-pass ca-verify-file ciphers ciphersuites crl-file crt-ignore-err crt-list \
     expose-fd gid group id interface level severity-output maxconn mode mss name namespace \
     nice npn process proto quic-cc-algo shards ssl-max-ver ssl-min-ver tcp-ut thread \
     tls-ticket-keys uid user verify";

/// `bind` parameters without a value.
const BIND_FLAGS: &str = "\
     accept-proxy allow-0rtt defer-accept force-sslv3 force-tlsv10 force-tlsv11 \
     force-tlsv12 force-tlsv13 generate-certificates no-ca-names no-sslv3 no-tls-tickets \
     no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 prefer-client-ciphers quic-force-retry \
     strict-sni tfo transparent v4v6 v6only";

/// `server` parameters taking a value that halyard does not implement (section 5.2).
const SERVER_PARAMS_WITH_VALUE: &str = "\
     addr agent-send agent-inter agent-addr agent-port alpn ca-file check-alpn check-proto \
     check-sni ciphers ciphersuites crl-file crt error-limit id init-addr log-proto \
     max-reuse minconn namespace npn observe on-error on-marked-down on-marked-up \
     pool-low-conn pool-max-conn pool-purge-delay port proto redir resolve-opts \
     resolve-prefer resolve-net resolvers proxy-v2-options shard sni source \
     ssl-max-ver ssl-min-ver socks4 tcp-ut track verify verifyhost ws";

/// `server` parameters without a value that halyard does not implement.
const SERVER_FLAGS: &str = "\
     agent-check allow-0rtt check-send-proxy check-ssl check-via-socks4 force-sslv3 \
     force-tlsv10 force-tlsv11 force-tlsv12 force-tlsv13 no-agent-check no-check-ssl \
     no-send-proxy no-send-proxy-v2 no-send-proxy-v2-ssl no-send-proxy-v2-ssl-cn no-ssl \
     no-ssl-reuse no-sslv3 no-tls-tickets no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 \
     no-verifyhost no-tfo non-stick send-proxy send-proxy-v2 send-proxy-v2-ssl \
     send-proxy-v2-ssl-cn ssl ssl-reuse stick tfo tls-tickets";

#[cfg(test)]
mod tests {
    use super::super::tests::{backend, findings, TIMEOUTS};
    use super::*;

    #[test]
    fn bind_addresses_in_haproxy_forms() {
        let addrs =
            |spec| bind_addrs(spec).map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>());
        assert_eq!(addrs("*:80").unwrap(), ["0.0.0.0:80"]);
        assert_eq!(addrs(":80").unwrap(), ["0.0.0.0:80"]);
        assert_eq!(addrs(":::8080").unwrap(), ["[::]:8080"]);
        assert_eq!(addrs("[::1]:81").unwrap(), ["[::1]:81"]);
        assert_eq!(addrs("ipv6@:84").unwrap(), ["[::]:84"]);
        assert_eq!(
            addrs("127.0.0.1:8081-8083").unwrap(),
            ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"]
        );
        assert_eq!(
            addrs(":90-80").unwrap_err(),
            "bad port range '90-80' in ':90-80'"
        );
        for bad in ["host:80", "127.0.0.1", ":99999"] {
            assert!(bind_addrs(bad).is_err(), "{bad}");
        }
        let text = format!(
            "{TIMEOUTS}frontend fe\n bind [::1]:80,127.0.0.1:81 v4v6\n bind *:82\n no-such\n"
        );
        let warnings = findings(&text);
        assert!(warnings.contains(
            &"6: warning: 'bind [::1]:80,127.0.0.1:81': 'v4v6' is not supported yet, ignored"
                .to_owned()
        ));
        assert!(warnings.contains(
            &"8: warning: unknown keyword 'no-such' in 'frontend' section, ignored".to_owned()
        ));
        let text = format!(
            "{TIMEOUTS}frontend unix\n bind unix@/run/a.sock,/run/b.sock\n default_backend be\n\
             frontend bad\n bind 127.0.0.1:99999\n default_backend be\n\
             backend be\n server s 10.0.0.1:80\n"
        );
        assert_eq!(
            findings(&text),
            [
                "5: error: frontend 'unix' has no 'bind' directive",
                "6: warning: 'bind unix@/run/a.sock': only TCP addresses are supported yet, ignored",
                "6: warning: 'bind /run/b.sock': only TCP addresses are supported yet, ignored",
                "9: error: bad address '127.0.0.1:99999': expected ADDR:PORT, :PORT, [IPv6]:PORT \
                 or a port number",
            ]
        );
    }

    #[test]
    fn server_addresses_need_a_port() {
        let at = |spec| parse_server_addr(spec).map(|a| a.to_string());
        assert_eq!(at("10.0.0.1:80").unwrap(), "10.0.0.1:80");
        assert_eq!(at("[::1]:80").unwrap(), "[::1]:80");
        assert_eq!(
            at("::1:80").unwrap(),
            "[::1]:80",
            "the last colon separates the port"
        );
        assert_eq!(at("ipv4@10.0.0.1:80").unwrap(), "10.0.0.1:80");
        let local = parse_server_addr("localhost:8080").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 8080, "{local}");
        let no_port = |spec: &str| {
            format!(
                "address '{spec}' has no port: halyard does not forward to the client's \
                 destination port, write ADDR:PORT"
            )
        };
        for spec in [
            "10.0.0.1",
            "10.0.0.1:",
            "::1",
            "2001:db8::1",
            "[::1]",
            "localhost",
        ] {
            assert_eq!(at(spec).unwrap_err(), no_port(spec), "{spec}");
        }
        assert_eq!(
            at("10.0.0.1:+1").unwrap_err(),
            "bad port '+1' in '10.0.0.1:+1' (port offsets and ranges are not supported)"
        );
        assert_eq!(
            at("unix@/run/app.sock").unwrap_err(),
            "address 'unix@/run/app.sock' is not supported: halyard connects to TCP addresses only"
        );
    }

    #[test]
    fn server_parameters_over_default_server() {
        let (be, findings) = backend(
            "default-server check inter 5s rise 5 weight 10 maxconn 50\n\
             server t 10.0.0.2:80 fastinter 1s fall 2 weight 0 backup disabled\n\
             server u 10.0.0.3:80 no-check inter 3s downinter 10s enabled no-backup",
        );
        assert_eq!(findings, Vec::<String>::new());
        let be = be.unwrap();
        let s = &be.servers[0];
        assert!(
            !s.check,
            "default-server only applies to the servers after it"
        );
        assert_eq!(
            (s.inter, s.rise, s.fall, s.weight),
            (DEFAULT_INTER, 2, 3, 1)
        );
        let t = &be.servers[1];
        assert!(t.check && t.backup && t.disabled);
        let secs = Duration::from_secs;
        assert_eq!(
            (t.inter, t.fastinter, t.downinter),
            (secs(5), secs(1), secs(5))
        );
        assert_eq!((t.rise, t.fall, t.weight, t.maxconn), (5, 2, 0, 50));
        let u = &be.servers[2];
        assert!(!u.check && !u.backup && !u.disabled);
        assert_eq!(
            (u.inter, u.fastinter, u.downinter),
            (secs(3), secs(3), secs(10))
        );
        for (params, error) in [
            ("inter 0", "'inter' expects a positive time, got '0'"),
            ("inter", "'inter' expects a value"),
            (
                "weight 257",
                "'weight' expects an integer from 0 to 256, got '257'",
            ),
            (
                "rise 0",
                "'rise' expects an integer from 1 to 4294967295, got '0'",
            ),
            ("port", "'port' expects a value"),
        ] {
            assert_eq!(
                backend(&format!("server t 10.0.0.2:80 {params}")).1,
                [format!("7: error: 'server be/t': {error}")],
                "{params}"
            );
        }
        assert_eq!(
            backend("server s 10.0.0.2:80").1,
            [
                "7: error: backend 'be', another server named 's' was already defined at line 6, \
              please use distinct names"
            ]
        );
        assert_eq!(
            backend("default-server minconn 10").1,
            ["7: warning: 'default-server': 'minconn 10' is not supported yet, ignored"]
        );
    }
}
