//! The weekly review's charts as server-rendered SVG (no script needed, prints as it shows):
//! incidents per week as bars, and the median time to resolve per week as a line.

use std::fmt::Write as _;

use super::WeekPoint;

const W: f64 = 640.0;
const H: f64 = 180.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 10.0;

fn frame(label: &str, max_label: &str) -> String {
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">"#
    );
    let base = H - BOTTOM;
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" x2="{}" y1="{base}" y2="{base}" class="grid"/><line x1="{LEFT}" x2="{}" y1="{TOP}" y2="{TOP}" class="grid"/><text x="{}" y="{}" text-anchor="end" class="axis">0</text><text x="{}" y="{}" text-anchor="end" class="axis">{max_label}</text>"#,
        W - 8.0,
        W - 8.0,
        LEFT - 4.0,
        base + 4.0,
        LEFT - 4.0,
        TOP + 4.0,
    );
    svg
}

fn week_labels(svg: &mut String, points: &[WeekPoint]) {
    let group = (W - LEFT - 8.0) / points.len().max(1) as f64;
    for (i, p) in points.iter().enumerate() {
        let short = p.week.split('-').nth(1).unwrap_or(&p.week);
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="axis">{short}</text>"#,
            LEFT + group * (i as f64 + 0.5),
            H - 8.0
        );
    }
}

/// One bar per week; the last (the reviewed week) is highlighted.
pub fn incidents_chart(points: &[WeekPoint]) -> String {
    let max = points.iter().map(|p| p.incidents).max().unwrap_or(0).max(1);
    let mut svg = frame("Incidents per week", &max.to_string());
    let group = (W - LEFT - 8.0) / points.len().max(1) as f64;
    let plot_h = H - BOTTOM - TOP;
    for (i, p) in points.iter().enumerate() {
        let h = plot_h * p.incidents as f64 / max as f64;
        let class = if i + 1 == points.len() {
            "bar current"
        } else {
            "bar"
        };
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" class="{class}"><title>{}: {} incident{}</title></rect>"#,
            LEFT + group * i as f64 + group * 0.2,
            H - BOTTOM - h,
            group * 0.6,
            p.week,
            p.incidents,
            if p.incidents == 1 { "" } else { "s" }
        );
    }
    week_labels(&mut svg, points);
    svg.push_str("</svg>");
    svg
}

/// The median time to resolve per week, in hours; weeks without a resolved incident leave a
/// gap in the line.
pub fn mttr_chart(points: &[WeekPoint]) -> String {
    let max_secs = points
        .iter()
        .filter_map(|p| p.mttr_median_secs)
        .max()
        .unwrap_or(0)
        .max(60);
    let max_label = crate::time::human_secs(Some(max_secs));
    let mut svg = frame("Median time to resolve per week", &max_label);
    let group = (W - LEFT - 8.0) / points.len().max(1) as f64;
    let plot_h = H - BOTTOM - TOP;
    let mut segment: Vec<String> = Vec::new();
    let mut lines: Vec<Vec<String>> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        match p.mttr_median_secs {
            Some(secs) => {
                let x = LEFT + group * (i as f64 + 0.5);
                let y = H - BOTTOM - plot_h * secs as f64 / max_secs as f64;
                segment.push(format!("{x:.1},{y:.1}"));
                let _ = write!(
                    svg,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" class="dot"><title>{}: median {}</title></circle>"#,
                    p.week,
                    crate::time::human_secs(Some(secs))
                );
            }
            None => lines.push(std::mem::take(&mut segment)),
        }
    }
    lines.push(segment);
    for line in lines.into_iter().filter(|l| l.len() > 1) {
        let _ = write!(
            svg,
            r#"<polyline points="{}" class="line mttr"/>"#,
            line.join(" ")
        );
    }
    week_labels(&mut svg, points);
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(week: &str, incidents: usize, mttr: Option<i64>) -> WeekPoint {
        WeekPoint {
            week: week.into(),
            incidents,
            mttr_median_secs: mttr,
        }
    }

    #[test]
    fn a_bar_per_week_and_a_line_broken_where_nothing_was_resolved() {
        let points = vec![
            point("2026-W45", 2, Some(3600)),
            point("2026-W46", 0, None),
            point("2026-W47", 1, Some(1800)),
            point("2026-W48", 3, Some(7200)),
        ];
        let bars = incidents_chart(&points);
        assert_eq!(bars.matches("<rect").count(), 4);
        assert_eq!(bars.matches("class=\"bar current\"").count(), 1);
        assert!(bars.contains("2026-W48: 3 incidents"));
        let line = mttr_chart(&points);
        assert_eq!(line.matches("<circle").count(), 3);
        // W45 stands alone; W47–W48 are joined.
        assert_eq!(line.matches("<polyline").count(), 1);
        assert!(line.contains("2026-W48: median 2h 00m"));
    }
}
