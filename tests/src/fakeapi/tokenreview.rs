//! `POST /apis/authentication.k8s.io/v1/tokenreviews`: the fake's answer to "who is this
//! token?", from tokens a test registered with [`super::FakeApiServer::add_token`]. Unknown
//! tokens are answered `authenticated: false` with an error, as the real API server does.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::status::ApiError;
use super::{AppState, lock};

/// Reviews the token in a `TokenReview` body.
pub(crate) async fn create(
    State(app): State<AppState>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(review) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let token = review
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("spec.token: Required value"))?;
    let known = lock(&app.shared.tokens).get(token).cloned();
    let status = match known {
        Some((username, groups)) => json!({
            "authenticated": true,
            "user": { "username": username, "groups": groups },
        }),
        None => json!({ "authenticated": false, "error": "token is invalid or expired" }),
    };
    let answer = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "metadata": { "creationTimestamp": null },
        "spec": review.get("spec").cloned().unwrap_or(Value::Null),
        "status": status,
    });
    Ok((axum::http::StatusCode::CREATED, Json(answer)).into_response())
}
