//! The HTML report's charts, drawn as inline SVG; apart from `html.rs` so that the page and its
//! tables read separately from the plotting geometry.
//!
//! Invariants: a chart with no data draws nothing, each datum gets exactly one `bar` or `point`
//! element, coordinates are clamped to the plotting area, and every label goes through
//! [`escape`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use chrono::NaiveDateTime;

use super::{class_colour, duration, escape, int, number, share};
use crate::report::{FairnessRow, ServerRow, TimelineRow};

/// Series colours (Tableau 10), reused in order when there are more series.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// Line patterns for the second and third round through the palette.
const DASHES: [&str; 3] = ["none", "8 4", "2 3"];

/// p50, p90, p99: one hue, darker for the slower percentile.
const PERCENTILE_COLOURS: [&str; 3] = ["#9ecae1", "#4292c6", "#08519c"];

/// A chart's canvas and the margins around its plotting area, in SVG user units (pixels).
struct Plot {
    width: f64,
    height: f64,
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

impl Plot {
    fn new(width: f64, height: f64, bottom: f64) -> Self {
        Plot {
            width,
            height,
            left: 68.0,
            top: 18.0,
            right: 40.0,
            bottom,
        }
    }

    fn inner_w(&self) -> f64 {
        self.width - self.left - self.right
    }

    fn inner_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }

    /// The x coordinate of a position scaled to 0..=1.
    fn x(&self, frac: f64) -> f64 {
        self.left + self.inner_w() * clamp01(frac)
    }

    /// The y coordinate of a value scaled to 0..=1.
    fn y(&self, frac: f64) -> f64 {
        self.top + self.inner_h() * (1.0 - clamp01(frac))
    }

    fn base(&self) -> f64 {
        self.top + self.inner_h()
    }
}

/// Keeps NaN and out-of-range values from producing invalid or runaway coordinates.
fn clamp01(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn svg_open(out: &mut String, plot: &Plot, id: &str, title: &str) {
    w!(
        out,
        "<figure>\n<div class=\"chart-box\"><svg class=\"chart\" id=\"{id}\" role=\"img\" \
         aria-labelledby=\"{id}-title\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" \
         height=\"{h:.0}\">\n<title id=\"{id}-title\">{}</title>\n",
        escape(title),
        w = plot.width,
        h = plot.height,
    );
}

/// A legend entry: colour, the line's dash pattern (`None` for a bar), label.
type Key<'a> = (&'a str, Option<&'static str>, String);

/// Ends the SVG and adds the legend as HTML, where long labels can wrap.
fn svg_close(out: &mut String, legend: &[Key]) {
    out.push_str("</svg></div>\n");
    if !legend.is_empty() {
        out.push_str("<figcaption><ul class=\"legend\">");
        for (colour, dash, label) in legend {
            match dash {
                None => w!(
                    out,
                    "<li><span class=\"swatch\" style=\"background:{colour}\"></span>"
                ),
                Some(dash) => w!(
                    out,
                    "<li><svg class=\"key\" width=\"24\" height=\"10\"><line x1=\"1\" y1=\"5\" \
                     x2=\"23\" y2=\"5\" stroke=\"{colour}\" stroke-width=\"3\" \
                     stroke-dasharray=\"{dash}\"/></svg>"
                ),
            }
            w!(out, "{}</li>", escape(label));
        }
        out.push_str("</ul></figcaption>\n");
    }
    out.push_str("</figure>\n");
}

/// Grid lines at `ticks` (value scaled to 0..=1, label), the baseline and both axis titles.
fn axes(out: &mut String, plot: &Plot, ticks: &[(f64, String)], y_title: &str, x_title: &str) {
    out.push_str("<g class=\"axis\">\n");
    let (x1, x2) = (plot.left, plot.width - plot.right);
    for (frac, label) in ticks {
        let y = plot.y(*frac);
        w!(
            out,
            "<line class=\"grid\" x1=\"{x1:.1}\" x2=\"{x2:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            x1 - 6.0,
            y + 4.0,
            escape(label)
        );
    }
    let base = plot.base();
    w!(
        out,
        "<line class=\"baseline\" x1=\"{x1:.1}\" x2=\"{x2:.1}\" y1=\"{base:.1}\" y2=\"{base:.1}\"/>\n\
         <text class=\"axis-title\" text-anchor=\"middle\" transform=\"translate(16 {:.1}) rotate(-90)\">{}</text>\n\
         <text class=\"axis-title\" text-anchor=\"middle\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\n</g>\n",
        plot.top + plot.inner_h() / 2.0,
        escape(y_title),
        plot.left + plot.inner_w() / 2.0,
        plot.height - 8.0,
        escape(x_title)
    );
}

/// Round ticks from 0 covering `max`, at least one apart: (top tick, ticks).
pub(super) fn count_ticks(max: f64) -> (f64, Vec<(f64, String)>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
        .max(1.0);
    let n = (max / step).ceil().max(1.0) as u64;
    let top = n as f64 * step;
    let ticks = (0..=n)
        .map(|i| i as f64 * step)
        .map(|t| (t / top, number(t, 1)))
        .collect();
    (top, ticks)
}

/// Where a latency sits on a log axis topped at `top` ms; log(1 + v) puts 0 ms on the baseline.
fn log_frac(v: f64, top: f64) -> f64 {
    (1.0 + v.max(0.0)).log10() / (1.0 + top).log10()
}

/// Decades from 1 ms covering `max`: (top tick, ticks).
pub(super) fn latency_ticks(max: f64) -> (f64, Vec<(f64, String)>) {
    let mut decades = vec![0.0, 1.0];
    let mut top = 1.0;
    while top < max && top < 1e9 {
        top *= 10.0;
        decades.push(top);
    }
    let label = |v: f64| {
        if v >= 1000.0 {
            format!("{} s", v / 1000.0)
        } else {
            format!("{v} ms")
        }
    };
    let ticks = decades
        .into_iter()
        .map(|v| (log_frac(v, top), label(v)))
        .collect();
    (top, ticks)
}

/// One bar per status code (or class): (label, class, count, share).
pub(super) fn status_chart(out: &mut String, bars: &[(String, &str, u64, f64)]) {
    if bars.is_empty() {
        return;
    }
    let plot = Plot::new((128.0 + 52.0 * bars.len() as f64).max(520.0), 300.0, 50.0);
    let max = bars.iter().map(|b| b.2).max().unwrap_or(0);
    let (top, ticks) = count_ticks(max as f64);
    svg_open(out, &plot, "chart-status", "Requests per status code");
    axes(out, &plot, &ticks, "requests", "status code");
    let slot = plot.inner_w() / bars.len() as f64;
    let bar_w = (slot * 0.7).min(44.0);
    for (i, (label, class, count, fraction)) in bars.iter().enumerate() {
        let cx = plot.left + slot * (i as f64 + 0.5);
        let y = plot.y(*count as f64 / top);
        w!(
            out,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" \
             fill=\"{}\"><title>{}: {} requests ({})</title></rect>\n\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            cx - bar_w / 2.0,
            plot.base() - y,
            class_colour(class),
            escape(label),
            int(*count),
            share(*fraction),
            y - 4.0,
            int(*count),
            plot.base() + 15.0,
            escape(label),
        );
    }
    let mut classes: Vec<&str> = bars.iter().map(|b| b.1).collect();
    classes.sort_unstable();
    classes.dedup();
    let legend: Vec<Key> = classes
        .into_iter()
        .map(|c| (class_colour(c), None, c.to_owned()))
        .collect();
    svg_close(out, &legend);
}

/// Grouped bars of Ta's p50, p90 and p99 per server, on a log axis so that a slow tail does
/// not flatten the fast servers.
pub(super) fn latency_chart(out: &mut String, rows: &[ServerRow]) {
    let ta = |r: &ServerRow| [r.ta.p50, r.ta.p90, r.ta.p99];
    let groups: Vec<&ServerRow> = rows
        .iter()
        .filter(|r| ta(r).iter().flatten().any(|v| v.is_finite()))
        .collect();
    if groups.is_empty() {
        return;
    }
    let names: Vec<String> = groups
        .iter()
        .map(|r| format!("{}/{}", r.backend, r.server))
        .collect();
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    // Fit the page up to 40 servers; beyond that the chart scrolls rather than crush its bars.
    let n = groups.len() as f64;
    let width = if n > 40.0 {
        128.0 + 28.0 * n
    } else {
        (128.0 + 64.0 * n).clamp(520.0, 1150.0)
    };
    let slot = (width - 128.0) / n;
    let rotate = longest as f64 * 6.5 > slot;
    let bottom = if rotate {
        44.0 + longest.min(28) as f64 * 3.4
    } else {
        50.0
    };
    let plot = Plot::new(width, 260.0 + bottom, bottom);
    let max = groups
        .iter()
        .flat_map(|r| ta(r))
        .flatten()
        .fold(0.0, f64::max);
    let (top, ticks) = latency_ticks(max);
    svg_open(out, &plot, "chart-latency", "Ta percentiles per server");
    // Rotated labels reach the bottom edge, where the x title would go; they name themselves.
    let x_title = if rotate { "" } else { "backend/server" };
    axes(out, &plot, &ticks, "Ta (log scale)", x_title);
    let bar_w = (slot * 0.8 / 3.0).min(18.0);
    for (i, (r, name)) in groups.iter().zip(&names).enumerate() {
        let cx = plot.left + slot * (i as f64 + 0.5);
        for (k, v) in ta(r).into_iter().enumerate() {
            let Some(v) = v.filter(|v| v.is_finite()) else {
                continue;
            };
            let y = plot.y(log_frac(v, top));
            w!(
                out,
                "<rect class=\"bar\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" \
                 fill=\"{}\"><title>{}: Ta p{} {} ms</title></rect>\n",
                cx + (k as f64 - 1.5) * bar_w,
                plot.base() - y,
                PERCENTILE_COLOURS[k],
                escape(name),
                ["50", "90", "99"][k],
                number(v, 1),
            );
        }
        let short: String = name.chars().take(28).collect();
        let y = plot.base() + 15.0;
        if rotate {
            w!(
                out,
                "<text text-anchor=\"end\" transform=\"translate({cx:.1} {y:.1}) rotate(-35)\">"
            );
        } else {
            w!(
                out,
                "<text text-anchor=\"middle\" x=\"{cx:.1}\" y=\"{y:.1}\">"
            );
        }
        w!(
            out,
            "{}<title>{}</title></text>\n",
            escape(&short),
            escape(name)
        );
    }
    let legend: Vec<Key> = ["p50", "p90", "p99"]
        .iter()
        .zip(PERCENTILE_COLOURS)
        .map(|(p, c)| (c, None, format!("Ta {p}")))
        .collect();
    svg_close(out, &legend);
}

/// One line of a chart over time: its name and its (interval start, value) points.
struct Series<'a> {
    label: String,
    points: Vec<(&'a str, f64)>,
}

/// How a time chart's y axis reads.
struct YAxis {
    top: f64,
    ticks: Vec<(f64, String)>,
    title: &'static str,
    decimals: usize,
}

pub(super) fn requests_chart(out: &mut String, rows: &[TimelineRow]) {
    let mut by_server: BTreeMap<(&str, &str), Vec<(&str, f64)>> = BTreeMap::new();
    for r in rows {
        let points = by_server.entry((&r.backend, &r.server)).or_default();
        points.push((&r.start, r.requests as f64));
    }
    let series: Vec<Series> = by_server
        .into_iter()
        .map(|((backend, server), points)| Series {
            label: format!("{backend}/{server}"),
            points,
        })
        .collect();
    let max = rows.iter().map(|r| r.requests).max().unwrap_or(0);
    let (top, ticks) = count_ticks(max as f64);
    let y = YAxis {
        top,
        ticks,
        title: "requests per interval",
        decimals: 0,
    };
    let title = "Requests per server over time";
    time_chart(out, "chart-requests-over-time", title, &series, &y);
}

pub(super) fn fairness_chart(out: &mut String, rows: &[FairnessRow], interval: f64) {
    let series: Vec<Series> = rows
        .iter()
        // With one server the index is 1 by definition: a flat line that hides the others.
        .filter(|r| r.servers > 1 && !r.jain_by_interval.is_empty())
        .map(|r| Series {
            label: r.backend.clone(),
            points: r
                .jain_by_interval
                .iter()
                .map(|j| (&*j.start, j.jain))
                .collect(),
        })
        .collect();
    let ticks = (0..=5)
        .map(|i| (i as f64 / 5.0, format!("{:.1}", i as f64 / 5.0)))
        .collect();
    let y = YAxis {
        top: 1.0,
        ticks,
        title: "Jain index",
        decimals: 3,
    };
    let title = format!(
        "Jain index per {} interval, per backend",
        duration(interval)
    );
    time_chart(out, "chart-fairness-over-time", &title, &series, &y);
}

/// A polyline per series with a `point` per value, x placed by interval start.
fn time_chart(out: &mut String, id: &str, title: &str, series: &[Series], y: &YAxis) {
    let starts: BTreeSet<&str> = series.iter().flat_map(|s| &s.points).map(|p| p.0).collect();
    if starts.is_empty() {
        return;
    }
    let x_of = time_positions(&starts);
    let plot = Plot::new(1140.0, 340.0, 52.0);
    svg_open(out, &plot, id, title);
    let (x_ticks, x_title) = time_ticks(&starts, &x_of);
    axes(out, &plot, &y.ticks, y.title, &x_title);
    for (frac, label) in x_ticks {
        w!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            plot.x(frac),
            plot.base() + 15.0,
            escape(&label)
        );
    }
    let many = starts.len() > 120;
    let mut legend = Vec::with_capacity(series.len());
    for (k, s) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let dash = DASHES[k / PALETTE.len() % DASHES.len()];
        legend.push((colour, Some(dash), s.label.clone()));
        let mut points: Vec<(f64, f64, &str, f64)> = s
            .points
            .iter()
            .map(|(start, v)| {
                let x = plot.x(x_of.get(start).copied().unwrap_or(0.0));
                (x, plot.y(v / y.top), *start, *v)
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        w!(
            out,
            "<polyline class=\"line\" stroke=\"{colour}\" stroke-dasharray=\"{dash}\" points=\""
        );
        for (x, y, _, _) in &points {
            w!(out, "{x:.1},{y:.1} ");
        }
        out.push_str("\"/>\n");
        let r = if many { 2 } else { 3 };
        for (x, py, start, v) in points {
            w!(
                out,
                "<circle class=\"point\" cx=\"{x:.1}\" cy=\"{py:.1}\" r=\"{r}\" fill=\"{colour}\">\
                 <title>{} {}: {}</title></circle>\n",
                escape(&s.label),
                escape(start),
                number(v, y.decimals)
            );
        }
    }
    svg_close(out, &legend);
}

/// The horizontal position (0..=1) of each interval start: by time when every start parses,
/// otherwise evenly in order.
fn time_positions<'a>(starts: &BTreeSet<&'a str>) -> BTreeMap<&'a str, f64> {
    let parse = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok();
    let times: Option<Vec<i64>> = starts
        .iter()
        .map(|s| parse(s).map(|t| t.and_utc().timestamp_millis()))
        .collect();
    let n = starts.len();
    match times {
        Some(times) if n > 1 => {
            let lo = times.iter().copied().min().unwrap_or(0);
            let hi = times.iter().copied().max().unwrap_or(0);
            let span = (hi - lo).max(1) as f64;
            let fracs = times.iter().map(|t| (t - lo) as f64 / span);
            starts.iter().copied().zip(fracs).collect()
        }
        _ if n > 1 => starts
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as f64 / (n - 1) as f64))
            .collect(),
        _ => starts.iter().map(|s| (*s, 0.5)).collect(),
    }
}

/// Up to six labelled starts, shortened to the time of day when all are on one date, and the
/// x-axis title (naming that date).
fn time_ticks(starts: &BTreeSet<&str>, x_of: &BTreeMap<&str, f64>) -> (Vec<(f64, String)>, String) {
    let all: Vec<&str> = starts.iter().copied().collect();
    let day = |s: &str| s.get(..10).map(str::to_owned);
    let first_day = all.first().and_then(|s| day(s));
    let same_day = first_day.is_some() && all.iter().all(|s| day(s) == first_day);
    let shown = all.len().min(6);
    let mut ticks = Vec::with_capacity(shown);
    for i in 0..shown {
        let index = if shown > 1 {
            i * (all.len() - 1) / (shown - 1)
        } else {
            0
        };
        let Some(start) = all.get(index) else {
            continue;
        };
        let short = if same_day {
            start.get(11..19)
        } else {
            start.get(5..16)
        };
        let label = short.unwrap_or(start).replace('T', " ");
        ticks.push((x_of.get(start).copied().unwrap_or(0.0), label));
    }
    let title = match first_day.filter(|_| same_day) {
        Some(day) => format!("interval start, {day}"),
        None => "interval start".to_owned(),
    };
    (ticks, title)
}
