//! HTTP response compression (`compression algo|type|offload`), decided as HAProxy 2.6's
//! compression filter decides it, and done frame by frame as the body streams.
//!
//! A response is compressed only when all of these hold (HAProxy's configuration manual,
//! "compression"):
//! - the request is not HEAD, is HTTP/1.1 or above, and its `Accept-Encoding` accepts one of
//!   the configured algorithms (the best quality wins; ties go to the config's order);
//! - the User-Agent is not an old `Mozilla/4` (MSIE 6 SP2 and MSIE 7+ excepted), which
//!   mishandles compressed responses;
//! - the response is HTTP/1.1, has status 200, 201, 202 or 203, a `Content-Length` or chunked
//!   framing, no `Content-Encoding`, no `Cache-Control: no-transform`, a `Content-Type` not
//!   `multipart` and matching `compression type` when one is given (a response without
//!   `Content-Type` is then left alone), and at most one valid `ETag`.
//!
//! The compressed response loses `Content-Length` (it goes chunked), gains `Content-Encoding`
//! and `Vary: Accept-Encoding`, and a strong `ETag` becomes weak. Each body frame is
//! compressed and sync-flushed as it arrives, so a slow stream reaches the client as it is
//! made and memory holds one frame at a time whatever the size of the body.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, Version};

use crate::config::{Backend, CompressionAlgo, Frontend};

/// The compression settings that apply to a request: the backend's, else the frontend's,
/// list by list, as HAProxy looks them up.
#[derive(Debug, Clone, Copy)]
pub(super) struct Policy<'a> {
    algos: &'a [CompressionAlgo],
    types: &'a [String],
    offload: bool,
}

impl<'a> Policy<'a> {
    /// The settings for requests from `frontend` to `backend`.
    pub(super) fn of(frontend: &'a Frontend, backend: &'a Backend) -> Policy<'a> {
        let (fe, be) = (&frontend.compression, &backend.compression);
        Policy {
            algos: if be.algos.is_empty() {
                &fe.algos
            } else {
                &be.algos
            },
            types: if be.types.is_empty() {
                &fe.types
            } else {
                &be.types
            },
            offload: fe.offload || be.offload,
        }
    }

    /// The algorithm to compress the response to `request` with, if one applies; with
    /// `compression offload`, the request then loses its `Accept-Encoding` so the server
    /// answers plain.
    pub(super) fn negotiate<B>(&self, request: &mut Request<B>) -> Option<CompressionAlgo> {
        if self.algos.is_empty()
            || request.method() == Method::HEAD
            || request.version() < Version::HTTP_11
            || old_mozilla(request.headers())
        {
            return None;
        }
        let accepted = request.headers().get_all(header::ACCEPT_ENCODING);
        let algo = best_algo(self.algos, accepted.iter().filter_map(|v| v.to_str().ok()))?;
        if self.offload {
            request.headers_mut().remove(header::ACCEPT_ENCODING);
        }
        Some(algo)
    }

    /// When `response` may be compressed with `algo`: rewrites its headers for it and
    /// returns the encoder for its body.
    pub(super) fn prepare<B>(
        &self,
        algo: CompressionAlgo,
        response: &mut Response<B>,
    ) -> Option<Encoder> {
        let compressible = matches!(response.status().as_u16(), 200..=203)
            && response.version() >= Version::HTTP_11
            && framed(response.headers())
            && !response.headers().contains_key(header::CONTENT_ENCODING)
            && !no_transform(response.headers())
            && self.type_matches(response.headers());
        if !compressible {
            return None;
        }
        let weak_etag = weakened_etag(response.headers())?;
        let encoder = Encoder::new(algo)?;
        let headers = response.headers_mut();
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(algo.coding()),
        );
        if let Some(etag) = weak_etag {
            headers.insert(header::ETAG, etag);
        }
        if !varies_on_encoding(headers) {
            headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        Some(encoder)
    }

    /// `Content-Type` is not multipart and matches `compression type`, if given.
    fn type_matches(&self, headers: &HeaderMap) -> bool {
        let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
            return self.types.is_empty();
        };
        let value = content_type.as_bytes();
        let starts_with = |prefix: &[u8]| {
            value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix)
        };
        !starts_with(b"multipart")
            && (self.types.is_empty() || self.types.iter().any(|t| starts_with(t.as_bytes())))
    }
}

/// The configured algorithm the client accepts with the best quality (`q`), if any.
/// `identity` chosen means "send it as it is".
fn best_algo<'v>(
    algos: &[CompressionAlgo],
    accept_encoding: impl Iterator<Item = &'v str>,
) -> Option<CompressionAlgo> {
    let offers: Vec<(&str, u32)> = accept_encoding
        .flat_map(|v| v.split(','))
        .filter_map(coding_and_quality)
        .collect();
    let quality = |coding: &str| {
        let exact = offers.iter().find(|(c, _)| c.eq_ignore_ascii_case(coding));
        exact
            .or_else(|| offers.iter().find(|(c, _)| *c == "*"))
            .map_or(0, |&(_, q)| q)
    };
    let mut best: Option<(CompressionAlgo, u32)> = None;
    for &algo in algos {
        let q = quality(algo.coding());
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((algo, q));
        }
    }
    best.map(|(algo, _)| algo)
        .filter(|&algo| algo != CompressionAlgo::Identity)
}

/// `gzip;q=0.5` as (`gzip`, 500): the quality in thousandths, 1000 when not given.
fn coding_and_quality(item: &str) -> Option<(&str, u32)> {
    let mut parts = item.split(';');
    let coding = parts.next()?.trim();
    if coding.is_empty() {
        return None;
    }
    let mut quality = 1000;
    for param in parts {
        if let Some((name, value)) = param.split_once('=') {
            if name.trim().eq_ignore_ascii_case("q") {
                quality = parse_quality(value.trim());
            }
        }
    }
    Some((coding, quality))
}

/// RFC 9110's qvalue (`0`, `0.5`, `1.000`) in thousandths; anything else counts as 0.
fn parse_quality(value: &str) -> u32 {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let valid = matches!(whole, "0" | "1")
        && fraction.len() <= 3
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return 0;
    }
    let mut thousandths = 0;
    for (i, digit) in fraction.bytes().enumerate() {
        thousandths += u32::from(digit - b'0') * [100, 10, 1][i];
    }
    if whole == "1" {
        1000
    } else {
        thousandths
    }
}

/// HAProxy's User-Agent exception: `Mozilla/4` browsers mishandle compression, except MSIE 6
/// with XP SP2 (`SV1`) and MSIE 7 and later.
fn old_mozilla(headers: &HeaderMap) -> bool {
    let Some(agent) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if !agent.starts_with("Mozilla/4") {
        return false;
    }
    let Some((_, after)) = agent.split_once("MSIE ") else {
        return true;
    };
    let major: u32 = after
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0, |n, d| {
            n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
        });
    !(major >= 7 || (major == 6 && agent.contains("SV1")))
}

/// The body has a length or chunked framing (not one that ends when the server closes).
fn framed(headers: &HeaderMap) -> bool {
    let chunked_last = list(headers, header::TRANSFER_ENCODING)
        .last()
        .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"));
    chunked_last || headers.contains_key(header::CONTENT_LENGTH)
}

/// The items of a comma-separated list header, over all its lines, trimmed.
fn list(headers: &HeaderMap, name: header::HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// `Cache-Control` says `no-transform`.
fn no_transform(headers: &HeaderMap) -> bool {
    list(headers, header::CACHE_CONTROL)
        .any(|directive| directive.eq_ignore_ascii_case("no-transform"))
}

/// A `Vary` already covers `Accept-Encoding` (or everything).
fn varies_on_encoding(headers: &HeaderMap) -> bool {
    list(headers, header::VARY)
        .any(|name| name == "*" || name.eq_ignore_ascii_case("accept-encoding"))
}

/// `None` when the response must not be compressed (several ETags, or one that is not a
/// quoted entity tag); else the weak form of a strong ETag, if the response has one: a
/// compressed body is no longer byte-for-byte the tagged one.
fn weakened_etag(headers: &HeaderMap) -> Option<Option<HeaderValue>> {
    let mut etags = headers.get_all(header::ETAG).iter();
    let Some(etag) = etags.next() else {
        return Some(None);
    };
    if etags.next().is_some() {
        return None;
    }
    let value = etag.as_bytes();
    let quoted = |v: &[u8]| v.len() >= 2 && v.starts_with(b"\"") && v.ends_with(b"\"");
    if value.starts_with(b"W/") {
        return quoted(&value[2..]).then_some(None);
    }
    if !quoted(value) {
        return None;
    }
    let mut weak = b"W/".to_vec();
    weak.extend_from_slice(value);
    HeaderValue::from_bytes(&weak).ok().map(Some)
}

/// A streaming compressor writing into a buffer that each frame empties.
pub(super) enum Encoder {
    /// `gzip`
    Gzip(GzEncoder<Vec<u8>>),
    /// `deflate` (zlib format)
    Zlib(ZlibEncoder<Vec<u8>>),
    /// `raw-deflate`
    Raw(DeflateEncoder<Vec<u8>>),
}

impl Encoder {
    /// An encoder for `algo`; `None` for `identity`, which changes nothing. Level 1, HAProxy's
    /// default (`tune.comp.maxlevel`): a proxy compresses for bandwidth without making the
    /// CPU its bottleneck.
    fn new(algo: CompressionAlgo) -> Option<Encoder> {
        let level = flate2::Compression::fast();
        Some(match algo {
            CompressionAlgo::Identity => return None,
            CompressionAlgo::Gzip => Encoder::Gzip(GzEncoder::new(Vec::new(), level)),
            CompressionAlgo::Deflate => Encoder::Zlib(ZlibEncoder::new(Vec::new(), level)),
            CompressionAlgo::RawDeflate => Encoder::Raw(DeflateEncoder::new(Vec::new(), level)),
        })
    }

    /// Compresses `data` and flushes (a sync flush: what was given can be decoded now).
    fn compress(&mut self, data: &[u8]) -> std::io::Result<Bytes> {
        let writer: &mut dyn Write = match self {
            Encoder::Gzip(e) => e,
            Encoder::Zlib(e) => e,
            Encoder::Raw(e) => e,
        };
        writer.write_all(data)?;
        writer.flush()?;
        Ok(self.take())
    }

    /// Ends the stream: the last block and the format's trailer.
    fn finish(&mut self) -> std::io::Result<Bytes> {
        match self {
            Encoder::Gzip(e) => e.try_finish()?,
            Encoder::Zlib(e) => e.try_finish()?,
            Encoder::Raw(e) => e.try_finish()?,
        }
        Ok(self.take())
    }

    /// The compressed bytes written since the last call.
    fn take(&mut self) -> Bytes {
        let buffer = match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Zlib(e) => e.get_mut(),
            Encoder::Raw(e) => e.get_mut(),
        };
        Bytes::from(std::mem::take(buffer))
    }
}

/// A response body compressed frame by frame.
pub(super) struct Compressed<B> {
    inner: B,
    encoder: Encoder,
    /// Trailers that arrived, held until the last compressed block has gone out.
    trailers: Option<Frame<Bytes>>,
    done: bool,
}

impl<B> Compressed<B> {
    /// Compresses `inner` with `encoder`.
    pub(super) fn new(inner: B, encoder: Encoder) -> Compressed<B> {
        Compressed {
            inner,
            encoder,
            trailers: None,
            done: false,
        }
    }

    /// The encoder's last bytes, then the held trailers.
    fn finish(&mut self) -> Poll<Option<Result<Frame<Bytes>, B::Error>>>
    where
        B: Body,
    {
        self.done = true;
        match self.encoder.finish() {
            Ok(tail) if !tail.is_empty() => Poll::Ready(Some(Ok(Frame::data(tail)))),
            // Writing into a Vec cannot fail; were zlib to refuse, the client's decoder
            // sees a stream without its trailer, which it reports.
            _ => Poll::Ready(self.trailers.take().map(Ok)),
        }
    }
}

impl<B> Body for Compressed<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(this.trailers.take().map(Ok));
        }
        loop {
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return this.finish(),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(trailers) => {
                    this.trailers = Some(trailers);
                    return this.finish();
                }
            };
            if data.is_empty() {
                continue;
            }
            match this.encoder.compress(&data) {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                // See `finish`: not expected, and the client notices the cut.
                Err(_) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown until the end: the response goes out chunked.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use http_body_util::{BodyExt, Full};

    use super::*;
    use crate::config::Compression;

    fn policy(types: &[&str]) -> (Compression, Vec<String>) {
        let compression = Compression {
            algos: vec![CompressionAlgo::Deflate, CompressionAlgo::Gzip],
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            offload: true,
        };
        let types = compression.types.clone();
        (compression, types)
    }

    fn with<'a>(c: &'a Compression) -> Policy<'a> {
        Policy {
            algos: &c.algos,
            types: &c.types,
            offload: c.offload,
        }
    }

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn the_best_accepted_quality_wins_and_offload_hides_it_from_the_server() {
        let (c, _) = policy(&[]);
        let cases: [(&str, Option<CompressionAlgo>); 8] = [
            ("gzip", Some(CompressionAlgo::Gzip)),
            ("gzip, deflate", Some(CompressionAlgo::Deflate)),
            ("deflate;q=0.5, gzip;q=0.9", Some(CompressionAlgo::Gzip)),
            ("GZIP;Q=1.0", Some(CompressionAlgo::Gzip)),
            ("br, *;q=0.1", Some(CompressionAlgo::Deflate)),
            ("gzip;q=0, deflate;q=0", None),
            ("br, identity", None),
            ("gzip;q=7, deflate;q=0.0001", None),
        ];
        for (accept, expected) in cases {
            let mut r = request(&[("accept-encoding", accept)]);
            assert_eq!(with(&c).negotiate(&mut r), expected, "{accept}");
            assert_eq!(
                r.headers().contains_key("accept-encoding"),
                expected.is_none()
            );
        }
        let mut head = request(&[("accept-encoding", "gzip")]);
        *head.method_mut() = Method::HEAD;
        assert_eq!(with(&c).negotiate(&mut head), None);
        let mut old = request(&[
            ("accept-encoding", "gzip"),
            (
                "user-agent",
                "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)",
            ),
        ]);
        assert_eq!(with(&c).negotiate(&mut old), None);
        let mut ie7 = request(&[
            ("accept-encoding", "gzip"),
            (
                "user-agent",
                "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)",
            ),
        ]);
        assert_eq!(with(&c).negotiate(&mut ie7), Some(CompressionAlgo::Gzip));
    }

    fn response(status: u16, headers: &[(&str, &str)]) -> Response<()> {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn only_plain_successful_transformable_matching_responses_are_compressed() {
        let (c, _) = policy(&["text/", "application/json"]);
        let gzip = CompressionAlgo::Gzip;
        let base = [
            ("content-type", "text/html; charset=utf-8"),
            ("content-length", "10"),
        ];
        let refused: [(u16, &[(&str, &str)]); 9] = [
            (404, &base),
            (204, &base),
            (200, &[("content-type", "text/html")]),
            (
                200,
                &[("content-type", "image/png"), ("content-length", "1")],
            ),
            (200, &[("content-length", "1")]),
            (
                200,
                &[("content-type", "multipart/mixed"), ("content-length", "1")],
            ),
            (
                200,
                &[
                    ("content-type", "text/plain"),
                    ("content-length", "1"),
                    ("content-encoding", "br"),
                ],
            ),
            (
                200,
                &[
                    ("content-type", "text/plain"),
                    ("content-length", "1"),
                    ("cache-control", "public, No-Transform"),
                ],
            ),
            (
                200,
                &[
                    ("content-type", "text/plain"),
                    ("content-length", "1"),
                    ("etag", "abc"),
                ],
            ),
        ];
        for (status, headers) in refused {
            let mut r = response(status, headers);
            assert!(
                with(&c).prepare(gzip, &mut r).is_none(),
                "{status} {headers:?}"
            );
            assert_eq!(
                r.headers(),
                response(status, headers).headers(),
                "left as it was"
            );
        }
        let mut r = response(
            201,
            &[
                ("content-type", "APPLICATION/JSON"),
                ("transfer-encoding", "chunked"),
                ("etag", "\"v1\""),
                ("vary", "Cookie"),
            ],
        );
        assert!(with(&c).prepare(gzip, &mut r).is_some());
        let h = r.headers();
        assert_eq!(h["content-encoding"], "gzip");
        assert_eq!(h["etag"], "W/\"v1\"");
        let vary: Vec<_> = h.get_all("vary").iter().collect();
        assert_eq!(vary, ["Cookie", "Accept-Encoding"]);
        assert!(!h.contains_key("content-length") && !h.contains_key("transfer-encoding"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_frame_is_decodable_as_it_arrives_and_the_whole_is_the_original() {
        let lines: Vec<String> = (0..50)
            .map(|i| format!("line {i} of a streamed body\n"))
            .collect();
        let original = lines.concat();
        let frames = Frames(lines.into_iter().map(Bytes::from).collect());
        let encoder = Encoder::new(CompressionAlgo::Gzip).unwrap();
        let mut body = Compressed::new(frames, encoder);
        let mut wire = Vec::new();
        let mut decoded_so_far = 0;
        while let Some(frame) = body.frame().await {
            wire.extend_from_slice(&frame.unwrap().into_data().unwrap());
            // A sync flush after each frame: what came so far decodes without what follows.
            let mut partial = flate2::read::GzDecoder::new(&wire[..]);
            let mut text = Vec::new();
            let _ = partial.read_to_end(&mut text);
            assert!(text.len() >= decoded_so_far);
            decoded_so_far = text.len();
        }
        assert!(body.is_end_stream());
        let mut whole = String::new();
        flate2::read::GzDecoder::new(&wire[..])
            .read_to_string(&mut whole)
            .unwrap();
        assert_eq!(whole, original);
        let full = Full::new(Bytes::from_static(b"zlib too"));
        let zlib = Compressed::new(full, Encoder::new(CompressionAlgo::Deflate).unwrap());
        let wire = zlib.collect().await.unwrap().to_bytes();
        let mut text = String::new();
        flate2::read::ZlibDecoder::new(&wire[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "zlib too");
    }

    /// A body of these data frames, one per poll.
    struct Frames(std::collections::VecDeque<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|data| Ok(Frame::data(data))))
        }
    }
}
