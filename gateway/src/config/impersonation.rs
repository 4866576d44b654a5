//! Who the gateway may impersonate (`cluster.impersonate`): exactly the users, groups and
//! ServiceAccounts the config can produce, so `kubeknobs-gateway rbac` grants `impersonate` by
//! `resourceNames` and nothing broader, and the backend forwards no group the grant lacks.
//!
//! - **users**: the configured operators' names (`[[operators]]` and the tokens file as it is
//!   when the config is read) and the names allow rules that grant actions give in `operators`;
//! - **ServiceAccounts**: those names of the form `system:serviceaccount:NS:NAME`, which the API
//!   server checks as `impersonate` on `serviceaccounts` NAME in NS (and whose groups it fills
//!   in itself, so none are sent);
//! - **groups**: the configured operators' groups and the `group:NAME`s of such allow rules.
//!
//! Refused, so `check` exits 2 before anything runs: `system:masters` anywhere in them (it
//! would make whoever holds the gateway's token cluster-admin), and any config under which an
//! identity the config cannot name could write, since impersonating it would need `impersonate`
//! on every user: `"*"` or `group:` allow rules with client certificates (any CN the CA signs)
//! or TokenReview (any account in the group), and a policy without rules that lets such
//! identities act (client certificates, `auth.token_review_any_identity`).

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::operators::RawOperator;
use super::policy::RawRule;
use super::{Result, Source};
use crate::auth::Operators;
use crate::policy::{Policy, Subject};

/// The group whose members bypass all authorization; never impersonated.
pub const MASTERS: &str = "system:masters";

/// What the gateway may impersonate, all named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impersonation {
    /// Users (not ServiceAccounts), by name.
    pub users: BTreeSet<String>,
    /// Groups, by name; never [`MASTERS`].
    pub groups: BTreeSet<String>,
    /// ServiceAccount names by namespace.
    pub service_accounts: BTreeMap<String, BTreeSet<String>>,
}

/// The namespace and name of a ServiceAccount's username (`system:serviceaccount:NS:NAME`).
pub fn service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

impl Impersonation {
    fn add_user(&mut self, name: &str) {
        match service_account(name) {
            Some((ns, sa)) => {
                self.service_accounts
                    .entry(ns.to_owned())
                    .or_default()
                    .insert(sa.to_owned());
            }
            None => {
                self.users.insert(name.to_owned());
            }
        }
    }

    /// True when nothing at all may be impersonated.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.service_accounts.is_empty()
    }
}

/// Where identities come from besides the config's own operators.
pub(super) struct Sources {
    /// `auth.token_review`.
    pub token_review: bool,
    /// `auth.token_review_any_identity`.
    pub any_reviewed: bool,
    /// `auth.client_ca`.
    pub client_certs: bool,
}

/// The identities `cluster.impersonate` may take, or why the config would need unbounded
/// impersonation. `at` is where `cluster.impersonate` is written.
pub(super) fn validate(
    at: usize,
    raw_operators: &[Spanned<RawOperator>],
    operators: &Operators,
    raw_policy: &[Spanned<RawRule>],
    policy: &Policy,
    sources: &Sources,
    src: &Source<'_>,
) -> Result<Impersonation> {
    let mut bound = Impersonation::default();
    for (name, groups) in operators.names_and_groups() {
        bound.add_user(name);
        bound.groups.extend(groups.iter().cloned());
    }
    if bound.groups.contains(MASTERS) {
        let (at, field) = raw_operators
            .iter()
            .enumerate()
            .find(|(_, op)| op.as_ref().groups().iter().any(|g| g == MASTERS))
            .map_or((at, "auth.tokens_file".to_owned()), |(i, op)| {
                (op.span().start, format!("operators[{i}].groups"))
            });
        return Err(src.invalid(at, field, masters()));
    }
    let strangers_any = sources.client_certs || (sources.token_review && sources.any_reviewed);
    let strangers_in_group = sources.client_certs || sources.token_review;
    if policy.rules().is_empty() && strangers_any {
        return Err(src.invalid(
            at,
            "cluster.impersonate",
            format!(
                "with no [[policy]], {} may write, and impersonating them would need `impersonate` on every user; add [[policy]] rules that name who may act",
                strangers(sources)
            ),
        ));
    }
    for (i, (rule, raw)) in policy.rules().iter().zip(raw_policy).enumerate() {
        if rule.deny || rule.actions.is_empty() {
            continue;
        }
        let field = format!("policy[{i}].operators");
        let at = raw.as_ref().operators_at();
        for subject in &rule.subjects {
            match subject {
                Subject::Group(group) if group == MASTERS => {
                    return Err(src.invalid(at, field, masters()));
                }
                Subject::Anyone if strangers_any => {
                    let message = format!(
                        "\"*\" lets {} write, and cluster.impersonate would need `impersonate` on every user; name the operators (\"NAME\", \"system:serviceaccount:NS:NAME\") instead",
                        strangers(sources)
                    );
                    return Err(src.invalid(at, field, message));
                }
                Subject::Group(group) if strangers_in_group => {
                    let message = format!(
                        "\"group:{group}\" lets {} write if it is in that group, and cluster.impersonate would need `impersonate` on every user; name the operators (\"NAME\", \"system:serviceaccount:NS:NAME\") instead",
                        strangers(sources)
                    );
                    return Err(src.invalid(at, field, message));
                }
                Subject::Group(group) => {
                    bound.groups.insert(group.clone());
                }
                Subject::Operator(name) => bound.add_user(name),
                Subject::Anyone => {}
            }
        }
    }
    Ok(bound)
}

fn masters() -> String {
    format!(
        "{MASTERS} bypasses all authorization: with cluster.impersonate, whoever holds the gateway's token could act as cluster-admin; it is never impersonated"
    )
}

/// Who, besides configured operators, may connect.
fn strangers(sources: &Sources) -> &'static str {
    match (sources.client_certs, sources.token_review) {
        (true, true) => {
            "any identity with a client certificate (auth.client_ca) or a token the cluster authenticates (auth.token_review)"
        }
        (true, false) => "any identity with a client certificate (auth.client_ca)",
        _ => "any identity the cluster authenticates (auth.token_review)",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> crate::config::Result<Config> {
        let hash = crate::auth::hash_token("t");
        let text = format!(
            "{text}\n[[operators]]\nname = \"alice\"\ntoken_sha256 = \"{hash}\"\ngroups = [\"stage\"]\n\
             [targets.web]\nkind = \"deployment-replicas\"\nname = \"web\"\nmax = 3\n"
        );
        let flags = crate::config::tests::PLAINTEXT;
        Config::parse(&text, Path::new("/etc/kubeknobs/gateway.toml"), &flags)
    }

    fn error_of(text: &str) -> String {
        parse(text).expect_err("must be refused").to_string()
    }

    const REVIEW: &str = "[auth]\ntoken_review = true\n[cluster]\nimpersonate = true\n";

    #[test]
    fn service_account_usernames_split_into_namespace_and_name() {
        assert_eq!(
            service_account("system:serviceaccount:ops:frank"),
            Some(("ops", "frank"))
        );
        for other in [
            "frank",
            "system:serviceaccount:ops",
            "system:serviceaccount::frank",
            "system:serviceaccount:ops:",
            "system:serviceaccount:ops:a:b",
            "system:serviceaccounts:ops",
        ] {
            assert_eq!(service_account(other), None, "{other}");
        }
    }

    #[test]
    fn the_bound_is_what_operators_and_acting_rules_name() {
        let config = parse(&format!(
            "{REVIEW}[[policy]]\noperators = [\"system:serviceaccount:ops:frank\", \"jane\"]\ntargets = [\"web\"]\n\
             [[policy]]\noperators = [\"bob\"]\ntargets = [\"web\"]\nactions = []\n"
        ))
        .expect("valid");
        let bound = config.impersonated().expect("impersonating");
        assert_eq!(bound.users, ["alice".to_owned(), "jane".to_owned()].into());
        assert_eq!(bound.groups, ["stage".to_owned()].into());
        assert_eq!(
            bound.service_accounts,
            [("ops".to_owned(), ["frank".to_owned()].into())].into()
        );
        assert!(parse("").expect("valid").impersonated().is_none());
    }

    #[test]
    fn system_masters_is_never_impersonable() {
        let err = error_of(
            "[cluster]\nimpersonate = true\n[[operators]]\nname = \"root\"\ntoken_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\ngroups = [\"system:masters\"]\n",
        );
        assert!(
            err.starts_with("/etc/kubeknobs/gateway.toml:3: operators[0].groups: system:masters"),
            "{err}"
        );
        let err = error_of(
            "[cluster]\nimpersonate = true\n[[policy]]\noperators = [\"group:system:masters\"]\ntargets = [\"*\"]\n",
        );
        assert!(
            err.contains(":4: policy[0].operators: system:masters"),
            "{err}"
        );
        assert!(
            parse("[[policy]]\noperators = [\"group:system:masters\"]\ntargets = [\"*\"]\n")
                .is_ok(),
            "harmless without impersonation"
        );
    }

    #[test]
    fn configs_that_would_need_unbounded_impersonation_are_refused() {
        let err = error_of(&format!(
            "{REVIEW}[[policy]]\noperators = [\"group:ops\"]\ntargets = [\"*\"]\n"
        ));
        assert!(err.contains(":6: policy[0].operators: \"group:ops\" lets any identity the cluster authenticates (auth.token_review) write"), "{err}");
        let any = "[auth]\ntoken_review = true\ntoken_review_any_identity = true\n[cluster]\nimpersonate = true\n";
        let err = error_of(&format!(
            "{any}[[policy]]\noperators = [\"*\"]\ntargets = [\"*\"]\n"
        ));
        assert!(err.contains("policy[0].operators: \"*\" lets"), "{err}");
        let err = error_of(any);
        assert!(
            err.contains(":5: cluster.impersonate: with no [[policy]]"),
            "{err}"
        );

        // Bounded: names only, view-only group rules, or no strangers at all.
        parse(&format!(
            "{REVIEW}[[policy]]\noperators = [\"group:ops\"]\ntargets = [\"*\"]\nactions = []\n"
        ))
        .expect("view-only");
        parse(&format!(
            "{REVIEW}[[policy]]\noperators = [\"*\"]\ntargets = [\"*\"]\n"
        ))
        .expect("\"*\" does not cover reviewed identities");
        parse("[cluster]\nimpersonate = true\n[[policy]]\noperators = [\"group:stage\"]\ntargets = [\"*\"]\n").expect("only configured operators");
        parse(REVIEW).expect("reviewed identities get nothing without a rule");
    }

    #[test]
    fn client_certificates_with_group_rules_are_unbounded_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        let certs = crate::tls::CertBundle::generate(&["localhost".into()]).expect("certs");
        std::fs::write(&ca, certs.ca_pem).expect("write");
        let err = error_of(&format!(
            "[auth]\nclient_ca = {:?}\n[cluster]\nimpersonate = true\n[[policy]]\noperators = [\"group:ops\"]\ntargets = [\"*\"]\n",
            ca.display().to_string()
        ));
        assert!(err.contains("client certificate (auth.client_ca)"), "{err}");
    }

    #[test]
    fn token_review_audiences_default_to_kubeknobs_and_must_be_named() {
        let config = parse("[auth]\ntoken_review = true\n").expect("valid");
        assert_eq!(config.token_review_audiences, ["kubeknobs"]);
        assert!(config.warnings().is_empty());
        let config =
            parse("[auth]\ntoken_review = true\ntoken_review_audiences = [\"a\", \"b\"]\n")
                .expect("valid");
        assert_eq!(config.token_review_audiences, ["a", "b"]);
        for bad in ["[]", "[\"\"]", "[\"a\", \" \"]"] {
            let err = error_of(&format!(
                "[auth]\ntoken_review = true\ntoken_review_audiences = {bad}\n"
            ));
            assert!(
                err.contains(":3: auth.token_review_audiences: list one or more"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_any_identity_opt_in_needs_token_review_and_is_warned_about() {
        let err = error_of("[auth]\ntoken_review_any_identity = true\n");
        assert!(
            err.contains("auth.token_review_any_identity: needs auth.token_review"),
            "{err}"
        );
        let config = parse("[auth]\ntoken_review = true\ntoken_review_any_identity = true\n")
            .expect("valid");
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("may change every target"),
            "{}",
            warnings[0]
        );
    }
}
