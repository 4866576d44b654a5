//! Merge patches of an object itself (not its scale): the few spec fields the fake lets clients
//! set, each on the one kind that has it.
//!
//! | field                                                          | kind       |
//! |----------------------------------------------------------------|------------|
//! | `spec.paused`                                                  | Deployment |
//! | `spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]` | Deployment |
//! | `spec.suspend`                                                 | CronJob    |
//! | `spec.unschedulable`                                           | Node       |
//! | `spec.minReplicas`, `spec.maxReplicas`                         | HorizontalPodAutoscaler |
//!
//! An HPA's bounds are validated as the real API server does: `minReplicas` at least 1,
//! `maxReplicas` at least 1 and at least `minReplicas`, else 422 Invalid naming the field.

use serde_json::Value;

use super::kind::Kind;
use super::status::ApiError;
use super::store::Workload;

/// The changes one merge patch of an object asks for; `None` leaves a field as it is.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SpecPatch {
    pub(crate) paused: Option<bool>,
    pub(crate) restarted_at: Option<String>,
    pub(crate) suspend: Option<bool>,
    pub(crate) unschedulable: Option<bool>,
    pub(crate) min_replicas: Option<i32>,
    pub(crate) max_replicas: Option<i32>,
}

impl SpecPatch {
    /// Decodes a merge patch body; 400 if it is not JSON, 422 if it sets none of the fields.
    pub(crate) fn decode(body: &[u8]) -> Result<SpecPatch, ApiError> {
        let patch: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid patch body: {e}")))?;
        let flag = |pointer: &str| patch.pointer(pointer).and_then(Value::as_bool);
        let decoded = SpecPatch {
            paused: flag("/spec/paused"),
            restarted_at: patch
                .pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
                .and_then(Value::as_str)
                .map(str::to_owned),
            suspend: flag("/spec/suspend"),
            unschedulable: flag("/spec/unschedulable"),
            min_replicas: int32(&patch, "/spec/minReplicas")?,
            max_replicas: int32(&patch, "/spec/maxReplicas")?,
        };
        if decoded == SpecPatch::default() {
            let message = "the fake only patches spec.paused, the restartedAt template annotation, \
                           spec.suspend, spec.unschedulable and an HPA's spec.minReplicas/maxReplicas";
            return Err(ApiError::new(422, message));
        }
        Ok(decoded)
    }

    /// `current` with the patch applied; 422 if it sets a field `current`'s kind does not have.
    pub(crate) fn apply(self, current: &Workload) -> Result<Workload, ApiError> {
        let kind = current.kind;
        let deployment = self.paused.is_some() || self.restarted_at.is_some();
        let misplaced = (deployment && kind != Kind::Deployment)
            || (self.suspend.is_some() && kind != Kind::CronJob)
            || (self.unschedulable.is_some() && kind != Kind::Node)
            || ((self.min_replicas.is_some() || self.max_replicas.is_some())
                && kind != Kind::HorizontalPodAutoscaler);
        if misplaced {
            let message = format!(
                "spec: Forbidden: a {} has none of the patched fields",
                kind.kind()
            );
            return Err(ApiError::invalid(&current.name, message));
        }
        let mut next = current.clone();
        next.paused = self.paused.unwrap_or(current.paused);
        next.restarted_at = self.restarted_at.or_else(|| current.restarted_at.clone());
        next.suspend = self.suspend.unwrap_or(current.suspend);
        next.unschedulable = self.unschedulable.unwrap_or(current.unschedulable);
        if let Some(hpa) = next.hpa.as_mut() {
            hpa.min = self.min_replicas.unwrap_or(hpa.min);
            hpa.max = self.max_replicas.unwrap_or(hpa.max);
            let invalid = |field: &str, value: i32, why: &str| {
                let message = format!("spec.{field}: Invalid value: {value}: {why}");
                Err(ApiError::invalid_kind(kind, &current.name, message))
            };
            if hpa.min < 1 {
                return invalid("minReplicas", hpa.min, "must be greater than or equal to 1");
            }
            if hpa.max < 1 {
                return invalid("maxReplicas", hpa.max, "must be greater than 0");
            }
            if hpa.max < hpa.min {
                return invalid(
                    "maxReplicas",
                    hpa.max,
                    "must be greater than or equal to `minReplicas`",
                );
            }
        }
        Ok(next)
    }
}

/// True when `a` and `b` have the same patchable spec fields (a patch of `a` into `b` is a no-op).
pub(crate) fn same_spec(a: &Workload, b: &Workload) -> bool {
    (
        a.paused,
        &a.restarted_at,
        a.suspend,
        a.unschedulable,
        &a.hpa,
    ) == (
        b.paused,
        &b.restarted_at,
        b.suspend,
        b.unschedulable,
        &b.hpa,
    )
}

/// An int32 at `pointer` of a patch, if there; 400 if it is not one.
fn int32(patch: &Value, pointer: &str) -> Result<Option<i32>, ApiError> {
    match patch.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{pointer}: cannot decode {n} as int32"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_is_decoded() {
        let patch = SpecPatch::decode(br#"{"spec":{"suspend":true}}"#).expect("valid");
        assert_eq!(patch.suspend, Some(true));
        let patch = SpecPatch::decode(br#"{"spec":{"unschedulable":false}}"#).expect("valid");
        assert_eq!(patch.unschedulable, Some(false));
        let err = SpecPatch::decode(br#"{"spec":{"replicas":3}}"#).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(SpecPatch::decode(b"{").unwrap_err().code, 400);
    }
}
