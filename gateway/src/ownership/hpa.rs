//! HorizontalPodAutoscalers (autoscaling/v2): which one scales a target's object, and what a
//! watch of an HPA target observes.
//!
//! An HPA's `scaleTargetRef` names an object of its own namespace by kind and name (and
//! `apiVersion`, whose group must be `apps` for a Deployment or StatefulSet). KEDA scales
//! through an HPA of its own (`keda-hpa-NAME`, labelled `scaledobject.keda.sh/name`), so it is
//! found the same way and named after its ScaledObject.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use super::Autoscaler;
use crate::catalog::{TargetKind, TargetSpec};

/// The label KEDA puts on the HPAs it makes.
pub const KEDA_SCALED_OBJECT: &str = "scaledobject.keda.sh/name";

/// The first HPA (by name) among `hpas` whose `scaleTargetRef` names `target`'s object.
/// `hpas` are those of the target's namespace; `None` for kinds no HPA scales.
pub fn autoscaler_of<'a>(
    hpas: impl IntoIterator<Item = &'a HorizontalPodAutoscaler>,
    target: &TargetSpec,
) -> Option<Autoscaler> {
    let kind = match target.kind {
        TargetKind::DeploymentReplicas => "Deployment",
        TargetKind::StatefulSetReplicas => "StatefulSet",
        _ => return None,
    };
    let mut matching: Vec<&HorizontalPodAutoscaler> = hpas
        .into_iter()
        .filter(|h| {
            h.metadata
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == target.namespace)
        })
        .filter(|h| {
            h.spec.as_ref().is_some_and(|s| {
                let r = &s.scale_target_ref;
                let group = r
                    .api_version
                    .as_deref()
                    .map(|v| v.split_once('/').map_or("", |(g, _)| g));
                r.kind == kind && r.name == target.object && group.is_none_or(|g| g == "apps")
            })
        })
        .collect();
    matching.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let hpa = matching.first()?;
    let spec = hpa.spec.as_ref()?;
    Some(Autoscaler {
        hpa: hpa.metadata.name.clone().unwrap_or_default(),
        min: spec.min_replicas.unwrap_or(1),
        max: spec.max_replicas,
        keda: hpa
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(KEDA_SCALED_OBJECT))
            .cloned(),
    })
}

/// What a watch sees of an HPA a target moves the bounds of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpaSeen {
    /// `spec.minReplicas` (1 when unset).
    pub min: i32,
    /// `spec.maxReplicas`.
    pub max: i32,
    /// `status.currentReplicas`.
    pub current: Option<i32>,
    /// `status.desiredReplicas`.
    pub desired: Option<i32>,
}

/// The bounds and replicas of `hpa`.
pub fn hpa_seen(hpa: &HorizontalPodAutoscaler) -> HpaSeen {
    let spec = hpa.spec.as_ref();
    let status = hpa.status.as_ref();
    HpaSeen {
        min: spec.and_then(|s| s.min_replicas).unwrap_or(1),
        max: spec.map_or(0, |s| s.max_replicas),
        current: status.and_then(|s| s.current_replicas),
        desired: status.map(|s| s.desired_replicas),
    }
}
