//! Operators and their token hashes, as written in `[[operators]]` of the config or in the
//! tokens file (`auth.tokens_file`, same schema, re-read when it changes).

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{Error, Result, Source};
use crate::auth::{Operator, Operators};

/// One `[[operators]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperator {
    name: Spanned<String>,
    token_sha256: Spanned<String>,
    #[serde(default)]
    groups: Vec<String>,
}

impl RawOperator {
    /// The groups as written.
    pub(super) fn groups(&self) -> &[String] {
        &self.groups
    }
}

/// A tokens file: `[[operators]]` entries only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    #[serde(default)]
    operators: Vec<Spanned<RawOperator>>,
}

/// Reads and validates the tokens file at `path`; errors name its lines like the config's.
pub fn load_tokens(path: &Path) -> Result<Operators> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let raw: RawTokens = super::deserialize(&text, path)?;
    validate_operators(
        &raw.operators,
        &Source {
            text: &text,
            origin: path,
        },
    )
}

pub(super) fn validate_operators(
    raw: &[Spanned<RawOperator>],
    src: &Source<'_>,
) -> Result<Operators> {
    let mut operators = Operators::default();
    for (i, op) in raw.iter().enumerate() {
        let field = |name: &str| format!("operators[{i}].{name}");
        let name = op.as_ref().name.as_ref().trim();
        if name.is_empty() {
            return Err(src.invalid(
                op.as_ref().name.span().start,
                field("name"),
                "must not be empty",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(src.invalid(
                op.as_ref().name.span().start,
                field("name"),
                format!(
                    "{name:?} holds a control character; operator names are logged and audited"
                ),
            ));
        }
        let hash_field = &op.as_ref().token_sha256;
        let hash = Operator::parse_hash(hash_field.as_ref()).map_err(|err| {
            src.invalid(
                hash_field.span().start,
                field("token_sha256"),
                err.to_string(),
            )
        })?;
        operators
            .add(Operator::new(name, hash).with_groups(op.as_ref().groups.clone()))
            .map_err(|err| src.invalid(op.span().start, field("name"), err.to_string()))?;
    }
    Ok(operators)
}
