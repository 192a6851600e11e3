//! The config's conditions (`path_beg`, `hdr(host)`, `src`) evaluated on a connection, before
//! anything is read, or on a request.

use std::net::IpAddr;

use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::Request;

use crate::config::{Condition, RuleCondition};

/// Whether a rule with this `if`/`unless` part applies (a rule without one always does).
pub(super) fn applies(
    when: Option<&RuleCondition>,
    client: IpAddr,
    request: Option<&Request<Incoming>>,
) -> bool {
    when.is_none_or(|w| holds(&w.condition, client, request) != w.negate)
}

/// Whether `condition` holds; conditions on the request are false without one (the config
/// check only lets `src` be used where there is none).
pub(super) fn holds(
    condition: &Condition,
    client: IpAddr,
    request: Option<&Request<Incoming>>,
) -> bool {
    match (condition, request) {
        (Condition::Src(networks), _) => networks.iter().any(|n| n.contains(client)),
        (Condition::PathBeg(prefixes), Some(request)) => {
            let path = request.uri().path();
            prefixes.iter().any(|p| path.starts_with(p.as_str()))
        }
        (
            Condition::Host {
                values,
                ignore_case,
            },
            Some(request),
        ) => {
            let host = host_without_port(request);
            values.iter().any(|v| {
                if *ignore_case {
                    v.eq_ignore_ascii_case(host)
                } else {
                    v == host
                }
            })
        }
        (Condition::PathBeg(_) | Condition::Host { .. }, None) => false,
    }
}

/// The request's host (`Host` header, else the URI's authority), without its port.
fn host_without_port(request: &Request<Incoming>) -> &str {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    match host.rsplit_once(':') {
        // Not the colons of a bracketed IPv6 address.
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn src_rules_apply_to_their_networks_and_unless_inverts() {
        let local = Condition::Src(vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(holds(&local, ip("127.3.2.1"), None));
        assert!(holds(&local, ip("::1"), None));
        assert!(!holds(&local, ip("10.0.0.1"), None));
        let unless_local = RuleCondition {
            condition: local,
            negate: true,
        };
        assert!(applies(Some(&unless_local), ip("10.0.0.1"), None));
        assert!(!applies(Some(&unless_local), ip("127.0.0.1"), None));
        assert!(applies(None, ip("10.0.0.1"), None));
        // A condition on the request does not hold before there is one.
        assert!(!holds(
            &Condition::PathBeg(vec!["/".into()]),
            ip("10.0.0.1"),
            None
        ));
    }
}
