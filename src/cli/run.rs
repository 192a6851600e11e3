//! `halyard run`: the load balancer from a haproxy.cfg, with the syslog listener of its
//! `log-forward` section in the same process.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::mpsc::UnboundedReceiver;

use halyard::balancer::{Balancer, ReloadRequest};
use halyard::config::{ConfigFile, ProxyConfig};
use halyard::listener::{CounterSnapshot, Listener};

/// Run the load balancer described by a haproxy.cfg.
///
/// Reads the haproxy.cfg syntax (global, defaults, listen, frontend, backend; see `halyard
/// check`), serves HTTP (or TCP, with `mode tcp`) on every `bind`, health-checks the servers,
/// and sends one HAProxy log line per request (per session in TCP mode) as UDP syslog to the
/// `log` targets. With a `log-forward` section, the
/// syslog listener runs in the same process and receives those lines into rotating files.
/// SIGHUP (or `halyard ctl SOCKET reload`) re-reads the config: if it is valid, new requests
/// use it while those in flight finish on the old one; if not, its errors are printed and the
/// running configuration stays. SIGTERM or SIGINT stops accepting and lets requests in flight
/// finish (up to 10 s).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  halyard run -f /etc/halyard/halyard.cfg
  halyard check -f halyard.cfg && halyard run -f halyard.cfg
  kill -HUP $(pidof halyard)        # reload after editing the config

Exit status: 0 when stopped by a signal; 1 when the config has errors (as `halyard check`
reports them); 2 when it could not start (a port, a file).")]
pub struct Args {
    /// The config file.
    #[arg(short = 'f', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// What `halyard run` without `-f` says: where to start.
const NO_CONFIG_HELP: &str = "\
halyard run needs a config: halyard run -f FILE (haproxy.cfg syntax; validate it first with
`halyard check -f FILE`).

To see everything working without one, on this machine:
  cargo run --release -- demo            (or: halyard demo)

Example configs to start from, in fixtures/examples/:
  lab.cfg                the classic two-server lab, with its own syslog listener
  frontend-backend.cfg   routing by path and host to backends balanced three ways
  tcp-service.cfg        an L4 service (mode tcp, tcplog)
  listener-only.cfg      only the syslog receiver, for `halyard listen -f`
";

/// Runs until SIGTERM or SIGINT.
pub fn run(args: Args) -> Result<ExitCode> {
    let Some(path) = args.config else {
        eprintln!("{}", NO_CONFIG_HELP.trim_end());
        return Ok(ExitCode::from(2));
    };
    let checked = ConfigFile::read(&path)?.proxy_config();
    for finding in &checked.findings {
        eprintln!("{finding}");
    }
    let Some(config) = checked.config else {
        eprintln!("halyard run: the configuration has errors, not starting");
        return Ok(ExitCode::from(1));
    };
    serve(&config, &path)?;
    Ok(ExitCode::SUCCESS)
}

/// Starts the listener (if configured) and the balancer, then serves reloads until a signal
/// to stop.
fn serve(config: &ProxyConfig, path: &Path) -> Result<()> {
    let listener = match &config.log_forward {
        Some(settings) => {
            let listener = Listener::start(settings)?;
            let addrs: Vec<String> = listener.udp_addrs().iter().map(|a| a.to_string()).collect();
            eprintln!(
                "halyard run: syslog listener on UDP {}, writing {}",
                addrs.join(", "),
                listener
                    .files()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Some(listener)
        }
        None => None,
    };
    let mut balancer = Balancer::start(config)?;
    for (frontend, addr) in balancer.bound() {
        eprintln!("halyard run: frontend {frontend} listening on {addr}");
    }
    let targets: Vec<String> = config
        .frontends
        .iter()
        .flat_map(|f| f.logs.iter().map(|t| t.addr.to_string()))
        .collect();
    if targets.is_empty() {
        eprintln!("halyard run: no log targets: requests are not logged");
    } else {
        eprintln!("halyard run: logging to UDP {}", targets.join(", "));
    }
    let requests = balancer.reload_requests();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve_reloads(&balancer, path, requests))?;
    eprintln!("halyard run: stopping, letting requests in flight finish");
    balancer.stop(Duration::from_secs(10));
    if let Some(listener) = listener {
        eprintln!("halyard run: listener stopped: {}", stop_listener(listener));
    }
    Ok(())
}

/// Stops the in-process listener once the balancer has stopped, giving the balancer's last log
/// datagrams time to arrive first; its final counters.
pub(super) fn stop_listener(listener: Listener) -> CounterSnapshot {
    std::thread::sleep(Duration::from_millis(100));
    listener.stop()
}

/// Reloads on SIGHUP and on the control sockets' requests, until SIGTERM or SIGINT.
async fn serve_reloads(
    balancer: &Balancer,
    path: &Path,
    requests: Option<UnboundedReceiver<ReloadRequest>>,
) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let stop = wait_for_stop();
    tokio::pin!(stop);
    // Without control sockets nobody sends requests: a channel that never yields.
    let (_none, idle) = tokio::sync::mpsc::unbounded_channel();
    let mut requests = requests.unwrap_or(idle);
    loop {
        tokio::select! {
            stopped = &mut stop => return stopped,
            _ = hup.recv() => {
                let _ = reload(balancer, path);
            }
            Some(request) = requests.recv() => {
                let _ = request.reply.send(reload(balancer, path));
            }
        }
    }
}

/// Re-reads the config at `path` and switches to it if it is valid; says on stderr how it
/// went, and returns the errors for the control socket's client.
fn reload(balancer: &Balancer, path: &Path) -> Result<(), String> {
    let outcome = match ConfigFile::read(path) {
        Err(e) => Err(e.to_string()),
        Ok(file) => {
            let checked = file.proxy_config();
            let findings: Vec<String> = checked.findings.iter().map(|f| f.to_string()).collect();
            match checked.config {
                Some(config) => balancer.reload(&config).map_err(|e| e.to_string()),
                None => Err(findings.join("\n")),
            }
        }
    };
    match &outcome {
        Ok(()) => eprintln!("halyard run: reloaded {}", path.display()),
        Err(why) => eprintln!(
            "halyard run: reload of {} failed, the running configuration stays:\n{why}",
            path.display()
        ),
    }
    outcome
}

/// Waits for SIGTERM or SIGINT.
pub(super) async fn wait_for_stop() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
