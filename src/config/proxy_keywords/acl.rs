//! `acl` and `use_backend`: the ACL forms halyard evaluates (`path_beg`, `hdr(host)`), inline
//! in braces or named, and the order of the rules.

use std::collections::HashMap;

use super::{Ctx, Draft, Outcome};
use crate::config::proxy::{Condition, DenyRule, Findings, RejectRule, RuleCondition, UseBackend};
use crate::config::SectionKind;

/// A named ACL: its condition, or the text of a form halyard does not evaluate.
#[derive(Debug, Clone)]
pub(in crate::config) struct Acl {
    /// The condition, or `Err(text)` for an unsupported form.
    pub condition: Result<Condition, String>,
    /// Line of the (first) `acl` line.
    pub line: usize,
}

/// `use_backend NAME [if|unless CONDITION]`.
pub(super) fn use_backend(
    draft: &mut Draft,
    args: &[&str],
    line: usize,
    out: &mut Findings,
) -> Outcome {
    let Some((&backend, condition)) = args.split_first() else {
        return Err("'use_backend' expects a backend name".to_owned());
    };
    if backend.contains("%[") {
        out.warning(
            line,
            format!(
                "'use_backend {backend}': dynamic backend names are not supported yet, ignored"
            ),
        );
        return Ok(());
    }
    if let Some((name, always_line)) = &draft.always {
        out.note(
            line,
            format!(
                "'use_backend {backend}' is never used: 'use_backend {name}' at line \
                 {always_line} has no condition"
            ),
        );
        return Ok(());
    }
    let negate = match condition.first() {
        None => {
            draft.always = Some((backend.to_owned(), line));
            return Ok(());
        }
        Some(&"if") => false,
        Some(&"unless") => true,
        Some(other) => {
            return Err(format!(
                "'use_backend' expects 'if' or 'unless', got '{other}'"
            ))
        }
    };
    let (condition, inverted) = parse_condition(&condition[1..], &mut draft.acls)?;
    draft.rules.push(UseBackend {
        backend: backend.to_owned(),
        condition,
        negate: negate != inverted,
        line,
    });
    Ok(())
}

/// `if COND` / `unless COND` after a rule's action; `None` when there is none.
fn rule_condition(
    words: &[&str],
    acls: &mut HashMap<String, Acl>,
    what: &str,
) -> Result<Option<RuleCondition>, String> {
    let negate = match words.first() {
        None => return Ok(None),
        Some(&"if") => false,
        Some(&"unless") => true,
        Some(other) => return Err(format!("'{what}' expects 'if' or 'unless', got '{other}'")),
    };
    let (condition, inverted) = parse_condition(&words[1..], acls)?;
    Ok(Some(RuleCondition {
        condition,
        negate: negate != inverted,
    }))
}

/// `http-request deny [deny_status N] [if|unless COND]`; other actions are warned about.
pub(super) fn http_request(
    draft: &mut Draft,
    args: &[&str],
    line: usize,
    out: &mut Findings,
) -> Outcome {
    let (status, rest) = match args {
        ["deny", "deny_status", status, rest @ ..] => {
            let status = status
                .parse::<u16>()
                .ok()
                .filter(|s| (200..600).contains(s))
                .ok_or_else(|| format!("'deny_status' expects an HTTP status, got '{status}'"))?;
            (status, rest)
        }
        ["deny", rest @ ..] => (403, rest),
        [action, ..] => {
            out.warning(
                line,
                format!("'http-request {action}' is not supported yet, ignored"),
            );
            return Ok(());
        }
        [] => return Err("'http-request' expects an action".to_owned()),
    };
    let when = rule_condition(rest, &mut draft.acls, "http-request deny")?;
    draft.deny.push(DenyRule { status, when, line });
    Ok(())
}

/// `tcp-request connection reject [if|unless COND]` (only `src` is known at that stage, as in
/// HAProxy); other actions are warned about.
pub(super) fn tcp_request(
    draft: &mut Draft,
    args: &[&str],
    line: usize,
    out: &mut Findings,
) -> Outcome {
    let rest = match args {
        ["connection", "reject", rest @ ..] => rest,
        _ => {
            out.warning(
                line,
                format!(
                    "'tcp-request {}' is not supported yet, ignored",
                    args.join(" ")
                ),
            );
            return Ok(());
        }
    };
    let when = rule_condition(rest, &mut draft.acls, "tcp-request connection reject")?;
    if let Some(RuleCondition { condition, .. }) = &when {
        if !matches!(condition, Condition::Src(_)) {
            return Err(
                "'tcp-request connection reject': only 'src' can be tested when a connection \
                 is accepted (the request has not been read yet)"
                    .to_owned(),
            );
        }
    }
    draft.reject.push(RejectRule { when, line });
    Ok(())
}

/// The condition after `if`/`unless`: `{ ACL }`, `NAME` or `!NAME`; the bool says `!`.
fn parse_condition(
    words: &[&str],
    acls: &mut HashMap<String, Acl>,
) -> Result<(Condition, bool), String> {
    let named = match words {
        ["{", body @ .., "}"] => return Ok((acl_body(body)?, false)),
        [name] => name.strip_prefix('!').map_or((*name, false), |n| (n, true)),
        ["!", name] => (*name, true),
        _ => return Err(format!("ACL form not supported: '{}'", words.join(" "))),
    };
    let (name, inverted) = named;
    let acl = acls
        .get(name)
        .ok_or_else(|| format!("no ACL named '{name}' (halyard has no predefined ACLs)"))?;
    match &acl.condition {
        Ok(condition) => Ok((condition.clone(), inverted)),
        Err(text) => Err(format!(
            "ACL form not supported: '{text}' (acl '{name}' at line {})",
            acl.line
        )),
    }
}

/// The criterion and values of an ACL: `path_beg /a /b` or `hdr(host) [-i] a b`.
fn acl_body(body: &[&str]) -> Result<Condition, String> {
    let unsupported = || format!("ACL form not supported: '{}'", body.join(" "));
    let (fetch, values) = body.split_first().ok_or_else(unsupported)?;
    let host =
        fetch.eq_ignore_ascii_case("hdr(host)") || fetch.eq_ignore_ascii_case("req.hdr(host)");
    let (ignore_case, values) = match values {
        ["-i", rest @ ..] if host => (true, rest),
        _ => (false, values),
    };
    if values.is_empty() || values.iter().any(|v| v.starts_with('-')) {
        return Err(unsupported());
    }
    if *fetch == "src" {
        let networks = values
            .iter()
            .map(|v| v.parse().map_err(|_| unsupported()))
            .collect::<Result<_, _>>()?;
        return Ok(Condition::Src(networks));
    }
    let values = values.iter().map(|v| (*v).to_owned()).collect();
    match *fetch {
        "path_beg" => Ok(Condition::PathBeg(values)),
        _ if host => Ok(Condition::Host {
            values,
            ignore_case,
        }),
        _ => Err(unsupported()),
    }
}

/// `acl NAME CRITERION VALUES`: several lines with one name are alternatives, merged when they
/// test the same thing.
pub(super) fn acl(
    draft: &mut Draft,
    ctx: Ctx,
    args: &[&str],
    line: usize,
    out: &mut Findings,
) -> Outcome {
    let [name, body @ ..] = args else {
        return Err("'acl' expects a name and a criterion".to_owned());
    };
    if ctx.kind == SectionKind::Defaults {
        out.note(
            line,
            format!("acl '{name}': ACLs of a defaults section are not visible to proxies, ignored"),
        );
        return Ok(());
    }
    let parsed = acl_body(body).map_err(|_| body.join(" "));
    if let Err(text) = &parsed {
        out.warning(
            line,
            format!("ACL form not supported: '{text}': acl '{name}' cannot choose a backend"),
        );
    }
    let merged = match (draft.acls.remove(*name), parsed) {
        (None, parsed) => Acl {
            condition: parsed,
            line,
        },
        (Some(old), parsed) => Acl {
            condition: merge(old.condition, parsed),
            line: old.line,
        },
    };
    draft.acls.insert((*name).to_owned(), merged);
    Ok(())
}

/// Two ACL lines of one name: either matches.
fn merge(
    old: Result<Condition, String>,
    new: Result<Condition, String>,
) -> Result<Condition, String> {
    match (old, new) {
        (Ok(Condition::PathBeg(mut a)), Ok(Condition::PathBeg(b))) => {
            a.extend(b);
            Ok(Condition::PathBeg(a))
        }
        (
            Ok(Condition::Host {
                values: mut a,
                ignore_case: i,
            }),
            Ok(Condition::Host {
                values: b,
                ignore_case: j,
            }),
        ) if i == j => {
            a.extend(b);
            Ok(Condition::Host {
                values: a,
                ignore_case: i,
            })
        }
        (Ok(Condition::Src(mut a)), Ok(Condition::Src(b))) => {
            a.extend(b);
            Ok(Condition::Src(a))
        }
        (Err(text), _) | (_, Err(text)) => Err(text),
        _ => Err("different criteria under one name".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{findings, TIMEOUTS};
    use super::*;

    #[test]
    fn acl_forms_halyard_evaluates() {
        let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let body = |s: &str| {
            let w = words(s);
            acl_body(&w.iter().map(String::as_str).collect::<Vec<_>>())
        };
        assert_eq!(
            body("path_beg /a /b"),
            Ok(Condition::PathBeg(words("/a /b")))
        );
        assert_eq!(
            body("hdr(host) -i a.example b.example"),
            Ok(Condition::Host {
                values: words("a.example b.example"),
                ignore_case: true
            })
        );
        assert_eq!(
            body("req.hdr(Host) a.example"),
            Ok(Condition::Host {
                values: words("a.example"),
                ignore_case: false
            })
        );
        assert_eq!(
            body("src 10.0.0.0/8 192.168.1.5"),
            Ok(Condition::Src(vec![
                "10.0.0.0/8".parse().unwrap(),
                "192.168.1.5".parse().unwrap()
            ]))
        );
        for unsupported in [
            "path_beg -i /a",
            "path_beg",
            "src 10.0.0.0/33",
            "hdr_beg(host) a",
            "hdr(x-api) a",
        ] {
            assert_eq!(
                body(unsupported),
                Err(format!("ACL form not supported: '{unsupported}'"))
            );
        }
    }

    #[test]
    fn conditions_name_what_is_wrong() {
        let text = format!(
            "{TIMEOUTS}\
frontend fe
    bind :80
    acl local path_end .php
    acl mixed path_beg /a
    acl mixed hdr(host) a
    use_backend be if local
    use_backend be if mixed
    use_backend be if a b
    use_backend be if nope
    use_backend be when x
    use_backend %[req.hdr(host),lower]
    default_backend be
backend be
    server s 10.0.0.1:80
defaults
    acl x path_beg /x
"
        );
        assert_eq!(
            findings(&text),
            [
                "7: warning: ACL form not supported: 'path_end .php': acl 'local' cannot choose a backend",
                "10: error: ACL form not supported: 'path_end .php' (acl 'local' at line 7)",
                "11: error: ACL form not supported: 'different criteria under one name' (acl 'mixed' at line 8)",
                "12: error: ACL form not supported: 'a b'",
                "13: error: no ACL named 'nope' (halyard has no predefined ACLs)",
                "14: error: 'use_backend' expects 'if' or 'unless', got 'when'",
                "15: warning: 'use_backend %[req.hdr(host),lower]': dynamic backend names are not supported yet, ignored",
                "20: note: acl 'x': ACLs of a defaults section are not visible to proxies, ignored",
            ]
        );
    }
}
