//! The HTTP surface: which paths exist and what each answers.
//!
//! ```text
//! GET            /version
//! GET            /apis/apps/v1/{deployments|statefulsets}                     list / watch, all namespaces
//! GET            /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}     list / watch
//! GET|PATCH      /apis/apps/v1/namespaces/{ns}/{resource}/{name}              the object (PATCH: paused, restartedAt)
//! GET|PATCH|PUT  /apis/apps/v1/namespaces/{ns}/{resource}/{name}/scale        autoscaling/v1 Scale
//! GET            /apis/batch/v1[/namespaces/{ns}]/cronjobs                    list / watch
//! GET|PATCH      /apis/batch/v1/namespaces/{ns}/cronjobs/{name}               the object (PATCH: suspend)
//! GET            /api/v1/nodes                                                list / watch
//! GET|PATCH      /api/v1/nodes/{name}                                         the object (PATCH: unschedulable)
//! GET            /apis/autoscaling/v2[/namespaces/{ns}]/horizontalpodautoscalers list / watch
//! GET|PATCH      /apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/{name} (PATCH: min/maxReplicas)
//! POST           /apis/authentication.k8s.io/v1/tokenreviews                  TokenReview
//! GET|POST|PUT   /apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}] Leases (see `lease`)
//! ```
//! Anything else is 404 (405 for a known path with another method), always with a `Status` body.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_TYPE, USER_AGENT};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::json;

use super::fields::Writer;
use super::kind::Kind;
use super::patch::{self, Intent};
use super::query::Params;
use super::record::intercept;
use super::spec::SpecPatch;
use super::status::ApiError;
use super::store::{Key, Workload};
use super::{AppState, lock, object, watch};

type Answer = Result<Response, ApiError>;

/// The whole API, wrapped in the recording/fault-injecting middleware.
pub(crate) fn router(app: AppState) -> Router {
    let scale = get(get_scale).patch(patch_scale).put(put_scale);
    Router::new()
        .route("/version", get(version))
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(super::tokenreview::create),
        )
        .route("/apis/apps/v1/{resource}", get(cluster_collection))
        .route("/apis/apps/v1/namespaces/{ns}/{resource}", get(collection))
        .route(
            "/apis/apps/v1/namespaces/{ns}/{resource}/{name}",
            get(get_object).patch(patch_object),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/{resource}/{name}/scale",
            scale,
        )
        .merge(super::core_batch::routes())
        .merge(super::autoscaling::routes())
        .merge(super::lease::routes())
        .fallback(|| async {
            ApiError::new(404, "the server could not find the requested resource")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                405,
                "the server does not allow this method on the requested resource",
            )
        })
        .layer(middleware::from_fn_with_state(app.clone(), intercept))
        .with_state(app)
}

async fn version() -> Response {
    Json(json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-kubeknobs-fake", "gitCommit": "",
        "gitTreeState": "clean", "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64",
    }))
    .into_response()
}

async fn cluster_collection(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Answer {
    let Path(resource) = path.map_err(rejected)?;
    list_or_watch(app, kind(&resource)?, None, Params::parse(q.as_deref()))
}

async fn collection(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Answer {
    let Path((ns, resource)) = path.map_err(rejected)?;
    list_or_watch(app, kind(&resource)?, Some(ns), Params::parse(q.as_deref()))
}

pub(super) fn list_or_watch(
    app: AppState,
    kind: Kind,
    ns: Option<String>,
    params: Params,
) -> Answer {
    if params.flag("watch") {
        return watch::watch(app, kind, ns, &params);
    }
    let selector = params.field_selector()?;
    let limit = params
        .number("limit")?
        .filter(|n| *n > 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let (start, pinned) = match params.get("continue") {
        None | Some("") => (0, None),
        Some(token) => continue_token(token)?,
    };
    let store = lock(&app.shared.store);
    let resource_version = pinned.unwrap_or(store.resource_version());
    let mut items = store.list(kind, ns.as_deref());
    drop(store);
    items.retain(|w| selector.matches(w));
    let end = limit.map_or(items.len(), |l| start.saturating_add(l).min(items.len()));
    let page = items.get(start..end).unwrap_or_default();
    let next = (end < items.len()).then(|| format!("{resource_version}:{end}"));
    Ok(Json(object::list(kind, page, resource_version, next)).into_response())
}

/// A continue token is `resourceVersion:offset` of the list it continues.
fn continue_token(token: &str) -> Result<(usize, Option<u64>), ApiError> {
    let parsed = token
        .split_once(':')
        .and_then(|(rv, at)| Some((at.parse().ok()?, Some(rv.parse().ok()?))));
    parsed.ok_or_else(|| ApiError::bad_request(format!("continue key is not valid: {token:?}")))
}

async fn get_object(
    State(app): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Answer {
    let Path((ns, resource, name)) = path.map_err(rejected)?;
    render_stored(&app, (kind(&resource)?, ns, name), object::object)
}

async fn get_scale(
    State(app): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Answer {
    let Path((ns, resource, name)) = path.map_err(rejected)?;
    render_stored(&app, (kind(&resource)?, ns, name), object::scale)
}

/// Answers with one stored object, rendered by `render` (the object itself, or its scale).
pub(super) fn render_stored(
    app: &AppState,
    key: Key,
    render: impl FnOnce(&Workload) -> serde_json::Value,
) -> Answer {
    let store = lock(&app.shared.store);
    Ok(Json(render(store.existing(&key)?)).into_response())
}

/// A merge patch of a Deployment's `spec.paused` or restartedAt template annotation.
async fn patch_object(
    State(app): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Answer {
    let Path((ns, resource, name)) = path.map_err(rejected)?;
    patch_stored(&app, (kind(&resource)?, ns, name), q.as_deref(), &body)
}

/// A merge patch of the object at `key` (the fields in `SpecPatch`), counted in `write_count`
/// unless it was a dry run.
pub(super) fn patch_stored(app: &AppState, key: Key, q: Option<&str>, body: &[u8]) -> Answer {
    let params = Params::parse(q);
    let dry_run = params.dry_run()?;
    let patch = SpecPatch::decode(body)?;
    let manager = params
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .unwrap_or("unknown")
        .to_owned();
    let writer = Writer {
        manager: &manager,
        operation: "Update",
        subresource: None,
    };
    let written = lock(&app.shared.store).patch_spec(&key, patch, &writer, dry_run)?;
    if !dry_run {
        app.shared.writes.fetch_add(1, Ordering::SeqCst);
    }
    Ok(Json(object::object(&written)).into_response())
}

async fn patch_scale(
    State(app): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let Path((ns, resource, name)) = path.map_err(rejected)?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let intent = patch::patch(content_type, &body)?;
    write(
        &app,
        (kind(&resource)?, ns, name),
        intent,
        &Params::parse(q.as_deref()),
        &headers,
    )
}

async fn put_scale(
    State(app): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let Path((ns, resource, name)) = path.map_err(rejected)?;
    let intent = patch::replace(&body)?;
    write(
        &app,
        (kind(&resource)?, ns, name),
        intent,
        &Params::parse(q.as_deref()),
        &headers,
    )
}

/// Applies a scale write; counts it in `write_count` unless it was a dry run.
fn write(
    app: &AppState,
    key: (Kind, String, String),
    intent: Intent,
    params: &Params,
    headers: &HeaderMap,
) -> Answer {
    let dry_run = params.dry_run()?;
    let named = params.get("fieldManager").filter(|m| !m.is_empty());
    if intent.apply && named.is_none() {
        let message = "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch";
        return Err(ApiError::new(422, message));
    }
    // Without fieldManager the API server names the writer after its User-Agent.
    let manager = named.map(str::to_owned).unwrap_or_else(|| {
        let agent = headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Some(agent.split('/').next().unwrap_or_default())
            .filter(|a| !a.is_empty())
            .unwrap_or("unknown")
            .to_owned()
    });
    let operation = if intent.apply { "Apply" } else { "Update" };
    let writer = Writer {
        manager: &manager,
        operation,
        subresource: Some("scale"),
    };
    let mut store = lock(&app.shared.store);
    let current = store.existing(&key)?.spec_replicas;
    let written = store.scale(
        &key,
        intent.replicas.unwrap_or(current),
        &writer,
        intent.expect,
        dry_run,
    )?;
    drop(store);
    if !dry_run {
        app.shared.writes.fetch_add(1, Ordering::SeqCst);
    }
    Ok(Json(object::scale(&written)).into_response())
}

/// The apps/v1 kind served under `resource` (CronJobs and Nodes have their own routes).
fn kind(resource: &str) -> Result<Kind, ApiError> {
    Kind::from_resource(resource)
        .filter(|k| k.group() == "apps")
        .ok_or_else(|| ApiError::new(404, "the server could not find the requested resource"))
}

pub(super) fn rejected(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}
