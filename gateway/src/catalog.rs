//! The targets a bridge may change, as catalogued by the cluster admin, and the checks a
//! requested value must pass before it goes anywhere near the cluster.
//!
//! A bridge names a target, never an API call; whatever it sends is checked here against the
//! target's bounds, so a buggy or hostile bridge cannot scale past `max`.

mod rules;

pub use rules::{Rules, WhenAutoscaled, WhenGitops};

use std::collections::BTreeMap;
use std::sync::Arc;

use kubeknobs_proto::v1;

use crate::policy::Action;

/// What a target changes; the config spells it in kebab case (`kind = "deployment-replicas"`),
/// and an unknown kind is refused listing these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// `spec.replicas` of an apps/v1 Deployment, via its scale subresource.
    DeploymentReplicas,
    /// `spec.replicas` of an apps/v1 StatefulSet, via its scale subresource.
    #[serde(rename = "statefulset-replicas")]
    StatefulSetReplicas,
    /// `spec.paused` of an apps/v1 Deployment: a toggle (1 paused, 0 resumed).
    DeploymentPaused,
    /// Rollout restart of an apps/v1 Deployment: a button (1 restarts; 0, the release, is a no-op).
    DeploymentRestart,
    /// `spec.suspend` of a batch/v1 CronJob: a toggle (1 suspended, 0 resumed).
    #[serde(rename = "cronjob-suspended")]
    CronJobSuspended,
    /// `spec.unschedulable` of a core/v1 Node, which is cluster-scoped: a toggle (1 cordoned,
    /// 0 uncordoned).
    NodeCordoned,
    /// `spec.minReplicas` of an autoscaling/v2 HorizontalPodAutoscaler (never above its max).
    HpaMinReplicas,
    /// `spec.maxReplicas` of an autoscaling/v2 HorizontalPodAutoscaler (never below its min).
    HpaMaxReplicas,
}

impl TargetKind {
    /// The Kubernetes kind, lowercase, for messages ("deployment").
    pub fn object_kind(self) -> &'static str {
        match self {
            TargetKind::DeploymentReplicas
            | TargetKind::DeploymentPaused
            | TargetKind::DeploymentRestart => "deployment",
            TargetKind::StatefulSetReplicas => "statefulset",
            TargetKind::CronJobSuspended => "cronjob",
            TargetKind::NodeCordoned => "node",
            TargetKind::HpaMinReplicas | TargetKind::HpaMaxReplicas => "horizontalpodautoscaler",
        }
    }

    /// True for the replica kinds an autoscaler may scale too (`when_autoscaled` applies).
    pub fn is_autoscalable(self) -> bool {
        matches!(
            self,
            TargetKind::DeploymentReplicas | TargetKind::StatefulSetReplicas
        )
    }

    /// True for the kinds that move an HPA's bounds.
    pub fn is_hpa_bound(self) -> bool {
        matches!(
            self,
            TargetKind::HpaMinReplicas | TargetKind::HpaMaxReplicas
        )
    }

    /// True for kinds whose objects live outside any namespace (Nodes).
    pub fn is_cluster_scoped(self) -> bool {
        matches!(self, TargetKind::NodeCordoned)
    }

    /// What a control event on this kind does, for the policy.
    pub fn action(self) -> Action {
        match self {
            TargetKind::DeploymentReplicas
            | TargetKind::StatefulSetReplicas
            | TargetKind::HpaMinReplicas
            | TargetKind::HpaMaxReplicas => Action::Move,
            TargetKind::DeploymentPaused
            | TargetKind::CronJobSuspended
            | TargetKind::NodeCordoned => Action::Toggle,
            TargetKind::DeploymentRestart => Action::Restart,
        }
    }

    /// True for on/off kinds, whose values are 0 and 1.
    pub fn is_toggle(self) -> bool {
        matches!(
            self,
            TargetKind::DeploymentPaused | TargetKind::CronJobSuspended | TargetKind::NodeCordoned
        )
    }

    /// True for buttons that do something once per press (1), with a cooldown.
    pub fn is_one_shot(self) -> bool {
        matches!(self, TargetKind::DeploymentRestart)
    }

    fn to_proto(self) -> v1::TargetKind {
        match self {
            TargetKind::DeploymentReplicas => v1::TargetKind::DeploymentReplicas,
            TargetKind::StatefulSetReplicas => v1::TargetKind::StatefulsetReplicas,
            TargetKind::DeploymentPaused => v1::TargetKind::DeploymentPaused,
            TargetKind::DeploymentRestart => v1::TargetKind::DeploymentRestart,
            TargetKind::CronJobSuspended => v1::TargetKind::CronjobSuspended,
            TargetKind::NodeCordoned => v1::TargetKind::NodeCordoned,
            TargetKind::HpaMinReplicas => v1::TargetKind::HpaMinReplicas,
            TargetKind::HpaMaxReplicas => v1::TargetKind::HpaMaxReplicas,
        }
    }
}

/// One catalogued target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// The catalog name bridges use.
    pub name: String,
    /// What it changes.
    pub kind: TargetKind,
    /// Namespace of the object; empty for cluster-scoped kinds (Nodes).
    pub namespace: String,
    /// Name of the object.
    pub object: String,
    /// Fewest replicas an operator may set.
    pub min: i32,
    /// Most replicas an operator may set.
    pub max: i32,
    /// At most this many writes per second reach the cluster.
    pub max_writes_per_second: f64,
    /// Replicas the sandbox backend starts with.
    pub sandbox_initial: i32,
    /// The largest change one write makes; a bigger jump is walked in steps of this size.
    pub max_step: Option<i32>,
    /// Writes are server-side dry runs (`dryRun=All`): checked by the API server, never persisted.
    pub dry_run: bool,
    /// For one-shot kinds: the least time between two presses that act (`cooldown_ms`).
    pub cooldown: std::time::Duration,
    /// Changes need the session's arm control held (`requires_arm`).
    pub requires_arm: bool,
    /// What moves do when an autoscaler or GitOps tool manages the value too
    /// (`when_autoscaled`, `when_gitops`).
    pub ownership: Rules,
}

/// A requested value outside what a target takes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadValue {
    /// Not a finite number.
    #[error("{value} is not a number for target {target}")]
    NotANumber {
        /// The value sent.
        value: f64,
        /// The target's name.
        target: String,
    },
    /// Below the target's `min`.
    #[error("{value} is below min {min} for target {target}")]
    BelowMin {
        /// The value sent.
        value: f64,
        /// The target's `min`.
        min: i32,
        /// The target's name.
        target: String,
    },
    /// Above the target's `max`.
    #[error("{value} is above max {max} for target {target}")]
    AboveMax {
        /// The value sent.
        value: f64,
        /// The target's `max`.
        max: i32,
        /// The target's name.
        target: String,
    },
}

impl TargetSpec {
    /// "deployment default/web" ("node worker-1" for cluster-scoped kinds), for messages and logs.
    pub fn describe(&self) -> String {
        if self.kind.is_cluster_scoped() {
            return format!("{} {}", self.kind.object_kind(), self.object);
        }
        format!(
            "{} {}/{}",
            self.kind.object_kind(),
            self.namespace,
            self.object
        )
    }

    /// Every setting that changes what a control does to this target, by kind, for `check`:
    /// `replicas 1..=20, at most 4 writes/s, steps of at most 2, dry run, needs arm`,
    /// `toggle: 1 cordons, 0 uncordons, at most 2 writes/s`, `button: 1 restarts the rollout,
    /// once per 5000 ms`.
    pub fn settings(&self) -> String {
        let per_second = format!("at most {} writes/s", self.max_writes_per_second);
        let mut parts = match self.kind {
            TargetKind::DeploymentReplicas
            | TargetKind::StatefulSetReplicas
            | TargetKind::HpaMinReplicas
            | TargetKind::HpaMaxReplicas => {
                let what = match self.kind {
                    TargetKind::HpaMinReplicas => "HPA minReplicas",
                    TargetKind::HpaMaxReplicas => "HPA maxReplicas",
                    _ => "replicas",
                };
                let mut p = vec![format!("{what} {}..={}", self.min, self.max), per_second];
                if let Some(step) = self.max_step {
                    p.push(format!("steps of at most {step}"));
                }
                p
            }
            TargetKind::DeploymentPaused => vec![
                "toggle: 1 pauses the rollout, 0 resumes it".into(),
                per_second,
            ],
            TargetKind::CronJobSuspended => vec![
                "toggle: 1 suspends the cronjob, 0 resumes it".into(),
                per_second,
            ],
            TargetKind::NodeCordoned => vec![
                "toggle: 1 cordons the node, 0 uncordons it".into(),
                per_second,
            ],
            TargetKind::DeploymentRestart => vec![format!(
                "button: 1 restarts the rollout, at most once per {} ms",
                self.cooldown.as_millis()
            )],
        };
        if self.dry_run {
            parts.push("dry run (never persisted)".into());
        }
        if self.requires_arm {
            parts.push("needs arm".into());
        }
        parts.join(", ")
    }

    /// Checks a requested value and rounds it to whole replicas.
    pub fn check(&self, value: f64) -> Result<i32, BadValue> {
        let target = self.name.clone();
        if !value.is_finite() {
            return Err(BadValue::NotANumber { value, target });
        }
        let rounded = value.round();
        if rounded < f64::from(self.min) {
            let min = self.min;
            return Err(BadValue::BelowMin { value, min, target });
        }
        if rounded > f64::from(self.max) {
            let max = self.max;
            return Err(BadValue::AboveMax { value, max, target });
        }
        Ok(rounded as i32)
    }

    /// The bounds as sent to bridges.
    pub fn bounds(&self) -> v1::Bounds {
        v1::Bounds {
            min: f64::from(self.min),
            max: f64::from(self.max),
            step: 1.0,
            max_writes_per_second: self.max_writes_per_second,
        }
    }

    /// The catalog entry as sent to bridges, with its current `state`.
    pub fn to_proto(&self, state: v1::TargetState) -> v1::Target {
        v1::Target {
            name: self.name.clone(),
            kind: self.kind.to_proto() as i32,
            namespace: self.namespace.clone(),
            object: self.object.clone(),
            bounds: Some(self.bounds()),
            state: Some(state),
        }
    }
}

/// Every catalogued target, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    targets: BTreeMap<String, Arc<TargetSpec>>,
}

impl Catalog {
    /// Adds (or replaces) a target.
    pub fn insert(&mut self, spec: TargetSpec) {
        self.targets.insert(spec.name.clone(), Arc::new(spec));
    }

    /// The target called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<TargetSpec>> {
        self.targets.get(name)
    }

    /// All targets, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<TargetSpec>> {
        self.targets.values()
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when nothing is catalogued.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

#[cfg(test)]
impl TargetSpec {
    /// A target for unit tests: object `name` of `kind` in `namespace`, values 0..=`max`,
    /// 2 writes per second, no guardrails; change fields with struct update syntax.
    pub(crate) fn for_test(name: &str, kind: TargetKind, namespace: &str, max: i32) -> TargetSpec {
        TargetSpec {
            name: name.into(),
            kind,
            namespace: namespace.into(),
            object: name.into(),
            min: 0,
            max,
            max_writes_per_second: 2.0,
            sandbox_initial: 0,
            max_step: None,
            dry_run: false,
            cooldown: std::time::Duration::ZERO,
            requires_arm: false,
            ownership: Rules::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn web() -> TargetSpec {
        TargetSpec {
            min: 1,
            sandbox_initial: 1,
            ..TargetSpec::for_test("web", TargetKind::DeploymentReplicas, "default", 20)
        }
    }

    #[test]
    fn values_are_rounded_to_whole_replicas() {
        assert_eq!(web().check(9.6), Ok(10));
        assert_eq!(web().check(20.4), Ok(20));
        assert_eq!(web().check(1.0), Ok(1));
    }

    #[test]
    fn out_of_range_values_are_refused_not_clamped() {
        let low = web().check(0.0).unwrap_err();
        assert_eq!(low.to_string(), "0 is below min 1 for target web");
        let high = web().check(25.0).unwrap_err();
        assert_eq!(high.to_string(), "25 is above max 20 for target web");
        assert!(matches!(web().check(0.4), Err(BadValue::BelowMin { .. })));
        assert!(matches!(web().check(20.5), Err(BadValue::AboveMax { .. })));
    }

    #[test]
    fn new_toggles_describe_their_object_and_act_as_toggles() {
        let mut cron = web();
        cron.kind = TargetKind::CronJobSuspended;
        cron.namespace = "batch".into();
        cron.object = "nightly".into();
        assert_eq!(cron.describe(), "cronjob batch/nightly");
        let mut node = web();
        node.kind = TargetKind::NodeCordoned;
        node.namespace = String::new();
        node.object = "worker-1".into();
        assert_eq!(node.describe(), "node worker-1");
        for kind in [TargetKind::CronJobSuspended, TargetKind::NodeCordoned] {
            assert!(kind.is_toggle());
            assert_eq!(kind.action(), Action::Toggle);
        }
        assert!(TargetKind::NodeCordoned.is_cluster_scoped());
        assert!(!TargetKind::CronJobSuspended.is_cluster_scoped());
    }

    #[test]
    fn settings_describe_each_kind_by_what_it_does() {
        let web = TargetSpec {
            max_step: Some(2),
            requires_arm: true,
            ..web()
        };
        assert_eq!(
            web.settings(),
            "replicas 1..=20, at most 2 writes/s, steps of at most 2, needs arm"
        );
        let node = TargetSpec {
            dry_run: true,
            ..TargetSpec::for_test("n", TargetKind::NodeCordoned, "", 1)
        };
        assert_eq!(
            node.settings(),
            "toggle: 1 cordons the node, 0 uncordons it, at most 2 writes/s, dry run (never persisted)"
        );
        let restart = TargetSpec {
            cooldown: std::time::Duration::from_secs(5),
            ..TargetSpec::for_test("r", TargetKind::DeploymentRestart, "default", 1)
        };
        assert_eq!(
            restart.settings(),
            "button: 1 restarts the rollout, at most once per 5000 ms"
        );
    }

    #[test]
    fn non_numbers_are_invalid() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = web().check(v).unwrap_err();
            assert!(matches!(err, BadValue::NotANumber { .. }), "{v}: {err}");
        }
    }
}
