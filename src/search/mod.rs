//! Full-text search over incidents, timeline entries, post-mortem sections and action items
//! (SQLite FTS5, kept in sync by triggers): what kinds there are, the query a person typed
//! made safe, and snippets highlighted without trusting the text they come from.

pub mod db;
pub mod web;

use std::sync::Arc;

use crate::db::Db;
use crate::error::{AppError, AppResult};
use db::Hit;

/// What the search page needs, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct SearchState {
    pub db: Db,
    /// The zone the date filters are typed in.
    pub tz: chrono_tz::Tz,
    pub hits: Arc<HitCache>,
    /// The catalog's lists, for the filter pickers.
    pub catalog: Arc<crate::catalog::CatalogCache>,
}

/// Marks the start and end of a match in FTS5 snippets. Control characters that a browser
/// cannot show; the highlighter turns them into `<mark>` after escaping everything else.
pub const MARK_START: char = '\u{2}';
pub const MARK_END: char = '\u{3}';

choice! {
    /// What kind of record matched.
    pub enum Kind, "kind" {
        Incident = "incident" | "incidents",
        Timeline = "timeline",
        Postmortem = "postmortem" | "postmortems",
        ActionItem = "action_item" | "action_items",
    }
}

impl Kind {
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

/// Folds a word the way the FTS5 tokenizer does (`unicode61 remove_diacritics 2`) for the
/// letters people type most: lower case, common Latin accents removed.
fn fold(word: &str) -> String {
    word.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
            'ç' | 'č' | 'ć' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ě' => 'e',
            'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => 'u',
            'ý' | 'ÿ' => 'y',
            'š' | 'ś' => 's',
            'ž' | 'ź' | 'ż' => 'z',
            'ř' => 'r',
            'ł' => 'l',
            other => other,
        })
        .collect()
}

/// The words of what a person typed, folded, as the prefixes a match starts with.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(fold)
        .collect()
}

/// Up to `max_words` words of `text` around its first match, the matching words (those that
/// start with one of `terms`) between `MARK_START` and `MARK_END`, with `…` where text was
/// cut. Line breaks become spaces. Markers already in the text are dropped so only ours count.
pub fn snippet(text: &str, terms: &[String], max_words: usize) -> String {
    let words: Vec<(usize, usize)> = {
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            match (c.is_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    out.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push((s, text.len()));
        }
        out
    };
    let matches = |&(s, e): &(usize, usize)| {
        let word = fold(&text[s..e]);
        terms.iter().any(|t| word.starts_with(t.as_str()))
    };
    let first = words.iter().position(matches).unwrap_or(0);
    let max_words = max_words.max(1);
    let from = first.saturating_sub(max_words / 4);
    let to = (from + max_words).min(words.len());
    let from = to.saturating_sub(max_words).min(from);
    let mut out = String::with_capacity(max_words * 8);
    let clean = |piece: &str| -> String {
        piece
            .chars()
            .filter(|c| *c != MARK_START && *c != MARK_END)
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect()
    };
    if from > 0 {
        out.push('…');
    }
    let Some(&(begin, _)) = words.get(from) else {
        return clean(text.trim());
    };
    let mut at = begin;
    for w in &words[from..to] {
        out.push_str(&clean(&text[at..w.0]));
        if matches(w) {
            out.push(MARK_START);
            out.push_str(&text[w.0..w.1]);
            out.push(MARK_END);
        } else {
            out.push_str(&text[w.0..w.1]);
        }
        at = w.1;
    }
    if to < words.len() {
        out.push('…');
    } else {
        out.push_str(&clean(text[at..].trim_end()));
    }
    out
}

/// The same words as whole-word terms (`"status" "page"`): when enough records hold the
/// words themselves, they are found without expanding prefixes, which for common words means
/// merging the index entries of every longer word (`paged`, `pages`, …) first.
pub fn exact_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\""))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// The FTS5 query for what a person typed (see `incidents::db::fts_query`): words as quoted
/// prefix terms, all required; none when the text has no words.
pub fn query(text: &str) -> Option<String> {
    crate::incidents::db::fts_query(text)
}

/// The ranked candidates of every kind for one query and filter.
pub type Hits = Arc<Vec<(Kind, Vec<Hit>)>>;
pub type HitCache = crate::db::ReadCache<Hits>;

/// One kind's candidates: records holding the whole words when there are enough of them
/// (cheap even for common words), otherwise every prefix match (which the whole-word
/// matches are part of).
async fn kind_hits(
    pool: &sqlx::SqlitePool,
    viewer: &crate::visibility::Viewer,
    kind: Kind,
    exact: &str,
    prefix: &str,
    filter: &crate::incidents::db::ListFilter,
) -> AppResult<Vec<Hit>> {
    let whole = db::candidates(pool, viewer, kind, exact, filter).await?;
    if whole.len() as i64 >= db::CANDIDATES {
        return Ok(whole);
    }
    db::candidates(pool, viewer, kind, prefix, filter).await
}

/// Candidates of every kind, read concurrently (the reader pool has several connections),
/// and kept until the next write: people page through results and repeat searches.
pub async fn cached_hits(
    state: &SearchState,
    viewer: &crate::visibility::Viewer,
    text: &str,
    fts: &str,
    filter: &crate::incidents::db::ListFilter,
) -> AppResult<Hits> {
    // Per viewer: what one may find is not what another may.
    let key = format!("{fts}\u{1}{filter:?}\u{1}{}", viewer.id());
    let exact = exact_query(text).unwrap_or_else(|| fts.to_owned());
    let exact = exact.as_str();
    state
        .hits
        .get_or_load(&state.db, key, || async {
            let pool = &state.db.reader;
            let (a, b, c, d) = tokio::try_join!(
                kind_hits(pool, viewer, Kind::Incident, exact, fts, filter),
                kind_hits(pool, viewer, Kind::Timeline, exact, fts, filter),
                kind_hits(pool, viewer, Kind::Postmortem, exact, fts, filter),
                kind_hits(pool, viewer, Kind::ActionItem, exact, fts, filter),
            )?;
            Ok::<_, AppError>(Arc::new(vec![
                (Kind::Incident, a),
                (Kind::Timeline, b),
                (Kind::Postmortem, c),
                (Kind::ActionItem, d),
            ]))
        })
        .await
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
    fn snippets_mark_prefix_matches_around_the_first_one() {
        let t = terms("Conn pool");
        assert_eq!(t, ["conn", "pool"]);
        let text = "Step one.\nThe connection pool was exhausted; pooling again helped a lot more than expected today";
        assert_eq!(
            snippet(text, &t, 8),
            "…one. The \u{2}connection\u{3} \u{2}pool\u{3} was exhausted; \u{2}pooling\u{3} again…"
        );
        // Short texts come whole; accents fold like the index does.
        assert_eq!(
            snippet("Tomás paged", &terms("tomas"), 20),
            "\u{2}Tomás\u{3} paged"
        );
        // No visible match (the index matched something else): the start of the text.
        assert_eq!(
            snippet("alpha beta gamma", &terms("zeta"), 2),
            "alpha beta…"
        );
        // Markers in stored text are not ours and are dropped.
        assert_eq!(snippet("a\u{2}b c", &terms("c"), 5), "ab \u{2}c\u{3}");
        assert_eq!(snippet("", &terms("x"), 5), "");
    }

    #[test]
    fn exact_queries_quote_whole_words() {
        assert_eq!(
            exact_query("status page").as_deref(),
            Some("\"status\" \"page\"")
        );
        assert_eq!(exact_query("NEAR(\"x*").as_deref(), Some("\"NEAR\" \"x\""));
        assert_eq!(exact_query("*").as_deref(), None);
    }

    #[test]
    fn kinds_parse_from_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("users"), None);
    }
}
