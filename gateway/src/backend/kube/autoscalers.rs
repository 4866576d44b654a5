//! Who autoscales the replica targets (a watch of every HPA of their namespaces), and what a
//! watch observes of the HPAs that `hpa-min-replicas`/`hpa-max-replicas` targets move.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;

use super::{KubeBackend, owner, watch_backoff};
use crate::catalog::TargetSpec;
use crate::ownership::{HpaSeen, autoscaler_of, gitops_of, hpa_seen};
use crate::state::{Observed, StateHub};

impl KubeBackend {
    /// Watches every HPA of `namespace` (a list/watch of the whole namespace: which HPA scales
    /// a target is not known by name in advance) and tells `hub` which one, if any, scales each
    /// of `targets` (the replica targets of that namespace), until `shutdown`. A failed watch
    /// keeps the last known autoscalers and is retried with backoff; the gateway is not ready
    /// until the first list succeeded.
    pub async fn watch_autoscalers(
        self: Arc<Self>,
        namespace: String,
        targets: Vec<Arc<TargetSpec>>,
        hub: Arc<StateHub>,
        shutdown: CancellationToken,
    ) {
        let api = Api::<HorizontalPodAutoscaler>::namespaced(self.client.clone(), &namespace);
        let ready_key = crate::backend::autoscalers_of(&namespace);
        let run = async {
            let mut events = watcher(api, watcher::Config::default())
                .backoff(watch_backoff())
                .boxed();
            let mut hpas: BTreeMap<String, HorizontalPodAutoscaler> = BTreeMap::new();
            // Between Init and InitDone: the relisted HPAs, which replace the known ones at once.
            let mut relist: Option<BTreeMap<String, HorizontalPodAutoscaler>> = None;
            let mut listed = false;
            while let Some(event) = events.next().await {
                let name =
                    |h: &HorizontalPodAutoscaler| h.metadata.name.clone().unwrap_or_default();
                match event {
                    Ok(watcher::Event::Init) => relist = Some(BTreeMap::new()),
                    Ok(watcher::Event::InitApply(h)) => {
                        relist.get_or_insert_default().insert(name(&h), h);
                    }
                    Ok(watcher::Event::InitDone) => {
                        hpas = relist.take().unwrap_or_default();
                        listed = true;
                        hub.waiting_for(&ready_key, None);
                    }
                    Ok(watcher::Event::Apply(h)) => {
                        hpas.insert(name(&h), h);
                    }
                    Ok(watcher::Event::Delete(h)) => {
                        hpas.remove(&name(&h));
                    }
                    Err(err) => {
                        tracing::warn!(%namespace, cause = %err, "watch of HorizontalPodAutoscalers failed; retrying");
                        // Before the first list the gateway cannot know (e.g. 403: old RBAC) and
                        // says why it is not ready; after it, the last known autoscalers stay
                        // (kube's watcher resumes without a relist, so no event would clear it).
                        if !listed {
                            hub.waiting_for(&ready_key, Some(format!("cannot list: {err}")));
                        }
                    }
                }
                if relist.is_none() {
                    for target in &targets {
                        hub.set_autoscaler(&target.name, autoscaler_of(hpas.values(), target));
                    }
                }
            }
        };
        tokio::select! {
            () = run => {}
            () = shutdown.cancelled() => {}
        }
    }
}

/// What a watch observes of an HPA's floor: `spec.minReplicas`, with its current replicas.
pub(super) fn hpa_min(h: &HorizontalPodAutoscaler) -> Observed {
    hpa_bound(h, "f:minReplicas", |seen| seen.min)
}

/// What a watch observes of an HPA's ceiling: `spec.maxReplicas`, with its current replicas.
pub(super) fn hpa_max(h: &HorizontalPodAutoscaler) -> Observed {
    hpa_bound(h, "f:maxReplicas", |seen| seen.max)
}

fn hpa_bound(h: &HorizontalPodAutoscaler, field: &str, bound: fn(&HpaSeen) -> i32) -> Observed {
    let seen = hpa_seen(h);
    Observed {
        desired: bound(&seen),
        current: seen.current,
        ready: None,
        manager: owner(h.metadata.managed_fields.as_deref(), &["f:spec", field]),
        gitops: gitops_of(&h.metadata),
        hpa: Some(seen),
    }
}
