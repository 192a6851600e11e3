//! `compression algo|type|offload`: HTTP response compression, as HAProxy 2.6 reads it in
//! `defaults`, `frontend`, `listen` and `backend` (the backend's settings win over the
//! frontend's at run time).
//!
//! Each `algo` and `type` line adds to the list, as in HAProxy; `offload` in `defaults` is
//! ignored with a warning, as HAProxy does.

use super::proxy::Findings;
use super::SectionKind;

/// A compression algorithm of `compression algo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionAlgo {
    /// `identity`: negotiated, but the body is passed as it is (HAProxy's debugging aid).
    Identity,
    /// `gzip`
    Gzip,
    /// `deflate`: the zlib format, as `Content-Encoding: deflate` means.
    Deflate,
    /// `raw-deflate`: deflate without the zlib wrapper (sent as `deflate`, as HAProxy does).
    RawDeflate,
}

impl CompressionAlgo {
    /// The name in the config.
    fn parse(name: &str) -> Option<CompressionAlgo> {
        Some(match name {
            "identity" => CompressionAlgo::Identity,
            "gzip" => CompressionAlgo::Gzip,
            "deflate" => CompressionAlgo::Deflate,
            "raw-deflate" => CompressionAlgo::RawDeflate,
            _ => return None,
        })
    }

    /// The content coding it produces, as `Accept-Encoding` and `Content-Encoding` name it.
    pub fn coding(self) -> &'static str {
        match self {
            CompressionAlgo::Identity => "identity",
            CompressionAlgo::Gzip => "gzip",
            CompressionAlgo::Deflate | CompressionAlgo::RawDeflate => "deflate",
        }
    }
}

/// What a proxy's `compression` lines say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compression {
    /// `compression algo`, in order; empty: this proxy does not compress.
    pub algos: Vec<CompressionAlgo>,
    /// `compression type`: the MIME types compressed (a prefix of the response's
    /// `Content-Type`, case-insensitive, as HAProxy compares); empty: any type.
    pub types: Vec<String>,
    /// `compression offload`: `Accept-Encoding` is removed from requests halyard will
    /// compress, so the server sends them plain.
    pub offload: bool,
}

/// Applies one `compression` line.
pub(super) fn compression(
    settings: &mut Compression,
    section: SectionKind,
    args: &[&str],
    line: usize,
    out: &mut Findings,
) -> Result<(), String> {
    match args {
        ["algo", algos @ ..] if !algos.is_empty() => {
            for name in algos {
                let algo = CompressionAlgo::parse(name).ok_or_else(|| {
                    format!("'compression algo': '{name}' is not a supported algorithm")
                })?;
                settings.algos.push(algo);
            }
            Ok(())
        }
        ["type", types @ ..] if !types.is_empty() => {
            settings.types.extend(types.iter().map(|t| (*t).to_owned()));
            Ok(())
        }
        ["offload"] if section == SectionKind::Defaults => {
            out.warning(
                line,
                "'compression offload' ignored in 'defaults' section".to_owned(),
            );
            Ok(())
        }
        ["offload"] => {
            settings.offload = true;
            Ok(())
        }
        _ => {
            Err("'compression' expects 'algo', 'type' or 'offload' (with their values)".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::proxy_keywords::tests::{findings, TIMEOUTS};
    use crate::config::CheckedConfig;

    use super::*;

    #[test]
    fn lines_add_up_and_the_backend_has_its_own() {
        let text = format!(
            "{TIMEOUTS}    mode http\n    compression algo gzip\nfrontend fe\n    bind :80\n    \
             compression type text/html text/plain\n    compression type application/json\n    \
             compression offload\n    default_backend be\nbackend be\n    \
             compression algo raw-deflate deflate identity\n    server s 10.0.0.1:80\n"
        );
        let checked = CheckedConfig::from_text("t.cfg", &text);
        assert_eq!(findings(&text), Vec::<String>::new());
        let config = checked.config.unwrap();
        let (fe, be) = (
            &config.frontends[0].compression,
            &config.backends[0].compression,
        );
        assert_eq!(fe.algos, [CompressionAlgo::Gzip]);
        assert_eq!(fe.types, ["text/html", "text/plain", "application/json"]);
        assert!(fe.offload);
        use CompressionAlgo::*;
        assert_eq!(be.algos, [Gzip, RawDeflate, Deflate, Identity]);
        assert!(be.types.is_empty() && !be.offload);
    }

    #[test]
    fn unknown_algorithms_and_forms_are_errors_offload_in_defaults_a_warning() {
        let text = format!(
            "{TIMEOUTS}    mode http\n    compression offload\nfrontend fe\n    bind :80\n    \
             compression algo br\n    compression type\n    compression level 9\n    \
             default_backend be\nbackend be\n    server s 10.0.0.1:80\n"
        );
        let expected = "'compression' expects 'algo', 'type' or 'offload' (with their values)";
        assert_eq!(
            findings(&text),
            [
                "6: warning: 'compression offload' ignored in 'defaults' section".to_owned(),
                "9: error: 'compression algo': 'br' is not a supported algorithm".to_owned(),
                format!("10: error: {expected}"),
                format!("11: error: {expected}"),
            ]
        );
    }
}
