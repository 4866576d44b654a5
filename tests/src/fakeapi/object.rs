//! Wire forms of stored objects: the apps/v1 Deployment/StatefulSet, batch/v1 CronJob, v1 Node
//! and autoscaling/v2 HorizontalPodAutoscaler JSON (with labels and annotations), the
//! autoscaling/v1 `Scale` and the list envelope.
//!
//! Field presence follows the real API's `omitempty` rules where a client could trip on them:
//! a Deployment's `status.replicas`, and both kinds' `readyReplicas`/`availableReplicas`, are
//! absent when 0, as is the Scale's `spec.replicas`.

use serde_json::{Map, Value, json};

use super::fields::ManagedField;
use super::kind::Kind;
use super::store::Workload;

/// The full object, with `kind`/`apiVersion` (as in watch events and GET answers).
pub(crate) fn object(w: &Workload) -> Value {
    let mut value = item(w);
    value["kind"] = json!(w.kind.kind());
    value["apiVersion"] = json!(w.kind.api_version());
    value
}

/// The object as a list item (the API server leaves out `kind`/`apiVersion` there).
pub(crate) fn item(w: &Workload) -> Value {
    let (spec, status) = match w.kind {
        Kind::Deployment | Kind::StatefulSet => workload(w),
        Kind::CronJob => cronjob(w),
        Kind::Node => node(w),
        Kind::HorizontalPodAutoscaler => hpa(w),
    };
    let mut labels = json!({ "app": w.name });
    for (key, value) in &w.labels {
        labels[key] = json!(value);
    }
    let mut metadata = json!({
        "name": w.name,
        "namespace": w.namespace,
        "uid": w.uid,
        "resourceVersion": w.resource_version.to_string(),
        "generation": w.generation,
        "creationTimestamp": w.created,
        "labels": labels,
        "managedFields": w.managed_fields.iter().map(|f| managed_field(f, w.kind)).collect::<Vec<_>>(),
    });
    if !w.annotations.is_empty() {
        metadata["annotations"] = json!(w.annotations);
    }
    if !w.kind.namespaced()
        && let Some(fields) = metadata.as_object_mut()
    {
        fields.remove("namespace");
    }
    json!({ "metadata": metadata, "spec": spec, "status": status })
}

/// Spec and status of a CronJob: a schedule, a job template and `suspend`.
fn cronjob(w: &Workload) -> (Value, Value) {
    let pod = json!({
        "containers": [{ "name": "job", "image": "registry.invalid/job:1" }],
        "restartPolicy": "OnFailure",
    });
    let spec = json!({
        "schedule": "0 3 * * *",
        "suspend": w.suspend,
        "jobTemplate": { "spec": { "template": { "spec": pod } } },
    });
    (spec, json!({}))
}

/// Spec and status of an autoscaling/v2 HPA: its target, bounds, one CPU metric, and the
/// replicas it sees and wants.
fn hpa(w: &Workload) -> (Value, Value) {
    let Some(h) = &w.hpa else {
        return (json!({}), json!({}));
    };
    let spec = json!({
        "scaleTargetRef": { "apiVersion": "apps/v1", "kind": h.target_kind, "name": h.target_name },
        "minReplicas": h.min,
        "maxReplicas": h.max,
        "metrics": [{
            "type": "Resource",
            "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 80 } },
        }],
    });
    let status = json!({ "currentReplicas": h.current, "desiredReplicas": h.desired });
    (spec, status)
}

/// Spec and status of a Node: `unschedulable` is left out when false, as `omitempty` does.
fn node(w: &Workload) -> (Value, Value) {
    let spec = if w.unschedulable {
        json!({ "unschedulable": true })
    } else {
        json!({})
    };
    (spec, json!({}))
}

/// Spec and status of a Deployment or StatefulSet.
fn workload(w: &Workload) -> (Value, Value) {
    let labels = json!({ "app": w.name });
    let mut spec = json!({
        "replicas": w.spec_replicas,
        "selector": { "matchLabels": labels },
        "template": {
            "metadata": { "labels": labels },
            "spec": { "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] },
        },
    });
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(w.observed_generation));
    if w.status_replicas != 0 || w.kind == Kind::StatefulSet {
        status.insert("replicas".into(), json!(w.status_replicas));
    }
    if w.ready_replicas != 0 {
        status.insert("readyReplicas".into(), json!(w.ready_replicas));
        status.insert("availableReplicas".into(), json!(w.ready_replicas));
    }
    if w.kind == Kind::StatefulSet {
        spec["serviceName"] = json!(w.name);
    }
    if w.paused {
        spec["paused"] = json!(true);
    }
    if let Some(at) = &w.restarted_at {
        spec["template"]["metadata"]["annotations"] =
            json!({ "kubectl.kubernetes.io/restartedAt": at });
    }
    (spec, Value::Object(status))
}

/// The `autoscaling/v1` Scale of a workload.
pub(crate) fn scale(w: &Workload) -> Value {
    let spec = if w.spec_replicas == 0 {
        json!({})
    } else {
        json!({ "replicas": w.spec_replicas })
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": w.name,
            "namespace": w.namespace,
            "uid": w.uid,
            "resourceVersion": w.resource_version.to_string(),
            "creationTimestamp": w.created,
        },
        "spec": spec,
        "status": { "replicas": w.status_replicas, "selector": format!("app={}", w.name) },
    })
}

/// A `DeploymentList`, `StatefulSetList`, `CronJobList` or `NodeList`.
pub(crate) fn list(
    kind: Kind,
    items: &[Workload],
    resource_version: u64,
    continue_token: Option<String>,
) -> Value {
    let mut metadata = json!({ "resourceVersion": resource_version.to_string() });
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": format!("{}List", kind.kind()),
        "apiVersion": kind.api_version(),
        "metadata": metadata,
        "items": items.iter().map(item).collect::<Vec<_>>(),
    })
}

/// A BOOKMARK event's object: only kind, apiVersion and resourceVersion (plus annotations).
pub(crate) fn bookmark(kind: Kind, resource_version: u64, initial_events_end: bool) -> Value {
    let mut metadata = json!({ "resourceVersion": resource_version.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    json!({ "kind": kind.kind(), "apiVersion": kind.api_version(), "metadata": metadata })
}

fn managed_field(f: &ManagedField, kind: Kind) -> Value {
    let mut fields = Map::new();
    if f.rest {
        fields.insert(
            "f:metadata".into(),
            json!({ "f:labels": { ".": {}, "f:app": {} } }),
        );
    }
    let mut spec = Map::new();
    if f.replicas {
        spec.insert("f:replicas".into(), json!({}));
    }
    if f.rest {
        let owned: &[&str] = match kind {
            Kind::Deployment | Kind::StatefulSet => &["f:selector", "f:template"],
            Kind::CronJob => &["f:jobTemplate", "f:schedule", "f:suspend"],
            Kind::Node => &["f:unschedulable"],
            Kind::HorizontalPodAutoscaler => &[
                "f:maxReplicas",
                "f:metrics",
                "f:minReplicas",
                "f:scaleTargetRef",
            ],
        };
        for field in owned {
            spec.insert((*field).into(), json!({}));
        }
    }
    if !spec.is_empty() {
        fields.insert("f:spec".into(), Value::Object(spec));
    }
    if f.status {
        fields.insert(
            "f:status".into(),
            json!({ "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {} }),
        );
    }
    let mut entry = json!({
        "manager": f.manager,
        "operation": f.operation,
        "apiVersion": kind.api_version(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(time) = &f.time {
        entry["time"] = json!(time);
    }
    if let Some(subresource) = f.subresource {
        entry["subresource"] = json!(subresource);
    }
    entry
}
