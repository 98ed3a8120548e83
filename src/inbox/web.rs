//! The inbox page: what is waiting for the signed-in person, newest first, unread marked; a
//! message opens where it points (and counts as read); everything can be marked read at once.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{InboxState, Message};
use crate::error::AppResult;
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{CallerState, Page, Path, Query};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    InboxState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/inbox", get(inbox))
        .route("/inbox/read-all", post(read_all))
        .route("/inbox/{id}/open", post(open))
}

#[derive(Debug, Default, Deserialize)]
struct InboxQuery {
    #[serde(default)]
    show: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "inbox.html")]
struct InboxPage {
    chrome: Chrome,
    messages: Vec<Message>,
    unread: i64,
    unread_only: bool,
}

impl InboxPage {
    /// How others mention this person: the part of their address before the `@`.
    fn handle(&self) -> &str {
        self.chrome
            .user
            .as_ref()
            .and_then(|u| u.email.split('@').next())
            .unwrap_or_default()
    }
}

async fn inbox(
    State(state): State<InboxState>,
    page: Page,
    Query(q): Query<InboxQuery>,
) -> AppResult<Response> {
    let unread_only = q.show.trim() == "unread";
    let (messages, unread) = super::messages(&state.db, &page.user, unread_only).await?;
    Ok(InboxPage {
        chrome: page.chrome,
        messages,
        unread,
        unread_only,
    }
    .into_response())
}

async fn open(
    State(state): State<InboxState>,
    page: Page,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let link = super::open(&state.db, &page.user, &id).await?;
    Ok(Redirect::to(&link).into_response())
}

async fn read_all(State(state): State<InboxState>, page: Page) -> AppResult<Response> {
    let n = super::read_all(&state.db, &page.user).await?;
    let message = match n {
        0 => "Nothing was unread.".to_owned(),
        1 => "1 message marked read.".to_owned(),
        n => format!("{n} messages marked read."),
    };
    Ok(redirect_with_flash("/inbox", "ok", &message))
}
