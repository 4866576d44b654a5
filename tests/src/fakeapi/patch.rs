//! Decoding writes to the scale subresource into the one change the fake models: a new
//! `spec.replicas`, optionally guarded by a `metadata.resourceVersion` precondition.
//!
//! Accepted: `application/merge-patch+json`, `application/strategic-merge-patch+json` and
//! `application/apply-patch+yaml` (JSON-flavoured YAML, which is what kube-rs sends) for PATCH;
//! a `Scale` JSON for PUT. Anything else is 415; a body that is not the right JSON is 400; a
//! negative replica count is 422 (in `Store::scale`).

use serde_json::Value;

use super::status::ApiError;

/// What a write asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Intent {
    /// New `spec.replicas`; `None` if the write does not touch it.
    pub(crate) replicas: Option<i32>,
    /// `metadata.resourceVersion` the object must still have.
    pub(crate) expect: Option<u64>,
    /// Server-side apply (operation `Apply` in managedFields).
    pub(crate) apply: bool,
}

/// Decodes a PATCH body of the given `Content-Type`.
pub(crate) fn patch(content_type: &str, body: &[u8]) -> Result<Intent, ApiError> {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let apply = match media {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => false,
        "application/apply-patch+yaml" => true,
        other => {
            let message = format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/merge-patch+json, application/strategic-merge-patch+json, \
                 application/apply-patch+yaml (got {other:?})"
            );
            return Err(ApiError::new(415, message));
        }
    };
    let value = decode(body)?;
    Ok(Intent {
        replicas: replicas(&value)?,
        expect: expect(&value)?,
        apply,
    })
}

/// Decodes a PUT body: a whole `Scale`, whose `spec.replicas` defaults to 0 when absent.
pub(crate) fn replace(body: &[u8]) -> Result<Intent, ApiError> {
    let value = decode(body)?;
    Ok(Intent {
        replicas: Some(replicas(&value)?.unwrap_or(0)),
        expect: expect(&value)?,
        apply: false,
    })
}

fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding patch: the body must be a JSON object",
        ));
    }
    Ok(value)
}

fn replicas(value: &Value) -> Result<Option<i32>, ApiError> {
    let Some(spec) = value.get("spec") else {
        return Ok(None);
    };
    if spec.is_null() {
        return Ok(None);
    }
    if !spec.is_object() {
        return Err(ApiError::bad_request("spec: must be an object"));
    }
    match spec.get("replicas") {
        None => Ok(None),
        // Merge-patch null deletes the field, and an absent replicas is 0 in a Scale.
        Some(Value::Null) => Ok(Some(0)),
        Some(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!("spec.replicas: cannot decode {n} as int32"))
            }),
    }
}

fn expect(value: &Value) -> Result<Option<u64>, ApiError> {
    match value.pointer("/metadata/resourceVersion") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(rv)) if rv.is_empty() => Ok(None),
        Some(Value::String(rv)) => rv.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("metadata.resourceVersion: invalid value {rv:?}"))
        }),
        Some(other) => Err(ApiError::bad_request(format!(
            "metadata.resourceVersion: must be a string, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_sets_replicas() {
        let intent = patch(
            "application/merge-patch+json",
            br#"{"spec":{"replicas":3}}"#,
        )
        .ok();
        assert_eq!(
            intent,
            Some(Intent {
                replicas: Some(3),
                expect: None,
                apply: false
            })
        );
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        for body in [
            &b"{"[..],
            b"[1]",
            br#"{"spec":{"replicas":"x"}}"#,
            br#"{"spec":{"replicas":1.5}}"#,
        ] {
            let err = patch("application/merge-patch+json", body)
                .err()
                .map(|e| e.code);
            assert_eq!(err, Some(400), "{}", String::from_utf8_lossy(body));
        }
        let err = patch("application/json-patch+json", b"[]")
            .err()
            .map(|e| e.code);
        assert_eq!(err, Some(415));
    }

    #[test]
    fn resource_version_is_a_precondition() {
        let intent = patch(
            "application/merge-patch+json",
            br#"{"metadata":{"resourceVersion":"7"}}"#,
        )
        .ok();
        assert_eq!(intent.and_then(|i| i.expect), Some(7));
    }
}
