//! Server-rendered SVG charts of a window's per-interval series: readable without JavaScript
//! and allowed by the strict CSP (no script, only attributes).

use std::fmt::Write as _;

use crate::metrics::SeriesPoint;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 10.0;

/// A frozen snapshot with its chart, as the incident page and the post-mortem show it.
pub struct SnapshotView {
    pub snapshot: super::db::Snapshot,
    pub chart: String,
    /// What was frozen from Prometheus, with one chart per query (same order as its results).
    pub prometheus: Option<super::prometheus::Frozen>,
    pub prometheus_charts: Vec<String>,
}

impl SnapshotView {
    /// p50, p90, p95, p99 and max, in the table's order.
    pub fn latencies(&self) -> [Option<f64>; 5] {
        let s = &self.snapshot;
        [
            s.latency_p50,
            s.latency_p90,
            s.latency_p95,
            s.latency_p99,
            s.latency_max,
        ]
    }

    pub fn new(snapshot: super::db::Snapshot) -> Self {
        let title = format!("{} latency and errors", snapshot.service);
        let chart = snapshot
            .report()
            .map(|r| latency_chart(&r.series, &title))
            .unwrap_or_default();
        let prometheus = snapshot.prometheus();
        let prometheus_charts = prometheus
            .as_ref()
            .map(|p| {
                p.results
                    .iter()
                    .map(|r| {
                        series_chart(
                            &r.series,
                            p.start,
                            p.end,
                            &format!("{} {} from Prometheus", snapshot.service, r.signal),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            snapshot,
            chart,
            prometheus,
            prometheus_charts,
        }
    }

    /// Each Prometheus query's result with its chart.
    pub fn prometheus_views(&self) -> Vec<(&super::prometheus::FrozenQuery, &str)> {
        self.prometheus
            .iter()
            .flat_map(|p| p.results.iter())
            .zip(self.prometheus_charts.iter().map(String::as_str))
            .collect()
    }

    /// Whether the snapshot has figures from Hindsight's own window (a Prometheus-only
    /// snapshot carries an empty one).
    pub fn has_window(&self) -> bool {
        self.snapshot.count > 0 || self.prometheus.is_none()
    }
}

/// The series of one Prometheus range query as lines (at most five drawn distinctly), on a
/// shared axis from `start` to `end` (Unix seconds). Values Prometheus sent as NaN or ±Inf
/// leave gaps.
pub fn series_chart(
    series: &[super::prometheus::Series],
    start: i64,
    end: i64,
    title: &str,
) -> String {
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    let parsed: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.values
                .iter()
                .filter_map(|(t, v)| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .map(|v| (*t, v))
                })
                .collect()
        })
        .collect();
    let max = parsed
        .iter()
        .flatten()
        .map(|p| p.1.abs())
        .fold(0.0_f64, f64::max);
    if parsed.iter().all(Vec::is_empty) {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" class="chart-empty">no samples in the range</text></svg>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return svg;
    }
    let top = if max > 0.0 { nice_ceiling(max) } else { 1.0 };
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let span = (end - start).max(1) as f64;
    let x = |t: f64| LEFT + plot_w * ((t - start as f64) / span).clamp(0.0, 1.0);
    let y = |v: f64| TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" class="grid"/><text x="{}" y="{:.1}" text-anchor="end" class="axis">{}</text>"#,
            WIDTH - 8.0,
            LEFT - 4.0,
            yy + 4.0,
            format_number(v)
        );
    }
    let classes = ["p50", "p95", "p99", "p50 alt", "p95 alt"];
    for (i, (points, s)) in parsed.iter().zip(series).enumerate() {
        if points.is_empty() {
            continue;
        }
        let coords: Vec<String> = points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let labels: Vec<String> = s
            .metric
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline points="{}" class="line {}"><title>{{{}}}</title></polyline>"#,
            coords.join(" "),
            classes[i % classes.len()],
            escape(&labels.join(", "))
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{}" class="axis">−{}</text><text x="{}" y="{}" text-anchor="end" class="axis">taken</text>"#,
        HEIGHT - 6.0,
        format_span(u64::try_from(end - start).unwrap_or(0) * 1000),
        WIDTH - 8.0,
        HEIGHT - 6.0
    );
    svg.push_str("</svg>");
    svg
}

/// A plain axis number with three significant digits and no trailing zeros, so small values
/// (quantiles in seconds, ratios) stay readable: 0.00025, 0.5, 12.5, 1500.
fn format_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_owned();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = usize::try_from((2 - magnitude).clamp(0, 12)).unwrap_or(0);
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Latency percentiles (p50, p95, p99) as lines and the error rate as bars, per interval.
pub fn latency_chart(series: &[SeriesPoint], title: &str) -> String {
    let points: Vec<&SeriesPoint> = series.iter().filter(|p| p.count > 0).collect();
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    if points.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" class="chart-empty">no events in the window</text></svg>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return svg;
    }
    let first = series.first().map_or(0, |p| p.start_ms);
    let last = series.last().map_or(1, |p| p.start_ms).max(first + 1);
    let max_ms = points
        .iter()
        .filter_map(|p| p.p99_ms.or(p.max_ms))
        .fold(0.0_f64, f64::max)
        .max(0.001);
    let top_ms = nice_ceiling(max_ms);
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |ms: u64| LEFT + plot_w * (ms.saturating_sub(first)) as f64 / (last - first) as f64;
    let y = |v: f64| TOP + plot_h * (1.0 - (v / top_ms).clamp(0.0, 1.0));

    // Axes and grid.
    for i in 0..=4 {
        let v = top_ms * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" class="grid"/><text x="{}" y="{:.1}" text-anchor="end" class="axis">{}</text>"#,
            WIDTH - 8.0,
            LEFT - 4.0,
            yy + 4.0,
            format_ms(v)
        );
    }
    // Error rate as bars from the bottom (own scale: 100 % = full height).
    let bar_w = (plot_w / series.len().max(1) as f64).max(1.0);
    for p in &points {
        if p.errors > 0 {
            let rate = p.errors as f64 / p.count as f64;
            let h = plot_h * rate;
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" class="errors"><title>{:.1}% errors</title></rect>"#,
                x(p.start_ms),
                TOP + plot_h - h,
                bar_w * 0.8,
                rate * 100.0
            );
        }
    }
    for (class, pick) in [
        (
            "p50",
            (|p: &SeriesPoint| p.p50_ms) as fn(&SeriesPoint) -> Option<f64>,
        ),
        ("p95", |p: &SeriesPoint| p.p95_ms),
        ("p99", |p: &SeriesPoint| p.p99_ms),
    ] {
        let coords: Vec<String> = points
            .iter()
            .filter_map(|p| pick(p).map(|v| format!("{:.1},{:.1}", x(p.start_ms), y(v))))
            .collect();
        if !coords.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline points="{}" class="line {class}"><title>{class}</title></polyline>"#,
                coords.join(" ")
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{}" class="axis">−{}</text><text x="{}" y="{}" text-anchor="end" class="axis">now</text>"#,
        HEIGHT - 6.0,
        format_span(last - first),
        WIDTH - 8.0,
        HEIGHT - 6.0
    );
    svg.push_str("</svg>");
    svg
}

/// 1, 2 or 5 times a power of ten, at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if v <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn format_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1}s", v / 1000.0)
    } else if v >= 1.0 || v == 0.0 {
        format!("{v:.0}ms")
    } else {
        format!("{v:.2}ms")
    }
}

fn format_span(ms: u64) -> String {
    let secs = ms / 1000;
    if secs >= 120 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(start_ms: u64, count: u64, errors: u64, p99: f64) -> SeriesPoint {
        SeriesPoint {
            start_ms,
            count,
            errors,
            mean_ms: Some(p99 / 3.0),
            max_ms: Some(p99),
            p50_ms: Some(p99 / 4.0),
            p95_ms: Some(p99 / 2.0),
            p99_ms: Some(p99),
            saturation_max: None,
        }
    }

    #[test]
    fn a_chart_has_three_lines_error_bars_and_an_escaped_title() {
        let series = [
            point(0, 10, 0, 80.0),
            point(5000, 10, 5, 120.0),
            point(10_000, 0, 0, 0.0),
        ];
        let svg = latency_chart(&series, "checkout <at> 12:00");
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<rect").count(), 1);
        assert!(svg.contains("50.0% errors"));
        assert!(svg.contains("checkout &lt;at&gt; 12:00"));
        assert!(
            svg.contains(">200ms<"),
            "axis rounds up to a nice value: {svg}"
        );
    }

    #[test]
    fn an_empty_window_says_so() {
        assert!(latency_chart(&[], "x").contains("no events in the window"));
    }

    #[test]
    fn axis_numbers_keep_three_significant_digits() {
        assert_eq!(format_number(0.00025), "0.00025");
        assert_eq!(format_number(0.000_512_5), "0.000513");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(12.5), "12.5");
        assert_eq!(format_number(1500.0), "1500");
        assert_eq!(format_number(0.0), "0");
    }

    #[test]
    fn a_prometheus_chart_draws_each_series_and_skips_nan() {
        let series = vec![
            super::super::prometheus::Series {
                metric: [("job".to_owned(), "shop<1>".to_owned())].into(),
                values: vec![
                    (100.0, "0.25".into()),
                    (110.0, "NaN".into()),
                    (120.0, "0.5".into()),
                ],
            },
            super::super::prometheus::Series {
                metric: Default::default(),
                values: vec![(100.0, "0.1".into())],
            },
        ];
        let svg = series_chart(&series, 60, 120, "shop p99");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("shop&lt;1&gt;"), "labels escaped: {svg}");
        assert_eq!(
            svg.matches(',').count() - svg.matches(", ").count(),
            3,
            "{svg}"
        );
        assert!(series_chart(&[], 0, 60, "x").contains("no samples in the range"));
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(450.0), 500.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
    }
}
