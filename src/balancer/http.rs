//! HTTP frontends: accept clients, read requests with hyper, choose a backend and a server,
//! forward with streamed bodies both ways, and log one httplog line per request.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use super::acl;
use super::backend::{BackendState, Choice, Connected};
use super::client_io::{Busy, ClientIo, Phase, RequestLimits, RequestTimeout};
use super::compress::{Compressed, Policy};
use super::frontend::{FrontendState, OpenConnection};
use super::httplog::{
    error_page_bytes, error_response, head_len, LoggedBody, PendingLog, ProxyBody, RequestLog,
};
use super::persist;
use super::pool;
use super::route::{Route, ServedBy};
use super::select::RequestKey;
use super::stats::{self, Ended};
use super::tls::ClientStream;
use super::upgrade;
use super::Serving;
use crate::config::{Capture, Mode, StatsPage};

/// Headers that describe one hop, not the message: never forwarded (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The 408 page written when a request does not arrive in time, and its logged size.
static TIMEOUT_PAGE: LazyLock<(Vec<u8>, u64)> =
    LazyLock::new(|| error_page_bytes(StatusCode::REQUEST_TIMEOUT));

/// One client connection's facts every request on it needs.
#[derive(Debug)]
struct ClientConnection {
    peer: SocketAddr,
    accepted: Instant,
    accepted_at: DateTime<Local>,
    /// The next request is the connection's first (its TR counts from the accept).
    first: AtomicBool,
    /// Whether a request is being served (the request timeouts pause meanwhile).
    phase: Arc<Phase>,
    /// The connection came over TLS (`~` after the frontend's name in the log).
    tls: bool,
    /// The client's address as the log writes it, made once per connection.
    ip: Arc<str>,
}

/// Serves HTTP on a client connection until it closes (or `stop`, after the request in
/// flight).
pub(super) async fn serve(
    stream: ClientStream,
    peer: SocketAddr,
    open: OpenConnection,
    serving: Serving,
    mut stop: watch::Receiver<bool>,
) {
    let frontend = open.frontend().clone();
    let client = Arc::new(ClientConnection {
        peer,
        accepted: Instant::now(),
        accepted_at: Local::now(),
        first: AtomicBool::new(true),
        phase: Arc::default(),
        tls: stream.is_tls(),
        ip: peer.ip().to_canonical().to_string().into(),
    });
    let timeouts = frontend.config.timeouts;
    let head = timeouts.http_request.or(timeouts.client);
    let limits = RequestLimits {
        head,
        idle: timeouts.http_keep_alive.or(head),
    };
    let io = ClientIo::new(stream, client.phase.clone(), limits, &TIMEOUT_PAGE.0);
    let mut builder = http1::Builder::new();
    // The request timeouts are `ClientIo`'s (see there why not hyper's).
    builder.keep_alive(true).header_read_timeout(None);
    let mut removed = serving.clone();
    let service = {
        let (frontend, client) = (frontend.clone(), client.clone());
        service_fn(move |request| {
            // Each request goes by the configuration current when it arrives: after a reload,
            // open keep-alive connections move to the new one without being closed.
            let current = serving
                .borrow()
                .as_ref()
                .map(|served| served.frontend.clone())
                .filter(|f| f.config.mode == Mode::Http)
                .unwrap_or_else(|| frontend.clone());
            handle(request, current, client.clone())
        })
    };
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let finished = tokio::select! {
        result = connection.as_mut() => Some(result),
        _ = stop.wait_for(|s| *s) => None,
        // A reload took the address away: nothing serves it any more.
        _ = removed.wait_for(Option::is_none) => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            // Stopping: finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        log_connection_error(&frontend, &client, &e);
    }
}

/// A request hyper could not read: a `<BADREQ>` line with the status hyper answered (400,
/// or 431 for headers over its buffer), or the request timeout (`cR`, 408; not logged under
/// `option dontlognull` when the client sent nothing).
fn log_connection_error(
    frontend: &Arc<FrontendState>,
    client: &ClientConnection,
    e: &hyper::Error,
) {
    let timed_out = client.phase.timed_out();
    if timed_out == Some(RequestTimeout::Empty) && frontend.config.options.dontlognull {
        return;
    }
    let (status, termination) = if timed_out.is_some() {
        (408, *b"cR")
    } else if e.is_parse_too_large() {
        (431, *b"PR")
    } else if e.is_parse() {
        (400, *b"PR")
    } else {
        // The client went away between requests: nothing to log.
        return;
    };
    let mut log = new_log(frontend, client, "<BADREQ>".to_owned());
    log.ended = Ended::Unreadable;
    log.request_ms = None;
    log.status = Some(status);
    log.termination = termination;
    if timed_out.is_some() {
        log.bytes = TIMEOUT_PAGE.1;
    }
    log.send();
}

/// A log record for a request on `client`, before any server is chosen.
fn new_log(
    frontend: &Arc<FrontendState>,
    client: &ClientConnection,
    request_line: String,
) -> RequestLog {
    let first = client.first.swap(false, Ordering::Relaxed);
    let (accept_date, started, request_ms) = if first {
        let waited = client.accepted.elapsed().as_millis() as u64;
        (client.accepted_at, client.accepted, Some(waited))
    } else {
        // The wall clock from the connection's accept and the monotonic time since: no time
        // zone lookup per request.
        let now = Instant::now();
        let since = chrono::Duration::from_std(now - client.accepted).unwrap_or_default();
        (client.accepted_at + since, now, Some(0))
    };
    RequestLog {
        client_ip: client.ip.clone(),
        client_port: client.peer.port(),
        accept_date,
        started,
        route: Route::new(frontend.clone(), client.tls),
        request_ms,
        response_ms: None,
        status: None,
        bytes: 0,
        termination: *b"--",
        persistence: *b"--",
        request_captures: None,
        response_captures: None,
        request_line,
        ended: Ended::Request,
        reads: Some(client.phase.clone()),
    }
}

async fn handle(
    request: Request<Incoming>,
    frontend: Arc<FrontendState>,
    client: Arc<ClientConnection>,
) -> Result<Response<ProxyBody>, Infallible> {
    let line = format!(
        "{} {} {:?}",
        request.method(),
        request.uri(),
        request.version()
    );
    let busy = client.phase.begin();
    let mut log = PendingLog::new(new_log(&frontend, &client, line));
    log.request_captures = captures(&frontend.config.request_captures, request.headers());
    let ip = client.peer.ip().to_canonical();
    let denied = frontend
        .config
        .deny
        .iter()
        .find(|rule| acl::applies(rule.when.as_ref(), ip, Some(&request)));
    if let Some(rule) = denied {
        let status = StatusCode::from_u16(rule.status).unwrap_or(StatusCode::FORBIDDEN);
        log.ended = Ended::Denied;
        return Ok(fail(log, status, *b"PR"));
    }
    if let Some(page) = frontend.config.stats.as_ref() {
        if stats::page::wants(page, &request) {
            return Ok(stats_page(log, page, &frontend, &request));
        }
    }
    let Some(backend) = choose_backend(&frontend, &request, ip) else {
        return Ok(fail(log, StatusCode::SERVICE_UNAVAILABLE, *b"PR"));
    };
    log.route.backend = Some(backend.clone());
    if let Some(page) = backend.config.stats.as_ref() {
        if stats::page::wants(page, &request) {
            return Ok(stats_page(log, page, &frontend, &request));
        }
    }
    Ok(forward(request, &frontend, &backend, &client, log, busy).await)
}

/// Answers with the stats page (or its login prompt), logged from `<STATS>` as HAProxy does.
fn stats_page(
    mut log: PendingLog,
    page: &StatsPage,
    frontend: &FrontendState,
    request: &Request<Incoming>,
) -> Response<ProxyBody> {
    let (response, bytes, termination) = stats::page::answer(page, &frontend.proxies, request);
    log.route.server = ServedBy::Stats;
    log.status = Some(response.status().as_u16());
    log.bytes = bytes;
    log.termination = termination;
    log.route.queue_ms = Some(0);
    log.response_ms = Some(0);
    log.send();
    response
}

/// The backend of the first `use_backend` rule that matches, else the default.
fn choose_backend(
    frontend: &FrontendState,
    request: &Request<Incoming>,
    client: IpAddr,
) -> Option<Arc<BackendState>> {
    for rule in &frontend.config.rules {
        if acl::holds(&rule.condition, client, Some(request)) != rule.negate {
            return frontend.backend(&rule.backend);
        }
    }
    let default = frontend.config.default_backend.as_deref()?;
    frontend.backend(default)
}

/// Picks a server (retrying and redispatching connection failures), sends the request and
/// streams the response back.
async fn forward(
    mut request: Request<Incoming>,
    frontend: &Arc<FrontendState>,
    backend: &Arc<BackendState>,
    client: &ClientConnection,
    mut log: PendingLog,
    busy: Busy,
) -> Response<ProxyBody> {
    let upgrade_to = upgrade::requested(request.headers());
    let compression = Policy::of(&frontend.config, &backend.config);
    let algo = compression.negotiate(&mut request);
    prepare_request(&mut request, frontend, backend, client);
    let client_upgrade = upgrade_to.map(|p| upgrade::forward_request(&mut request, p));
    let connect_timeout = backend
        .config
        .timeouts
        .connect
        .unwrap_or(Duration::from_secs(5));
    let worker = frontend.worker;
    let cookie = backend.config.cookie.as_ref();
    let sticky = cookie.map(|c| persist::read_request(c, backend, request.headers_mut()));
    if let Some(sticky) = sticky {
        log.persistence[0] = sticky.state;
    }
    let attempts = backend
        .connect(
            |avoid| match sticky.and_then(|s| s.server) {
                Some(i) if avoid.is_empty() => backend.pick_server(i),
                _ => pick_server_by_request(backend, client, &request, avoid),
            },
            |i| async move {
                let server = &backend.servers[i];
                match pooled(&server.pools[worker]).await {
                    Some(conn) => Ok(conn),
                    None => pool::connect(server.config.addr, connect_timeout).await,
                }
            },
        )
        .await;
    let failed = log.route.note_attempts(&attempts);
    let Some(Connected {
        server: i,
        guard,
        mut conn,
        ..
    }) = attempts.connected
    else {
        let termination = failed.unwrap_or(*b"SC");
        return fail(log, StatusCode::SERVICE_UNAVAILABLE, termination);
    };
    let sent = Instant::now();
    let server_timeout = backend
        .config
        .timeouts
        .server
        .unwrap_or(Duration::from_secs(60));
    let addr = backend.servers[i].config.addr;
    let exchange = async {
        let unsent = match conn.try_send_request(request).await {
            Ok(response) => return Ok(response),
            Err(mut e) => e.take_message().ok_or(*b"SH")?,
        };
        // A pooled connection the server had closed, noticed before the request went out:
        // one more try on a new connection, as for a failed connect.
        conn = pool::connect(addr, connect_timeout)
            .await
            .map_err(|_| *b"SC")?;
        conn.send_request(unsent).await.map_err(|_| *b"SH")
    };
    let mut response = match tokio::time::timeout(server_timeout, exchange).await {
        Err(_) => return fail(log, StatusCode::GATEWAY_TIMEOUT, *b"sH"),
        Ok(Err(termination)) if termination == *b"SC" => {
            return fail(log, StatusCode::SERVICE_UNAVAILABLE, termination)
        }
        Ok(Err(termination)) => return fail(log, StatusCode::BAD_GATEWAY, termination),
        Ok(Ok(response)) => response,
    };
    log.response_ms = Some(sent.elapsed().as_millis() as u64);
    log.status = Some(response.status().as_u16());
    log.response_captures = captures(&frontend.config.response_captures, response.headers());
    // Decided on the server's own headers: its framing goes with the hop-by-hop ones.
    let encoder = algo.and_then(|algo| compression.prepare(algo, &mut response));
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if !switching {
        strip_hop_by_hop(response.headers_mut());
    }
    if let (Some(cookie), Some(sticky)) = (cookie, sticky) {
        let had_it = sticky.server == Some(i);
        let value = backend.servers[i].config.cookie.as_deref();
        log.persistence[1] = persist::write_response(cookie, value, had_it, response.headers_mut());
    }
    log.bytes = response_head_len(&response) as u64;
    if switching {
        return match client_upgrade {
            Some(client_upgrade) => {
                // The tunnel outlives hyper's connection: it keeps the connection counted
                // (`ac`/`fc`, and the drain at stop waits for it).
                let held = (guard, frontend.open());
                upgrade::tunnel(response, client_upgrade, log, (busy, held))
            }
            // A protocol switch nobody asked for cannot be passed on.
            None => fail(log, StatusCode::BAD_GATEWAY, *b"SH"),
        };
    }
    let (parts, body) = response.into_parts();
    let backend = backend.clone();
    let finish = move |body_bytes, termination| {
        log.bytes += body_bytes;
        log.termination = termination;
        if termination == *b"--" {
            backend.servers[i].pools[worker].give_back(conn);
        }
        drop(guard);
        drop(busy);
        log.send();
    };
    let body = match encoder {
        Some(encoder) => LoggedBody::new(Compressed::new(body, encoder), finish).boxed_unsync(),
        None => LoggedBody::new(body, finish).boxed_unsync(),
    };
    Response::from_parts(parts, body)
}

/// Bytes of the response head as it goes to the client.
fn response_head_len(response: &Response<Incoming>) -> usize {
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_else(|| {
            response
                .status()
                .canonical_reason()
                .unwrap_or("")
                .to_owned()
        });
    head_len(
        &reason,
        response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().len(), v.len())),
    )
}

/// Chooses a server on what the request says (kept out of `forward`'s awaits: the key
/// borrows a closure that need not be `Send`).
fn pick_server_by_request(
    backend: &Arc<BackendState>,
    client: &ClientConnection,
    request: &Request<Incoming>,
    avoid: &[usize],
) -> Choice {
    let headers = request.headers();
    let header = |name: &str| -> Option<&str> { headers.get(name).and_then(|v| v.to_str().ok()) };
    let uri = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let key = RequestKey {
        client: client.peer.ip().to_canonical(),
        uri,
        header: &header,
    };
    backend.pick(&key, avoid)
}

/// An idle pooled connection ready for the next request, skipping any the server closed.
async fn pooled(pool: &pool::Pool) -> Option<hyper::client::conn::http1::SendRequest<Incoming>> {
    while let Some(mut conn) = pool.take() {
        // It was given back once its response was read: ready at once, or not worth waiting.
        let ready = tokio::time::timeout(Duration::from_millis(100), conn.ready()).await;
        if matches!(ready, Ok(Ok(()))) {
            return Some(conn);
        }
    }
    None
}

/// Removes hop-by-hop headers and adds `X-Forwarded-For` when asked.
fn prepare_request(
    request: &mut Request<Incoming>,
    frontend: &FrontendState,
    backend: &BackendState,
    client: &ClientConnection,
) {
    strip_hop_by_hop(request.headers_mut());
    if frontend.config.options.forwardfor || backend.config.options.forwardfor {
        let ip = client.peer.ip().to_canonical().to_string();
        if let Ok(value) = HeaderValue::from_str(&ip) {
            request
                .headers_mut()
                .append(HeaderName::from_static("x-forwarded-for"), value);
        }
    }
}

/// Removes the hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// The captured header values joined with `|`, each cut to its `len`.
fn captures(captures: &[Capture], headers: &HeaderMap) -> Option<String> {
    if captures.is_empty() {
        return None;
    }
    let values: Vec<String> = captures
        .iter()
        .map(|c| {
            let value = headers
                .get(c.name.as_str())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            value.chars().take(c.len).collect()
        })
        .collect();
    Some(values.join("|"))
}

/// Answers with one of HAProxy's error pages and logs the request.
fn fail(mut log: PendingLog, status: StatusCode, termination: [u8; 2]) -> Response<ProxyBody> {
    let (response, bytes) = error_response(status);
    log.status = Some(status.as_u16());
    log.bytes = bytes;
    log.termination = termination;
    log.send();
    response
}
