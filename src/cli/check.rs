//! `halyard check`: read a haproxy.cfg as `halyard run` would and list every problem, like
//! `haproxy -c`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use halyard::config::CheckedConfig;

/// Check a configuration file and list every error, warning and note in it.
///
/// Reads the file as `halyard run` does, with HAProxy 2.6's semantics and defaults, and prints
/// each finding to stderr as FILE:LINE: error|warning|note: MESSAGE, then "Configuration file
/// is valid" or "Configuration file has N errors". Errors make the file unusable; warnings name
/// what is ignored or likely wrong (keywords halyard does not implement yet, missing timeouts);
/// notes name HAProxy settings halyard has no use for (chroot, daemon, ...).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  halyard check -f /etc/haproxy/haproxy.cfg
  halyard check -f fixtures/configs/lab.cfg 2>&1 | grep -v ': note: '

Exit status: 0 when the file has no error (warnings and notes allowed); 1 when it has errors;
2 when it cannot be read.")]
pub struct Args {
    /// The configuration file to check.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,
}

/// Checks the file; the exit code says whether it is usable.
pub fn run(args: Args) -> Result<ExitCode> {
    let name = args.file.display().to_string();
    let text =
        std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {name}"))?;
    let checked = CheckedConfig::from_text(&name, &text);
    for finding in &checked.findings {
        eprintln!("{finding}");
    }
    println!("{}", checked.summary());
    Ok(if checked.config.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("check", args)
    }

    #[test]
    fn file_is_required() {
        let args = parse(&["-f", "haproxy.cfg"]).unwrap();
        assert_eq!(args.file, PathBuf::from("haproxy.cfg"));
        let args = parse(&["--file", "x.cfg"]).unwrap();
        assert_eq!(args.file, PathBuf::from("x.cfg"));
        assert!(parse(&[]).is_err());
    }
}
