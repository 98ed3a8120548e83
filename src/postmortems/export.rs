//! The whole post-mortem as one GitHub-flavoured Markdown document: incident facts, every
//! section, root causes, and the timeline, snapshots and action items pulled from their own
//! tables. Text people wrote passes through `markdown::neutralize`, so the file is safe to
//! render anywhere.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::Loaded;
use crate::action_items::ActionItem;
use crate::error::{AppError, AppResult};
use crate::incidents::Incident;
use crate::markdown::{escape, neutralize};
use crate::signals::db::Snapshot;
use crate::timeline::Entry;

/// Everything the document is made of.
pub struct Export<'a> {
    pub incident: &'a Incident,
    pub postmortem: &'a Loaded,
    pub timeline: &'a [Entry],
    pub items: &'a [ActionItem],
    pub snapshots: &'a [Snapshot],
    pub tz: Tz,
    /// Linked incidents, as read from this one.
    pub links: &'a [crate::similar::db::Link],
    /// Markers of timeline entries promoted from chat, by entry id.
    pub markers: &'a std::collections::HashMap<String, crate::evidence::Marker>,
}

/// The whole post-mortem of `incident` as Markdown, with its timeline, action items and
/// snapshots (as published, once it is), what the page's download and the API's `.md` answer.
pub async fn document(db: &crate::db::Db, tz: Tz, incident: &Incident) -> AppResult<String> {
    let pm = super::load(db, &incident.id)
        .await?
        .ok_or_else(|| AppError::not_found("post-mortem of", incident.key()))?;
    // Once published, the document is what was published (`super::attachments`).
    let parts = super::attachments(db, incident, &pm).await?;
    // A downloaded document travels: it names only incidents everyone may see.
    let links = crate::similar::db::links_of(
        &db.reader,
        &incident.id,
        &crate::visibility::Viewer::anyone(),
    )
    .await?;
    let markers = crate::evidence::db::markers(&db.reader, &incident.id).await?;
    Ok(to_markdown(&Export {
        links: &links,
        markers: &markers,
        incident,
        postmortem: &pm,
        timeline: &parts.timeline,
        items: &parts.items,
        snapshots: &parts.snapshots,
        tz,
    }))
}

fn time(tz: Tz, at: DateTime<Utc>) -> String {
    crate::time::format_time(tz, at)
}

/// A table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    escape(&text.replace(['\n', '\r'], " "))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} ms"))
}

pub fn to_markdown(e: &Export<'_>) -> String {
    let i = e.incident;
    let pm = &e.postmortem.pm;
    let c = &e.postmortem.content;
    let mut out = String::with_capacity(8 * 1024);
    out.push_str(&format!(
        "# Post-mortem: {} {}\n\n",
        i.key(),
        escape(&i.title)
    ));
    out.push_str("| | |\n|---|---|\n");
    let mut facts = vec![
        ("Status", pm.status.label().to_owned()),
        ("Severity", i.severity.as_str().to_owned()),
        ("Service", cell(&i.service)),
        ("Category", cell(&i.category)),
        ("Started", time(e.tz, i.started_at)),
    ];
    if let Some(at) = i.resolved_at {
        facts.push(("Resolved", time(e.tz, at)));
    }
    facts.push(("Detected by", pm.detection_label().to_owned()));
    facts.push((
        "Author",
        cell(pm.author_name.as_deref().unwrap_or("unknown")),
    ));
    if let Some(at) = pm.published_at {
        facts.push(("Published", time(e.tz, at)));
    }
    for (label, value) in facts {
        out.push_str(&format!("| {label} | {value} |\n"));
    }
    out.push('\n');

    for section in &c.sections {
        out.push_str(&format!("## {}\n\n", escape(&section.title)));
        if section.body.trim().is_empty() {
            out.push_str("_Not written._\n\n");
        } else {
            out.push_str(&neutralize(section.body.trim_end()));
            out.push_str("\n\n");
        }
    }

    out.push_str("## Root causes\n\n");
    match c.primary() {
        Some(primary) => out.push_str(&format!(
            "**Primary: {}.** {}\n\n",
            escape(&primary.category),
            neutralize(&primary.description)
        )),
        None => out.push_str("_No primary root cause recorded._\n\n"),
    }
    let contributing: Vec<_> = c.contributing().collect();
    if !contributing.is_empty() {
        out.push_str("Contributing factors:\n\n");
        for f in contributing {
            out.push_str(&format!(
                "- **{}**: {}\n",
                escape(&f.category),
                neutralize(&f.description.replace('\n', " "))
            ));
        }
        out.push('\n');
    }

    out.push_str("## Timeline\n\n");
    if e.timeline.is_empty() {
        out.push_str("_No entries._\n\n");
    } else {
        out.push_str("| Time | Kind | What happened |\n|---|---|---|\n");
        for entry in e.timeline {
            // A message promoted from chat carries its marker (diagnosis, decision, …).
            let kind = match e.markers.get(&entry.id) {
                Some(m) => format!("{} · **{}**", entry.kind.label(), m.label()),
                None => entry.kind.label().to_owned(),
            };
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                time(e.tz, entry.occurred_at),
                kind,
                neutralize(&entry.body.replace(['\n', '\r'], " ")).replace('|', "\\|")
            ));
        }
        out.push('\n');
    }

    if !e.links.is_empty() {
        out.push_str("## Related incidents\n\n");
        for l in e.links {
            out.push_str(&format!(
                "- {} INC-{}: {} ({})\n",
                capitalize(l.label()),
                l.other_number,
                escape(&l.other_title),
                l.other_status
            ));
        }
        out.push('\n');
    }

    if !e.snapshots.is_empty() {
        out.push_str("## Metric snapshots\n\n");
        out.push_str(
            "| Service | Taken | Events | Error rate | p50 | p95 | p99 |\n|---|---|---|---|---|---|---|\n",
        );
        for s in e.snapshots {
            out.push_str(&format!(
                "| {} | {} ({}) | {} | {:.2}% | {} | {} | {} |\n",
                cell(&s.service),
                time(e.tz, s.taken_at),
                cell(&s.trigger),
                s.count,
                s.error_rate * 100.0,
                ms(s.latency_p50),
                ms(s.latency_p95),
                ms(s.latency_p99),
            ));
        }
        out.push('\n');
    }

    out.push_str("## Action items\n\n");
    if e.items.is_empty() {
        if c.no_action_items_reason.is_empty() {
            out.push_str("_None yet._\n\n");
        } else {
            out.push_str(&format!(
                "None, because: {}\n\n",
                neutralize(&c.no_action_items_reason)
            ));
        }
    } else {
        for item in e.items {
            let done = if item.status.is_closed() { "x" } else { " " };
            let mut line = format!(
                "- [{done}] **{}** ({}, {}, {})",
                escape(&item.title),
                item.priority.as_str(),
                item.kind.as_str(),
                item.status.as_str()
            );
            if let Some(owner) = &item.owner_name {
                line.push_str(&format!(" · owner {}", escape(owner)));
            }
            if let Some(due) = item.due_on {
                line.push_str(&format!(" · due {due}"));
            }
            if item.external_url.starts_with("https://") || item.external_url.starts_with("http://")
            {
                line.push_str(&format!(" · <{}>", item.external_url.replace('>', "%3E")));
            }
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// "duplicate of" → "Duplicate of".
fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
