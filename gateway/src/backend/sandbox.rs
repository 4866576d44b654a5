//! The sandbox: an in-memory cluster for demos, with the semantics of the real one.
//!
//! A write sets the desired replicas; "pods" then become ready one at a time, a few per second,
//! as they would in a cluster, and every change is reported through the same [`StateHub`] path
//! a Kubernetes watch uses. It is always reported as `sandbox`, so nobody mistakes it for a cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, TargetKind, TargetSpec};
use crate::coalesce::WriteError;
use crate::ownership::HpaSeen;
use crate::state::{FIELD_MANAGER, Observed, StateHub};

/// How often a sandbox "pod" becomes ready (or goes away) while replicas converge.
pub const READY_STEP: Duration = Duration::from_millis(250);

/// An in-memory cluster.
#[derive(Debug, Default)]
pub struct Sandbox {
    objects: Mutex<HashMap<String, Replicas>>,
    changed: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Replicas {
    desired: i32,
    ready: i32,
    /// True once kubeknobs wrote it; before that nobody is known to have changed it.
    written: bool,
}

impl Sandbox {
    /// A sandbox holding every catalogued object at its `initial` replicas, all ready.
    pub fn new(catalog: &Catalog) -> Sandbox {
        let objects = catalog
            .iter()
            .map(|t| {
                let n = t.sandbox_initial;
                (
                    key(t),
                    Replicas {
                        desired: n,
                        ready: n,
                        written: false,
                    },
                )
            })
            .collect();
        Sandbox {
            objects: Mutex::new(objects),
            changed: Notify::new(),
        }
    }

    /// Sets the desired replicas of `target`'s object.
    pub fn write(&self, target: &TargetSpec, value: i32) -> Result<(), WriteError> {
        let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let object = objects.get_mut(&key(target)).ok_or_else(|| WriteError {
            retryable: false,
            message: format!("{} not found in the sandbox", target.describe()),
        })?;
        if target.dry_run {
            // Like the API server's dry run: checked, not persisted.
            return Ok(());
        }
        object.written = true;
        if target.kind.is_one_shot() {
            // A restart changes no value the sandbox shows, only who acted last.
            self.changed.notify_one();
            return Ok(());
        }
        object.desired = value;
        if !target.kind.is_autoscalable() {
            // A toggle or an HPA bound has no pods to wait for: it is in effect at once.
            object.ready = value;
        }
        self.changed.notify_one();
        Ok(())
    }

    /// Converges ready replicas towards desired and reports every change, until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        catalog: Catalog,
        hub: Arc<StateHub>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(READY_STEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.report(&catalog, &hub);
            tokio::select! {
                _ = tick.tick() => self.step(),
                () = self.changed.notified() => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    fn step(&self) {
        let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        for object in objects.values_mut() {
            object.ready += (object.desired - object.ready).signum();
        }
    }

    fn report(&self, catalog: &Catalog, hub: &StateHub) {
        let objects = self
            .objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for target in catalog.iter() {
            if let Some(r) = objects.get(&key(target)) {
                // An HPA bound has no pods of its own; the sandbox autoscales nothing.
                let pods = !target.kind.is_hpa_bound();
                let seen = Observed {
                    desired: r.desired,
                    current: pods.then_some(r.desired.max(r.ready)),
                    ready: pods.then_some(r.ready),
                    manager: r.written.then(|| FIELD_MANAGER.to_owned()),
                    gitops: None,
                    hpa: target.kind.is_hpa_bound().then(|| hpa(&objects, target)),
                };
                hub.observe(&target.name, seen);
            }
        }
    }
}

/// Where the sandbox keeps `target`'s value: per kind and object, so an HPA's min and max (or a
/// Deployment's replicas and its pause) are two values, as in a cluster.
fn key(target: &TargetSpec) -> String {
    format!("{:?} {}", target.kind, target.describe())
}

/// The sandbox's HPA of an HPA-bound target: the bounds its min and max targets hold (1 and the
/// target's own max when one of them is not catalogued); no autoscaling happens in the sandbox.
fn hpa(objects: &HashMap<String, Replicas>, target: &TargetSpec) -> HpaSeen {
    let bound = |kind: TargetKind| {
        let key = format!("{kind:?} {}", target.describe());
        objects.get(&key).map(|r| r.desired)
    };
    HpaSeen {
        min: bound(TargetKind::HpaMinReplicas).unwrap_or(1),
        max: bound(TargetKind::HpaMaxReplicas).unwrap_or(target.max),
        current: None,
        desired: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sandbox holding `catalog`, running and reporting to a fresh hub until the token is cancelled.
    fn running(catalog: &Catalog) -> (Arc<Sandbox>, Arc<StateHub>, CancellationToken) {
        let sandbox = Arc::new(Sandbox::new(catalog));
        let hub = Arc::new(StateHub::new(catalog));
        let shutdown = CancellationToken::new();
        tokio::spawn(
            sandbox
                .clone()
                .run(catalog.clone(), hub.clone(), shutdown.clone()),
        );
        (sandbox, hub, shutdown)
    }

    #[tokio::test(start_paused = true)]
    async fn writes_show_up_through_the_hub_and_pods_become_ready_over_time() {
        let mut catalog = Catalog::default();
        catalog.insert(TargetSpec {
            sandbox_initial: 2,
            ..TargetSpec::for_test("web", TargetKind::DeploymentReplicas, "default", 20)
        });
        let (sandbox, hub, shutdown) = running(&catalog);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(hub.snapshot()["web"].desired, Some(2.0));

        let web = catalog.get("web").expect("catalogued").clone();
        hub.record_write("web", 6, "alice".into());
        sandbox.write(&web, 6).expect("known object");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let state = hub.snapshot()["web"].clone();
        assert_eq!((state.desired, state.ready), (Some(6.0), Some(2.0)));
        assert_eq!(state.changed_by, "alice");

        tokio::time::sleep(READY_STEP * 5).await;
        assert_eq!(hub.snapshot()["web"].ready, Some(6.0));
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn cronjob_and_node_toggles_are_held_like_other_objects() {
        let mut catalog = Catalog::default();
        for (name, kind, namespace) in [
            ("nightly", TargetKind::CronJobSuspended, "jobs"),
            ("worker", TargetKind::NodeCordoned, ""),
        ] {
            catalog.insert(TargetSpec::for_test(name, kind, namespace, 1));
        }
        let (sandbox, hub, shutdown) = running(&catalog);
        for name in ["nightly", "worker"] {
            let target = catalog.get(name).expect("catalogued").clone();
            sandbox.write(&target, 1).expect("held by the sandbox");
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(hub.snapshot()[name].desired, Some(1.0), "{name} on");
            sandbox.write(&target, 0).expect("held by the sandbox");
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(hub.snapshot()[name].desired, Some(0.0), "{name} off");
        }
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn an_hpas_min_and_max_are_two_values_and_each_target_knows_both() {
        let mut catalog = Catalog::default();
        for (name, kind, initial) in [
            ("floor", TargetKind::HpaMinReplicas, 2),
            ("ceiling", TargetKind::HpaMaxReplicas, 10),
        ] {
            catalog.insert(TargetSpec {
                object: "web-hpa".into(),
                sandbox_initial: initial,
                ..TargetSpec::for_test(name, kind, "shop", 20)
            });
        }
        let (sandbox, hub, shutdown) = running(&catalog);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(hub.snapshot()["floor"].desired, Some(2.0));
        assert_eq!(hub.snapshot()["ceiling"].desired, Some(10.0));
        assert_eq!(hub.hpa_bounds("floor"), Some((2, 10)));
        let ceiling = catalog.get("ceiling").expect("catalogued").clone();
        sandbox.write(&ceiling, 12).expect("held by the sandbox");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            hub.snapshot()["floor"].desired,
            Some(2.0),
            "a separate value"
        );
        assert_eq!(hub.hpa_bounds("floor"), Some((2, 12)));
        assert_eq!(
            hub.snapshot()["ceiling"].ready,
            None,
            "an HPA bound has no pods"
        );
        shutdown.cancel();
    }
}
