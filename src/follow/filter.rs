//! `--filter` expressions: comparisons over the fields of a parsed line (`status>=500`,
//! `backend~^be_`, `client=10.0.0.0/8`), combined with `and`, `or`, `not` and parentheses.
//!
//! Grammar (`or` binds loosest):
//!
//! ```text
//! expr  = and { "or" and }
//! and   = unary { "and" unary }
//! unary = "not" unary | "(" expr ")" | FIELD OP VALUE
//! OP    = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~"
//! ```
//!
//! A value is quoted (`"..."` or `'...'`) or runs to the next space; a `)` closes a group only
//! when the value has no `(` of its own open, so `uri~/(a|b)/` needs no quotes. A comparison
//! on a field the line does not have (`status` of a TCP session) is false, whatever the
//! operator: `not status=200` is how to ask for "anything but a 200".

use std::net::IpAddr;

use regex::bytes::Regex;

use crate::config::Cidr;
use crate::logline::{Body, LogLine, ProxyEventKind};
use crate::report::filter::parse_statuses;

/// A compiled filter expression.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
}

/// Why an expression did not parse, and where: shown with a caret under the position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// What was expected or what was wrong.
    pub message: String,
    /// The expression as given.
    pub input: String,
    /// Byte offset of the offending position in `input`.
    pub at: usize,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The caret counts characters, not bytes, so it sits right under non-ASCII input too.
        let at = self.at.min(self.input.len());
        let column = self.input.get(..at).map_or(at, |b| b.chars().count());
        write!(
            f,
            "bad filter: {}\n  {}\n  {:>width$}",
            self.message,
            self.input,
            "^",
            width = column + 1
        )
    }
}

impl std::error::Error for FilterError {}

impl Filter {
    /// Parses an expression.
    pub fn parse(input: &str) -> Result<Filter, FilterError> {
        let mut parser = Parser { input, pos: 0 };
        let expr = parser.expr()?;
        parser.skip_space();
        if parser.pos < input.len() {
            return Err(parser.error("expected 'and', 'or' or the end of the expression"));
        }
        Ok(Filter { expr })
    }

    /// Whether `line` matches.
    pub fn matches(&self, line: &LogLine<'_>) -> bool {
        self.expr.eval(line)
    }
}

#[derive(Debug, Clone)]
enum Expr {
    Test(Test),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    fn eval(&self, line: &LogLine<'_>) -> bool {
        match self {
            Expr::Test(test) => test.eval(line),
            Expr::Not(inner) => !inner.eval(line),
            Expr::And(all) => all.iter().all(|e| e.eval(line)),
            Expr::Or(any) => any.iter().any(|e| e.eval(line)),
        }
    }
}

/// The fields a filter can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Status,
    Timer(Timer),
    Bytes,
    Retries,
    Client,
    Frontend,
    Backend,
    Server,
    Kind,
    Method,
    Uri,
    Tsc,
    Event,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    TR,
    Tw,
    Tc,
    Tr,
    Ta,
    Tt,
}

/// Field names as written in expressions, HAProxy's where it has one.
const FIELDS: [(&str, Field); 19] = [
    ("status", Field::Status),
    ("TR", Field::Timer(Timer::TR)),
    ("Tw", Field::Timer(Timer::Tw)),
    ("Tc", Field::Timer(Timer::Tc)),
    ("Tr", Field::Timer(Timer::Tr)),
    ("Ta", Field::Timer(Timer::Ta)),
    ("Tt", Field::Timer(Timer::Tt)),
    ("bytes", Field::Bytes),
    ("retries", Field::Retries),
    ("client", Field::Client),
    ("frontend", Field::Frontend),
    ("backend", Field::Backend),
    ("server", Field::Server),
    ("kind", Field::Kind),
    ("method", Field::Method),
    ("uri", Field::Uri),
    ("tsc", Field::Tsc),
    ("event", Field::Event),
    ("host", Field::Host),
];

impl Field {
    fn by_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn is_number(self) -> bool {
        matches!(
            self,
            Field::Status | Field::Timer(_) | Field::Bytes | Field::Retries
        )
    }

    fn number(self, line: &LogLine<'_>) -> Option<u64> {
        match (&line.body, self) {
            (Body::Http(h), Field::Status) => h.status.map(u64::from),
            (Body::Http(h), Field::Timer(t)) => match t {
                Timer::TR => h.timers.request,
                Timer::Tw => h.timers.queue,
                Timer::Tc => h.timers.connect,
                Timer::Tr => h.timers.response,
                Timer::Ta => h.timers.active,
                Timer::Tt => None,
            },
            (Body::Tcp(t), Field::Timer(timer)) => match timer {
                Timer::Tw => t.timers.queue,
                Timer::Tc => t.timers.connect,
                Timer::Tt => t.timers.total,
                _ => None,
            },
            (Body::Http(h), Field::Bytes) => Some(h.bytes_read),
            (Body::Tcp(t), Field::Bytes) => Some(t.bytes_read),
            (Body::Http(h), Field::Retries) => Some(u64::from(h.connections.retries)),
            (Body::Tcp(t), Field::Retries) => Some(u64::from(t.connections.retries)),
            _ => None,
        }
    }

    fn text<'a>(self, line: &'a LogLine<'a>) -> Option<&'a [u8]> {
        let session = line.session();
        match self {
            Field::Kind => Some(line.kind().as_str().as_bytes()),
            Field::Host => line.envelope.hostname,
            Field::Client => match &line.body {
                Body::ConnectionError(e) => Some(e.client_ip),
                _ => session.map(|s| s.client_ip),
            },
            Field::Frontend => match &line.body {
                Body::ConnectionError(e) => Some(e.frontend),
                _ => session.map(|s| s.frontend),
            },
            Field::Backend | Field::Server => match &line.body {
                Body::ServerEvent(e) if self == Field::Backend => Some(e.backend),
                Body::ServerEvent(e) => Some(e.server),
                // As `halyard parse` has it: only "has no server available" names a backend.
                Body::ProxyEvent(e)
                    if self == Field::Backend && e.kind == ProxyEventKind::NoServer =>
                {
                    Some(e.proxy)
                }
                _ if self == Field::Backend => session.map(|s| s.backend),
                _ => session.map(|s| s.server),
            },
            Field::Method | Field::Uri => match &line.body {
                Body::Http(h) if self == Field::Method => Some(h.request.method),
                Body::Http(h) => h.request.uri,
                _ => None,
            },
            Field::Tsc => match &line.body {
                Body::Http(h) => Some(h.termination_state.as_bytes()),
                Body::Tcp(t) => Some(t.termination_state.as_bytes()),
                _ => None,
            },
            Field::Event => match &line.body {
                Body::ServerEvent(e) => Some(e.kind.as_str().as_bytes()),
                Body::ProxyEvent(e) => Some(e.kind.as_str().as_bytes()),
                _ => None,
            },
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NoMatch,
}

/// Operators, longest first so that `>=` is not read as `>`.
const OPS: [(&str, Op); 9] = [
    ("!=", Op::Ne),
    ("!~", Op::NoMatch),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("==", Op::Eq),
    ("=", Op::Eq),
    ("~", Op::Match),
    (">", Op::Gt),
    ("<", Op::Lt),
];

/// One comparison, with its value checked and converted when the expression was parsed.
#[derive(Debug, Clone)]
enum Test {
    Number(Field, Op, u64),
    StatusIn(Vec<(u16, u16)>, bool),
    Text(Field, Vec<u8>, bool),
    Regex(Field, Regex, bool),
    Network(Cidr, bool),
}

impl Test {
    fn eval(&self, line: &LogLine<'_>) -> bool {
        match self {
            Test::Number(field, op, want) => field.number(line).is_some_and(|v| match op {
                Op::Eq => v == *want,
                Op::Ne => v != *want,
                Op::Lt => v < *want,
                Op::Le => v <= *want,
                Op::Gt => v > *want,
                _ => v >= *want,
            }),
            Test::StatusIn(ranges, negate) => Field::Status.number(line).is_some_and(|v| {
                ranges
                    .iter()
                    .any(|&(lo, hi)| (u64::from(lo)..=u64::from(hi)).contains(&v))
                    != *negate
            }),
            Test::Text(field, want, negate) => {
                text_equals(*field, line, want).is_some_and(|eq| eq != *negate)
            }
            Test::Regex(field, re, negate) => {
                field.text(line).is_some_and(|v| re.is_match(v) != *negate)
            }
            Test::Network(net, negate) => Field::Client
                .text(line)
                .and_then(|ip| std::str::from_utf8(ip).ok()?.parse::<IpAddr>().ok())
                .is_some_and(|ip| net.contains(ip) != *negate),
        }
    }
}

/// Exact equality (`None` when the line has no such field), with two conveniences:
/// `tsc=sH` compares the first two characters (the `%ts` part of `%tsc`, as halog's `-tcn`
/// does), and `server=be/srv` names the backend too.
fn text_equals(field: Field, line: &LogLine<'_>, want: &[u8]) -> Option<bool> {
    let value = field.text(line)?;
    Some(match field {
        Field::Tsc if want.len() == 2 => value.get(..2) == Some(want),
        Field::Server => match memchr::memchr(b'/', want) {
            Some(slash) => {
                Field::Backend.text(line) == Some(&want[..slash]) && value == &want[slash + 1..]
            }
            None => value == want,
        },
        _ => value == want,
    })
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, message: impl Into<String>) -> FilterError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            message: message.into(),
            input: self.input.to_owned(),
            at,
        }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Consumes `word` when it comes next as a whole word.
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let rest = self.rest();
        let matched = rest
            .get(..word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
            && !rest[word.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if matched {
            self.pos += word.len();
        }
        matched
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        self.joined("or", Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        self.joined("and", Self::unary, Expr::And)
    }

    /// `part { word part }`, one level of the grammar.
    fn joined(
        &mut self,
        word: &str,
        part: fn(&mut Self) -> Result<Expr, FilterError>,
        join: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, FilterError> {
        let mut parts = vec![part(self)?];
        while self.keyword(word) {
            parts.push(part(self)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            join(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.skip_space();
        if self.rest().starts_with('(') {
            let open = self.pos;
            self.pos += 1;
            let inner = self.expr()?;
            self.skip_space();
            if !self.rest().starts_with(')') {
                let message = format!("expected ')' to close the '(' at column {}", open + 1);
                return Err(self.error(message));
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.test().map(Expr::Test)
    }

    fn test(&mut self) -> Result<Test, FilterError> {
        let (field_at, name) = self.field_name()?;
        let field = Field::by_name(name).ok_or_else(|| {
            let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
            self.error_at(
                field_at,
                format!(
                    "unknown field '{name}': expected one of {}",
                    known.join(", ")
                ),
            )
        })?;
        self.skip_space();
        let op_at = self.pos;
        let (symbol, op) = OPS
            .iter()
            .find(|(symbol, _)| self.rest().starts_with(symbol))
            .copied()
            .ok_or_else(|| {
                self.error(format!(
                    "expected an operator after '{name}' (=, !=, <, <=, >, >=, ~, !~)"
                ))
            })?;
        self.pos += symbol.len();
        self.skip_space();
        let (value_at, value) = self.value()?;
        let at = |message: String| self.error_at(value_at, message);
        match op {
            Op::Match | Op::NoMatch => {
                let re = Regex::new(&value).map_err(|e| at(format!("bad regex: {e}")))?;
                return Ok(Test::Regex(field, re, op == Op::NoMatch));
            }
            _ if field == Field::Status
                && matches!(op, Op::Eq | Op::Ne)
                && value.parse::<u64>().is_err() =>
            {
                return parse_statuses(&value)
                    .map(|ranges| Test::StatusIn(ranges, op == Op::Ne))
                    .map_err(at);
            }
            _ if field.is_number() => {
                let n = value
                    .parse::<u64>()
                    .map_err(|_| at(format!("expected a number for '{name}', found '{value}'")))?;
                return Ok(Test::Number(field, op, n));
            }
            Op::Eq | Op::Ne => {}
            _ => {
                return Err(self.error_at(
                    op_at,
                    format!("'{name}' is text: compare it with =, !=, ~ or !~"),
                ))
            }
        }
        if field == Field::Client && value.parse::<IpAddr>().is_err() {
            let net = value.parse::<Cidr>().map_err(at)?;
            return Ok(Test::Network(net, op == Op::Ne));
        }
        Ok(Test::Text(field, value.into_bytes(), op == Op::Ne))
    }

    fn field_name(&mut self) -> Result<(usize, &'a str), FilterError> {
        self.skip_space();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            let message = if rest.is_empty() {
                "expected a comparison such as status>=500"
            } else {
                "expected a field name such as status, server or Ta"
            };
            return Err(self.error(message));
        }
        let at = self.pos;
        self.pos += len;
        Ok((at, &rest[..len]))
    }

    /// A quoted value, or one running to the next space or to a `)` that closes a group.
    fn value(&mut self) -> Result<(usize, String), FilterError> {
        let at = self.pos;
        let rest = self.rest();
        if let Some(quote) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) {
            let end = rest[1..]
                .find(quote)
                .ok_or_else(|| self.error(format!("expected a closing {quote}")))?;
            self.pos += end + 2;
            return Ok((at, rest[1..=end].to_owned()));
        }
        let mut depth = 0usize;
        let mut len = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                c if c.is_whitespace() => {
                    len = i;
                    break;
                }
                '(' => depth += 1,
                ')' if depth == 0 => {
                    len = i;
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        if len == 0 {
            return Err(self.error("expected a value"));
        }
        self.pos += len;
        Ok((at, rest[..len].to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logline::parse_line;

    const HTTP: &[u8] = b"<158>Nov 24 21:50:01 haproxy[9]: 10.1.2.3:51522 [24/Nov/2026:21:50:01.674] fe_main be_app/app2 0/5/1/600/1195 503 162 - - sH-- 4/4/3/1/0 1/0 \"POST /api/v1/x HTTP/1.1\"";

    fn matches(expr: &str) -> bool {
        Filter::parse(expr)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(&parse_line(HTTP))
    }

    #[test]
    fn each_operator_on_numbers_text_regexes_and_networks() {
        for yes in [
            "status>=500",
            "status=5xx",
            "status=500-503",
            "status!=200",
            "Ta>1000",
            "Ta<=1195",
            "Tw=5",
            "server=app2",
            "server=be_app/app2",
            "backend~^be_",
            "uri~/api/",
            "method=POST",
            "tsc=sH",
            "tsc=sH--",
            "client=10.0.0.0/8",
            "client=10.1.2.3",
            "client!=192.168.0.0/16",
            "kind=http",
            "uri!~^/static",
        ] {
            assert!(matches(yes), "{yes} should match");
        }
        for no in [
            "status<500",
            "status=4xx",
            "Ta>1195",
            "Tt>0",
            "server=app1",
            "server=be_api/app2",
            "tsc=cD",
            "client=192.168.0.0/16",
            "kind=tcp",
            "event=down",
        ] {
            assert!(!matches(no), "{no} should not match");
        }
    }

    #[test]
    fn and_or_not_and_groups_bind_as_written() {
        assert!(matches("status>=500 and server=app2"));
        assert!(!matches("status>=500 and server=app1"));
        assert!(matches("server=app1 or server=app2 and status=503"));
        assert!(!matches("(server=app1 or server=app2) and status=200"));
        assert!(matches("not (status=200 or status=404)"));
        assert!(matches("NOT kind=tcp AND uri~/(api|v2)/"));
        assert!(matches("uri=\"/api/v1/x\""));
    }

    #[test]
    fn errors_point_at_the_offending_position() {
        let err = |s: &str| Filter::parse(s).unwrap_err();
        assert_eq!(err("status 500").at, 7);
        assert_eq!(err("stat>5").at, 0);
        assert_eq!(err("status>=5oo").at, 8);
        assert_eq!(err("(status=500").at, 11);
        assert_eq!(err("backend~(").at, 8);
        assert_eq!(err("server>a").at, 6);
        assert_eq!(err("status=500 server=a").at, 11);
        assert_eq!(err("").at, 0);
        let shown = err("status>=500 and Ta>x").to_string();
        assert_eq!(
            shown.lines().collect::<Vec<_>>(),
            [
                "bad filter: expected a number for 'Ta', found 'x'",
                "  status>=500 and Ta>x",
                "                     ^"
            ]
        );
    }
}
