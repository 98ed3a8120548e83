//! The insights charts as server-rendered SVG (no script, prints as it shows). Each has a
//! `<title>` and `<desc>` saying what it shows; the page puts the same figures in a table for
//! screen readers and small screens.

use std::fmt::Write as _;

/// Colours of the series, in order (distinguishable, and each readable on white).
const PALETTE: [&str; 10] = [
    "#1c5fb8", "#d35f12", "#1e7a46", "#8e44ad", "#b3261e", "#5f6b7a", "#0f8b8d", "#9a6400",
    "#c2185b", "#37474f",
];

pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn open(svg: &mut String, id: &str, title: &str, desc: &str, height: f64) {
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(title),
        esc(desc)
    );
}

/// Bars per period: one bar per period stacked by series (`stacked`), or one bar per series
/// side by side. `values[s][p]` is series `s` in period `p`; `fmt` writes a value for tooltips
/// and the axis.
#[allow(clippy::too_many_arguments)]
pub fn bars(
    id: &str,
    title: &str,
    desc: &str,
    periods: &[String],
    series: &[String],
    values: &[Vec<f64>],
    stacked: bool,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let mut svg = String::new();
    open(&mut svg, id, title, desc, H);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let base = H - BOTTOM;
    let max = if stacked {
        (0..periods.len())
            .map(|p| {
                values
                    .iter()
                    .map(|v| v.get(p).copied().unwrap_or(0.0))
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
    } else {
        values
            .iter()
            .flat_map(|v| v.iter().copied())
            .fold(0.0, f64::max)
    };
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" x2="{}" y1="{base}" y2="{base}" class="grid"/><line x1="{LEFT}" x2="{}" y1="{TOP}" y2="{TOP}" class="grid"/><text x="{}" y="{}" text-anchor="end" class="axis">0</text><text x="{}" y="{}" text-anchor="end" class="axis">{}</text>"#,
        W - RIGHT,
        W - RIGHT,
        LEFT - 4.0,
        base + 4.0,
        LEFT - 4.0,
        TOP + 4.0,
        esc(&fmt(max)),
    );
    if max <= 0.0 || periods.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" class="chart-empty">Nothing in this range</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return svg;
    }
    let group = plot_w / periods.len() as f64;
    // Label every n-th period so labels never overlap (about 44 px each).
    let every = ((44.0 / group).ceil() as usize).max(1);
    for (p, label) in periods.iter().enumerate() {
        let x0 = LEFT + group * p as f64;
        if p % every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{}" text-anchor="middle" class="axis">{}</text>"#,
                x0 + group / 2.0,
                H - 10.0,
                esc(label)
            );
        }
        let inner = group * 0.8;
        let mut y = base;
        for (s, name) in series.iter().enumerate() {
            let v = values.get(s).and_then(|v| v.get(p)).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = plot_h * v / max;
            let (x, w, top) = if stacked {
                y -= h;
                (x0 + group * 0.1, inner, y)
            } else {
                let w = inner / series.len().max(1) as f64;
                (x0 + group * 0.1 + w * s as f64, w, base - h)
            };
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="{}"><title>{}, {}: {}</title></rect>"#,
                colour(s),
                esc(label),
                esc(name),
                esc(&fmt(v))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// One horizontal bar per row (`rows`: label, value, value as written).
pub fn hbars(id: &str, title: &str, desc: &str, rows: &[(String, f64, String)]) -> String {
    let row_h = 22.0;
    let label_w = 170.0;
    let height = (rows.len().max(1) as f64) * row_h + 16.0;
    let mut svg = String::new();
    open(&mut svg, id, title, desc, height);
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    if rows.is_empty() || max <= 0.0 {
        let _ = write!(
            svg,
            r#"<text x="{}" y="20" text-anchor="middle" class="chart-empty">Nothing in this range</text></svg>"#,
            W / 2.0
        );
        return svg;
    }
    let plot_w = W - label_w - 90.0;
    for (i, (label, value, written)) in rows.iter().enumerate() {
        let y = 8.0 + row_h * i as f64;
        let w = (plot_w * value / max).max(1.0);
        let short: String = label.chars().take(26).collect();
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="axis">{}</text><rect x="{label_w}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" class="axis">{}</text>"#,
            label_w - 6.0,
            y + 14.0,
            esc(&short),
            row_h - 6.0,
            colour(0),
            esc(label),
            esc(written),
            label_w + w + 6.0,
            y + 14.0,
            esc(written)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_described_and_escaped() {
        let svg = bars(
            "f",
            "Factors <per> quarter",
            "desc & more",
            &["2026-Q1".into(), "2026-Q2".into()],
            &["deploy".into(), "a<b".into()],
            &[vec![1.0, 2.0], vec![0.0, 3.0]],
            true,
            &|v| format!("{v}"),
        );
        assert!(svg.contains("<title id=\"f-t\">Factors &lt;per&gt; quarter</title>"));
        assert!(svg.contains("<desc id=\"f-d\">desc &amp; more</desc>"));
        assert!(svg.contains("2026-Q2, a&lt;b: 3"));
        assert!(!svg.contains("a<b"));
        // The highest stack (2 + 3) is the axis maximum.
        assert!(svg.contains(">5</text>"));
        let empty = hbars("h", "Hours", "none", &[]);
        assert!(empty.contains("Nothing in this range"));
    }
}
