//! `AppError`: the one error type of every handler. It becomes an HTML error page or a JSON
//! error depending on the route; that choice is made by `web::middleware::render_errors`,
//! because a handler's error does not know which kind of client asked.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
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
    /// `what` (an incident, a timeline entry, …) named `key` does not exist, or the caller may
    /// not know that it does.
    #[error("{}", not_found_message(what, key))]
    NotFound { what: &'static str, key: String },
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
    /// The edit of `what` started from an old version; `current` is the resource as it is now
    /// (at `version`), for the page or API to show beside what the caller sent.
    #[error(
        "{what} was changed by someone else (now at version {version}); nothing was overwritten"
    )]
    Conflict {
        what: String,
        version: i64,
        current: Current,
    },
    #[error("the request body is larger than this server accepts")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("database error")]
    Database(sqlx::Error),
    /// A write cannot succeed right now for a known reason (full disk, database locked by
    /// another process, read-only file): 507 or 503 with Retry-After, never `500 internal`.
    #[error("{}", .fault.message())]
    Unavailable {
        fault: crate::db::Fault,
        /// The database's own words, for the log only.
        detail: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

fn not_found_message(what: &str, key: &str) -> String {
    if key.is_empty() {
        format!("{what} not found")
    } else {
        format!("{what} {key} not found")
    }
}

/// The domain value a conflicting edit ran into (an incident, an entry, a post-mortem), and,
/// once the API layer has decided how it looks in JSON, that form (`error.current`).
#[derive(Clone)]
pub struct Current {
    value: Arc<dyn Any + Send + Sync>,
    json: Option<serde_json::Value>,
}

impl Current {
    /// The domain value, when it is a `T`.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }

    /// The JSON the API chose for it, if any.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json.as_ref()
    }
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Current")
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

impl AppError {
    /// `what` named `key` does not exist (`incident INC-42 not found`).
    pub fn not_found(what: &'static str, key: impl fmt::Display) -> Self {
        Self::NotFound {
            what,
            key: key.to_string(),
        }
    }

    /// `what` does not exist, with nothing more to name it by (`action item not found`).
    pub fn missing(what: &'static str) -> Self {
        Self::NotFound {
            what,
            key: String::new(),
        }
    }

    /// A stale edit of `what`; `current` is the domain value as it is now, at `version`.
    pub fn conflict<T: Any + Send + Sync>(
        what: impl Into<String>,
        version: i64,
        current: T,
    ) -> Self {
        Self::Conflict {
            what: what.into(),
            version,
            current: Current {
                value: Arc::new(current),
                json: None,
            },
        }
    }

    /// For the API: how a conflict's current `T` reads in `error.current`. Other errors, and
    /// conflicts over something else, pass through unchanged.
    #[must_use]
    pub fn current_as<T: 'static, J: serde::Serialize>(
        mut self,
        to_json: impl FnOnce(&T) -> J,
    ) -> Self {
        if let Self::Conflict { current, .. } = &mut self
            && let Some(value) = current.get::<T>()
        {
            current.json = serde_json::to_value(to_json(value)).ok();
        }
        self
    }

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
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::AlreadyExists(_) | Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable { fault, .. } => match fault {
                crate::db::Fault::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
                crate::db::Fault::Busy | crate::db::Fault::ReadOnly => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            },
        }
    }

    /// Stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::Validation { .. } => "validation_failed",
            Self::AlreadyExists(_) => "already_exists",
            Self::Conflict { .. } => "version_conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::Database(_) | Self::Internal(_) => "internal",
            Self::Unavailable { fault, .. } => match fault {
                crate::db::Fault::DiskFull => "disk_full",
                crate::db::Fault::Busy => "database_busy",
                crate::db::Fault::ReadOnly => "database_read_only",
            },
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
        let retry_after = match &self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::Unavailable { fault, .. } => Some(fault.retry_after_secs()),
            _ => None,
        };
        if let Some(secs) = retry_after
            && let Ok(value) = secs.to_string().parse()
        {
            response.headers_mut().insert("retry-after", value);
        }
        response.extensions_mut().insert(ErrorInfo(Arc::new(self)));
        response
    }
}

/// Known faults (full disk, locked, read-only) get their own answer; any other database error
/// is internal.
impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        match crate::db::Fault::of(&err) {
            Some(fault) => Self::Unavailable {
                fault,
                detail: err.to_string(),
            },
            None => Self::Database(err),
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::Internal(format!("background task failed: {err}"))
    }
}
