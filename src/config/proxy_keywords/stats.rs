//! `stats ...` lines: the stats page of a proxy (`stats enable`, `uri`, `auth`, `realm`,
//! `refresh`) and, in `global`, the control sockets (`stats socket`, `stats timeout`).

use std::path::PathBuf;

use super::{listed, Draft, GlobalDraft, Outcome};
use crate::config::proxy::{AccessLevel, Findings, StatsPage, StatsSocket};
use crate::config::values::parse_time;

/// HAProxy's default `stats uri`.
const DEFAULT_URI: &str = "/haproxy?stats";
/// HAProxy's default `stats realm`.
const DEFAULT_REALM: &str = "HAProxy Statistics";

/// HAProxy 2.6's other `stats` keywords in proxies.
const NOT_YET: &str = "admin bind-process hide-version http-request scope show-desc show-legends \
     show-modules show-node";

/// `stats enable|uri|auth|realm|refresh ...` in a proxy: each one enables the page, as in
/// HAProxy.
pub(super) fn stats(draft: &mut Draft, args: &[&str], line: usize, out: &mut Findings) -> Outcome {
    let Some((&what, rest)) = args.split_first() else {
        return Err("'stats' expects a keyword (enable, uri, auth, realm, refresh)".to_owned());
    };
    if listed(NOT_YET, what) {
        out.warning(
            line,
            format!("'stats {what}' is not supported yet, ignored"),
        );
        return Ok(());
    }
    let page = &mut draft
        .stats
        .get_or_insert_with(|| {
            let page = StatsPage {
                uri: DEFAULT_URI.to_owned(),
                users: Vec::new(),
                realm: DEFAULT_REALM.to_owned(),
                refresh: None,
            };
            (page, line)
        })
        .0;
    match (what, rest) {
        ("enable", []) => {}
        ("uri", [uri]) if uri.starts_with('/') => page.uri = (*uri).to_owned(),
        ("uri", [uri]) => return Err(format!("'stats uri' expects a path, got '{uri}'")),
        ("auth", [pair]) => {
            let Some((user, password)) = pair.split_once(':') else {
                return Err(format!("'stats auth' expects USER:PASSWORD, got '{pair}'"));
            };
            page.users.push((user.to_owned(), password.to_owned()));
        }
        ("realm", words) if !words.is_empty() => page.realm = words.join(" "),
        ("refresh", [every]) => {
            page.refresh = Some(parse_time(every).map_err(|e| format!("'stats refresh': {e}"))?)
        }
        ("enable" | "uri" | "auth" | "realm" | "refresh", _) => {
            return Err(format!("'stats {what}' expects one argument"))
        }
        _ => {
            return Err(format!(
                "unknown 'stats' keyword '{what}' (expected enable, uri, auth, realm or refresh)"
            ))
        }
    }
    Ok(())
}

/// `stats socket PATH [mode OCTAL] [level user|operator|admin] ...` and `stats timeout` in
/// `global`.
pub(super) fn global_stats(
    global: &mut GlobalDraft,
    args: &[&str],
    line: usize,
    out: &mut Findings,
) -> Outcome {
    match args {
        ["socket", path, options @ ..] => {
            global.stats_sockets.push(socket(path, options, line, out)?);
            Ok(())
        }
        ["socket"] => Err("'stats socket' expects a path".to_owned()),
        // A CLI session's idle timeout: halyard closes a session after each command.
        ["timeout", _] => {
            out.note(
                line,
                "'stats timeout' is not needed by halyard, ignored".to_owned(),
            );
            Ok(())
        }
        [what, ..] => {
            out.warning(
                line,
                format!("'stats {what}' is not supported yet, ignored"),
            );
            Ok(())
        }
        [] => Err("'stats' expects 'socket' or 'timeout'".to_owned()),
    }
}

fn socket(
    path: &str,
    options: &[&str],
    line: usize,
    out: &mut Findings,
) -> Result<StatsSocket, String> {
    if path.contains('@') || path.contains(':') {
        return Err(format!(
            "'stats socket {path}': halyard only listens on Unix socket paths"
        ));
    }
    let mut socket = StatsSocket {
        path: PathBuf::from(path),
        mode: None,
        level: AccessLevel::Operator,
        line,
    };
    let mut rest = options;
    while let Some((&option, tail)) = rest.split_first() {
        rest = match (option, tail) {
            ("mode", [octal, tail @ ..]) => {
                let mode = u32::from_str_radix(octal, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| {
                        format!("'stats socket' mode expects octal digits, got '{octal}'")
                    })?;
                socket.mode = Some(mode);
                tail
            }
            ("level", [level, tail @ ..]) => {
                socket.level = match *level {
                    "user" => AccessLevel::User,
                    "operator" => AccessLevel::Operator,
                    "admin" => AccessLevel::Admin,
                    other => {
                        return Err(format!(
                            "'stats socket' level expects user, operator or admin, got '{other}'"
                        ))
                    }
                };
                tail
            }
            ("mode" | "level", []) => {
                return Err(format!("'stats socket' option '{option}' expects a value"))
            }
            // Handing the socket to another process has no meaning here.
            ("expose-fd" | "process", [_, tail @ ..]) => {
                out.note(
                    line,
                    format!("'stats socket' option '{option}' is not needed by halyard, ignored"),
                );
                tail
            }
            // Ownership is access control: say that it is not applied.
            ("uid" | "gid" | "user" | "group", [_, tail @ ..]) => {
                out.warning(
                    line,
                    format!(
                        "'stats socket' option '{option}' is not supported: the socket keeps \
                         this process's owner"
                    ),
                );
                tail
            }
            _ => {
                out.warning(
                    line,
                    format!("'stats socket' option '{option}' is not supported, ignored"),
                );
                tail
            }
        };
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{backend, findings, TIMEOUTS};
    use crate::config::{AccessLevel, CheckedConfig, StatsPage};

    #[test]
    fn stats_lines_make_the_page_and_each_enables_it() {
        let (be, found) = backend(
            "stats uri /admin?stats\n stats auth ops:pw\n stats auth ro:x:y\n stats realm Ops only\n \
             stats refresh 10s\n stats hide-version",
        );
        assert_eq!(
            found,
            ["12: warning: 'stats hide-version' is not supported yet, ignored"]
        );
        let expected = StatsPage {
            uri: "/admin?stats".into(),
            users: vec![("ops".into(), "pw".into()), ("ro".into(), "x:y".into())],
            realm: "Ops only".into(),
            refresh: Some(Duration::from_secs(10)),
        };
        assert_eq!(be.unwrap().stats, Some(expected));
        let (be, _) = backend("stats enable");
        let page = be.unwrap().stats.unwrap();
        assert_eq!(
            (page.uri.as_str(), page.realm.as_str()),
            ("/haproxy?stats", "HAProxy Statistics")
        );
        assert_eq!(backend("").0.unwrap().stats, None);
        let (be, found) = backend("stats auth nopassword\n stats uri stats\n stats bogus");
        assert_eq!(be, None);
        assert_eq!(
            found,
            [
                "7: error: 'stats auth' expects USER:PASSWORD, got 'nopassword'",
                "8: error: 'stats uri' expects a path, got 'stats'",
                "9: error: unknown 'stats' keyword 'bogus' (expected enable, uri, auth, realm or refresh)",
            ]
        );
    }

    #[test]
    fn stats_sockets_have_a_path_a_mode_and_a_level() {
        let text = format!(
            "global\n stats socket /run/h.sock mode 660 level admin expose-fd listeners group x\n \
             stats socket /tmp/ro.sock\n{TIMEOUTS}"
        );
        let config = CheckedConfig::from_text("t.cfg", &text).config.unwrap();
        let sockets = &config.global.stats_sockets;
        assert_eq!(sockets.len(), 2);
        assert_eq!(
            (sockets[0].path.to_str(), sockets[0].mode, sockets[0].level),
            (Some("/run/h.sock"), Some(0o660), AccessLevel::Admin)
        );
        assert_eq!(
            (sockets[1].mode, sockets[1].level),
            (None, AccessLevel::Operator)
        );
        assert_eq!(
            findings(&text),
            [
                "2: note: 'stats socket' option 'expose-fd' is not needed by halyard, ignored",
                "2: warning: 'stats socket' option 'group' is not supported: the socket keeps \
                 this process's owner",
            ]
        );
        let bad = findings(&format!(
            "global\n stats socket ipv4@127.0.0.1:9999\n stats socket /x mode 999\n \
             stats socket /y level root\n{TIMEOUTS}"
        ));
        assert_eq!(
            bad,
            [
                "2: error: 'stats socket ipv4@127.0.0.1:9999': halyard only listens on Unix socket paths",
                "3: error: 'stats socket' mode expects octal digits, got '999'",
                "4: error: 'stats socket' level expects user, operator or admin, got 'root'",
            ]
        );
    }

    #[test]
    fn a_stats_page_in_tcp_mode_is_warned_about() {
        let text = format!(
            "{TIMEOUTS}listen db\n bind :5432\n mode tcp\n stats enable\n server s 10.0.0.1:5432\n"
        );
        assert_eq!(
            findings(&text),
            ["8: warning: 'stats' in listen 'db' needs 'mode http': no stats page, ignored"]
        );
    }
}
