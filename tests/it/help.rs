//! What the command line says about itself: every subcommand's `--help` has examples, and the
//! generated shell completions and manual pages cover every subcommand.

use crate::halyard;

/// The subcommands `halyard --help` lists.
fn subcommands() -> Vec<String> {
    let output = halyard().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let listed = text
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_default()
        .to_owned();
    // A subcommand's line is indented by two; its wrapped description, further.
    listed
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommand_help_has_examples() {
    let names = subcommands();
    for expected in [
        "check",
        "completions",
        "demo",
        "listen",
        "man",
        "parse",
        "report",
        "run",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for name in &names {
        let output = halyard().args([name.as_str(), "--help"]).output().unwrap();
        assert!(output.status.success(), "{name} --help");
        let text = String::from_utf8_lossy(&output.stdout);
        let examples = text.split("Examples:").nth(1).unwrap_or_default();
        assert!(
            examples.contains(&format!("halyard {name}")),
            "`halyard {name} --help` shows no example of itself:\n{text}"
        );
    }
}

#[test]
fn completions_and_manual_pages_cover_every_subcommand() {
    let names = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let output = halyard().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        for name in &names {
            assert!(
                script.contains(name.as_str()),
                "{shell} completion lacks {name}"
            );
        }
    }
    let output = halyard().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );

    let dir = tempfile::tempdir().unwrap();
    let output = halyard()
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    for page in
        std::iter::once("halyard".to_owned()).chain(names.iter().map(|n| format!("halyard-{n}")))
    {
        let text = std::fs::read_to_string(dir.path().join(format!("{page}.1"))).unwrap();
        assert!(
            text.contains(&format!(".TH {page} 1")),
            "{page}: {}",
            &text[..200.min(text.len())]
        );
    }
    let output = halyard().arg("man").output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains(".SH SUBCOMMANDS"));
}
