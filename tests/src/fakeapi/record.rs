//! The front door every request passes: it is recorded (method, path, query, headers, body),
//! then any injected fault is applied, then the route answers.

use axum::body::{Body, to_bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::fault::Fault;
use super::status::ApiError;
use super::{AppState, lock};

/// Largest request body accepted; larger answers 413.
const MAX_BODY: usize = 1 << 20;

/// One request as the fake received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path, e.g. `/apis/apps/v1/namespaces/default/deployments/web/scale`.
    pub path: String,
    /// The raw query string, still percent-encoded, without `?` (empty if none).
    pub query: String,
    /// Every header, names lower-case, in arrival order (repeated headers appear repeatedly).
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), e.g. each `impersonate-group`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first decoded value of query parameter `key`.
    pub fn query_param(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// Middleware: record, inject, forward.
pub(crate) async fn intercept(
    State(app): State<AppState>,
    req: HttpRequest,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await;
    let recorded = Request {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: bytes
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
    };
    let fault = lock(&app.shared.faults).take(&recorded.method, &recorded.path);
    lock(&app.shared.requests).push(recorded);
    let Ok(bytes) = bytes else {
        return ApiError::new(413, format!("request body larger than {MAX_BODY} bytes"))
            .into_response();
    };
    match fault {
        Some(Fault::Status(code)) => {
            return ApiError::new(code, format!("injected fault: {code}")).into_response();
        }
        Some(Fault::Delay(delay)) => {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = app.shutdown.cancelled() => {
                    return ApiError::new(503, "server stopping").into_response();
                }
            }
        }
        None => {}
    }
    next.run(HttpRequest::from_parts(parts, Body::from(bytes)))
        .await
}
