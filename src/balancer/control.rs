//! The control socket (`stats socket PATH mode 600 level admin`): HAProxy's runtime API over a
//! Unix socket, the commands operators script with `socat` today, answered in HAProxy's words.
//!
//! A client sends one line of commands separated by `;` and gets each answer followed by an
//! empty line, then the socket closes, as with HAProxy's non-interactive CLI. Changes take
//! effect at once on the current configuration; a reload starts from the config file again.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::backend::{AdminState, BackendState};
use super::proxies::Proxies;
use super::stats::{self, HealthRecord};
use super::{Live, ReloadRequest};
use crate::config::{AccessLevel, StatsSocket};

/// Whether an answer of the control socket says its command failed (`halyard ctl` exits 1).
pub fn is_error_answer(answer: &str) -> bool {
    answer
        .lines()
        .any(|line| ERRORS.iter().any(|e| line.starts_with(e)))
}

/// The starts of the answers that mean a command failed.
const ERRORS: [&str; 7] = [
    "Can't find backend.",
    NO_SUCH_SERVER,
    PERMISSION_DENIED,
    UNKNOWN_COMMAND,
    "'set server <srv> state' expects",
    "Require ",
    "Reload failed",
];
const NO_SUCH_SERVER: &str = "No such server.";
const PERMISSION_DENIED: &str = "Permission denied";
const UNKNOWN_COMMAND: &str = "Unknown command.";

/// The commands, as `help` lists them.
const HELP: &str = "\
The following commands are valid at this level:
  help                                    : this message
  show info                               : report information about the running process
  show stat [json]                        : report counters for each proxy and server
  show servers state [<backend>]          : dump volatile server information
  get weight <bk>/<srv>                   : report a server's current weight
  set weight <bk>/<srv> (<w>|<w>%)        : change a server's weight
  set server <bk>/<srv> state <state>     : set a server's state (ready, drain or maint)
  set server <bk>/<srv> weight <w>[%]     : change a server's weight
  disable server <bk>/<srv>               : put a server in maintenance
  enable server <bk>/<srv>                : take a server out of maintenance
  reload                                  : re-read the configuration file and switch to it
";

/// Listens on the socket `socket` describes, serving clients on the control runtime.
pub(super) fn listen(
    socket: &StatsSocket,
    live: &Arc<Live>,
    reloads: mpsc::UnboundedSender<ReloadRequest>,
) -> std::io::Result<()> {
    // Bound under a temporary name and given its mode before it takes the real one, as
    // HAProxy does, so nobody can connect while it still has the umask's permissions; a
    // socket left by an earlier run is replaced.
    let mut temporary = socket.path.clone().into_os_string();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = std::path::PathBuf::from(temporary);
    if std::fs::symlink_metadata(&temporary).is_ok() {
        std::fs::remove_file(&temporary)?;
    }
    let listener = {
        let _in_runtime = live.control.enter();
        UnixListener::bind(&temporary)?
    };
    if let Some(mode) = socket.mode {
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))?;
    }
    std::fs::rename(&temporary, &socket.path)?;
    let (live, level) = (live.clone(), socket.level);
    let mut stop = live.stop.clone();
    live.control.clone().spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.wait_for(|s| *s) => return,
            };
            if let Ok((stream, _)) = accepted {
                tokio::spawn(session(stream, live.clone(), level, reloads.clone()));
            }
        }
    });
    Ok(())
}

/// One client: a line of commands, their answers, then close.
async fn session(
    stream: UnixStream,
    live: Arc<Live>,
    level: AccessLevel,
    reloads: mpsc::UnboundedSender<ReloadRequest>,
) {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    // A client that never sends its line is not waited for forever.
    let mut reader = BufReader::new(reader.take(64 * 1024));
    let read = reader.read_line(&mut line);
    if !matches!(
        tokio::time::timeout(std::time::Duration::from_secs(10), read).await,
        Ok(Ok(_))
    ) {
        return;
    }
    let mut out = String::new();
    for command in line.split(';') {
        let words: Vec<&str> = command.split_ascii_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let answer = match words.as_slice() {
            ["reload"] if level < AccessLevel::Admin => PERMISSION_DENIED.to_owned(),
            ["reload"] => reload(&reloads).await,
            _ => run(&words, &live.proxies(), level),
        };
        out.push_str(&answer);
        if !answer.is_empty() && !answer.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    // A client that does not read its answer is not waited for forever either.
    let write = async {
        writer.write_all(out.as_bytes()).await?;
        writer.shutdown().await
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), write).await;
}

/// Asks the process to reload and waits for the outcome.
async fn reload(reloads: &mpsc::UnboundedSender<ReloadRequest>) -> String {
    let (reply, outcome) = oneshot::channel();
    if reloads.send(ReloadRequest { reply }).is_err() {
        return "Reload failed: this process does not reload.".to_owned();
    }
    match outcome.await {
        Ok(Ok(())) => "Reload done.".to_owned(),
        Ok(Err(why)) => format!("Reload failed, the running configuration stays:\n{why}"),
        Err(_) => "Reload failed: no answer.".to_owned(),
    }
}

/// Runs one command (other than `reload`) and returns its answer.
fn run(words: &[&str], proxies: &Proxies, level: AccessLevel) -> String {
    let admin = level >= AccessLevel::Admin;
    match words {
        ["help"] => HELP.to_owned(),
        ["show", "info"] => show_info(proxies),
        ["show", "stat"] => stats::csv(&stats::rows(proxies)),
        ["show", "stat", "json"] => {
            serde_json::to_string(&stats::rows(proxies)).unwrap_or_default()
        }
        ["show", "servers", "state"] => servers_state(proxies, None),
        ["show", "servers", "state", backend] => match proxies.backend(backend) {
            Some(_) => servers_state(proxies, Some(backend)),
            None => "Can't find backend.".to_owned(),
        },
        ["get", "weight", target] => match server(proxies, target) {
            Ok((backend, i)) => {
                let s = &backend.servers[i];
                format!(
                    "{} (initial {})",
                    s.weight.load(Ordering::Relaxed),
                    s.config.weight
                )
            }
            Err(e) => e,
        },
        ["set", ..] | ["enable", ..] | ["disable", ..] if !admin => PERMISSION_DENIED.to_owned(),
        ["set", "weight", target, weight] | ["set", "server", target, "weight", weight] => {
            match server(proxies, target) {
                Ok((backend, i)) => set_weight(backend, i, weight),
                Err(e) => e,
            }
        }
        ["set", "server", target, "state", state] => {
            let state = match *state {
                "ready" => AdminState::Ready,
                "drain" => AdminState::Drain,
                "maint" => AdminState::Maint,
                _ => {
                    return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.".into()
                }
            };
            admin_state(proxies, target, state)
        }
        ["disable", "server", target] => admin_state(proxies, target, AdminState::Maint),
        ["enable", "server", target] => admin_state(proxies, target, AdminState::Ready),
        _ => {
            let commands = HELP.split_once('\n').map_or(HELP, |(_, rest)| rest);
            format!(
                "{UNKNOWN_COMMAND} Please enter one of the following commands only :\n{commands}"
            )
        }
    }
}

/// `BACKEND/SERVER`, found.
fn server<'a>(proxies: &'a Proxies, target: &str) -> Result<(&'a BackendState, usize), String> {
    let Some((backend, name)) = target.split_once('/') else {
        return Err("Require 'backend/server'.".to_owned());
    };
    let backend = proxies
        .backend(backend)
        .ok_or_else(|| NO_SUCH_SERVER.to_owned())?;
    let i = backend
        .servers
        .iter()
        .position(|s| s.config.name == name)
        .ok_or_else(|| NO_SUCH_SERVER.to_owned())?;
    Ok((backend, i))
}

fn admin_state(proxies: &Proxies, target: &str, state: AdminState) -> String {
    match server(proxies, target) {
        Ok((backend, i)) => {
            backend.set_admin(i, state);
            String::new()
        }
        Err(e) => e,
    }
}

/// `set weight`: an absolute weight 0-256, or a percentage of the configured one.
fn set_weight(backend: &BackendState, i: usize, weight: &str) -> String {
    let server = &backend.servers[i];
    let parsed = match weight.strip_suffix('%') {
        Some(percent) => percent
            .parse::<u64>()
            .ok()
            .and_then(|p| p.checked_mul(u64::from(server.config.weight)))
            .and_then(|w| u32::try_from(w / 100).ok()),
        None => weight.parse::<u32>().ok(),
    };
    match parsed {
        Some(w) if w <= 256 => {
            server.weight.store(w, Ordering::Relaxed);
            String::new()
        }
        _ => "Require <weight> or <weight%>, with <weight> between 0 and 256.".to_owned(),
    }
}

/// `show info`: who is running and how busy it is.
fn show_info(proxies: &Proxies) -> String {
    let uptime = proxies.started.elapsed().as_secs();
    let rows = stats::rows(proxies);
    let sum = |field: &str| -> u64 {
        rows.iter()
            .filter(|r| r.kind == stats::Kind::Frontend)
            .map(|r| r.number_of(field))
            .sum()
    };
    let mut out = String::new();
    let _ = writeln!(out, "Name: halyard");
    let _ = writeln!(out, "Version: {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "Pid: {}", std::process::id());
    let _ = writeln!(
        out,
        "Uptime: {}d {}h{:02}m{:02}s",
        uptime / 86_400,
        uptime / 3600 % 24,
        uptime / 60 % 60,
        uptime % 60
    );
    let _ = writeln!(out, "Uptime_sec: {uptime}");
    let _ = writeln!(out, "CurrConns: {}", sum("scur"));
    let _ = writeln!(out, "CumConns: {}", sum("stot"));
    let _ = writeln!(out, "CumReq: {}", sum("req_tot"));
    out
}

/// `show servers state`, in HAProxy's format (version 1), numbers as HAProxy encodes them.
fn servers_state(proxies: &Proxies, only: Option<&str>) -> String {
    let mut out = String::from(
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight \
         srv_iweight srv_time_since_last_change srv_check_status srv_check_result \
         srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id \
         srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr \
         srv_agent_port\n",
    );
    let ids = stats::proxy_ids(proxies);
    for backend in &proxies.backends {
        let name = &backend.config.name;
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let be_id = ids.iter().find(|(_, n)| n == name).map_or(0, |(id, _)| *id);
        for (i, server) in backend.servers.iter().enumerate() {
            let c = &server.config;
            let health = server
                .health
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let up = server.up.load(Ordering::Relaxed);
            let maintenance = server.maintenance.load(Ordering::Relaxed);
            // SRV_ADMF_FMAINT (1), with SRV_ADMF_CMAINT (4) when the config put it there, and
            // SRV_ADMF_FDRAIN (8).
            let admin = match (maintenance, c.disabled) {
                (true, true) => 5,
                (true, false) => 1,
                (false, _) => 0,
            } | u8::from(server.drain.load(Ordering::Relaxed)) << 3;
            let (status, result, check_health, check_state) = check_numbers(c, up, &health);
            let _ = writeln!(
                out,
                "{be_id} {name} {} {} {} {} {admin} {} {} {} {status} {result} {check_health} \
                 {check_state} 0 0 0 - {} - 0 0 - - 0",
                i + 1,
                c.name,
                c.addr.ip(),
                // SRV_ST_RUNNING, or SRV_ST_STOPPED when down or in maintenance.
                if up && !maintenance { 2 } else { 0 },
                server.weight.load(Ordering::Relaxed),
                c.weight,
                health.changed.elapsed().as_secs(),
                c.addr.port()
            );
        }
    }
    out
}

/// `srv_check_status`, `srv_check_result`, `srv_check_health`, `srv_check_state` as HAProxy
/// 2.6 numbers them (HCHK_STATUS_*, CHK_RES_*, the rise/fall counter, CHK_ST_* flags).
fn check_numbers(
    server: &crate::config::Server,
    up: bool,
    health: &HealthRecord,
) -> (u8, u8, u32, u8) {
    if !server.check {
        return (0, 0, 0, 0);
    }
    let status = match health.status {
        "L4OK" => 6,
        "L4TOUT" => 7,
        "L4CON" => 8,
        "L7TOUT" => 12,
        "L7RSP" => 13,
        "L7OK" => 15,
        "L7STS" => 17,
        _ => 1,
    };
    let result = match health.status {
        "" => 0,
        "L4OK" | "L7OK" => 3,
        _ => 2,
    };
    let check_health = if up { server.rise + server.fall - 1 } else { 0 };
    (status, result, check_health, 6)
}
