//! `[[policy]]` rules as written, and their validation into a [`Policy`].
//!
//! A rule naming a target that is not catalogued is refused (a typo would silently grant
//! nothing); operator names are not checked against `[[operators]]`, because identities can also
//! come from client certificates.

use serde::Deserialize;
use toml::Spanned;

use super::{Result, Source};
use crate::catalog::Catalog;
use crate::policy::{Action, Policy, Rule, Subject, TargetPattern};

/// One `[[policy]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    rule: Option<String>,
    operators: Spanned<Vec<String>>,
    targets: Spanned<Vec<String>>,
    actions: Option<Vec<Action>>,
    #[serde(default)]
    deny: bool,
}

impl RawRule {
    /// Where `operators` is written.
    pub(super) fn operators_at(&self) -> usize {
        self.operators.span().start
    }
}

/// Checks every rule and builds the policy; `any_reviewed`: `auth.token_review_any_identity`.
pub(super) fn validate(
    raw: &[Spanned<RawRule>],
    catalog: &Catalog,
    any_reviewed: bool,
    src: &Source<'_>,
) -> Result<Policy> {
    let mut rules = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.iter().enumerate() {
        let r = spanned.as_ref();
        let field = |name: &str| format!("policy[{i}].{name}");
        if r.operators.as_ref().is_empty()
            || r.operators.as_ref().iter().any(|o| o.trim().is_empty())
        {
            return Err(src.invalid(
                r.operators.span().start,
                field("operators"),
                "list operator names, \"group:NAME\" or \"*\" (none may be empty)",
            ));
        }
        if r.targets.as_ref().is_empty() {
            return Err(src.invalid(
                r.targets.span().start,
                field("targets"),
                "list target names, prefixes ending in '*', or \"*\"",
            ));
        }
        for target in r.targets.as_ref() {
            if !target.ends_with('*') && catalog.get(target).is_none() {
                return Err(src.invalid(
                    r.targets.span().start,
                    field("targets"),
                    format!("no target named {target:?} in the catalog"),
                ));
            }
        }
        let actions = r.actions.clone().unwrap_or_else(|| Action::ALL.to_vec());
        rules.push(Rule {
            name: r.rule.clone().unwrap_or_else(|| format!("policy[{i}]")),
            subjects: r
                .operators
                .as_ref()
                .iter()
                .map(|s| Subject::parse(s.trim()))
                .collect(),
            targets: r
                .targets
                .as_ref()
                .iter()
                .map(|t| TargetPattern(t.clone()))
                .collect(),
            actions,
            deny: r.deny,
        });
    }
    Ok(Policy::new(rules).covering_any_reviewed_identity(any_reviewed))
}
