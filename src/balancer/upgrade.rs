//! Protocol upgrades (WebSocket and any other `Upgrade:`): the request goes to the server with
//! its `Connection: upgrade` and `Upgrade` headers; if the server answers 101, both connections
//! are handed over to a tunnel copying bytes both ways, and the request's log line is sent when
//! the tunnel closes, as HAProxy logs a WebSocket session: Ta spans the whole session and the
//! bytes count everything the server sent (only the 101's head when the tunnel broke, as the
//! copy does not say how far it got).

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::client_io::Busy;
use super::httplog::{PendingLog, ProxyBody};

/// The protocol a request asks to switch to, if it asks (`Connection: upgrade` and
/// `Upgrade: PROTOCOL`).
pub(super) fn requested(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        headers.get(UPGRADE).cloned()
    } else {
        None
    }
}

/// Puts the upgrade headers back on a request whose hop-by-hop headers were removed, and
/// takes the client's side of the upgrade out of it.
pub(super) fn forward_request(request: &mut Request<Incoming>, protocol: HeaderValue) -> OnUpgrade {
    let headers = request.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, protocol);
    hyper::upgrade::on(request)
}

/// Passes a 101 answer on to the client and runs the tunnel between the two upgraded
/// connections in the background; the log line goes out when it closes.
pub(super) fn tunnel(
    mut response: Response<Incoming>,
    client: OnUpgrade,
    log: PendingLog,
    held: (Busy, impl Send + 'static),
) -> Response<ProxyBody> {
    let server = hyper::upgrade::on(&mut response);
    let (parts, body) = response.into_parts();
    tokio::spawn(async move {
        let (client, server) = match tokio::join!(client, server) {
            (Ok(client), Ok(server)) => (client, server),
            (Err(_), _) => return finish(log, 0, *b"CD", held),
            (_, Err(_)) => return finish(log, 0, *b"SD", held),
        };
        let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
        match tokio::io::copy_bidirectional(&mut client, &mut server).await {
            Ok((_, to_client)) => finish(log, to_client, *b"--", held),
            // Which side broke is not known here; a WebSocket session usually ends by the
            // client going away.
            Err(_) => finish(log, 0, *b"CD", held),
        }
    });
    Response::from_parts(parts, body.boxed_unsync())
}

/// Sends the session's line and releases what it held (the request's busy mark, the server's
/// active slot).
fn finish<H>(mut log: PendingLog, tunnelled: u64, termination: [u8; 2], held: (Busy, H)) {
    log.bytes += tunnelled;
    log.termination = termination;
    drop(held);
    log.send();
}
