//! Who else manages a target's value, and what the gateway does about it.
//!
//! A replica count that a HorizontalPodAutoscaler (or KEDA, which works through one) also sets
//! is a tug of war the operator cannot win; a value a GitOps controller (Argo CD, Flux) owns is
//! put back at its next sync. The backends find these owners ([`autoscaler_of`] on the HPAs of
//! the target's namespace, [`gitops_of`] on the object's labels, annotations and field managers)
//! and the [`crate::state::StateHub`] shows them to every session as `TargetState.managed_by`.
//! Admission ([`decide`]) then refuses, warns about or allows a move per the target's
//! [`Rules`] (`when_autoscaled`, `when_gitops`), and keeps an HPA's `minReplicas` at or below its
//! `maxReplicas` ([`check_hpa_bounds`]).
//!
//! Contract: everything here is pure; an owner the gateway does not know of is never guessed.

pub mod gitops;
pub mod hpa;

pub use crate::catalog::{Rules, WhenAutoscaled, WhenGitops};
use crate::catalog::{TargetKind, TargetSpec};

pub use gitops::gitops_of;
pub use hpa::{HpaSeen, autoscaler_of, hpa_seen};

/// An autoscaler whose `scaleTargetRef` names a target's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autoscaler {
    /// The HPA's name.
    pub hpa: String,
    /// `spec.minReplicas` (1 when unset, as the API server defaults it).
    pub min: i32,
    /// `spec.maxReplicas`.
    pub max: i32,
    /// The KEDA ScaledObject that made the HPA (`scaledobject.keda.sh/name`), if any.
    pub keda: Option<String>,
}

impl Autoscaler {
    /// `HorizontalPodAutoscaler web-hpa (2..10)`, or `KEDA ScaledObject web (HPA keda-hpa-web, 1..20)`.
    pub fn describe(&self) -> String {
        match &self.keda {
            Some(scaled) => format!(
                "KEDA ScaledObject {scaled} (HPA {}, {}..{})",
                self.hpa, self.min, self.max
            ),
            None => format!(
                "HorizontalPodAutoscaler {} ({}..{})",
                self.hpa, self.min, self.max
            ),
        }
    }

    /// What to move instead of the replicas.
    fn instead(&self) -> String {
        match &self.keda {
            // KEDA writes the HPA's bounds from the ScaledObject: moving the HPA would be undone.
            Some(scaled) => format!(
                "change the KEDA ScaledObject {scaled}'s minReplicaCount/maxReplicaCount instead"
            ),
            None => format!(
                "move the HPA's bounds instead (targets of kind \"hpa-min-replicas\"/\"hpa-max-replicas\" on {})",
                self.hpa
            ),
        }
    }
}

/// Who else manages a target's value, as far as the gateway knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// An HPA scaling the object (replica kinds only).
    pub autoscaler: Option<Autoscaler>,
    /// A GitOps tool managing the object, described (`Flux Kustomization apps/web`).
    pub gitops: Option<String>,
}

impl Owners {
    /// `TargetState.managed_by`: every known owner, joined by "; "; empty when none.
    pub fn managed_by(&self) -> String {
        let parts: Vec<String> = self
            .autoscaler
            .iter()
            .map(Autoscaler::describe)
            .chain(self.gitops.clone())
            .collect();
        parts.join("; ")
    }
}

/// What admission does with a move, given who else manages the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody else (or the rules allow it): go ahead.
    Admit,
    /// Go ahead; the applied outcome carries this warning.
    Warn(String),
    /// Refused as `MANAGED` with this message.
    Refuse(String),
}

/// The verdict on a move of `target`, whose object `owners` manage.
pub fn decide(target: &TargetSpec, owners: &Owners) -> Verdict {
    let rules = target.ownership;
    let autoscaler = owners
        .autoscaler
        .as_ref()
        .filter(|_| target.kind.is_autoscalable());
    if let Some(hpa) = autoscaler
        && rules.when_autoscaled == WhenAutoscaled::Refuse
    {
        return Verdict::Refuse(format!(
            "target {}: {} is scaled by {}; a move here would fight it: {} (or set when_autoscaled = \"allow\")",
            target.name,
            target.describe(),
            hpa.describe(),
            hpa.instead()
        ));
    }
    let Some(gitops) = &owners.gitops else {
        return Verdict::Admit;
    };
    match rules.when_gitops {
        WhenGitops::Allow => Verdict::Admit,
        WhenGitops::Warn => Verdict::Warn(format!(
            "warning: {} is managed by {gitops}, which may revert this change at its next sync",
            target.describe()
        )),
        WhenGitops::Refuse => Verdict::Refuse(format!(
            "target {}: {} is managed by {gitops}, which would revert a change made here: change it in Git instead (or set when_gitops = \"warn\")",
            target.name,
            target.describe()
        )),
    }
}

/// A move that would put an HPA's `minReplicas` above its `maxReplicas`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrossedBounds {
    /// A min above the max.
    #[error(
        "{value} is above the maxReplicas {max} of {object}: an HPA's min is never above its max (raise the max first) for target {target}"
    )]
    MinAboveMax {
        /// The min asked for.
        value: i32,
        /// The HPA's max.
        max: i32,
        /// The HPA, described.
        object: String,
        /// The target's name.
        target: String,
    },
    /// A max below the min.
    #[error(
        "{value} is below the minReplicas {min} of {object}: an HPA's max is never below its min (lower the min first) for target {target}"
    )]
    MaxBelowMin {
        /// The max asked for.
        value: i32,
        /// The HPA's min.
        min: i32,
        /// The HPA, described.
        object: String,
        /// The target's name.
        target: String,
    },
}

/// Keeps an HPA's `minReplicas` at or below its `maxReplicas`: `bounds` is the HPA's
/// `(min, max)` as last observed (unknown: the API server's own validation decides).
pub fn check_hpa_bounds(
    target: &TargetSpec,
    value: i32,
    bounds: Option<(i32, i32)>,
) -> Result<(), CrossedBounds> {
    let Some((min, max)) = bounds else {
        return Ok(());
    };
    let (object, name) = (target.describe(), target.name.clone());
    match target.kind {
        TargetKind::HpaMinReplicas if value > max => Err(CrossedBounds::MinAboveMax {
            value,
            max,
            object,
            target: name,
        }),
        TargetKind::HpaMaxReplicas if value < min => Err(CrossedBounds::MaxBelowMin {
            value,
            min,
            object,
            target: name,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
