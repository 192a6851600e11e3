//! `bind ... ssl crt FILE`: TLS terminated by `halyard run` in `mode http` and `mode tcp`, with
//! a certificate made here (rcgen), clients that trust only it (curl, and a rustls client for
//! what curl does not show), the `fe~` of the log read with the log-line model, HAProxy's
//! connection-error line for a failed handshake, and `halyard check` on bad `ssl` lines.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use halyard::logline::{parse_line, Body};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::halyard;
use crate::run::{free_port, http_defaults, LogCollector, RunProcess};
use crate::test_backend::TestBackend;

/// A self-signed certificate for `localhost` and 127.0.0.1, written to `dir` as `cert.pem`
/// (the certificate alone, for clients to trust) and `site.pem` (certificate then key, as
/// HAProxy's `crt` takes it).
pub struct Site {
    pub cert: CertificateDer<'static>,
    pub cert_pem: PathBuf,
    pub site_pem: PathBuf,
}

impl Site {
    pub fn new(dir: &Path) -> Site {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let made = rcgen::generate_simple_self_signed(names).unwrap();
        let (cert_pem, site_pem) = (dir.join("cert.pem"), dir.join("site.pem"));
        std::fs::write(&cert_pem, made.cert.pem()).unwrap();
        let both = format!("{}{}", made.cert.pem(), made.signing_key.serialize_pem());
        std::fs::write(&site_pem, both).unwrap();
        Site {
            cert: made.cert.der().clone(),
            cert_pem,
            site_pem,
        }
    }

    /// A TLS client that trusts this certificate alone and offers ALPN `h2` and `http/1.1`.
    fn connector(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// `curl --cacert` on `url`: status and body.
pub fn curl_tls(cacert: &Path, url: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}", "--cacert"])
        .arg(cacert)
        .args(extra)
        .arg(url)
        .output()
        .expect("curl (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.parse().unwrap_or(0), body.to_owned())
}

/// Over TLS to `addr`: writes `request`, reads to the end; with the protocol ALPN agreed on.
fn tls_exchange(site: &Site, addr: SocketAddr, request: &[u8]) -> (Option<Vec<u8>>, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = site.connector().connect(name, tcp).await.unwrap();
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        tls.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        (alpn, String::from_utf8_lossy(&answer).into_owned())
    })
}

#[test]
fn https_is_served_logged_with_a_tilde_and_a_bad_handshake_is_logged_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path());
    let backend = TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap());
    let log = LogCollector::start();
    let (plain, secure) = (free_port(), free_port());
    let config = format!(
        "{}listen web\n    bind 127.0.0.1:{plain}\n    bind 127.0.0.1:{secure} ssl crt {}\n    \
         server inst1 {}\n",
        http_defaults(log.addr, "5s"),
        site.site_pem.display(),
        backend.addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let url = format!("https://127.0.0.1:{secure}/over-tls");
    assert_eq!(
        curl_tls(&site.cert_pem, &url, &[]),
        (200, "inst1\n".to_owned())
    );

    // Plain HTTP on the TLS port: no answer, HAProxy's connection-error line, and the port
    // goes on serving.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", secure)).unwrap();
    std::io::Write::write_all(&mut raw, b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut raw, &mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    let failure = log.wait_for_line("SSL handshake failure");
    let Body::ConnectionError(error) = parse_line(failure.as_bytes()).body else {
        panic!("not a connection error line: {failure}");
    };
    assert_eq!(
        (error.frontend, error.listener, error.error),
        (&b"web"[..], &b"2"[..], &b"SSL handshake failure"[..]),
        "{failure}"
    );
    let (alpn, answer) = tls_exchange(
        &site,
        format!("127.0.0.1:{secure}").parse().unwrap(),
        b"GET /alpn HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]), "h2 is not offered");
    assert!(answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("inst1\n"));
    let plain_url = format!("http://127.0.0.1:{plain}/in-clear");
    assert_eq!(crate::run::curl(&[plain_url]), [200]);

    let lines = log.wait_for("three requests", |lines| {
        lines
            .iter()
            .filter(|l| matches!(parse_line(l).body, Body::Http(_)))
            .count()
            >= 3
    });
    let mut frontends: Vec<(String, String, String, bool)> = lines
        .iter()
        .filter_map(|l| match parse_line(l).body {
            Body::Http(h) => Some((
                String::from_utf8_lossy(h.request.uri.unwrap_or_default()).into_owned(),
                String::from_utf8_lossy(h.session.frontend).into_owned(),
                String::from_utf8_lossy(h.session.server).into_owned(),
                h.session.is_tls(),
            )),
            _ => None,
        })
        .collect();
    frontends.sort();
    let row = |uri: &str, fe: &str, tls| (uri.to_owned(), fe.to_owned(), "inst1".to_owned(), tls);
    assert_eq!(
        frontends,
        [
            row("/alpn", "web~", true),
            row("/in-clear", "web", false),
            row("/over-tls", "web~", true),
        ]
    );
}

#[test]
fn a_tcp_service_terminates_tls_and_relays_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path());
    // The server speaks plain HTTP; to `mode tcp` it is just bytes.
    let backend = TestBackend::start("inst1", "127.0.0.1:0".parse().unwrap());
    let log = LogCollector::start();
    let front = free_port();
    let config = format!(
        "global\n    log {} local3\ndefaults\n    timeout connect 1s\n    timeout client 5s\n    \
         timeout server 5s\nlisten relay\n    mode tcp\n    log global\n    option tcplog\n    \
         bind 127.0.0.1:{front} ssl crt {}\n    server t1 {}\n",
        log.addr,
        site.site_pem.display(),
        backend.addr
    );
    let _run = RunProcess::start(dir.path(), &config);
    let request = b"GET /relayed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (alpn, answer) = tls_exchange(
        &site,
        format!("127.0.0.1:{front}").parse().unwrap(),
        request,
    );
    assert_eq!(
        alpn, None,
        "no ALPN in mode tcp: the protocol is not ours to say"
    );
    assert!(
        answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("inst1\n"),
        "{answer}"
    );
    let line = log.wait_for_line("relay~");
    let Body::Tcp(session) = parse_line(line.as_bytes()).body else {
        panic!("not a tcplog line: {line}");
    };
    assert_eq!(session.session.frontend, b"relay~");
    assert_eq!(session.session.server, b"t1");
    assert_eq!(session.termination_state.as_bytes(), b"--");
    assert_eq!(session.bytes_read, answer.len() as u64, "{line}");
}

#[test]
fn check_reports_unusable_ssl_binds_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path());
    let key_only = dir.path().join("key-only.pem");
    let site_text = std::fs::read_to_string(&site.site_pem).unwrap();
    let key_at = site_text.find("-----BEGIN PRIVATE KEY").unwrap();
    std::fs::write(&key_only, &site_text[key_at..]).unwrap();
    let missing = dir.path().join("missing.pem");
    let config = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    \
         timeout server 1s\nfrontend fe\n    bind 127.0.0.1:8443 ssl\n    \
         bind 127.0.0.1:8444 ssl crt {missing}\n    bind 127.0.0.1:8445 ssl crt {cert}\n    \
         bind 127.0.0.1:8446 ssl crt {key}\n    bind 127.0.0.1:8447 crt {site}\n    \
         bind 127.0.0.1:8448 ssl crt {site}\n    default_backend be\nbackend be\n    \
         server s 127.0.0.1:8080\n",
        missing = missing.display(),
        cert = site.cert_pem.display(),
        key = key_only.display(),
        site = site.site_pem.display(),
    );
    let path = dir.path().join("ssl.cfg");
    std::fs::write(&path, config).unwrap();
    let output = halyard().args(["check", "-f"]).arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let file = path.display();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let expected = [
        format!(
            "{file}:7: error: no SSL certificate specified for 'bind 127.0.0.1:8443' (use 'crt')"
        ),
        format!(
            "{file}:8: error: 'bind 127.0.0.1:8444': unable to stat SSL certificate from file \
             '{}': No such file or directory (os error 2)",
            missing.display()
        ),
        format!(
            "{file}:9: error: 'bind 127.0.0.1:8445': no private key found in '{}' (nor in '{}.key')",
            site.cert_pem.display(),
            site.cert_pem.display()
        ),
        format!(
            "{file}:10: error: 'bind 127.0.0.1:8446': unable to load certificate from file '{}'",
            key_only.display()
        ),
        format!(
            "{file}:11: warning: 'bind 127.0.0.1:8447': 'crt {}' without 'ssl' is ignored, the \
             bind is plain TCP",
            site.site_pem.display()
        ),
    ];
    assert_eq!(lines, expected, "{stderr}");
}
