//! Full-text search over incidents, timeline entries, post-mortem sections and action items
//! (SQLite FTS5, kept in sync by triggers): what kinds there are, the query a person typed
//! made safe, and snippets highlighted without trusting the text they come from.

pub mod db;
pub mod web;

use serde::Serialize;

/// Marks the start and end of a match in FTS5 snippets. Control characters that a browser
/// cannot show; the highlighter turns them into `<mark>` after escaping everything else.
pub const MARK_START: char = '\u{2}';
pub const MARK_END: char = '\u{3}';

/// What kind of record matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Incident,
    Timeline,
    Postmortem,
    ActionItem,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Self::Incident,
        Self::Timeline,
        Self::Postmortem,
        Self::ActionItem,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "incident" | "incidents" => Some(Self::Incident),
            "timeline" => Some(Self::Timeline),
            "postmortem" | "postmortems" => Some(Self::Postmortem),
            "action_item" | "action_items" => Some(Self::ActionItem),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incident => "incident",
            Self::Timeline => "timeline",
            Self::Postmortem => "postmortem",
            Self::ActionItem => "action_item",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Incident => "Incidents",
            Self::Timeline => "Timeline entries",
            Self::Postmortem => "Post-mortems",
            Self::ActionItem => "Action items",
        }
    }

    pub fn badge(self) -> &'static str {
        match self {
            Self::Incident => "incident",
            Self::Timeline => "timeline",
            Self::Postmortem => "post-mortem",
            Self::ActionItem => "action item",
        }
    }
}

/// HTML of an FTS5 snippet: everything escaped, then the match markers turned into
/// `<mark>…</mark>`. Markers are paired up as they come (a stray one in stored text opens
/// or closes at most one mark, and an open mark is closed at the end), so the result is
/// always well-formed and holds no markup but `<mark>`.
pub fn highlight(snippet: &str) -> String {
    let mut out = String::with_capacity(snippet.len() + 32);
    let mut open = false;
    for c in snippet.chars() {
        match c {
            MARK_START if !open => {
                out.push_str("<mark>");
                open = true;
            }
            MARK_END if open => {
                out.push_str("</mark>");
                open = false;
            }
            MARK_START | MARK_END => {}
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    if open {
        out.push_str("</mark>");
    }
    out
}

/// The FTS5 query for what a person typed (see `incidents::db::fts_query`): words as quoted
/// prefix terms, all required; none when the text has no words.
pub fn query(text: &str) -> Option<String> {
    crate::incidents::db::fts_query(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_escaped_and_only_marks_survive() {
        assert_eq!(
            highlight("the \u{2}database\u{3} <script>alert(1)</script> & \"x\""),
            "the <mark>database</mark> &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"
        );
        // Stray or doubled markers never leave a mark open or close one twice.
        assert_eq!(highlight("\u{3}a\u{2}b\u{2}c"), "a<mark>bc</mark>");
        assert_eq!(highlight("x\u{0}y"), "xy");
    }

    #[test]
    fn hostile_queries_become_plain_terms() {
        assert_eq!(query("\"").as_deref(), None);
        assert_eq!(query("*").as_deref(), None);
        assert_eq!(query("NEAR(").as_deref(), Some("\"NEAR\"*"));
        assert_eq!(
            query("<script>db</script>").as_deref(),
            Some("\"script\"* \"db\"* \"script\"*")
        );
        assert_eq!(query("").as_deref(), None);
        assert_eq!(
            query("数据库 ünïcödé").as_deref(),
            Some("\"数据库\"* \"ünïcödé\"*")
        );
    }

    #[test]
    fn kinds_parse_from_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("users"), None);
    }
}
