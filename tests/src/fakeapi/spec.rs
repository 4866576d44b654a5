//! Merge patches of an object itself (not its scale): the few spec fields the fake lets clients
//! set, each on the one kind that has it.
//!
//! | field                                                          | kind       |
//! |----------------------------------------------------------------|------------|
//! | `spec.paused`                                                  | Deployment |
//! | `spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]` | Deployment |
//! | `spec.suspend`                                                 | CronJob    |
//! | `spec.unschedulable`                                           | Node       |

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
        };
        if decoded == SpecPatch::default() {
            let message = "the fake only patches spec.paused, the restartedAt template annotation, \
                           spec.suspend and spec.unschedulable";
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
            || (self.unschedulable.is_some() && kind != Kind::Node);
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
        Ok(next)
    }
}

/// True when `a` and `b` have the same patchable spec fields (a patch of `a` into `b` is a no-op).
pub(crate) fn same_spec(a: &Workload, b: &Workload) -> bool {
    (a.paused, &a.restarted_at, a.suspend, a.unschedulable)
        == (b.paused, &b.restarted_at, b.suspend, b.unschedulable)
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
