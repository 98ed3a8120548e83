//! Files people download (Markdown, CSV): served as attachments, so a browser saves them and
//! never renders them as a page.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `body` as a download named `filename`.
pub fn attachment(content_type: &'static str, filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}
