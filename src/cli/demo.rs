//! `halyard demo`: the whole pipeline on 127.0.0.1 with nothing to set up. Three web servers
//! in this process, the syslog listener writing rotating files, the balancer in front of the
//! servers, clients sending traffic while one server is stopped and started again, and the
//! report over the files at the end.
//!
//! Every part is the real one, wired as `halyard run` wires it: the balancer and the listener
//! start from haproxy.cfg text (written to the demo's directory), the log lines cross a real
//! UDP socket, and the report reads the files the listener wrote.

mod backends;
mod dir;
mod traffic;
mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use tokio::sync::watch;
use tokio::time::Instant;

use halyard::balancer::Balancer;
use halyard::config::{ConfigFile, ListenerSettings, ProxyConfig};
use halyard::input::Source;
use halyard::listener::Listener;
use halyard::report::filter::parse_duration_ms;
use halyard::report::{Filter, ReportOptions, Section, Weights};

use super::report::{build_report, parse_threads, print_report, ColorChoice, Format};
use super::run::{stop_listener, wait_for_stop};
use backends::{Behaviour, DemoBackend, CHECKED_PATH};
use dir::{clear_earlier_demo, log_files, CONFIG_FILE, LOG_FILE, MARKER};
use traffic::Counts;
use view::View;

/// See the whole pipeline work on this machine, with nothing to set up.
///
/// Starts three web servers, the syslog listener and the load balancer on 127.0.0.1 (free
/// ports), all in this process, from the haproxy.cfg text printed at start (and written to
/// DIR/halyard.cfg). Sends traffic through the balancer; a third of the way through, stops
/// server inst1 (its port refuses connections, so the health checks mark it DOWN) and starts
/// it again at two thirds (UP again). inst3 is slow and answers some requests with a 500 (never
/// the health-checked /index.html, so that the stopped server's is the only outage). The
/// log lines go over UDP to the listener, which writes DIR/haproxy.log and rotates it every
/// 64 KiB. At the end, prints the report over those files, and the commands to explore them.
///
/// While it runs, on a terminal: the listener's live per-server table above a progress bar;
/// otherwise a status line every 5 s. Ctrl-C (or SIGTERM) stops the traffic early and reports
/// what was logged. Files of an earlier demo in DIR are replaced.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  halyard demo
  halyard demo --duration 1m --rate 500 --dir /tmp/demo
  halyard demo --keep-running          (then: curl http://127.0.0.1:PORT/index.html)
  halyard demo --format json | jq '.servers'

Exit status: 0 when the demo ran and its report was printed; 1 when log lines were lost on
the way to the files (the counters printed say where); 2 when it could not start (a port, the
directory, or DIR holding haproxy.log files an earlier demo did not write).")]
pub struct Args {
    /// How long to send traffic: at least 6s, for the stopped server to be seen going DOWN
    /// and coming back UP.
    #[arg(long, default_value = "20s", value_name = "DURATION", value_parser = parse_duration)]
    duration: Duration,

    /// Requests per second.
    #[arg(long, default_value_t = 200, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,

    /// Directory for the log files and the config (created if missing).
    #[arg(long, default_value = "./halyard-demo", value_name = "DIR")]
    dir: PathBuf,

    /// After the traffic, keep the balancer, the servers and the listener up (printing the
    /// balancer's URL) until Ctrl-C or SIGTERM, then report.
    #[arg(long)]
    keep_running: bool,

    /// The report's format: tables, or the JSON of `halyard report --format json`.
    #[arg(long, value_enum, default_value_t = DemoFormat::Table)]
    format: DemoFormat,
}

/// The formats the demo's report comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DemoFormat {
    /// Tables for the terminal.
    Table,
    /// One JSON document on stdout (everything else goes to stderr).
    Json,
}

/// The shortest run that shows the outage: a stop, three failed checks 0.5 s apart, a start,
/// two passing checks, each third of the run long enough for its part.
const MIN_DURATION: Duration = Duration::from_secs(6);

fn parse_duration(spec: &str) -> Result<Duration, String> {
    let ms = parse_duration_ms(spec)?;
    let duration = Duration::from_millis(u64::try_from(ms).map_err(|e| e.to_string())?);
    if duration < MIN_DURATION {
        return Err(format!(
            "{spec} is too short: the demo needs at least {}s to show a server going DOWN and \
             coming back UP",
            MIN_DURATION.as_secs()
        ));
    }
    Ok(duration)
}

/// One demo server: its config name and weight, how it answers, what the config says of it.
struct ServerPlan {
    name: &'static str,
    weight: u32,
    behaviour: Behaviour,
    note: &'static str,
}

/// The three servers: the lab's two, plus a slow and failing one.
fn plan() -> [ServerPlan; 3] {
    let fast = || Behaviour {
        delay_ms: 0..=2,
        error_percent: 0,
    };
    [
        ServerPlan {
            name: "inst1",
            weight: 1,
            behaviour: fast(),
            note: "stopped at 1/3 of the run, started again at 2/3",
        },
        ServerPlan {
            name: "inst2",
            weight: 2,
            behaviour: fast(),
            note: "weight 2: twice the requests of each other server",
        },
        ServerPlan {
            name: "inst3",
            weight: 1,
            behaviour: Behaviour {
                delay_ms: 20..=80,
                error_percent: 5,
            },
            note: "slow (20-80 ms); answers 5% of requests with a 500 (never the checked page)",
        },
    ]
}

/// The server the demo stops and starts again.
const STOPPED: usize = 0;

/// Runs `halyard demo`.
pub fn run(args: Args) -> Result<ExitCode> {
    clear_earlier_demo(&args.dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let plan = plan();
    let mut servers = runtime.block_on(start_servers(&plan))?;
    let listener = start_listener(&args.dir)?;
    let (config, weights) = balancer_config(&args.dir, &listener, &plan, &servers)?;
    let balancer = Balancer::start(&config)?;
    let url = balancer
        .bound()
        .first()
        .map(|(_, addr)| *addr)
        .context("the balancer has no frontend address")?;
    announce(&args, &listener, &servers, url);
    let running = Running {
        listener: &listener,
        url,
        counts: Arc::new(Counts::default()),
    };
    let started = Instant::now();
    runtime.block_on(running.show(&args, &mut servers))?;
    let elapsed = started.elapsed();
    let lost = stop(balancer, listener);
    // The servers stop with their runtime, after the balancer has let its requests finish.
    drop(runtime);
    report(&args, weights, elapsed)?;
    Ok(if lost > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Stops the balancer, then the listener once the last log lines are in; the log lines lost
/// on the way.
fn stop(balancer: Balancer, listener: Listener) -> u64 {
    let (_, dropped) = balancer.log_counts();
    balancer.stop(Duration::from_secs(2));
    let counters = stop_listener(listener);
    eprintln!(
        "halyard demo: the balancer dropped {dropped} log lines; the listener received {}, \
         wrote {} and lost {}",
        counters.received,
        counters.written,
        counters.lost()
    );
    dropped + counters.lost()
}

/// Starts every planned server on a free port.
async fn start_servers(plan: &[ServerPlan]) -> Result<Vec<DemoBackend>> {
    let mut servers = Vec::new();
    for server in plan {
        let started = DemoBackend::start(server.name, server.behaviour.clone())
            .await
            .with_context(|| format!("starting demo server {}", server.name))?;
        servers.push(started);
    }
    Ok(servers)
}

/// The listener, from its `log-forward` section with `dgram-bind 127.0.0.1:0`.
fn start_listener(dir: &Path) -> Result<Listener> {
    let text = log_forward_text(0);
    let (settings, warnings) = ConfigFile::parse("halyard demo", &text)?.log_forward(None)?;
    for warning in warnings {
        eprintln!("halyard demo: warning: {warning}");
    }
    let settings = ListenerSettings {
        dir: dir.to_owned(),
        ..settings
    };
    Ok(Listener::start(&settings)?)
}

/// The listener's section; the listener is started with port 0 and the written config names
/// the port it got.
fn log_forward_text(port: u16) -> String {
    format!(
        "\
# The syslog listener, in this process: what it receives goes to haproxy.log in this
# directory, rotated every 64 KiB (so the demo leaves rotated, gzipped files), keeping all.
log-forward demo
    dgram-bind 127.0.0.1:{port}
    file {LOG_FILE}
    rotate-size 64k
    keep 0
    compress
    # The per-server view of the last minute that the demo shows while it runs.
    live
"
    )
}

/// The whole config: the lab's (fixtures/configs/lab-local.cfg) on the demo's ports, with a
/// third server and faster health checks, then the listener's section.
fn config_text(log: SocketAddr, plan: &[ServerPlan], addrs: &[SocketAddr]) -> String {
    let mut text = format!(
        "\
{MARKER}: the lab of fixtures/configs/lab-local.cfg on 127.0.0.1,
# with a third server and faster health checks. Its servers ran inside the demo.
global
    log {log} local3
    maxconn 4000
defaults
    mode                    http
    log                     global
    option                  httplog
    option                  dontlognull
    retries                 3
    timeout http-request    5s
    timeout queue           1m
    timeout connect         5s
    timeout client          1m
    timeout server          1m
    timeout http-keep-alive 5s
    timeout check           5s
    maxconn                 3000
listen myweb
    # Port 0: a free port, printed when the balancer starts.
    bind 127.0.0.1:0
    option httpchk GET {CHECKED_PATH}
    balance roundrobin
    # HAProxy semantics: a check every 500 ms (the lab's inter 2000 would make a short demo
    # wait); DOWN after 3 failed checks in a row, UP again after 2 passing ones.
"
    );
    for (server, addr) in plan.iter().zip(addrs) {
        let weight = if server.weight == 1 {
            String::new()
        } else {
            format!(" weight {}", server.weight)
        };
        text.push_str(&format!(
            "    # {}: {}\n    server {} {} check inter 500 fall 3 rise 2{weight}\n",
            server.name, server.note, server.name, addr
        ));
    }
    text.push_str(&log_forward_text(log.port()));
    text
}

/// The config for the servers and the listener running: written to `dir`, printed, and
/// checked into the balancer's config and the weights the report compares shares with.
fn balancer_config(
    dir: &Path,
    listener: &Listener,
    plan: &[ServerPlan],
    servers: &[DemoBackend],
) -> Result<(ProxyConfig, Weights)> {
    let log_addr = *listener
        .udp_addrs()
        .first()
        .context("the listener has no UDP address")?;
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let text = config_text(log_addr, plan, &addrs);
    let checked = check_config(&text)?;
    let path = dir.join(CONFIG_FILE);
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "halyard demo: the config (also in {}):\n{text}",
        path.display()
    );
    Ok(checked)
}

/// The balancer's config and the server weights from config text; the findings are printed
/// (there should be none: the text is the demo's own).
fn check_config(text: &str) -> Result<(ProxyConfig, Weights)> {
    let file = ConfigFile::parse(CONFIG_FILE, text)?;
    let checked = file.proxy_config();
    for finding in &checked.findings {
        eprintln!("halyard demo: {finding}");
    }
    let Some(config) = checked.config else {
        bail!("the demo's config has errors");
    };
    Ok((config, file.server_weights()?))
}

/// Says on stderr what runs where, and what is about to happen.
fn announce(args: &Args, listener: &Listener, servers: &[DemoBackend], url: SocketAddr) {
    let names: Vec<String> = servers
        .iter()
        .map(|s| format!("{} on {}", s.name, s.addr))
        .collect();
    eprintln!("halyard demo: web servers {}", names.join(", "));
    if let (Some(udp), Some(file)) = (listener.udp_addrs().first(), listener.files().first()) {
        eprintln!(
            "halyard demo: syslog listener on UDP {udp}, writing {}",
            file.display()
        );
    }
    let third = args.duration.as_secs_f64() / 3.0;
    eprintln!(
        "halyard demo: balancer on http://{url}/; sending {} requests/s for {}s over {} \
         connections; {} stops at {third:.1}s and starts again at {:.1}s",
        args.rate,
        args.duration.as_secs_f64(),
        traffic::connections_for(args.rate),
        servers[STOPPED].name,
        2.0 * third
    );
}

/// What the running phases work with.
struct Running<'a> {
    listener: &'a Listener,
    url: SocketAddr,
    counts: Arc<Counts>,
}

impl Running<'_> {
    /// Sends the traffic, with the outage in the middle; with --keep-running, serves on until
    /// a signal. The display runs all along.
    async fn show(&self, args: &Args, servers: &mut [DemoBackend]) -> Result<()> {
        let total = (f64::from(args.rate) * args.duration.as_secs_f64()).round() as u64;
        let mut view = View::new(total);
        let signal = wait_for_stop();
        tokio::pin!(signal);
        let outage = Outage {
            start: Instant::now(),
            third: args.duration / 3,
            done: 0,
        };
        let interrupted = self
            .traffic(
                args.rate,
                total,
                outage,
                servers,
                &mut view,
                signal.as_mut(),
            )
            .await?;
        if args.keep_running && !interrupted {
            view.say(&format!(
                "the balancer serves on until Ctrl-C: curl http://{}/index.html",
                self.url
            ));
            view.serving(self.url);
            let mut refresh = tokio::time::interval(view::REFRESH);
            loop {
                tokio::select! {
                    stopped = &mut signal => {
                        stopped?;
                        break;
                    }
                    _ = refresh.tick() => view.refresh(self.listener, &self.counts),
                }
            }
        }
        view.finish();
        Ok(())
    }

    /// The traffic phase; whether a signal cut it short.
    async fn traffic(
        &self,
        rate: u32,
        total: u64,
        mut outage: Outage,
        servers: &mut [DemoBackend],
        view: &mut View,
        mut signal: std::pin::Pin<&mut impl std::future::Future<Output = Result<()>>>,
    ) -> Result<bool> {
        let (stop, stopped) = watch::channel(false);
        let mut clients = tokio::spawn(traffic::drive(
            self.url,
            rate,
            total,
            traffic::connections_for(rate),
            self.counts.clone(),
            stopped,
        ));
        let mut refresh = tokio::time::interval(view::REFRESH);
        loop {
            let next_step = outage.next();
            tokio::select! {
                _ = &mut clients => break,
                signalled = &mut signal => {
                    signalled?;
                    view.say("signalled: stopping the traffic");
                    let _ = stop.send(true);
                    let _ = clients.await;
                    return Ok(true);
                }
                _ = tokio::time::sleep_until(next_step.unwrap_or_else(Instant::now)),
                    if next_step.is_some() => outage.step(&mut servers[STOPPED], view).await?,
                _ = refresh.tick() => view.refresh(self.listener, &self.counts),
            }
        }
        view.say(&format!("traffic done: {}", self.counts.summary()));
        Ok(false)
    }
}

/// One server stopped a third of the way through the run and started two thirds through.
struct Outage {
    start: Instant,
    third: Duration,
    /// Steps taken: 0, 1 (stopped) or 2 (started again).
    done: u32,
}

impl Outage {
    /// When the next step is due, if one is left.
    fn next(&self) -> Option<Instant> {
        (self.done < 2).then(|| self.start + self.third * (self.done + 1))
    }

    /// Stops the server, or starts it again.
    async fn step(&mut self, server: &mut DemoBackend, view: &View) -> Result<()> {
        if self.done == 0 {
            server.stop().await;
            view.say(&format!(
                "stopped {}: its port refuses connections, and after 3 failed checks (fall 3, \
                 one every 500 ms) the balancer marks it DOWN",
                server.name
            ));
        } else {
            server
                .restart()
                .await
                .with_context(|| format!("starting {} again on {}", server.name, server.addr))?;
            view.say(&format!(
                "started {} again: after 2 passing checks (rise 2) the balancer marks it UP",
                server.name
            ));
        }
        self.done += 1;
        Ok(())
    }
}

/// Prints the report over every file the listener wrote (on stdout), then the commands to
/// explore further.
fn report(args: &Args, weights: Weights, elapsed: Duration) -> Result<()> {
    use std::io::Write;
    let files = log_files(&args.dir)?;
    let sources: Vec<Source> = files.iter().cloned().map(Source::File).collect();
    let options = ReportOptions {
        sections: Section::ALL.to_vec(),
        // About five intervals over the run, for the timeline and the fairness over time.
        interval_ms: 1000 * (elapsed.as_secs() / 5).clamp(1, 60) as i64,
        top: 5,
        filter: Filter::default(),
        weights: Some(weights),
        threads: parse_threads(),
        show_malformed: 5,
        max_transitions: 1000,
    };
    let report = build_report(&sources, &options)?;
    let next = next_steps(&args.dir, files.len());
    match args.format {
        DemoFormat::Table => {
            print_report(&report, Format::Table, ColorChoice::Auto)?;
            std::io::stdout().lock().write_all(next.as_bytes())?;
        }
        DemoFormat::Json => {
            print_report(&report, Format::Json, ColorChoice::Never)?;
            eprint!("{next}");
        }
    }
    Ok(())
}

/// The commands that take the demo's files further, as they can be pasted.
fn next_steps(dir: &Path, files: usize) -> String {
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "halyard".to_owned());
    let p = shell_word(&program);
    let logs = format!("{}/{LOG_FILE}*", shell_word(&dir.display().to_string()));
    let config = shell_word(&dir.join(CONFIG_FILE).display().to_string());
    format!(
        "\
The demo left {files} log files and its config in {dir}. To explore them:
  {p} report {logs}
  {p} report --config {config} --sections servers,fairness,events {logs}
  {p} report --server inst3 --status 5xx --sections status,top {logs}
  {p} report --format html --output demo-report.html {logs}
  {p} parse --format stats {logs}
  {p} check -f {config}
And to curl the balancer yourself: {p} demo --keep-running
",
        dir = dir.display()
    )
}

/// `word` as a shell reads it back: as it is when it has nothing special, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./+,:@%=".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args("demo", args)
    }

    #[test]
    fn flags_have_defaults_and_limits() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.duration, Duration::from_secs(20));
        assert_eq!(args.rate, 200);
        assert_eq!(args.dir, PathBuf::from("./halyard-demo"));
        assert_eq!((args.keep_running, args.format), (false, DemoFormat::Table));
        let args = parse(&["--duration", "1m", "--rate", "5", "--format", "json"]).unwrap();
        assert_eq!(args.duration, Duration::from_secs(60));
        assert_eq!((args.rate, args.format), (5, DemoFormat::Json));
        for bad in [
            &["--duration", "5s"][..],
            &["--duration", "20"],
            &["--rate", "0"],
            &["--format", "csv"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_config_is_clean_and_weighs_the_servers() {
        let addrs: Vec<SocketAddr> = (1..=3)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 40_000 + i)))
            .collect();
        let text = config_text("127.0.0.1:5514".parse().unwrap(), &plan(), &addrs);
        let checked = halyard::config::CheckedConfig::from_text(CONFIG_FILE, &text);
        let findings: Vec<String> = checked.findings.iter().map(ToString::to_string).collect();
        assert_eq!(findings, Vec::<String>::new());
        let (config, weights) = check_config(&text).unwrap();
        let servers = &config.backends[0].servers;
        assert_eq!(servers[2].addr, addrs[2]);
        assert_eq!(servers[0].inter, Duration::from_millis(500));
        assert_eq!((servers[0].fall, servers[0].rise), (3, 2));
        let weights: Vec<(&str, u32)> = weights["myweb"]
            .iter()
            .map(|s| (s.name.as_str(), s.weight))
            .collect();
        assert_eq!(weights, [("inst1", 1), ("inst2", 2), ("inst3", 1)]);
        let listener = config.log_forward.unwrap();
        assert_eq!(listener.udp, ["127.0.0.1:5514".parse().unwrap()]);
        assert_eq!(listener.rotation.size, Some(64 << 10));
        assert!(text.starts_with(MARKER));
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("./halyard-demo"), "./halyard-demo");
        assert_eq!(shell_word("/tmp/my demo"), "'/tmp/my demo'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
