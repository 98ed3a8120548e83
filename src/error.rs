//! `AppError`: the one error type of every handler. It becomes an HTML error page or a JSON
//! error depending on the route; that choice is made by `web::middleware::render_errors`,
//! because a handler's error does not know which kind of client asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Field name → message, shown next to form fields and in `error.fields` of the JSON API.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid session (pages redirect to the login page) or no valid token (API: 401).
    #[error("you need to log in")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The request could not be parsed at all (malformed JSON, bad form encoding).
    #[error("{0}")]
    BadRequest(String),
    /// Parsed, but some fields are invalid.
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    /// The resource already exists (unique name taken).
    #[error("{0}")]
    AlreadyExists(String),
    /// The edit started from an old version; `current` is the resource as it is now.
    #[error("{message}")]
    Conflict {
        message: String,
        current: serde_json::Value,
    },
    #[error("the request body is larger than this server accepts")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// A validation error on a single field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), message.clone());
        Self::Validation {
            message: format!("{field}: {message}"),
            fields,
        }
    }

    /// A validation error over several fields (never empty).
    pub fn fields(fields: FieldErrors) -> Self {
        let message = fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ");
        Self::Validation { message, fields }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::AlreadyExists(_) | Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::Validation { .. } => "validation_failed",
            Self::AlreadyExists(_) => "already_exists",
            Self::Conflict { .. } => "version_conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    /// What a person may read: internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Database(_) | Self::Internal(_) => {
                "Something went wrong on our side. The error has been logged.".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// The error as carried from a handler to `render_errors` in the response extensions.
#[derive(Clone, Debug)]
pub struct ErrorInfo(pub Arc<AppError>);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = status.into_response();
        if let Self::RateLimited { retry_after_secs } = &self
            && let Ok(value) = retry_after_secs.to_string().parse()
        {
            response.headers_mut().insert("retry-after", value);
        }
        response.extensions_mut().insert(ErrorInfo(Arc::new(self)));
        response
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::Internal(format!("background task failed: {err}"))
    }
}
