//! `log` lines: `log global`, UDP syslog targets with their facility and level, and warnings
//! for the targets and options halyard does not implement.

use std::net::SocketAddr;

use super::addresses::{digits, ip_and_port, resolve};
use crate::config::proxy::{Findings, LogTarget};
use crate::logline::Priority;

/// A `log` line of a proxy: `log global` stays symbolic until the `global` section is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::config) enum LogEntry {
    /// `log global`: the global section's targets.
    Global,
    /// `log ADDR FACILITY ...`
    Target(LogTarget),
}

/// `log global` or a log target; `None` for a target halyard cannot send to (warned about).
pub(super) fn log(
    args: &[&str],
    line: usize,
    out: &mut Findings,
) -> Result<Option<LogEntry>, String> {
    match args {
        ["global"] => Ok(Some(LogEntry::Global)),
        ["global", ..] => Err("'log global' takes no other argument".to_owned()),
        _ => Ok(log_target(args, line, out)?.map(LogEntry::Target)),
    }
}

/// `ADDR[:PORT] [len N] [format F] [sample R:S] FACILITY [LEVEL [MINLEVEL]]`.
pub(super) fn log_target(
    args: &[&str],
    line: usize,
    out: &mut Findings,
) -> Result<Option<LogTarget>, String> {
    let usage = "'log' expects ADDR[:PORT] FACILITY [LEVEL [MINLEVEL]]";
    let Some((&addr, mut rest)) = args.split_first() else {
        return Err(usage.to_owned());
    };
    if ["stdout", "stderr"].contains(&addr) || addr.starts_with('/') || is_stream_log(addr) {
        out.warning(
            line,
            format!("log target '{addr}' is not supported yet (halyard logs over UDP), ignored"),
        );
        return Ok(None);
    }
    let addr = parse_log_addr(addr)?;
    while let [option @ ("len" | "format" | "sample"), value, tail @ ..] = rest {
        out.warning(
            line,
            format!("'log ... {option} {value}' is not supported yet, ignored"),
        );
        rest = tail;
    }
    let (facility, levels) = rest.split_first().ok_or(usage)?;
    let facility = Priority::facility_by_name(facility)
        .ok_or_else(|| format!("unknown log facility '{facility}'"))?;
    let level = |name: &str| {
        Priority::severity_by_name(name).ok_or_else(|| format!("unknown log level '{name}'"))
    };
    let max_level = match levels {
        [] => 7,
        [max] => level(max)?,
        [max, min] => {
            level(min)?;
            out.warning(
                line,
                format!("minimum log level '{min}' is not supported yet, ignored"),
            );
            level(max)?
        }
        _ => return Err(format!("{usage}: too many arguments")),
    };
    Ok(Some(LogTarget {
        addr,
        facility,
        max_level,
        line,
    }))
}

/// `fd@`, `ring@`, `unix@`, `tcp@` and other non-UDP targets.
fn is_stream_log(addr: &str) -> bool {
    addr.split_once('@')
        .is_some_and(|(family, _)| !["udp", "udp4", "udp6", "ipv4", "ipv6"].contains(&family))
}

/// A UDP syslog address: `IP`, `IP:PORT`, `IPv6:`, `[IPv6]:PORT` or `HOST[:PORT]`; port 514
/// when not written.
fn parse_log_addr(spec: &str) -> Result<SocketAddr, String> {
    let bare = spec.split_once('@').map_or(spec, |(_, rest)| rest);
    if let Some((ip, port)) = ip_and_port(bare) {
        return Ok(SocketAddr::new(ip, port.unwrap_or(514)));
    }
    let (host, port) = match bare.rsplit_once(':') {
        Some((host, "")) => (host, 514),
        Some((host, port)) => (
            host,
            digits(port).ok_or_else(|| format!("bad port '{port}' in log address '{spec}'"))?,
        ),
        None => (bare, 514),
    };
    resolve(host, port)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{backend, findings};
    use super::*;
    use crate::config::CheckedConfig;

    #[test]
    fn log_addresses_default_to_port_514() {
        let at = |spec| parse_log_addr(spec).map(|a| a.to_string());
        assert_eq!(at("127.0.0.1").unwrap(), "127.0.0.1:514");
        assert_eq!(at("127.0.0.1:5514").unwrap(), "127.0.0.1:5514");
        assert_eq!(at("udp@127.0.0.1:1514").unwrap(), "127.0.0.1:1514");
        assert_eq!(at("::1:").unwrap(), "[::1]:514");
        assert_eq!(at("::1:5514").unwrap(), "[::1]:5514");
        assert_eq!(at("[::1]:5514").unwrap(), "[::1]:5514");
        let local = parse_log_addr("localhost").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 514, "{local}");
        assert_eq!(
            at("127.0.0.1:x").unwrap_err(),
            "bad port 'x' in log address '127.0.0.1:x'"
        );
    }

    #[test]
    fn log_lines_in_global_and_proxies() {
        let text = "\
global
    log 127.0.0.1 local0 info notice
    log 127.0.0.1:1514 len 1024 format rfc5424 local1
    log stdout format raw local0
    log /dev/log local0
    log 127.0.0.1 local9
    log 127.0.0.1 local0 loud
    log 127.0.0.1
    log global
";
        let checked = CheckedConfig::from_text("t.cfg", text);
        assert_eq!(
            findings(text),
            [
                "2: warning: minimum log level 'notice' is not supported yet, ignored",
                "3: warning: 'log ... len 1024' is not supported yet, ignored",
                "3: warning: 'log ... format rfc5424' is not supported yet, ignored",
                "4: warning: log target 'stdout' is not supported yet (halyard logs over UDP), ignored",
                "5: warning: log target '/dev/log' is not supported yet (halyard logs over UDP), ignored",
                "6: error: unknown log facility 'local9'",
                "7: error: unknown log level 'loud'",
                "8: error: 'log' expects ADDR[:PORT] FACILITY [LEVEL [MINLEVEL]]",
                "9: error: 'log global' is only valid in proxies",
            ]
        );
        assert_eq!(checked.config, None);
        let ok = CheckedConfig::from_text("t.cfg", &text[..text.find("    log stdout").unwrap()]);
        let logs = ok.config.unwrap().global.logs;
        assert_eq!(
            logs,
            [
                LogTarget {
                    addr: "127.0.0.1:514".parse().unwrap(),
                    facility: 16,
                    max_level: 6,
                    line: 2
                },
                LogTarget {
                    addr: "127.0.0.1:1514".parse().unwrap(),
                    facility: 17,
                    max_level: 7,
                    line: 3
                },
            ]
        );
        let (be, findings) = backend("log 127.0.0.1:2514 daemon err\nno log\nlog 10.0.0.9 local4");
        assert_eq!(findings, Vec::<String>::new());
        let logs = be.unwrap().logs;
        assert_eq!(logs.len(), 1, "'no log' drops what came before");
        assert_eq!((logs[0].facility, logs[0].line), (20, 9));
        assert_eq!(
            backend("log global now").1,
            ["7: error: 'log global' takes no other argument"]
        );
    }
}
