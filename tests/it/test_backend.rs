//! An HTTP server for the balancer tests, served by hyper in the test process.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// An HTTP server answering `/...` with its name, `/sleep/MS` after a delay, `/status/N` with
/// that status, `/headers` with the request's headers, `/echo` with a protocol switch and an
/// echo, `/download/N` with N bytes streamed, `/drip/N` with N lines 200 ms apart and
/// `/upload` with the size of the request body (read as it streams), `/login` with a
/// `JSESSIONID` cookie of its own; `?type=MIME` sets the
/// Content-Type; stopped when dropped.
pub struct TestBackend {
    pub addr: SocketAddr,
    /// Connections that carried a request other than a health check.
    pub traffic_connections: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestBackend {
    /// Serves on `addr` (port 0 picks one).
    pub fn start(name: &'static str, addr: SocketAddr) -> TestBackend {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let std_listener = StdTcpListener::bind(addr).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let traffic_connections = Arc::new(AtomicU64::new(0));
        let counter = traffic_connections.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let counted = Arc::new(AtomicBool::new(false));
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let check = request.uri().path() == "/index.html";
                        if !check && !counted.swap(true, Ordering::Relaxed) {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        answer(name, request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        TestBackend {
            addr,
            traffic_connections,
            runtime: Some(runtime),
        }
    }

    /// One server per name, each on a port of its own on 127.0.0.1.
    pub fn several<const N: usize>(names: [&'static str; N]) -> [TestBackend; N] {
        names.map(|name| TestBackend::start(name, "127.0.0.1:0".parse().unwrap()))
    }

    /// Stops serving and closes every connection.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn answer(
    name: &'static str,
    mut request: Request<hyper::body::Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    let path = request.uri().path().to_owned();
    if let Some(size) = path.strip_prefix("/download/") {
        let left = size.parse().unwrap_or(0);
        return Ok(Response::new(Zeros { left }.boxed_unsync()));
    }
    if let Some(lines) = path.strip_prefix("/drip/") {
        return Ok(Response::new(drip(lines.parse().unwrap_or(0))));
    }
    if path == "/upload" {
        let mut body = request.into_body();
        let mut received = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            received += frame.data_ref().map_or(0, |d| d.len() as u64);
        }
        return Ok(Response::new(full(received.to_string())));
    }
    // `/echo` with `Upgrade: websocket`: switches protocols, then echoes every byte.
    if path == "/echo" && request.headers().contains_key("upgrade") {
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let (mut from, mut to) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut from, &mut to).await;
            }
        });
        let response = Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(full(String::new()))
            .unwrap();
        return Ok(response);
    }
    let mut status = 200;
    // `/sleep/MS` and `/status/N` may follow a prefix (`/api/sleep/300`) that routes them.
    if let Some((_, ms)) = path.rsplit_once("/sleep/") {
        let ms = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some((_, code)) = path.rsplit_once("/status/") {
        status = code.parse().unwrap_or(500);
    }
    // `/headers`: the request headers the server received, one `name: value` per line.
    let body = if path == "/headers" {
        request
            .headers()
            .iter()
            .map(|(n, v)| format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())))
            .collect()
    } else {
        format!("{name}\n")
    };
    let mut response = Response::builder()
        .status(status)
        .header("x-served-by", name);
    // `?type=MIME`: the response's Content-Type.
    if let Some(mime) = request.uri().query().and_then(|q| q.strip_prefix("type=")) {
        response = response.header("content-type", mime.replace("%20", " "));
    }
    // `/login`: a session cookie of the server's own, as application servers set them.
    if path == "/login" {
        response = response.header("set-cookie", format!("JSESSIONID={name}-session; Path=/"));
    }
    Ok(response.body(full(body)).unwrap())
}

/// `line 0\n` to `line N-1\n`, one every 200 ms, chunked.
fn drip(lines: u32) -> TestBody {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for i in 0..lines {
            if sender
                .send(Bytes::from(format!("line {i}\n")))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    Drip(receiver).boxed_unsync()
}

/// The lines sent on a channel, a frame each.
struct Drip(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for Drip {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|l| Ok(Frame::data(l))))
    }
}

/// The body of every test server response.
type TestBody = UnsyncBoxBody<Bytes, Infallible>;

fn full(text: String) -> TestBody {
    Full::new(Bytes::from(text)).boxed_unsync()
}

/// A body of `left` zero bytes, made 64 KiB at a time as the client reads.
struct Zeros {
    left: u64,
}

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 65536] = [0; 65536];
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &CHUNK[..n as usize],
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }
}
