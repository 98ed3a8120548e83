//! JSON API for review subscriptions: `POST/GET /api/v1/review-subscriptions`,
//! `DELETE /api/v1/review-subscriptions/{id}`, `POST /api/v1/review-subscriptions/{id}/send`.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use super::{Draft, ReviewDeliveryState};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::extract::{ApiCaller, ApiResponder, CallerState, Json, Path};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ReviewDeliveryState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route(
            "/review-subscriptions",
            get(list_subscriptions).post(create_subscription),
        )
        .route("/review-subscriptions/{id}", delete(delete_subscription))
        .route("/review-subscriptions/{id}/send", post(send_subscription))
}

/// A string field, or a number written as one (weekday and hour accept both).
fn text(body: &serde_json::Map<String, Value>, name: &str, errors: &mut FieldErrors) -> String {
    match body.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            errors.insert(name.to_owned(), "must be a string or a number".into());
            String::new()
        }
    }
}

fn draft(body: &Value) -> AppResult<Draft> {
    let Some(map) = body.as_object() else {
        return Err(AppError::field("body", "must be a JSON object"));
    };
    let mut errors = FieldErrors::new();
    let known = [
        "team",
        "weekday",
        "hour",
        "timezone",
        "emails",
        "webhook_destination",
    ];
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            errors.insert(
                key.clone(),
                "is not a field of a review subscription".into(),
            );
        }
    }
    let optional = |name: &str, errors: &mut FieldErrors| match map.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.insert(name.to_owned(), "must be a string or null".into());
            None
        }
    };
    let team = optional("team", &mut errors);
    let webhook_destination = optional("webhook_destination", &mut errors);
    let emails = match map.get("emails") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                _ => {
                    errors.insert("emails".into(), "must be an array of strings".into());
                    String::new()
                }
            })
            .collect(),
        Some(_) => {
            errors.insert("emails".into(), "must be an array of strings".into());
            Vec::new()
        }
    };
    let draft = Draft {
        team,
        weekday: text(map, "weekday", &mut errors),
        hour: text(map, "hour", &mut errors),
        timezone: text(map, "timezone", &mut errors),
        emails,
        webhook_destination,
    };
    if errors.is_empty() {
        Ok(draft)
    } else {
        Err(AppError::fields(errors))
    }
}

async fn create_subscription(
    State(state): State<ReviewDeliveryState>,
    ApiResponder(caller): ApiResponder,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let sub = super::create(&state, &caller.user, &draft(&body)?).await?;
    Ok((StatusCode::CREATED, axum::Json(sub)).into_response())
}

async fn list_subscriptions(
    State(state): State<ReviewDeliveryState>,
    caller: ApiCaller,
) -> AppResult<Response> {
    caller.require_read()?;
    let items = super::list(&state, &caller.user).await?;
    let deliveries = super::log(&state, &caller.user, 100).await?;
    Ok(
        axum::Json(json!({"items": items, "total": items.len(), "deliveries": deliveries}))
            .into_response(),
    )
}

async fn delete_subscription(
    State(state): State<ReviewDeliveryState>,
    ApiResponder(caller): ApiResponder,
    Path(id): Path<String>,
) -> AppResult<Response> {
    super::delete(&state, &caller.user, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn send_subscription(
    State(state): State<ReviewDeliveryState>,
    ApiResponder(caller): ApiResponder,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let ids = super::send_now(&state, &caller.user, &id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"deliveries": ids}))).into_response())
}
