//! Kubernetes `Status` bodies.
//!
//! Every error the fake answers is a `kind: Status` object with the HTTP code repeated in `code`
//! and a machine-readable `reason`, exactly as a real API server does, so kube-rs turns it into
//! `kube::Error::Api(status)` rather than a decoding error.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::kind::Kind;

/// An answer the client should see as a failed API call.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    /// HTTP status code, repeated as `code` in the body.
    pub(crate) code: u16,
    /// Human-readable explanation.
    pub(crate) message: String,
    /// `details` of the Status (name/group/kind of the object concerned), if any.
    details: Option<Value>,
}

impl ApiError {
    /// A failure with `code` and `message`; the reason follows from the code.
    pub(crate) fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// 400: the request itself is malformed (body, query or content).
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 404 for a named object, worded as the API server words it.
    pub(crate) fn not_found(kind: Kind, name: &str) -> Self {
        Self::new(404, format!("{} \"{name}\" not found", kind.qualified()))
            .with_details(kind, name)
    }

    /// 409: an optimistic-concurrency precondition (resourceVersion) failed.
    pub(crate) fn conflict(kind: Kind, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            kind.qualified()
        );
        Self::new(409, message).with_details(kind, name)
    }

    /// 422: the request decoded but its content is not valid.
    pub(crate) fn invalid(name: &str, field_error: impl Into<String>) -> Self {
        let message = format!(
            "Scale.autoscaling \"{name}\" is invalid: {}",
            field_error.into()
        );
        Self::new(422, message)
    }

    /// 422 for an object of `kind` itself (not its Scale): `HorizontalPodAutoscaler.autoscaling
    /// "web" is invalid: spec.maxReplicas: …`.
    pub(crate) fn invalid_kind(kind: Kind, name: &str, field_error: impl Into<String>) -> Self {
        let group = match kind.group() {
            "" => String::new(),
            group => format!(".{group}"),
        };
        let message = format!(
            "{}{group} \"{name}\" is invalid: {}",
            kind.kind(),
            field_error.into()
        );
        Self::new(422, message).with_details(kind, name)
    }

    fn with_details(mut self, kind: Kind, name: &str) -> Self {
        self.details =
            Some(json!({ "name": name, "group": kind.group(), "kind": kind.resource() }));
        self
    }

    /// The `Status` object for this error.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": reason_for(self.code),
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// The `reason` the API server gives for an HTTP code (`metav1.StatusReason`).
pub(crate) fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A code http cannot represent is answered as 500 (the body still carries the asked code).
        let http = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (http, axum::Json(self.to_status())).into_response()
    }
}
