//! The search page: `/search?q=…&kind=…` plus the incident list's filters, ranked results
//! with highlighted snippets, paginated.

use std::sync::Arc;

use crate::web::extract::Query;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::db::{Hit, Row};
use super::{Kind, SearchState};
use crate::catalog::Lists;
use crate::error::{AppResult, FieldErrors};
use crate::incidents::{ListParams, Severity, Status};
use crate::web::chrome::Chrome;
use crate::web::extract::{CallerState, Page};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    SearchState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new().route("/search", get(search))
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    page: String,
}

const PER_PAGE: usize = 20;

/// A result as shown.
pub struct ResultView {
    kind: Kind,
    row: Row,
    snippet_html: String,
}

impl ResultView {
    fn url(&self) -> String {
        let n = self.row.number;
        match self.kind {
            Kind::Incident => format!("/incidents/INC-{n}"),
            Kind::Timeline => format!("/incidents/INC-{n}#entry-{}", self.row.target),
            Kind::Postmortem => {
                format!("/incidents/INC-{n}/postmortem#section-{}", self.row.target)
            }
            Kind::ActionItem => format!("/incidents/INC-{n}#item-{}", self.row.target),
        }
    }

    fn heading(&self) -> String {
        match self.kind {
            Kind::Incident => self.row.title.clone(),
            Kind::Timeline => format!("{} entry", self.row.label.replace('_', " ")),
            Kind::Postmortem | Kind::ActionItem => self.row.label.clone(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    q: SearchQuery,
    results: Vec<ResultView>,
    total: usize,
    /// A kind had more matches than are ranked.
    capped: bool,
    page: usize,
    pages: usize,
    /// Matches per kind (for the kind tabs), before the kind filter.
    per_kind: Vec<(Kind, usize)>,
    lists: Arc<Lists>,
    errors: FieldErrors,
    /// The text had no words to look for.
    no_words: bool,
}

impl SearchPage {
    fn severities(&self) -> [Severity; 4] {
        Severity::ALL
    }
    fn statuses(&self) -> [Status; 5] {
        Status::ALL
    }

    /// The current query string with `kind` and `page` replaced.
    fn url_with(&self, kind: &str, page: usize) -> String {
        let q = &self.q;
        let mut params: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("q", &q.q),
            ("status", &q.status),
            ("severity", &q.severity),
            ("service", &q.service),
            ("category", &q.category),
            ("team", &q.team),
            ("since", &q.since),
            ("until", &q.until),
        ] {
            if !v.trim().is_empty() {
                params.push((k, v.clone()));
            }
        }
        if !kind.is_empty() {
            params.push(("kind", kind.to_owned()));
        }
        if page > 1 {
            params.push(("page", page.to_string()));
        }
        format!(
            "/search?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )
    }

    fn page_url<P: std::borrow::Borrow<usize>>(&self, page: P) -> String {
        self.url_with(&self.q.kind, *page.borrow())
    }

    fn kind_url(&self, kind: &Kind) -> String {
        self.url_with(kind.as_str(), 1)
    }

    fn all_url(&self) -> String {
        self.url_with("", 1)
    }

    fn all_count(&self) -> usize {
        self.per_kind.iter().map(|(_, n)| n).sum()
    }

    fn is_kind(&self, kind: &Kind) -> bool {
        self.q.kind == kind.as_str()
    }
}

/// Words of context in a result's snippet.
const SNIPPET_WORDS: usize = 24;

async fn search(
    State(state): State<SearchState>,
    page: Page,
    Query(q): Query<SearchQuery>,
) -> AppResult<Response> {
    let mut errors = FieldErrors::new();
    let params = ListParams {
        status: q.status.clone(),
        severity: q.severity.clone(),
        service: q.service.clone(),
        category: q.category.clone(),
        team: q.team.clone(),
        since: q.since.clone(),
        until: q.until.clone(),
        ..ListParams::default()
    };
    let filter = match params.parse(state.tz) {
        Ok((filter, _)) => filter,
        Err(e) => {
            errors.extend(e);
            crate::incidents::db::ListFilter::default()
        }
    };
    let kind = if q.kind.trim().is_empty() {
        None
    } else {
        let parsed = Kind::parse(&q.kind);
        if parsed.is_none() {
            errors.insert("kind".into(), Kind::field_error());
        }
        parsed
    };
    let text: String = q.q.trim().chars().take(200).collect();
    let fts = super::query(&text);
    let page_no = q.page.trim().parse::<usize>().unwrap_or(1).max(1);

    let found = match (&fts, errors.is_empty()) {
        (Some(fts), true) => {
            let viewer = crate::visibility::Viewer::user(&page.user.id);
            Some(super::cached_hits(&state, &viewer, &text, fts, &filter).await?)
        }
        _ => None,
    };
    let mut per_kind = Vec::new();
    let mut hits: Vec<Hit> = Vec::new();
    let mut capped = false;
    for (k, kind_hits) in found.iter().flat_map(|f| f.iter()) {
        capped |= kind_hits.len() as i64 >= super::db::CANDIDATES;
        per_kind.push((*k, kind_hits.len()));
        if kind.is_none_or(|want| want == *k) {
            hits.extend(kind_hits.iter().copied());
        }
    }
    hits.sort_by(|a, b| a.score.total_cmp(&b.score).then(b.rowid.cmp(&a.rowid)));
    let total = hits.len();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let page_no = page_no.min(pages);
    let shown: Vec<Hit> = hits
        .iter()
        .skip((page_no - 1) * PER_PAGE)
        .take(PER_PAGE)
        .copied()
        .collect();
    let terms = super::terms(&text);
    let mut details = std::collections::HashMap::new();
    for k in Kind::ALL {
        let ids: Vec<i64> = shown
            .iter()
            .filter(|h| h.kind == k)
            .map(|h| h.rowid)
            .collect();
        for (rowid, row) in super::db::rows(&state.db.reader, k, &ids).await? {
            details.insert((k, rowid), row);
        }
    }
    let results: Vec<ResultView> = shown
        .iter()
        .filter_map(|hit| {
            let row = details.remove(&(hit.kind, hit.rowid))?;
            Some(ResultView {
                kind: hit.kind,
                // Record text is Markdown: the snippet shows its words, not its syntax.
                snippet_html: super::highlight(&super::snippet(
                    &crate::markdown::plain_text(&row.text),
                    &terms,
                    SNIPPET_WORDS,
                )),
                row,
            })
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = SearchPage {
        chrome: page.chrome,
        no_words: !text.is_empty() && fts.is_none(),
        q,
        results,
        total,
        capped,
        page: page_no,
        pages,
        per_kind,
        lists: state.catalog.get(&state.db.reader).await?,
        errors,
    };
    Ok((status, html).into_response())
}
