//! `POST /apis/authentication.k8s.io/v1/tokenreviews`: the fake's answer to "who is this
//! token?", from tokens a test registered with [`super::FakeApiServer::add_token`] (or
//! [`super::FakeApiServer::add_token_for`] with the audiences it was minted for).
//!
//! What it models of the real API server (`pkg/registry/authentication/tokenreview`):
//! - `spec.audiences` are the audiences the caller wants; empty means the API server's own
//!   ([`API_AUDIENCE`], what a token from `kubectl create token NAME` without `--audience` has).
//! - A token is authenticated only when its audiences and the wanted ones intersect; the answer's
//!   `status.audiences` is that intersection. A token minted for another audience is answered
//!   `authenticated: false` with the JWT authenticator's error (`token audiences [...] is invalid
//!   for the target audiences [...]`), as are unknown tokens (`token is invalid or expired`).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::status::ApiError;
use super::{AppState, lock};

/// The API server's own audience: what a token without `--audience` is minted for.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// A token TokenReview knows: who it is and which audiences it was minted for.
#[derive(Debug, Clone)]
pub(crate) struct KnownToken {
    pub username: String,
    pub groups: Vec<String>,
    pub audiences: Vec<String>,
}

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
    let mut wanted: Vec<String> = review
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if wanted.is_empty() {
        wanted.push(API_AUDIENCE.to_owned());
    }
    let known = lock(&app.shared.tokens).get(token).cloned();
    let status = match known {
        Some(known) => {
            let common: Vec<&String> = known
                .audiences
                .iter()
                .filter(|a| wanted.contains(a))
                .collect();
            if common.is_empty() {
                json!({
                    "authenticated": false,
                    "error": format!(
                        "[invalid bearer token, token audiences {:?} is invalid for the target audiences {:?}]",
                        known.audiences, wanted
                    ),
                })
            } else {
                json!({
                    "authenticated": true,
                    "user": { "username": known.username, "groups": known.groups },
                    "audiences": common,
                })
            }
        }
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
