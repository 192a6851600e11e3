//! The demo's directory: the files its listener writes, and those of an earlier demo, which
//! the report would otherwise count as this one's.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The log file the listener writes; rotated ones add `.1.gz`, `.2.gz`...
pub(super) const LOG_FILE: &str = "haproxy.log";
/// The config the demo writes into its directory.
pub(super) const CONFIG_FILE: &str = "halyard.cfg";
/// The first line of that config: how a later demo knows the directory's logs are a demo's.
pub(super) const MARKER: &str = "# Written by halyard demo";

/// Makes `dir` ready: created, and without the log files of an earlier demo, which the report
/// would count. Log files no demo wrote are left alone, and the demo does not start.
pub(super) fn clear_earlier_demo(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let logs = log_files(dir)?;
    if logs.is_empty() {
        return Ok(());
    }
    let ours = std::fs::read_to_string(dir.join(CONFIG_FILE)).is_ok_and(|t| t.starts_with(MARKER));
    if !ours {
        bail!(
            "{} holds {LOG_FILE} files that no demo wrote (its {CONFIG_FILE} does not start \
             with '{MARKER}'): give the demo another --dir",
            dir.display()
        );
    }
    for file in &logs {
        std::fs::remove_file(file).with_context(|| format!("removing {}", file.display()))?;
    }
    eprintln!(
        "halyard demo: removed the {} log files of an earlier demo from {}",
        logs.len(),
        dir.display()
    );
    Ok(())
}

/// The listener's files in `dir`, oldest first: `haproxy.log.N[.gz]` by falling N, then
/// `haproxy.log`.
pub(super) fn log_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let age = if name == LOG_FILE {
            Some(0)
        } else {
            // Another rotated name (a staged `.pending-...` one) sorts first.
            name.strip_prefix(LOG_FILE)
                .and_then(|rest| rest.strip_prefix('.'))
                .map(|n| n.trim_end_matches(".gz").parse().unwrap_or(u64::MAX))
        };
        if let Some(age) = age {
            files.push((age, entry.path()));
        }
    }
    files.sort_by_key(|(age, _)| std::cmp::Reverse(*age));
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_demos_logs_are_cleared_and_others_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "haproxy.log",
            "haproxy.log.10.gz",
            "haproxy.log.2.gz",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let names = |files: Vec<PathBuf>| -> Vec<String> {
            files
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(log_files(dir.path()).unwrap()),
            ["haproxy.log.10.gz", "haproxy.log.2.gz", "haproxy.log"],
            "oldest first"
        );
        let refused = clear_earlier_demo(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("that no demo wrote"), "{refused}");
        assert_eq!(log_files(dir.path()).unwrap().len(), 3);
        std::fs::write(dir.path().join(CONFIG_FILE), format!("{MARKER}: ...\n")).unwrap();
        clear_earlier_demo(dir.path()).unwrap();
        assert_eq!(log_files(dir.path()).unwrap(), Vec::<PathBuf>::new());
        assert!(dir.path().join("notes.txt").exists());
    }
}
