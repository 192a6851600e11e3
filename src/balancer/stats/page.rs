//! Serving the stats page over HTTP: `stats uri` and what follows it pick the format (`;csv`,
//! `;json`, `/metrics`, else HTML), `stats auth` asks for a login, as HAProxy does.

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};

use super::{csv, html, prometheus, rows};
use crate::balancer::httplog::{error_response, head_len, ProxyBody};
use crate::balancer::proxies::Proxies;
use crate::config::StatsPage;

/// The `;json` document: the rows, their fields in CSV column order.
#[derive(serde::Serialize)]
struct Document<'a> {
    proxies: &'a [super::rows::Row],
}

/// Whether a request is for the stats page (its path and query start with `stats uri`).
pub(in crate::balancer) fn wants(page: &StatsPage, request: &Request<Incoming>) -> bool {
    request
        .uri()
        .path_and_query()
        .is_some_and(|p| p.as_str().starts_with(page.uri.as_str()))
}

/// The answer to a stats request, the bytes HAProxy would log for it, and the termination
/// state (`LR`: answered by the proxy itself; `PR`: refused).
pub(in crate::balancer) fn answer(
    page: &StatsPage,
    proxies: &Proxies,
    request: &Request<Incoming>,
) -> (Response<ProxyBody>, u64, [u8; 2]) {
    if !authorized(page, request) {
        let (mut response, bytes) = error_response(StatusCode::UNAUTHORIZED);
        let challenge = format!("Basic realm=\"{}\"", page.realm.replace('"', "'"));
        let extra = "www-authenticate".len() + 4 + challenge.len();
        if let Ok(value) = challenge.parse() {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        return (response, bytes + extra as u64, *b"PR");
    }
    let target = request.uri().path_and_query().map_or("", |p| p.as_str());
    let rest = target.get(page.uri.len()..).unwrap_or("");
    let rows = rows(proxies);
    let (content_type, body) = if rest.starts_with(";csv") {
        ("text/plain", csv(&rows))
    } else if rest.starts_with(";json") {
        let document = serde_json::to_string(&Document { proxies: &rows });
        ("application/json", document.unwrap_or_default())
    } else if rest.starts_with("/metrics") || rest.starts_with(";metrics") {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            prometheus::metrics(&rows),
        )
    } else {
        let refresh = page.refresh.filter(|_| !rest.contains(";norefresh"));
        let html = html::page(&rows, proxies.started.elapsed(), refresh, &page.uri);
        ("text/html; charset=utf-8", html)
    };
    let headers = [
        ("content-type", content_type.len()),
        ("cache-control", "no-cache".len()),
        ("content-length", body.len().to_string().len()),
    ];
    let logged = head_len("OK", headers.into_iter().map(|(n, v)| (n.len(), v))) + body.len();
    let response = Response::builder()
        .header(CONTENT_TYPE, content_type)
        .header(CACHE_CONTROL, "no-cache")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
    match response {
        Ok(response) => (response, logged as u64, *b"LR"),
        Err(_) => {
            let (response, bytes) = error_response(StatusCode::INTERNAL_SERVER_ERROR);
            (response, bytes, *b"PR")
        }
    }
}

/// No `stats auth` lines, or a Basic login matching one of them.
fn authorized(page: &StatsPage, request: &Request<Incoming>) -> bool {
    if page.users.is_empty() {
        return true;
    }
    let Some(credentials) = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
    else {
        return false;
    };
    let Some((user, password)) = credentials.split_once(':') else {
        return false;
    };
    page.users.iter().any(|(u, p)| u == user && p == password)
}
