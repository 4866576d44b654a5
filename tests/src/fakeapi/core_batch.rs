//! Routes of the kinds outside apps/v1: batch/v1 CronJobs (namespaced) and v1 Nodes
//! (cluster-scoped). Each path names its resource, so a CronJob is not found under `apps` nor a
//! Deployment under `batch`; the handlers are those of the apps routes.

use axum::Router;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use bytes::Bytes;

use super::AppState;
use super::kind::Kind;
use super::object;
use super::query::Params;
use super::routes::{list_or_watch, patch_stored, rejected, render_stored};
use super::status::ApiError;

type Answer = Result<axum::response::Response, ApiError>;

/// `/apis/batch/v1/...cronjobs...` and `/api/v1/nodes...`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/apis/batch/v1/cronjobs", get(all_cronjobs))
        .route("/apis/batch/v1/namespaces/{ns}/cronjobs", get(cronjobs))
        .route(
            "/apis/batch/v1/namespaces/{ns}/cronjobs/{name}",
            get(get_cronjob).patch(patch_cronjob),
        )
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/nodes/{name}", get(get_node).patch(patch_node))
}

async fn all_cronjobs(State(app): State<AppState>, RawQuery(q): RawQuery) -> Answer {
    list_or_watch(app, Kind::CronJob, None, Params::parse(q.as_deref()))
}

async fn cronjobs(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Answer {
    let Path(ns) = path.map_err(rejected)?;
    list_or_watch(app, Kind::CronJob, Some(ns), Params::parse(q.as_deref()))
}

async fn get_cronjob(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let Path((ns, name)) = path.map_err(rejected)?;
    render_stored(&app, (Kind::CronJob, ns, name), object::object)
}

async fn patch_cronjob(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Answer {
    let Path((ns, name)) = path.map_err(rejected)?;
    patch_stored(&app, (Kind::CronJob, ns, name), q.as_deref(), &body)
}

async fn nodes(State(app): State<AppState>, RawQuery(q): RawQuery) -> Answer {
    list_or_watch(app, Kind::Node, None, Params::parse(q.as_deref()))
}

async fn get_node(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    let Path(name) = path.map_err(rejected)?;
    render_stored(&app, (Kind::Node, String::new(), name), object::object)
}

async fn patch_node(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Answer {
    let Path(name) = path.map_err(rejected)?;
    patch_stored(&app, (Kind::Node, String::new(), name), q.as_deref(), &body)
}
