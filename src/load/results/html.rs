//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing
//! fetched): the verdict, budgets, latency percentiles over time, the latency
//! distribution, connections and frames per second, and the totals. Every text that
//! came from a server is escaped.

use std::fmt::Write as _;

use super::summary::{LoadSummary, count_text};
use crate::load::measure::collector::Second;
use crate::load::measure::recorder::Distribution;
use crate::style::STYLE;
use crate::text::escape_markup;
use crate::units::format_micros;

const COLORS: [&str; 6] = [
    "var(--accent)",
    "var(--c2)",
    "var(--c3)",
    "var(--good)",
    "var(--warn)",
    "var(--bad)",
];

/// An SVG line chart; x and y are data units, `y_label` formats the y axis.
/// A linear axis from 0: ticks at a "nice" step (1, 2 or 5 times a power of ten),
/// about `count` of them, the last at or above `max`.
pub fn nice_ticks(max: f64, count: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / count.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let steps = (max / step - 1e-9).ceil().max(1.0) as usize;
    (0..=steps).map(|k| k as f64 * step).collect()
}

/// A log axis: one tick per power of ten from below `min` to above `max`.
pub fn decade_ticks(min: f64, max: f64) -> Vec<f64> {
    let low = min.max(1.0).log10().floor() as i32;
    let high = (max.max(1.0).log10().ceil() as i32).max(low + 1);
    (low..=high).map(|e| 10f64.powi(e)).collect()
}

/// Time ticks every 1, 2, 5, 10, 15, 30 or 60 s..., the smallest step that leaves
/// at most `count` intervals in `duration_s`; whole seconds, so labels are even.
pub fn time_ticks_for(duration_s: f64, count: usize) -> Vec<f64> {
    let duration = duration_s.max(1.0);
    let raw = duration / (count.max(1) + 1) as f64;
    let step = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|s| *s >= raw)
    .unwrap_or_else(|| (raw / 3600.0).ceil() * 3600.0);
    let steps = (duration / step + 1e-9).floor() as usize;
    (0..=steps).map(|k| k as f64 * step).collect()
}

/// A time label: `45s`, `2m`, `1m30s`.
fn time_label(t: f64) -> String {
    let t = t.round() as u64;
    match (t / 60, t % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

fn line_chart(
    series: &[(&str, Vec<(f64, f64)>)],
    x_ticks: &[(f64, String)],
    y_label: &dyn Fn(f64) -> String,
    log_y: bool,
) -> String {
    // Margins wide enough for the longest labels ("999.9 ms" on y, "pmax" at the end).
    let (w, h, left, bottom, top, right) = (640.0, 220.0, 72.0, 24.0, 14.0, 28.0);
    let points: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    if points.is_empty() {
        return "<p class=\"muted\">no samples</p>".into();
    }
    let tf = |y: f64| if log_y { y.max(1.0).log10() } else { y };
    let x_min = x_ticks
        .iter()
        .map(|t| t.0)
        .chain(points.iter().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    let x_max = x_ticks
        .iter()
        .map(|t| t.0)
        .chain(points.iter().map(|p| p.0))
        .fold(f64::NEG_INFINITY, f64::max)
        .max(x_min + 1e-9);
    let y_data_max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let y_ticks = if log_y {
        let y_data_min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        decade_ticks(y_data_min, y_data_max)
    } else {
        nice_ticks(y_data_max, 4)
    };
    let y_min = tf(y_ticks[0]);
    let y_max = tf(*y_ticks.last().unwrap_or(&1.0)).max(y_min + 1e-9);
    let sx = |x: f64| left + (x - x_min) / (x_max - x_min) * (w - left - right);
    let sy = |y: f64| top + (1.0 - (tf(y) - y_min) / (y_max - y_min)) * (h - top - bottom);
    let mut svg = format!("<svg viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\">");
    for value in &y_ticks {
        let y = sy(*value);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 6.0,
            y + 4.0,
            escape_markup(&y_label(*value))
        );
    }
    for (x, label) in x_ticks {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            sx(*x),
            h - 6.0,
            escape_markup(label)
        );
    }
    for (i, (_, pts)) in series.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"series\" stroke=\"{}\" points=\"{}\"/>",
            COLORS[i % COLORS.len()],
            path.join(" ")
        );
    }
    svg.push_str("</svg><div class=\"legend\">");
    for (i, (name, _)) in series.iter().enumerate() {
        let _ = write!(
            svg,
            "<span><i style=\"background:{}\"></i>{}</span>",
            COLORS[i % COLORS.len()],
            escape_markup(name)
        );
    }
    svg.push_str("</div>");
    svg
}

fn time_ticks(summary: &LoadSummary) -> Vec<(f64, String)> {
    time_ticks_for(summary.duration_s, 5)
        .into_iter()
        .map(|t| (t, time_label(t)))
        .collect()
}

/// The self-contained HTML report.
pub fn page(summary: &LoadSummary) -> String {
    let sections = [
        budgets_section(summary),
        over_time_section(summary),
        distribution_section(summary),
        rates_sections(summary),
        latency_table_section(summary),
        totals_section(summary),
    ];
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>livegames load report</title><style>{STYLE}</style></head><body><header><h1>livegames load</h1><span class=\"sub\">{} connections · {:.1}s · started {}{}</span>{}</header><main>{}</main></body></html>\n",
        summary.conns,
        summary.duration_s,
        escape_markup(&summary.started_at),
        if summary.stopped_early {
            " · stopped early"
        } else {
            ""
        },
        verdict_badge(summary),
        sections.concat()
    )
}

fn verdict_badge(summary: &LoadSummary) -> &'static str {
    if !summary.checks.iter().all(|c| c.passed) {
        "<span class=\"badge fail\">nothing measured</span>"
    } else if summary.budgets.is_empty() {
        "<span class=\"badge\">no budgets</span>"
    } else if summary.budgets_passed() {
        "<span class=\"badge pass\">all budgets met</span>"
    } else {
        "<span class=\"badge fail\">budget failed</span>"
    }
}

fn budgets_section(summary: &LoadSummary) -> String {
    let mut body = String::from(
        "<section class=\"wide\"><h2>Checks and budgets</h2><table><tr><th>run check</th><th>result</th><th>observed</th></tr>",
    );
    for c in &summary.checks {
        let class = if c.passed { "pass" } else { "fail" };
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            escape_markup(c.name),
            class.to_uppercase(),
            escape_markup(&c.observed)
        );
    }
    body.push_str("</table>");
    if summary.budgets.is_empty() {
        body.push_str("<p class=\"muted\">none given (--budget)</p>");
    } else {
        body.push_str(
            "<table><tr><th>budget</th><th>result</th><th>measured</th><th>limit</th></tr>",
        );
        for b in &summary.budgets {
            let class = if b.passed { "pass" } else { "fail" };
            let note = b
                .note
                .as_deref()
                .map(|n| format!(" <span class=\"muted\">({})</span>", escape_markup(n)))
                .unwrap_or_default();
            let _ = write!(
                body,
                "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}{note}</td><td>{}</td></tr>",
                escape_markup(&b.budget),
                class.to_uppercase(),
                escape_markup(&b.measured),
                escape_markup(&b.limit)
            );
        }
        body.push_str("</table>");
    }
    body.push_str("</section>");
    body
}

/// One per-second series: (seconds since the start, value) where the second has one.
fn series(summary: &LoadSummary, f: impl Fn(&Second) -> Option<f64>) -> Vec<(f64, f64)> {
    summary
        .per_second
        .iter()
        .filter_map(|s| f(s).map(|v| (s.t, v)))
        .collect()
}

fn over_time_section(summary: &LoadSummary) -> String {
    let over_time: Vec<_> = [
        ("delivery p50", series(summary, |s| s.p50_us)),
        ("delivery p99", series(summary, |s| s.p99_us)),
        ("delivery max", series(summary, |s| s.max_us)),
        ("rtt p99", series(summary, |s| s.rtt_p99_us)),
    ]
    .into_iter()
    .filter(|(_, p)| !p.is_empty())
    .collect();
    format!(
        "<section><h2>Latency over time (per second, log scale)</h2>{}</section>",
        line_chart(
            &over_time,
            &time_ticks(summary),
            &|v| format_micros(v),
            true
        )
    )
}

/// The percentiles the distribution chart shows, with their labels.
const CHART_QUANTILES: [(f64, &str); 8] = [
    (0.5, "50"),
    (0.75, "75"),
    (0.9, "90"),
    (0.95, "95"),
    (0.99, "99"),
    (0.999, "99.9"),
    (0.9999, "99.99"),
    (1.0, "max"),
];

fn distribution_section(summary: &LoadSummary) -> String {
    let mut dist = Vec::new();
    for name in summary.latency.keys() {
        let Some(d) = Distribution::from_name(name) else {
            continue;
        };
        let h = summary.latencies.get(d);
        let pts = CHART_QUANTILES
            .iter()
            .enumerate()
            .map(|(i, (q, _))| {
                let value = if *q >= 1.0 {
                    h.max()
                } else {
                    h.value_at_quantile(*q)
                };
                (i as f64, value as f64)
            })
            .collect();
        dist.push((*name, pts));
    }
    let ticks: Vec<(f64, String)> = CHART_QUANTILES
        .iter()
        .enumerate()
        .map(|(i, (_, l))| (i as f64, format!("p{l}")))
        .collect();
    format!(
        "<section><h2>Latency distribution (log scale)</h2>{}</section>",
        line_chart(&dist, &ticks, &|v| format_micros(v), true)
    )
}

fn rates_sections(summary: &LoadSummary) -> String {
    let conns = vec![("open connections", series(summary, |s| Some(s.open as f64)))];
    let rate = vec![("frames/s", series(summary, |s| Some(s.frames_per_s)))];
    let count = |v: f64| format!("{v:.0}");
    format!(
        "<section><h2>Open connections</h2>{}</section><section><h2>Frames per second</h2>{}</section>",
        line_chart(&conns, &time_ticks(summary), &count, false),
        line_chart(&rate, &time_ticks(summary), &count, false)
    )
}

fn latency_table_section(summary: &LoadSummary) -> String {
    let mut body = String::from(
        "<section><h2>Latency</h2><table><tr><th>distribution</th><th>count</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr>",
    );
    for (name, p) in &summary.latency {
        let cells: String = p.cells().iter().map(|c| format!("<td>{c}</td>")).collect();
        let _ = write!(body, "<tr><td>{name}</td>{cells}</tr>");
    }
    body.push_str("</table></section>");
    body
}

fn totals_section(summary: &LoadSummary) -> String {
    let t = &summary.totals;
    let c = &t.counts;
    let rows = [
        ("frames", c.frames.to_string()),
        ("frames/s", format!("{:.0}", t.frames_per_s)),
        ("binary frames", c.binary_frames.to_string()),
        ("unreadable frames", c.unreadable_total().to_string()),
        ("bytes", c.bytes.to_string()),
        ("lost (seq gaps)", count_text(c.lost)),
        ("duplicates", count_text(c.duplicates)),
        ("reordered", count_text(c.reordered)),
        (
            "server restarts / unrecoverable resumes",
            format!("{} / {}", c.restarts, c.unrecoverable),
        ),
        (
            "connections attempted / opened / peak",
            format!("{} / {} / {}", c.connect_attempts, c.connected, t.peak_open),
        ),
        ("disconnects", c.disconnects.to_string()),
        (
            "users dropped, not back by the end",
            c.users_dropped.to_string(),
        ),
        (
            "reconnects succeeded / attempted",
            format!("{} / {}", c.reconnect_successes, c.reconnect_attempts),
        ),
        ("pings / pongs", format!("{} / {}", c.pings_sent, c.pongs)),
        (
            "compression (permessage-deflate)",
            c.compression
                .as_ref()
                .map(|z| z.observed())
                .unwrap_or_else(|| "not offered".into()),
        ),
        (
            "generator CPU",
            summary
                .generator_cpu_percent
                .map(|c| format!("{c:.0}%"))
                .unwrap_or_else(|| "n/a".into()),
        ),
    ];
    let mut body = String::from("<section><h2>Totals</h2><table>");
    for (k, v) in rows {
        let _ = write!(body, "<tr><td>{k}</td><td>{}</td></tr>", escape_markup(&v));
    }
    for (k, v) in &c.errors {
        let said = c
            .error_examples
            .get(k)
            .map(|s| format!(" <small>({})</small>", escape_markup(s)))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td class=\"fail\">error: {}{said}</td><td>{v}</td></tr>",
            escape_markup(k)
        );
    }
    for (k, v) in &c.unreadable {
        let _ = write!(
            body,
            "<tr><td class=\"fail\">unreadable: {}</td><td>{v}</td></tr>",
            escape_markup(k)
        );
    }
    for example in &c.unreadable_examples {
        let _ = write!(
            body,
            "<tr><td class=\"warn\" colspan=\"2\">unreadable frame {}</td></tr>",
            escape_markup(example)
        );
    }
    for w in &summary.warnings {
        let _ = write!(
            body,
            "<tr><td class=\"warn\" colspan=\"2\">warning: {}</td></tr>",
            escape_markup(w)
        );
    }
    body.push_str("</table></section>");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_fall_on_round_values_and_cover_the_data() {
        assert_eq!(nice_ticks(55.0, 4), [0.0, 20.0, 40.0, 60.0]);
        assert_eq!(nice_ticks(661.0, 4), [0.0, 200.0, 400.0, 600.0, 800.0]);
        assert_eq!(nice_ticks(100.0, 4), [0.0, 50.0, 100.0]);
        assert_eq!(nice_ticks(0.0, 4), [0.0, 0.5, 1.0]);
        for max in [0.3, 7.0, 49.9, 1234.5, 98_000.0] {
            let ticks = nice_ticks(max, 4);
            assert!(*ticks.last().unwrap() >= max, "{max}: {ticks:?}");
            assert!((3..=6).contains(&ticks.len()), "{max}: {ticks:?}");
        }
    }

    #[test]
    fn log_ticks_are_decades_around_the_data() {
        assert_eq!(decade_ticks(150.0, 42_000.0), [100.0, 1e3, 1e4, 1e5]);
        assert_eq!(decade_ticks(1000.0, 1000.0), [1e3, 1e4]);
    }

    #[test]
    fn time_ticks_are_evenly_spaced_whole_seconds() {
        assert_eq!(time_ticks_for(5.07, 5), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(time_ticks_for(10.06, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            time_ticks_for(60.0, 5),
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
        );
        assert_eq!(
            time_ticks_for(300.0, 5),
            [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
        );
        assert_eq!(time_label(90.0), "1m30s");
        assert_eq!(time_label(120.0), "2m");
    }

    #[test]
    fn the_chart_keeps_its_labels_inside_the_picture() {
        let series = vec![("p99", vec![(0.0, 1500.0), (5.0, 980_000.0)])];
        let ticks: Vec<(f64, String)> = vec![(0.0, "0s".into()), (5.0, "pmax".into())];
        let svg = line_chart(&series, &ticks, &|v| format_micros(v), true);
        // The last x label's centre leaves half a label's width (about 14 px) inside.
        let last_x: f64 = svg
            .rsplit("<text x=\"")
            .find(|t| t.contains(">pmax<"))
            .and_then(|t| t.split('"').next())
            .and_then(|x| x.parse().ok())
            .unwrap();
        assert!(last_x <= 640.0 - 14.0, "{last_x}");
    }
}
