//! The httplog line of one request: its fields gathered while the request runs, written with
//! the log-line model when the response ends (or fails), as HAProxy does; and the response
//! body wrapper that counts bytes and notices that end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Local};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::ext::ReasonPhrase;
use hyper::{Response, StatusCode};

use super::client_io::Phase;
use super::log::severity;
use super::route::Route;
use super::stats::{Ended, Outcome};
use crate::logline::{
    Body as LogBody, HeaderBlock, HttpLog, HttpSyntax, HttpTimers, Request, Session,
    TerminationState,
};

/// The body type of every response halyard sends.
pub(super) type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// What the log line of one request says, filled in as the request runs.
#[derive(Debug)]
pub(super) struct RequestLog {
    pub client_ip: Arc<str>,
    pub client_port: u16,
    pub accept_date: DateTime<Local>,
    /// When the request's clock started (accept, or the end of the previous keep-alive
    /// request): Ta counts from here.
    pub started: Instant,
    /// Frontend, backend and server: the names and the counters.
    pub route: Route,
    /// TR and Tr in ms (Tw and Tc are the route's); `None` for a phase not reached (-1).
    pub request_ms: Option<u64>,
    pub response_ms: Option<u64>,
    pub status: Option<u16>,
    /// Bytes sent to the client: response head and body.
    pub bytes: u64,
    /// The first two termination-state characters (`--`, `sH`, `SC`, `CD`, ...).
    pub termination: [u8; 2],
    /// The last two: what happened to the persistence cookie (`--` without one).
    pub persistence: [u8; 2],
    pub request_captures: Option<String>,
    pub response_captures: Option<String>,
    /// `METHOD URI VERSION`, or `<BADREQ>`.
    pub request_line: String,
    /// What kind of end it had, for the counters.
    pub ended: Ended,
    /// The client connection's reads, for the request's bytes in.
    pub reads: Option<Arc<Phase>>,
}

impl RequestLog {
    /// Adds the request to its counters and sends its line, with Ta measured from `started`.
    pub(super) fn send(&self) {
        self.route.record(&Outcome {
            ended: self.ended,
            status: self.status,
            bytes_in: self.reads.as_ref().map_or(0, |r| r.take_read()),
            bytes_out: self.bytes,
            termination: self.termination,
            response_ms: self.response_ms,
        });
        let frontend = &self.route.frontend;
        if frontend.targets.is_empty() {
            return;
        }
        let (frontend_name, backend, server) = self.route.names();
        let (method, rest) = self
            .request_line
            .split_once(' ')
            .unwrap_or((self.request_line.as_str(), ""));
        let (uri, version) = match rest.rsplit_once(' ') {
            Some((uri, version)) => (Some(uri), Some(version)),
            None if rest.is_empty() => (None, None),
            None => (Some(rest), None),
        };
        let mut codes = [b'-'; 4];
        codes[..2].copy_from_slice(&self.termination);
        codes[2..].copy_from_slice(&self.persistence);
        let body = LogBody::Http(HttpLog {
            session: Session {
                client_ip: self.client_ip.as_bytes(),
                client_port: self.client_port,
                accept_date: self.accept_date.naive_local(),
                frontend: frontend_name.as_bytes(),
                backend: backend.as_bytes(),
                server: server.as_bytes(),
            },
            timers: HttpTimers {
                request: self.request_ms,
                queue: self.route.queue_ms,
                connect: self.route.connect_ms,
                response: self.response_ms,
                active: Some(self.started.elapsed().as_millis() as u64),
                active_partial: false,
            },
            status: self.status,
            bytes_read: self.bytes,
            bytes_partial: false,
            request_cookie: None,
            response_cookie: None,
            termination_state: TerminationState::new(&codes)
                .unwrap_or_else(|| TerminationState::new(b"----").expect("valid codes")),
            connections: self.route.connections,
            queues: self.route.queues,
            request_headers: self
                .request_captures
                .as_deref()
                .map(|c| HeaderBlock(c.as_bytes())),
            response_headers: self
                .response_captures
                .as_deref()
                .map(|c| HeaderBlock(c.as_bytes())),
            request: Request {
                method: method.as_bytes(),
                uri: uri.map(str::as_bytes),
                version: version.map(str::as_bytes),
                truncated: false,
            },
            syntax: HttpSyntax::HttpLog,
        });
        frontend
            .log
            .send_body(&frontend.targets, severity::INFO, body);
    }
}

/// A request's log record while its response is being made. Sent exactly once: by
/// [`PendingLog::send`], or, if the client goes away before a response starts (hyper then
/// drops the request's future), on drop with HAProxy's `CH` (client abort while waiting for
/// the server's headers).
pub(super) struct PendingLog {
    log: RequestLog,
    sent: bool,
}

impl PendingLog {
    /// Holds `log` until it is sent (or dropped).
    pub(super) fn new(log: RequestLog) -> PendingLog {
        PendingLog { log, sent: false }
    }

    /// Sends the line now.
    pub(super) fn send(mut self) {
        self.sent = true;
        self.log.send();
    }
}

impl std::ops::Deref for PendingLog {
    type Target = RequestLog;

    fn deref(&self) -> &RequestLog {
        &self.log
    }
}

impl std::ops::DerefMut for PendingLog {
    fn deref_mut(&mut self) -> &mut RequestLog {
        &mut self.log
    }
}

impl Drop for PendingLog {
    fn drop(&mut self) {
        if !self.sent {
            self.log.termination = *b"CH";
            self.log.send();
        }
    }
}

/// What runs when a response body ends: given the body's bytes and the termination state.
type Finish = Box<dyn FnOnce(u64, [u8; 2]) + Send>;

/// A response body passed through to the client (the server's, or that compressed): counts
/// the bytes sent, and when it ends (or the client goes away) returns the server connection to
/// its pool and sends the log line.
pub(super) struct LoggedBody<B: Body = Incoming> {
    inner: B,
    finish: Option<Finish>,
    bytes: u64,
}

impl<B: Body> LoggedBody<B> {
    /// Wraps `inner`; `finish(body_bytes, termination)` runs once, at the end.
    pub(super) fn new(inner: B, finish: impl FnOnce(u64, [u8; 2]) + Send + 'static) -> Self {
        LoggedBody {
            inner,
            finish: Some(Box::new(finish)),
            bytes: 0,
        }
    }

    fn end(&mut self, termination: [u8; 2]) {
        if let Some(finish) = self.finish.take() {
            finish(self.bytes, termination);
        }
    }
}

impl<B> Body for LoggedBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.end(*b"--");
                }
            }
            // The server broke off the body.
            Poll::Ready(Some(Err(_))) => self.end(*b"SD"),
            Poll::Ready(None) => self.end(*b"--"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for LoggedBody<B> {
    fn drop(&mut self) {
        // hyper drops a body that is empty from the start (204, 304, HEAD, length 0) without
        // polling it: that is a normal end. Any other body dropped before its end means the
        // client went away mid-body.
        let state = if self.inner.is_end_stream() {
            *b"--"
        } else {
            *b"CD"
        };
        self.end(state);
    }
}

/// One of HAProxy's error pages: status line reason, headers and HTML body.
struct ErrorPage {
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
    html: String,
}

impl ErrorPage {
    fn new(status: StatusCode) -> ErrorPage {
        let (reason, text) = match status.as_u16() {
            400 => ("Bad request", "Your browser sent an invalid request."),
            401 => (
                "Unauthorized",
                "You need a valid user and password to access this content.",
            ),
            403 => ("Forbidden", "Request forbidden by administrative rules."),
            404 => ("Not Found", "The resource could not be found."),
            405 => (
                "Method Not Allowed",
                "A request was made of a resource using a request method not supported by that \
                 resource",
            ),
            429 => (
                "Too Many Requests",
                "You have sent too many requests in a given amount of time.",
            ),
            408 => (
                "Request Time-out",
                "Your browser didn't send a complete request in time.",
            ),
            502 => (
                "Bad Gateway",
                "The server returned an invalid or incomplete response.",
            ),
            503 => (
                "Service Unavailable",
                "No server is available to handle this request.",
            ),
            504 => ("Gateway Time-out", "The server didn't respond in time."),
            500 => (
                "Internal Server Error",
                "An internal server error occurred.",
            ),
            // A `deny_status` HAProxy has no page for: its reason phrase, and no more.
            _ => (status.canonical_reason().unwrap_or("Error"), ""),
        };
        let html = format!(
            "<html><body><h1>{} {reason}</h1>\n{text}\n</body></html>\n",
            status.as_u16()
        );
        let mut headers = vec![
            ("content-length", html.len().to_string()),
            ("cache-control", "no-cache".to_owned()),
        ];
        // HAProxy closes after a request it could not read whole.
        if status == StatusCode::REQUEST_TIMEOUT {
            headers.push(("connection", "close".to_owned()));
        }
        headers.push(("content-type", "text/html".to_owned()));
        ErrorPage {
            reason,
            headers,
            html,
        }
    }

    /// The bytes HAProxy's log counts for the page: HAProxy 2.6 sends its 503/504/502 pages
    /// in 214/195/206 bytes (captured with a raw socket) but logs 3 bytes more (217/198/209
    /// in the captured logs), its own accounting, matched here so halyard's lines read like
    /// HAProxy's.
    fn logged_bytes(&self) -> u64 {
        let head = head_len(
            self.reason,
            self.headers.iter().map(|(n, v)| (n.len(), v.len())),
        );
        (head + self.html.len() + 3) as u64
    }
}

/// One of HAProxy's error responses, byte for byte as HAProxy 2.6 sends it, and the bytes
/// HAProxy's log counts for it.
pub(super) fn error_response(status: StatusCode) -> (Response<ProxyBody>, u64) {
    let page = ErrorPage::new(status);
    let bytes = page.logged_bytes();
    let mut response = Response::builder()
        .status(status)
        .extension(ReasonPhrase::from_static(page.reason.as_bytes()));
    for (name, value) in &page.headers {
        response = response.header(*name, value.as_str());
    }
    let body = Full::new(Bytes::from(page.html))
        .map_err(|never| match never {})
        .boxed_unsync();
    let response = response
        .body(body)
        .unwrap_or_else(|_| Response::new(empty_body()));
    (response, bytes)
}

/// An error page as raw HTTP/1.1 bytes, for answers written past hyper (the request timeout),
/// and the bytes HAProxy's log counts for it.
pub(super) fn error_page_bytes(status: StatusCode) -> (Vec<u8>, u64) {
    let page = ErrorPage::new(status);
    let mut wire = format!("HTTP/1.1 {} {}\r\n", status.as_u16(), page.reason);
    for (name, value) in &page.headers {
        wire.push_str(&format!("{name}: {value}\r\n"));
    }
    wire.push_str("\r\n");
    wire.push_str(&page.html);
    (wire.into_bytes(), page.logged_bytes())
}

/// An empty response body.
pub(super) fn empty_body() -> ProxyBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Bytes of an HTTP/1.1 response head with this reason phrase and these header name and
/// value lengths.
pub(super) fn head_len(reason: &str, headers: impl Iterator<Item = (usize, usize)>) -> usize {
    let status_line = "HTTP/1.1 200 ".len() + reason.len() + 2;
    status_line + headers.map(|(n, v)| n + 2 + v + 2).sum::<usize>() + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pages_count_like_haproxys() {
        // HAProxy 2.6 logs 217 bytes for its 503 page and 198 for its 504 (fixtures).
        assert_eq!(error_response(StatusCode::SERVICE_UNAVAILABLE).1, 217);
        assert_eq!(error_response(StatusCode::GATEWAY_TIMEOUT).1, 198);
        assert_eq!(error_response(StatusCode::BAD_GATEWAY).1, 209);
    }

    #[test]
    fn raw_pages_are_what_hyper_would_send() {
        let (wire, logged) = error_page_bytes(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(wire.len(), 214);
        assert_eq!(logged, 217);
        let (wire, _) = error_page_bytes(StatusCode::REQUEST_TIMEOUT);
        let text = String::from_utf8(wire).unwrap();
        assert!(text.starts_with("HTTP/1.1 408 Request Time-out\r\ncontent-length: 110\r\n"));
        assert!(text.contains("\r\nconnection: close\r\n"));
    }
}
