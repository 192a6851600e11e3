//! What the demo shows while it runs, on stderr. On a terminal: the listener's live
//! per-server table (as `halyard listen --live` draws it) redrawn in place above a progress
//! bar, with events printed above both. Otherwise: the events, and a one-line status every few
//! seconds.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use halyard::listener::Listener;

use super::traffic::Counts;
use crate::cli::listen::live_text;
use crate::cli::output::{stderr_width, use_color};

/// How often the table and the bar are redrawn, and server changes looked for.
pub(super) const REFRESH: Duration = Duration::from_millis(500);
/// How often the status line is printed when stderr is not a terminal.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The demo's running display.
#[derive(Debug)]
pub(super) struct View {
    bar: ProgressBar,
    /// stderr is a terminal: the live table is drawn; otherwise status lines are printed.
    live: bool,
    color: bool,
    started: Instant,
    last_status: Instant,
    /// Each server's last change (`DOWN`, `UP`...) already announced, by `backend/server`.
    announced: HashMap<String, String>,
}

impl View {
    /// A display for a run of `total` requests.
    pub fn new(total: u64) -> View {
        let live = std::io::stderr().is_terminal();
        let bar = if live {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(style(
                "{msg}\n{spinner} {elapsed:>3} [{bar:30}] {pos}/{len} requests",
            ));
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        View {
            bar,
            live,
            color: use_color(live),
            started: Instant::now(),
            last_status: Instant::now(),
            announced: HashMap::new(),
        }
    }

    /// Prints one line of news (above the table and bar when they are drawn).
    pub fn say(&self, news: &str) {
        let line = format!(
            "halyard demo: {:>4.1}s: {news}",
            self.started.elapsed().as_secs_f64()
        );
        // Through the bar, so that it is not drawn over; a hidden bar just runs the closure.
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Redraws the table and the bar, announces servers that changed state, and prints the
    /// status line when it is due.
    pub fn refresh(&mut self, listener: &Listener, counts: &Counts) {
        self.announce_changes(listener);
        if self.live {
            let width = stderr_width();
            self.bar
                .set_message(live_text(listener, self.started, width, self.color));
            self.bar.set_position(counts.sent.load(Ordering::Relaxed));
        } else if self.last_status.elapsed() >= STATUS_EVERY {
            self.last_status = Instant::now();
            self.say(&status_line(listener, counts));
        }
    }

    /// After the traffic: the bar becomes a spinner saying where the balancer serves.
    pub fn serving(&self, url: SocketAddr) {
        self.bar.set_style(style(
            "{msg}\n{spinner} serving on http://{prefix}/ for {elapsed}: Ctrl-C stops and reports",
        ));
        self.bar.set_prefix(url.to_string());
    }

    /// Clears the table and the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Says when the listener's view shows a server's new state: the balancer logged it.
    fn announce_changes(&mut self, listener: &Listener) {
        for row in listener.live_rows().unwrap_or_default() {
            let Some((state, _)) = row.last_change else {
                continue;
            };
            let server = format!("{}/{}", row.backend, row.server);
            if self.announced.get(&server) != Some(&state) {
                self.say(&format!("the balancer logged: Server {server} is {state}"));
                self.announced.insert(server, state);
            }
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `1000 sent: 990 ok, 10 5xx; 1002 lines written; last minute: myweb/inst1 250 ...`
fn status_line(listener: &Listener, counts: &Counts) -> String {
    let servers: Vec<String> = listener
        .live_rows()
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{}/{} {}", r.backend, r.server, r.requests))
        .collect();
    format!(
        "{}; {} lines written; requests in the last minute: {}",
        counts.summary(),
        listener.counters().written,
        if servers.is_empty() {
            "none logged yet".to_owned()
        } else {
            servers.join(", ")
        }
    )
}
