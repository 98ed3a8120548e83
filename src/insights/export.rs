//! Insights as CSV, one figure per file (the JSON is the figures' own serialization).

use std::fmt::Write as _;

use super::{Counts, FigureName, Insights};
use crate::csv::csv_field;
use crate::time::format_time;

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn counts_csv(out: &mut String, period: &str, series: &str, c: &Counts) {
    let _ = writeln!(out, "{period},{series},incidents");
    for r in &c.rows {
        let _ = writeln!(
            out,
            "{},{},{}",
            csv_field(&r.period),
            csv_field(&r.series),
            r.incidents
        );
    }
}

/// One figure as CSV (a header line, then one line per row).
pub fn csv(insights: &Insights, figure: FigureName, tz: chrono_tz::Tz) -> String {
    let mut out = String::new();
    match figure {
        FigureName::Factors => counts_csv(&mut out, "quarter", "category", &insights.factors),
        FigureName::Detection => counts_csv(&mut out, "month", "detected_by", &insights.detection),
        FigureName::Mttx => {
            out.push_str("quarter,severity,measure,incidents,median_secs,p90_secs\n");
            for r in &insights.mttx.rows {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    r.quarter,
                    r.severity.as_str(),
                    r.measure.as_str(),
                    r.incidents,
                    opt(r.median_secs),
                    opt(r.p90_secs)
                );
            }
        }
        FigureName::Hours => {
            out.push_str("service,incidents,hours,unresolved\n");
            for r in &insights.hours.rows {
                let _ = writeln!(
                    out,
                    "{},{},{:.2},{}",
                    csv_field(&r.service),
                    r.incidents,
                    r.hours,
                    r.unresolved
                );
            }
        }
        FigureName::FollowThrough => {
            out.push_str("team,due,done_on_time,done_late,wont_do,open,rate\n");
            for r in &insights.follow_through.rows {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{}",
                    csv_field(&r.team),
                    r.due,
                    r.done_on_time,
                    r.done_late,
                    r.wont_do,
                    r.open,
                    opt(r.rate)
                );
            }
        }
        FigureName::Fix => {
            out.push_str(
                "group,category,service,incidents,prevent_items,prevent_done,fixed_at,before_incidents,before_days,before_per_month,after_incidents,after_days,after_per_month\n",
            );
            for r in &insights.fix.rows {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    csv_field(&r.group),
                    csv_field(&r.category),
                    csv_field(r.service.as_deref().unwrap_or_default()),
                    r.incidents,
                    r.prevent_items,
                    r.prevent_done,
                    r.fixed_at.map(|t| format_time(tz, t)).unwrap_or_default(),
                    r.before_incidents,
                    r.before_days,
                    opt(r.before_per_month),
                    r.after_incidents,
                    r.after_days,
                    opt(r.after_per_month)
                );
            }
        }
    }
    out
}
