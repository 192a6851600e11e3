//! TLS termination on `bind ... ssl crt FILE`: the handshake on the connection's own task,
//! HAProxy's connection-error line when it fails, and [`ClientStream`], the client socket
//! plain or decrypted.
//!
//! [`ClientStream`] is an enum, not a boxed trait object: a plain connection pays one match
//! per read or write, never an allocation or a virtual call.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chrono::Local;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::frontend::FrontendState;
use super::log::severity;
use super::StartError;
use crate::config::{Mode, TlsCertificate};
use crate::logline::{Body, ConnectionError};

/// A client connection: plain TCP, or TLS terminated here.
pub(super) enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large, and allocated once per connection).
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// Whether the connection came over TLS (the log's `~` after the frontend name).
    pub(super) fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            // Most clients close without a TLS close_notify; like HAProxy, that is the end of
            // the stream, not a broken one (HTTP's own framing catches a cut body).
            ClientStream::Tls(s) => match Pin::new(s).poll_read(cx, buf) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    Poll::Ready(Ok(()))
                }
                polled => polled,
            },
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClientStream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            ClientStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A `bind ... ssl` listener's TLS side: the acceptor and the listener's number for the log.
#[derive(Clone)]
pub(super) struct TlsListener {
    acceptor: TlsAcceptor,
    /// The listener's name in connection-error lines (`fe/1`): its place among the
    /// frontend's binds, from 1, as HAProxy numbers listeners without a `name`.
    id: usize,
}

/// Serves the one certificate of a `bind` line to every client, whatever name it asks for
/// (HAProxy's behaviour with a single `crt` and no `strict-sni`).
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl TlsListener {
    /// The TLS side of listener `id` of a frontend in `mode`; in `mode http` it offers ALPN
    /// `http/1.1`, the one protocol halyard speaks to clients.
    pub(super) fn new(
        certificate: &TlsCertificate,
        mode: Mode,
        id: usize,
    ) -> Result<TlsListener, StartError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StartError::Unsupported(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(OneCertificate(certificate.key.clone())));
        if mode == Mode::Http {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        Ok(TlsListener {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            id,
        })
    }

    /// The TLS handshake with a client, within `timeout client` (as HAProxy bounds it). A
    /// failure is logged as HAProxy logs it and gives `None`.
    pub(super) async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        frontend: &FrontendState,
    ) -> Option<ClientStream> {
        let accepted_at = Local::now();
        let accept = self.acceptor.accept(stream);
        let outcome = match frontend.config.timeouts.client {
            Some(limit) => tokio::time::timeout(limit, accept).await.ok(),
            None => Some(accept.await),
        };
        let error: &[u8] = match outcome {
            Some(Ok(tls)) => return Some(ClientStream::Tls(Box::new(tls))),
            None => b"Timeout during SSL handshake",
            // A connection opened and closed without a word, as a port scan does:
            // `option dontlognull` keeps it out of the log.
            Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                if frontend.config.options.dontlognull {
                    return None;
                }
                b"Connection closed during SSL handshake"
            }
            Some(Err(_)) => b"SSL handshake failure",
        };
        if !frontend.targets.is_empty() {
            let ip = peer.ip().to_canonical().to_string();
            let id = self.id.to_string();
            let body = Body::ConnectionError(ConnectionError {
                client_ip: ip.as_bytes(),
                client_port: peer.port(),
                accept_date: accepted_at.naive_local(),
                frontend: frontend.config.name.as_bytes(),
                listener: id.as_bytes(),
                error,
            });
            frontend
                .log
                .send_body(&frontend.targets, severity::INFO, body);
        }
        None
    }
}
