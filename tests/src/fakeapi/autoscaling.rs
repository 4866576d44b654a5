//! autoscaling/v2 HorizontalPodAutoscalers and object metadata, from both sides: the routes
//! (list/watch per namespace and cluster-wide, GET and merge PATCH of `minReplicas`/
//! `maxReplicas`) and the test-side handle (create, delete, set status as the HPA controller
//! would, label and annotate any object as a GitOps tool would).
//!
//! Like the other kinds' fakes, an HPA here never scales anything by itself: a test that wants
//! the autoscaler's effect calls `scale_externally(.., "kube-controller-manager")` and
//! `set_hpa_status`.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use bytes::Bytes;

use super::kind::Kind;
use super::query::Params;
use super::routes::{list_or_watch, patch_stored, rejected, render_stored};
use super::status::ApiError;
use super::store::Hpa;
use super::{AppState, FakeApiServer, key, lock, object};

type Answer = Result<axum::response::Response, ApiError>;

const HPA: Kind = Kind::HorizontalPodAutoscaler;

/// `/apis/autoscaling/v2/...horizontalpodautoscalers...`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/apis/autoscaling/v2/horizontalpodautoscalers", get(all))
        .route(
            "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
            get(in_namespace),
        )
        .route(
            "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/{name}",
            get(get_one).patch(patch_one),
        )
}

async fn all(State(app): State<AppState>, RawQuery(q): RawQuery) -> Answer {
    list_or_watch(app, HPA, None, Params::parse(q.as_deref()))
}

async fn in_namespace(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Answer {
    let Path(ns) = path.map_err(rejected)?;
    list_or_watch(app, HPA, Some(ns), Params::parse(q.as_deref()))
}

async fn get_one(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let Path((ns, name)) = path.map_err(rejected)?;
    render_stored(&app, (HPA, ns, name), object::object)
}

async fn patch_one(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Answer {
    let Path((ns, name)) = path.map_err(rejected)?;
    patch_stored(&app, (HPA, ns, name), q.as_deref(), &body)
}

impl FakeApiServer {
    /// Creates HPA `name` in `ns` scaling the `target_kind` (Deployment, StatefulSet) called
    /// `target`, within `min..=max`, currently at `min` replicas; ADDED on watches.
    pub fn add_hpa(
        &self,
        ns: &str,
        name: &str,
        target_kind: Kind,
        target: &str,
        min: i32,
        max: i32,
    ) {
        let hpa = Hpa {
            target_kind: target_kind.kind().to_owned(),
            target_name: target.to_owned(),
            min,
            max,
            current: min,
            desired: min,
        };
        lock(&self.inner.shared.store).add_with(key(HPA, ns, name), 0, |w| w.hpa = Some(hpa));
    }

    /// An HPA's `(minReplicas, maxReplicas)`, if it exists.
    pub fn hpa_bounds(&self, ns: &str, name: &str) -> Option<(i32, i32)> {
        let store = lock(&self.inner.shared.store);
        let hpa = store.get(&key(HPA, ns, name))?.hpa.clone()?;
        Some((hpa.min, hpa.max))
    }

    /// Sets an HPA's `status.currentReplicas`/`desiredReplicas`, as the HPA controller would;
    /// MODIFIED on watches.
    ///
    /// # Panics
    /// If the HPA does not exist.
    pub fn set_hpa_status(&self, ns: &str, name: &str, current: i32, desired: i32) {
        let found = lock(&self.inner.shared.store).touch(&key(HPA, ns, name), |w| {
            if let Some(h) = w.hpa.as_mut() {
                (h.current, h.desired) = (current, desired);
            }
        });
        assert!(found, "set_hpa_status: no HPA {ns}/{name}");
    }

    /// Sets label `name=value` on an object (of any kind), as a GitOps tool or `kubectl label`
    /// would; MODIFIED on watches.
    ///
    /// # Panics
    /// If the object does not exist.
    pub fn label(&self, kind: Kind, ns: &str, object: &str, name: &str, value: &str) {
        let found = lock(&self.inner.shared.store).touch(&key(kind, ns, object), |w| {
            w.labels.insert(name.to_owned(), value.to_owned());
        });
        assert!(found, "label: no {kind:?} {ns}/{object}");
    }

    /// Removes every label but `app` and every annotation from an object (someone took it out of
    /// GitOps); MODIFIED on watches.
    ///
    /// # Panics
    /// If the object does not exist.
    pub fn clear_labels(&self, kind: Kind, ns: &str, object: &str) {
        let found = lock(&self.inner.shared.store).touch(&key(kind, ns, object), |w| {
            w.labels.clear();
            w.annotations.clear();
        });
        assert!(found, "clear_labels: no {kind:?} {ns}/{object}");
    }

    /// Sets annotation `name=value` on an object, as Argo CD's annotation tracking does;
    /// MODIFIED on watches.
    ///
    /// # Panics
    /// If the object does not exist.
    pub fn annotate(&self, kind: Kind, ns: &str, object: &str, name: &str, value: &str) {
        let found = lock(&self.inner.shared.store).touch(&key(kind, ns, object), |w| {
            w.annotations.insert(name.to_owned(), value.to_owned());
        });
        assert!(found, "annotate: no {kind:?} {ns}/{object}");
    }
}
