//! `coordination.k8s.io/v1` Leases, for leader election: get, create, and replace with the
//! `resourceVersion` precondition a real API server enforces (a stale one is answered 409, which
//! is what makes two gateways racing for a free Lease end with one holder).
//!
//! ```text
//! POST     /apis/coordination.k8s.io/v1/namespaces/{ns}/leases          create (409 if it exists)
//! GET|PUT  /apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}   read / replace
//! ```
//! Leases are kept as the JSON they were written as, with the metadata the server owns.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::status::ApiError;
use super::{AppState, FakeApiServer, lock};

/// Stored Leases by (namespace, name).
pub(crate) type Leases = std::collections::BTreeMap<(String, String), Value>;

/// resourceVersions of Leases: their own sequence, apart from the workloads'.
static VERSIONS: AtomicU64 = AtomicU64::new(1);

type Answer = Result<Response, ApiError>;

/// The Lease routes.
pub(crate) fn routes() -> Router<AppState> {
    let base = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases";
    Router::new()
        .route(base, post(create))
        .route(&format!("{base}/{{name}}"), get(read).put(replace))
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        404,
        format!("leases.coordination.k8s.io \"{name}\" not found"),
    )
}

async fn read(State(app): State<AppState>, Path((ns, name)): Path<(String, String)>) -> Answer {
    let leases = lock(&app.shared.leases);
    let lease = leases
        .get(&(ns, name.clone()))
        .ok_or_else(|| not_found(&name))?;
    Ok(Json(lease.clone()).into_response())
}

async fn create(
    State(app): State<AppState>,
    Path(ns): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let Json(mut lease) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let name = lease
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("metadata.name: Required value"))?
        .to_owned();
    let mut leases = lock(&app.shared.leases);
    let key = (ns.clone(), name.clone());
    if leases.contains_key(&key) {
        let message = format!("leases.coordination.k8s.io \"{name}\" already exists");
        return Err(ApiError::new(409, message));
    }
    stamp(&mut lease, &ns);
    leases.insert(key, lease.clone());
    Ok((StatusCode::CREATED, Json(lease)).into_response())
}

async fn replace(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let Json(mut lease) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut leases = lock(&app.shared.leases);
    let key = (ns.clone(), name.clone());
    let stored = leases.get(&key).ok_or_else(|| not_found(&name))?;
    let version = |l: &Value| l.pointer("/metadata/resourceVersion").cloned();
    if version(&lease) != version(stored) {
        let message = format!(
            "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object \
             has been modified; please apply your changes to the latest version and try again"
        );
        return Err(ApiError::new(409, message));
    }
    stamp(&mut lease, &ns);
    leases.insert(key, lease.clone());
    Ok(Json(lease).into_response())
}

/// Sets what the server owns: kind, namespace, a new resourceVersion.
fn stamp(lease: &mut Value, ns: &str) {
    lease["apiVersion"] = "coordination.k8s.io/v1".into();
    lease["kind"] = "Lease".into();
    lease["metadata"]["namespace"] = ns.into();
    let version = VERSIONS.fetch_add(1, Ordering::Relaxed);
    lease["metadata"]["resourceVersion"] = version.to_string().into();
}

impl FakeApiServer {
    /// `spec.holderIdentity` of a Lease: `None` if there is no such Lease, `Some("")` if it is
    /// held by no one.
    pub fn lease_holder(&self, ns: &str, name: &str) -> Option<String> {
        let leases = lock(&self.inner.shared.leases);
        let lease = leases.get(&(ns.to_owned(), name.to_owned()))?;
        let holder = lease
            .pointer("/spec/holderIdentity")
            .and_then(Value::as_str);
        Some(holder.unwrap_or_default().to_owned())
    }
}
