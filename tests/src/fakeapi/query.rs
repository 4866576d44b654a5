//! Query parameters as the API server reads them: `fieldSelector`, `watch`, `resourceVersion`,
//! `timeoutSeconds`, `limit`/`continue`, `dryRun`, `fieldManager`. Malformed values answer 400.
//!
//! Field selectors support what the API server supports for apps/v1 workloads:
//! `metadata.name` and `metadata.namespace` with `=`, `==` or `!=`, comma-separated.
//! `labelSelector` is accepted and ignored.

use super::status::ApiError;
use super::store::Workload;

/// Decoded query pairs, in order.
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes a raw (still percent-encoded) query string.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
        Self { pairs }
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`1`).
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// `dryRun`: absent → false, `All` → true, anything else → 400.
    pub(crate) fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
            ))),
        }
    }

    /// A non-negative integer parameter.
    pub(crate) fn number(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "{key}: Invalid value: \"{v}\": must be a non-negative integer"
                ))
            }),
        }
    }

    /// The `fieldSelector`.
    pub(crate) fn field_selector(&self) -> Result<FieldSelector, ApiError> {
        FieldSelector::parse(self.get("fieldSelector").unwrap_or_default())
    }
}

/// Which metadata field a selector requirement tests.
#[derive(Clone, Copy, Debug)]
enum Field {
    Name,
    Namespace,
}

/// One `field=value` / `field!=value` requirement.
#[derive(Clone, Debug)]
struct Requirement {
    field: Field,
    equal: bool,
    value: String,
}

/// A parsed field selector; empty matches everything.
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldSelector {
    requirements: Vec<Requirement>,
}

impl FieldSelector {
    fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                )));
            };
            let field = match field.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "field label not supported: {other}"
                    )));
                }
            };
            requirements.push(Requirement {
                field,
                equal,
                value: value.trim().to_owned(),
            });
        }
        Ok(Self { requirements })
    }

    /// Whether `w` satisfies every requirement.
    pub(crate) fn matches(&self, w: &Workload) -> bool {
        self.requirements.iter().all(|r| {
            let actual = match r.field {
                Field::Name => &w.name,
                Field::Namespace => &w.namespace,
            };
            (actual == &r.value) == r.equal
        })
    }
}
