//! `halyard check -f FILE`: the lab configuration passes it and Debian's `haproxy -c`; a broken
//! one gets every error listed with its `file:line`; HAProxy-only settings are notes, unknown
//! keywords warnings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::halog::haproxy;
use crate::{fixtures_dir, halyard};

fn config(name: &str) -> PathBuf {
    fixtures_dir().join("configs").join(name)
}

fn check(path: &Path) -> Output {
    halyard().args(["check", "-f"]).arg(path).output().unwrap()
}

/// Debian's `haproxy -c` finds no error in `path`.
fn assert_haproxy_accepts(path: &Path) {
    let output = Command::new(haproxy())
        .args(["-c", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "haproxy -c {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn lab_config_is_valid_without_warnings() {
    for name in ["lab.cfg", "lab-local.cfg"] {
        let output = check(&config(name));
        assert_eq!(output.status.code(), Some(0), "{name}");
        assert_eq!(stderr_lines(&output), Vec::<String>::new(), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "Configuration file is valid\n"
        );
    }
}

#[test]
fn lab_config_passes_haproxy_too() {
    for name in ["lab.cfg", "lab-local.cfg"] {
        assert_haproxy_accepts(&config(name));
    }
}

#[test]
fn every_error_is_listed_with_its_line() {
    let path = config("broken.cfg");
    let output = check(&path);
    assert_eq!(output.status.code(), Some(1));
    let file = path.display();
    let expected = [
        format!("{file}:3: error: unknown log facility 'local9'"),
        format!(
            "{file}:11: error: 'server' not allowed because frontend 'www' has no backend \
             capability"
        ),
        format!("{file}:12: error: frontend 'www': unable to find required default_backend 'missing'"),
        format!("{file}:13: error: ACL form not supported: 'path_end .php'"),
        format!(
            "{file}:15: error: 'server api/a1': address '127.0.0.1' has no port: halyard does \
             not forward to the client's destination port, write ADDR:PORT"
        ),
        format!(
            "{file}:16: error: 'server api/a2': 'weight' expects an integer from 0 to 256, got \
             '300'"
        ),
        format!("{file}:17: error: backend 'api' has the same name as backend 'api' declared at line 14"),
    ];
    assert_eq!(stderr_lines(&output), expected);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Configuration file has 7 errors\n"
    );
    let haproxy = Command::new(haproxy())
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!haproxy.status.success(), "haproxy -c accepts broken.cfg");
}

#[test]
fn haproxy_process_settings_are_notes_and_unknown_keywords_warnings() {
    let path = config("haproxy-only.cfg");
    let output = check(&path);
    assert_eq!(output.status.code(), Some(0));
    let file = path.display();
    let expected = [
        format!("{file}:4: note: 'chroot' is not needed by halyard, ignored"),
        format!("{file}:5: note: 'daemon' is not needed by halyard, ignored"),
        format!("{file}:6: note: 'user' is not needed by halyard, ignored"),
        format!("{file}:8: warning: unknown keyword 'frobnicate' in 'global' section, ignored"),
        // Line 18, `compression algo gzip`, is supported: nothing to say.
        format!("{file}:19: warning: 'http-reuse' is not supported yet, ignored"),
    ];
    assert_eq!(stderr_lines(&output), expected);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Configuration file is valid\n"
    );
}

#[test]
fn an_unreadable_file_exits_2() {
    let dir = std::env::temp_dir().join(format!("halyard-check-{}", std::process::id()));
    let output = check(&dir.join("missing.cfg"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("halyard: cannot read "), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn example_configs_are_valid_and_the_haproxy_ones_pass_haproxy() {
    let dir = fixtures_dir().join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cfg"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "frontend-backend.cfg",
            "lab.cfg",
            "listener-only.cfg",
            "tcp-service.cfg"
        ]
    );
    for name in &names {
        let output = check(&dir.join(name));
        assert_eq!(output.status.code(), Some(0), "{name}");
        assert_eq!(stderr_lines(&output), Vec::<String>::new(), "{name}");
    }
    // The two without halyard's `log-forward` extensions are plain HAProxy configs.
    for name in ["frontend-backend.cfg", "tcp-service.cfg"] {
        assert_haproxy_accepts(&dir.join(name));
    }
}

#[test]
fn run_without_a_config_points_to_the_demo_and_the_examples() {
    let output = halyard().arg("run").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("cargo run --release -- demo"), "{text}");
    for name in [
        "lab.cfg",
        "frontend-backend.cfg",
        "tcp-service.cfg",
        "listener-only.cfg",
    ] {
        assert!(text.contains(name), "{text}");
        assert!(
            fixtures_dir().join("examples").join(name).exists(),
            "{name}"
        );
    }
}
