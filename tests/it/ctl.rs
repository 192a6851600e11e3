//! `halyard ctl` against a running balancer's control socket: every command, its effect on
//! real traffic (read back from the log lines), the lines HAProxy logs for it, the socket's
//! permissions and levels, and a refused reload.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::halyard;
use crate::run::{curl, free_port, http_defaults, requests, LogCollector, RunProcess};
use crate::test_backend::TestBackend;

/// A balancer with two servers, an admin socket and a read-only one.
struct CtlLab {
    front: u16,
    log: LogCollector,
    admin: PathBuf,
    read_only: PathBuf,
    run: RunProcess,
    _backends: [TestBackend; 2],
    dir: tempfile::TempDir,
}

impl CtlLab {
    fn start() -> CtlLab {
        let dir = tempfile::tempdir().unwrap();
        let backends = TestBackend::several(["inst1", "inst2"]);
        let log = LogCollector::start();
        let front = free_port();
        let (admin, read_only) = (dir.path().join("admin.sock"), dir.path().join("ro.sock"));
        let config = config(&log, front, &admin, &read_only, &backends);
        let run = RunProcess::start(dir.path(), &config);
        CtlLab {
            front,
            log,
            admin,
            read_only,
            run,
            _backends: backends,
            dir,
        }
    }

    /// `halyard ctl SOCKET COMMAND`: (exit code, answer).
    fn ctl(&self, socket: &Path, command: &str) -> (i32, String) {
        let out = halyard()
            .arg("ctl")
            .arg(socket)
            .args(command.split(' '))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Runs `command` on the admin socket, which must accept it silently.
    fn admin(&self, command: &str) {
        assert_eq!(
            self.ctl(&self.admin, command),
            (0, "\n".to_owned()),
            "{command}"
        );
    }

    /// Sends `n` requests tagged `tag` and returns how many each server answered.
    fn traffic(&self, tag: &str, n: usize) -> BTreeMap<String, usize> {
        let codes = curl(&[format!("http://127.0.0.1:{}/{tag}/[1-{n}]", self.front)]);
        assert_eq!(codes, vec![200; n], "{tag}");
        let prefix = format!("/{tag}/");
        let lines = self.log.wait_for(tag, |l| {
            requests(l)
                .iter()
                .filter(|r| r.3.starts_with(&prefix))
                .count()
                >= n
        });
        let mut servers = BTreeMap::new();
        for (server, ..) in requests(&lines)
            .into_iter()
            .filter(|r| r.3.starts_with(&prefix))
        {
            *servers.entry(server).or_default() += 1;
        }
        servers
    }

    /// A server's `status` in `show stat`.
    fn status(&self, server: &str) -> String {
        let (_, csv) = self.ctl(&self.read_only, "show stat");
        let line = csv
            .lines()
            .find(|l| l.starts_with(&format!("web,{server},")))
            .unwrap_or_else(|| panic!("{server} not in {csv}"));
        line.split(',').nth(17).unwrap().to_owned()
    }
}

fn config(
    log: &LogCollector,
    front: u16,
    admin: &Path,
    read_only: &Path,
    backends: &[TestBackend],
) -> String {
    let mut config = http_defaults(log.addr, "5s").replacen(
        "global\n",
        &format!(
            "global\n    stats socket {} mode 600 level admin\n    stats socket {} level user\n",
            admin.display(),
            read_only.display()
        ),
        1,
    );
    config.push_str(&format!(
        "listen web\n    bind 127.0.0.1:{front}\n    balance roundrobin\n"
    ));
    for (i, backend) in backends.iter().enumerate() {
        config.push_str(&format!("    server inst{} {}\n", i + 1, backend.addr));
    }
    config
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(s, n)| (s.to_string(), *n)).collect()
}

#[test]
fn every_command_changes_traffic_at_once_and_is_logged_like_haproxy() {
    let lab = CtlLab::start();
    let mode = std::fs::metadata(&lab.admin).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        lab.traffic("before", 10),
        counts(&[("inst1", 5), ("inst2", 5)])
    );

    let (code, state) = lab.ctl(&lab.read_only, "show servers state");
    assert_eq!(code, 0);
    let lines: Vec<&str> = state.lines().collect();
    assert_eq!(lines[0], "1");
    assert!(lines[1].starts_with("# be_id be_name srv_id srv_name srv_addr srv_op_state"));
    let inst1: Vec<&str> = lines[2].split(' ').collect();
    assert_eq!(
        &inst1[1..9],
        ["web", "1", "inst1", "127.0.0.1", "2", "0", "1", "1"]
    );
    assert_eq!(inst1[18], lab._backends[0].addr.port().to_string());

    lab.admin("set server web/inst1 state maint");
    lab.log.wait_for_line(
        "Server web/inst1 is going DOWN for maintenance. 1 active and 0 backup servers left. \
         0 sessions active, 0 requeued, 0 remaining in queue.",
    );
    assert_eq!(lab.status("inst1"), "MAINT");
    let (_, state) = lab.ctl(&lab.admin, "show servers state web");
    // Stopped (0) and in forced maintenance (1), as HAProxy says it.
    assert!(state.contains(" web 1 inst1 127.0.0.1 0 1 1 1 "), "{state}");
    assert_eq!(lab.traffic("maint", 6), counts(&[("inst2", 6)]));

    lab.admin("set server web/inst1 state ready");
    lab.log
        .wait_for_line("Server web/inst1 is UP/READY (leaving forced maintenance).");
    assert_eq!(
        lab.traffic("ready", 6),
        counts(&[("inst1", 3), ("inst2", 3)])
    );

    lab.admin("set server web/inst2 state drain");
    lab.log.wait_for_line(
        "Server web/inst2 enters drain state. 1 active and 0 backup servers online. \
         0 sessions requeued, 0 total in queue.",
    );
    assert_eq!(lab.status("inst2"), "DRAIN");
    assert_eq!(lab.traffic("drain", 6), counts(&[("inst1", 6)]));
    lab.admin("set server web/inst2 state ready");
    lab.log
        .wait_for_line("Server web/inst2 is UP (leaving forced drain).");

    lab.admin("set weight web/inst1 3");
    assert_eq!(
        lab.ctl(&lab.admin, "get weight web/inst1"),
        (0, "3 (initial 1)\n\n".to_owned())
    );
    assert_eq!(
        lab.traffic("weighted", 40),
        counts(&[("inst1", 30), ("inst2", 10)])
    );
    lab.admin("set server web/inst1 weight 0");
    assert_eq!(lab.traffic("weight0", 5), counts(&[("inst2", 5)]));
    lab.admin("set weight web/inst1 100%");
    assert_eq!(
        lab.ctl(&lab.read_only, "get weight web/inst1").1,
        "1 (initial 1)\n\n"
    );

    lab.admin("disable server web/inst2");
    lab.log
        .wait_for_line("Server web/inst2 is going DOWN for maintenance. 1 active");
    assert_eq!(lab.traffic("disabled", 4), counts(&[("inst1", 4)]));
    lab.admin("enable server web/inst2");
    assert_eq!(lab.status("inst2"), "no check");
    // Several commands on one line, each answered.
    let (code, answers) = lab.ctl(&lab.admin, "get weight web/inst1; get weight web/inst2");
    assert_eq!(
        (code, answers.as_str()),
        (0, "1 (initial 1)\n\n1 (initial 1)\n\n")
    );
    let (_, info) = lab.ctl(&lab.read_only, "show info");
    assert!(info.starts_with("Name: halyard\n"), "{info}");
    assert!(
        info.contains(&format!("Pid: {}\n", lab.run.pid())),
        "{info}"
    );
    let (_, help) = lab.ctl(&lab.read_only, "help");
    assert!(help.contains("set server <bk>/<srv> state <state>"));
}

#[test]
fn refused_commands_say_why_and_exit_1() {
    let lab = CtlLab::start();
    let refused = [
        (
            &lab.admin,
            "set server web/nope state ready",
            "No such server.\n\n",
        ),
        (
            &lab.admin,
            "set server nope/inst1 state ready",
            "No such server.\n\n",
        ),
        (
            &lab.admin,
            "set server web/inst1 state sleepy",
            "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n",
        ),
        (
            &lab.admin,
            "set weight web/inst1 300",
            "Require <weight> or <weight%>, with <weight> between 0 and 256.\n\n",
        ),
        (
            &lab.read_only,
            "set weight web/inst1 2",
            "Permission denied\n\n",
        ),
        (
            &lab.read_only,
            "disable server web/inst1",
            "Permission denied\n\n",
        ),
        (&lab.read_only, "reload", "Permission denied\n\n"),
    ];
    for (socket, command, answer) in refused {
        assert_eq!(
            lab.ctl(socket, command),
            (1, answer.to_owned()),
            "{command}"
        );
    }
    let (code, answer) = lab.ctl(&lab.admin, "frobnicate");
    assert_eq!(code, 1);
    assert!(
        answer.starts_with("Unknown command. Please enter one of the following commands only :\n")
    );
    assert_eq!(lab.status("inst1"), "no check", "nothing changed");
    let out = halyard()
        .args(["ctl", "/nonexistent/halyard.sock", "show", "stat"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach /nonexistent/halyard.sock"));

    // A reload of a config with errors is refused with them; the running one stays.
    let path = lab.dir.path().join("halyard.cfg");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{good}    balance nosuchalgo\n")).unwrap();
    let (code, answer) = lab.ctl(&lab.admin, "reload");
    assert_eq!(code, 1, "{answer}");
    assert!(
        answer.starts_with("Reload failed, the running configuration stays:\n"),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("{}:", path.display())),
        "file:line in {answer}"
    );
    assert!(
        answer.contains("unknown balance algorithm 'nosuchalgo'"),
        "{answer}"
    );
    lab.run
        .wait_for_stderr("failed, the running configuration stays", 1);
    assert_eq!(
        lab.traffic("after-refused-reload", 4),
        counts(&[("inst1", 2), ("inst2", 2)])
    );
}
