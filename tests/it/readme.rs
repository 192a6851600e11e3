//! README.md cannot drift from the program: every command in its `console` blocks is run here
//! as a reader would run it, from a copy of `fixtures/`, and must print the lines the README
//! shows, in that order. Shown lines are compared with numbers, the working directory, the
//! binary's path and table widths masked (they vary from run to run and machine to machine);
//! `...` stands for lines left out. A `^C` line interrupts the command (SIGINT) once
//! everything shown before it has appeared. `cargo run --release --` stands for `halyard`
//! (this test uses the binary cargo built for it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One `$ command` of a console block and the output shown under it.
#[derive(Debug)]
struct Example {
    /// Line of the command in README.md.
    line: usize,
    command: String,
    /// Output shown before a `^C` (all of it when there is none).
    before: Vec<String>,
    /// Output shown after a `^C`, if the command is interrupted.
    after: Option<Vec<String>>,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut in_console = false;
    for (i, line) in readme.lines().enumerate() {
        if line.starts_with("```") {
            in_console = !in_console && line.trim() == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            let command = command.replace("cargo run --release -- ", "halyard ");
            examples.push(Example {
                line: i + 1,
                command,
                before: Vec::new(),
                after: None,
            });
        } else if let Some(example) = examples.last_mut() {
            match (&mut example.after, line.trim()) {
                (None, "^C") => example.after = Some(Vec::new()),
                (_, "" | "...") => {}
                (Some(after), _) => after.push(line.to_owned()),
                (None, _) => example.before.push(line.to_owned()),
            }
        }
    }
    examples
}

/// A line with what varies between runs masked: the working directory and the binary's path,
/// numbers (except in `exit status N`), and the padding of table cells.
fn normalize(line: &str, dir: &Path, binary: &Path) -> String {
    let line = line
        .replace(&binary.display().to_string(), "halyard")
        .replace("target/release/halyard", "halyard")
        .replace(&dir.display().to_string(), "~/halyard");
    if line.starts_with("exit status ") {
        return line;
    }
    let mut out = String::new();
    let mut last: Option<char> = None;
    for c in line.chars() {
        let c = if c.is_ascii_digit() { '#' } else { c };
        // Runs of digits, spaces and border strokes collapse to one.
        if Some(c) == last && matches!(c, '#' | ' ' | '─' | '═') {
            continue;
        }
        out.push(c);
        last = Some(c);
    }
    out.trim().to_owned()
}

/// Where `shown` (normalized) appears in order within `actual`: the index after the last
/// line matched, or the first shown line that did not appear.
fn match_in_order(shown: &[String], actual: &[String]) -> Result<usize, String> {
    let mut at = 0;
    for want in shown {
        match actual[at..].iter().position(|a| a == want) {
            Some(found) => at += found + 1,
            None => return Err(want.clone()),
        }
    }
    Ok(at)
}

/// Output lines collected from a running command.
type Lines = Arc<Mutex<Vec<String>>>;

/// A command's process, killed if the test fails while it runs (a lab config's fixed ports
/// would stay taken).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn run(example: &Example, dir: &Path, binary: &Path) {
    let bin_dir = binary.parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // `exec` so that an interrupt reaches the command itself, not the shell.
    let script = if example.after.is_some() {
        format!("exec {} 2>&1", example.command)
    } else {
        format!("({}) 2>&1", example.command)
    };
    let mut running = Running(
        Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(dir)
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut running.0;
    let lines: Lines = Arc::default();
    let reader = {
        let (lines, stdout) = (lines.clone(), child.stdout.take().unwrap());
        let (dir, binary) = (dir.to_owned(), binary.to_owned());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                lines.lock().unwrap().push(normalize(&line, &dir, &binary));
            }
        })
    };
    let norm = |shown: &[String]| -> Vec<String> {
        shown.iter().map(|l| normalize(l, dir, binary)).collect()
    };
    let before = norm(&example.before);
    let context = |what: &str, lines: &Lines| {
        format!(
            "README.md:{}: `{}`: {what}; it printed:\n{}",
            example.line,
            example.command,
            lines.lock().unwrap().join("\n")
        )
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut matched = 0;
    if example.after.is_some() {
        loop {
            if let Ok(at) = match_in_order(&before, &lines.lock().unwrap()) {
                matched = at;
                break;
            }
            assert!(
                Instant::now() < deadline && matches!(child.try_wait(), Ok(None)),
                "{}",
                context("ended or timed out before printing what is shown", &lines)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    }
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.code().is_some(),
                "{}",
                context("killed by a signal", &lines)
            );
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{}", context("did not finish in 90 s", &lines));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap();
    let all = lines.lock().unwrap().clone();
    let (shown, from) = match &example.after {
        Some(after) => (norm(after), matched),
        None => (before, 0),
    };
    if let Err(missing) = match_in_order(&shown, &all[from..]) {
        panic!(
            "{}",
            context(&format!("the README shows `{missing}`"), &lines)
        );
    }
}

/// Copies `from` into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn every_readme_command_prints_what_the_readme_shows() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let examples = examples(&readme);
    let commands: Vec<&str> = examples.iter().map(|e| e.command.as_str()).collect();
    for subcommand in ["demo", "run", "listen", "report", "tail", "parse", "check"] {
        assert!(
            commands
                .iter()
                .any(|c| c.starts_with(&format!("halyard {subcommand}"))),
            "the README tour has no `halyard {subcommand}`: {commands:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    // Canonical, as the program prints it.
    let dir = dir.path().canonicalize().unwrap();
    copy_tree(&root.join("fixtures"), &dir.join("fixtures"));
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_halyard"));
    for example in &examples {
        assert!(
            example.command.starts_with("halyard "),
            "README.md:{}: console commands start with `halyard`",
            example.line
        );
        run(example, &dir, &binary);
    }
}

#[test]
fn shown_output_is_matched_in_order_with_what_varies_masked() {
    let (dir, binary) = (Path::new("/tmp/x"), Path::new("/b/halyard"));
    assert_eq!(
        normalize("│ be_web/w1      ┆ 4        ┆ 57.1%  ┆", dir, binary),
        "│ be_web/w# ┆ # ┆ #.#% ┆"
    );
    assert_eq!(
        normalize("writing /tmp/x/logs/haproxy.log", dir, binary),
        "writing ~/halyard/logs/haproxy.log"
    );
    assert_eq!(normalize("exit status 1", dir, binary), "exit status 1");
    let actual: Vec<String> = ["a", "b", "c", "b"].map(String::from).to_vec();
    assert_eq!(match_in_order(&["b".into(), "b".into()], &actual), Ok(4));
    assert_eq!(
        match_in_order(&["c".into(), "a".into()], &actual),
        Err("a".to_owned())
    );
}
