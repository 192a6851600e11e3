//! `bind ... ssl crt FILE`: the certificate file is read and checked when the config is, as
//! `haproxy -c` does, so a missing file, a PEM without its key or a key that belongs to
//! another certificate is a `file:line` error before anything listens.
//!
//! The PEM holds the certificate chain (leaf first) and the private key, as HAProxy's; like
//! HAProxy (`ssl-load-extra-files` by default), a PEM without a key takes it from `FILE.key`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A `crt` file: its certificate chain and the private key, checked to belong together.
#[derive(Debug, Clone)]
pub struct TlsCertificate {
    /// The file as written in the config.
    pub path: PathBuf,
    /// The chain and the signing key, ready for a TLS server.
    pub key: Arc<CertifiedKey>,
}

impl PartialEq for TlsCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.key.cert == other.key.cert
    }
}

/// Reads and checks `path`; the error is the message of a config error (HAProxy's wording).
pub(super) fn load_certificate(path: &Path) -> Result<TlsCertificate, String> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| format!("unable to stat SSL certificate from file '{shown}': {e}"))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("unable to load certificate from file '{shown}': {e}"))?;
    if chain.is_empty() {
        return Err(format!("unable to load certificate from file '{shown}'"));
    }
    let key = private_key(&pem, path)?;
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        format!("the private key in '{shown}' cannot be used with its certificate: {e}")
    })?;
    Ok(TlsCertificate {
        path: path.to_owned(),
        key: Arc::new(key),
    })
}

/// The private key in the PEM, else in `FILE.key` beside it.
fn private_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let broken = |e| {
        format!(
            "unable to load SSL private key from '{}': {e}",
            path.display()
        )
    };
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => return Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {}
        Err(e) => return Err(broken(e)),
    }
    let mut beside = path.as_os_str().to_owned();
    beside.push(".key");
    let beside = PathBuf::from(beside);
    match std::fs::read(&beside) {
        Ok(pem) => PrivateKeyDer::from_pem_slice(&pem).map_err(broken),
        Err(_) => Err(format!(
            "no private key found in '{}' (nor in '{}')",
            path.display(),
            beside.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn chain_and_key_in_one_file_or_the_key_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pem_pair();
        let both = dir.path().join("both.pem");
        std::fs::write(&both, format!("{cert}{key}")).unwrap();
        let loaded = load_certificate(&both).unwrap();
        assert_eq!(loaded.key.cert.len(), 1);
        let alone = dir.path().join("alone.pem");
        std::fs::write(&alone, &cert).unwrap();
        let missing = load_certificate(&alone).unwrap_err();
        assert!(
            missing.starts_with("no private key found in '"),
            "{missing}"
        );
        std::fs::write(dir.path().join("alone.pem.key"), &key).unwrap();
        assert_eq!(load_certificate(&alone).unwrap().key.cert, loaded.key.cert);
    }

    #[test]
    fn unusable_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pem_pair();
        let (_, other_key) = pem_pair();
        let cases = [
            ("none.pem", None, "unable to stat SSL certificate from file"),
            (
                "key.pem",
                Some(key.clone()),
                "unable to load certificate from file",
            ),
            (
                "empty.pem",
                Some(String::new()),
                "unable to load certificate",
            ),
            (
                "garbage.pem",
                Some("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n".to_owned()),
                "unable to load certificate from file",
            ),
            (
                "mismatch.pem",
                Some(format!("{cert}{other_key}")),
                "cannot be used with its certificate",
            ),
        ];
        for (name, content, expected) in cases {
            let path = dir.path().join(name);
            if let Some(content) = content {
                std::fs::write(&path, content).unwrap();
            }
            let error = load_certificate(&path).unwrap_err();
            assert!(error.contains(expected), "{name}: {error}");
        }
    }
}
