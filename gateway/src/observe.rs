//! The gateway's plaintext operations port: Prometheus `/metrics`, `/healthz` (the process
//! serves), `/readyz` (every target's watch has synced with the cluster), and the standard
//! `grpc.health.v1.Health` service over h2c, because kubelet's gRPC probes cannot speak TLS.
//!
//! Nothing here changes anything: it is safe to expose to the cluster's monitoring.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;

use crate::leader::{LeaseSettings, Role};
use crate::metrics::Metrics;

/// Whether the gateway can do its job: `Err` says what it is waiting for.
pub type Readiness = Result<(), String>;

#[derive(Clone)]
struct Ops {
    metrics: Metrics,
    ready: watch::Receiver<Readiness>,
}

/// Serves the operations endpoints and `health` (a gRPC service) on `listener` until `shutdown`.
pub async fn serve<H: Health>(
    listener: TcpListener,
    metrics: Metrics,
    ready: watch::Receiver<Readiness>,
    health: HealthServer<H>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ops = Ops { metrics, ready };
    let http = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(ops);
    let app = tonic::service::Routes::new(health)
        .into_axum_router()
        .merge(http);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_text(State(ops): State<Ops>) -> impl IntoResponse {
    let headers = [(
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )];
    (headers, ops.metrics.encode())
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    match &*ops.ready.borrow() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Keeps the gRPC health status of service `S` in step with readiness: NOT_SERVING until every
/// target's state is known, and while the cluster cannot be reached.
pub async fn report_health<S: tonic::server::NamedService>(
    reporter: HealthReporter,
    mut ready: watch::Receiver<Readiness>,
) {
    loop {
        let now = ready.borrow_and_update().clone();
        match now {
            Ok(()) => reporter.set_serving::<S>().await,
            Err(why) => {
                tracing::info!(%why, "not ready");
                reporter.set_not_serving::<S>().await;
            }
        }
        if ready.changed().await.is_err() {
            return;
        }
    }
}

/// Readiness that also requires leading: a standby is never ready, so a Service sends bridges
/// to the leader only. Without an election (`role` never changes) it is `readiness` as is.
pub fn gate(
    mut readiness: watch::Receiver<Readiness>,
    mut role: watch::Receiver<Role>,
    settings: Option<LeaseSettings>,
) -> watch::Receiver<Readiness> {
    let combine = move |ready: &Readiness, role: &Role| match &settings {
        Some(settings) => match role.standby_reason(settings) {
            Some(reason) => Err(reason),
            None => ready.clone(),
        },
        None => ready.clone(),
    };
    let (tx, rx) = watch::channel(combine(&readiness.borrow(), &role.borrow()));
    tokio::spawn(async move {
        let mut role_open = true;
        loop {
            tokio::select! {
                changed = readiness.changed() => if changed.is_err() { return },
                changed = role.changed(), if role_open => role_open = changed.is_ok(),
                () = tx.closed() => return,
            }
            let now = combine(&readiness.borrow_and_update(), &role.borrow_and_update());
            tx.send_if_modified(|current| std::mem::replace(current, now.clone()) != now);
        }
    });
    rx
}
