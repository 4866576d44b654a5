//! Authorization: which operators (or groups) may see and change which targets, and how.
//!
//! The policy is an ordered list of rules from the config's `[[policy]]` tables. With no rules
//! at all every operator sees and changes every target (a one-person setup needs no policy).
//! Once there is one rule, the policy is default-deny:
//!
//! - an identity the cluster vouched for (`auth.token_review`, [`Identity::reviewed`]) gets
//!   only what a rule names it for, by name or `group:`: neither the open default of a policy
//!   without rules nor `"*"` covers it, since the cluster may authenticate anyone (every Pod's
//!   ServiceAccount), unless the config opts in (`auth.token_review_any_identity`);
//!
//! - an operator **sees** a target when some *allow* rule matches both (a rule with
//!   `actions = []` grants seeing only); invisible targets are left out of `Welcome` and of state
//!   updates, and events for them are answered `unknown target`, as if they did not exist;
//! - an operator may **act** on a target when the *first* rule that matches operator, target and
//!   action is an allow rule. A matching deny rule, or no matching rule, forbids it, and the
//!   refusal names the rule (or says that none granted it).

use std::fmt;

use crate::identity::Identity;

/// What a control event does to a target; policies grant actions separately
/// (`actions = ["move", "toggle"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Set a continuous value (replicas): a fader or knob.
    Move,
    /// A one-shot action (rollout restart): a button.
    Restart,
    /// Flip a boolean (pause, suspend, cordon): a toggle button.
    Toggle,
}

impl Action {
    /// Every action, the default of a rule without `actions`.
    pub const ALL: [Action; 3] = [Action::Move, Action::Restart, Action::Toggle];
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Move => "move",
            Action::Restart => "restart",
            Action::Toggle => "toggle",
        })
    }
}

/// Who a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `"*"`: every operator.
    Anyone,
    /// An operator by name.
    Operator(String),
    /// `"group:NAME"`: every operator in the group.
    Group(String),
}

impl Subject {
    /// Parses `*`, `group:NAME` or an operator name.
    pub fn parse(text: &str) -> Subject {
        match text {
            "*" => Subject::Anyone,
            _ => match text.strip_prefix("group:") {
                Some(group) => Subject::Group(group.to_owned()),
                None => Subject::Operator(text.to_owned()),
            },
        }
    }

    fn matches(&self, who: &Identity, any_reviewed: bool) -> bool {
        match self {
            Subject::Anyone => !who.reviewed || any_reviewed,
            Subject::Operator(name) => *who.name == **name,
            Subject::Group(group) => who.groups.iter().any(|g| g == group),
        }
    }
}

/// A target name, or a prefix ending in `*` (`"shop-*"`, `"*"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPattern(pub String);

impl TargetPattern {
    fn matches(&self, target: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => target.starts_with(prefix),
            None => self.0 == target,
        }
    }
}

/// One `[[policy]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's name, quoted in refusals (`rule`, default `policy[N]`).
    pub name: String,
    /// Whom it is about (`operators`).
    pub subjects: Vec<Subject>,
    /// Which targets (`targets`).
    pub targets: Vec<TargetPattern>,
    /// Which actions it allows or denies (`actions`; empty: seeing only).
    pub actions: Vec<Action>,
    /// True for a deny rule (`deny = true`).
    pub deny: bool,
}

impl Rule {
    fn covers(&self, who: &Identity, target: &str, any_reviewed: bool) -> bool {
        self.subjects.iter().any(|s| s.matches(who, any_reviewed))
            && self.targets.iter().any(|t| t.matches(target))
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A deny rule matched first.
    #[error("{operator} may not {action} target {target}: forbidden by policy rule {rule:?}")]
    Denied {
        /// The operator.
        operator: String,
        /// The action.
        action: Action,
        /// The target.
        target: String,
        /// The deny rule.
        rule: String,
    },
    /// No rule allowed it.
    #[error(
        "{operator} may not {action} target {target}: no policy rule grants it (the policy is default-deny)"
    )]
    NotGranted {
        /// The operator.
        operator: String,
        /// The action.
        action: Action,
        /// The target.
        target: String,
    },
}

/// The rules, in config order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    rules: Vec<Rule>,
    /// `"*"` and the open default cover identities the cluster vouched for too
    /// (`auth.token_review_any_identity`).
    any_reviewed: bool,
}

impl Policy {
    /// A policy of `rules`; none means every configured operator may see and do everything.
    pub fn new(rules: Vec<Rule>) -> Policy {
        Policy {
            rules,
            any_reviewed: false,
        }
    }

    /// The same policy, where `"*"` and the open default also cover identities the cluster
    /// vouched for when `any` (`auth.token_review_any_identity`).
    pub fn covering_any_reviewed_identity(mut self, any: bool) -> Policy {
        self.any_reviewed = any;
        self
    }

    /// The rules, in config order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The open default of a policy without rules, for `who`.
    fn open_to(&self, who: &Identity) -> bool {
        self.rules.is_empty() && (!who.reviewed || self.any_reviewed)
    }

    /// True when `who` may see `target`.
    pub fn can_see(&self, who: &Identity, target: &str) -> bool {
        self.open_to(who)
            || self
                .rules
                .iter()
                .any(|r| !r.deny && r.covers(who, target, self.any_reviewed))
    }

    /// Allows `action` on `target` by `who`, or says which rule forbids it.
    pub fn authorize(&self, who: &Identity, target: &str, action: Action) -> Result<(), Error> {
        if self.open_to(who) {
            return Ok(());
        }
        let first = self
            .rules
            .iter()
            .find(|r| r.actions.contains(&action) && r.covers(who, target, self.any_reviewed));
        match first {
            Some(rule) if !rule.deny => Ok(()),
            Some(rule) => Err(Error::Denied {
                operator: who.name.to_string(),
                action,
                target: target.to_owned(),
                rule: rule.name.clone(),
            }),
            None => Err(Error::NotGranted {
                operator: who.name.to_string(),
                action,
                target: target.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(name: &str, groups: &[&str]) -> Identity {
        Identity::new(name, groups.iter().map(|g| g.to_string()).collect())
    }

    fn rule(
        name: &str,
        subjects: &[&str],
        targets: &[&str],
        actions: &[Action],
        deny: bool,
    ) -> Rule {
        Rule {
            name: name.into(),
            subjects: subjects.iter().map(|s| Subject::parse(s)).collect(),
            targets: targets
                .iter()
                .map(|t| TargetPattern(t.to_string()))
                .collect(),
            actions: actions.to_vec(),
            deny,
        }
    }

    fn policy() -> Policy {
        Policy::new(vec![
            rule(
                "no-db-restart",
                &["group:ops"],
                &["db"],
                &[Action::Restart],
                true,
            ),
            rule("ops", &["group:ops"], &["*"], &Action::ALL, false),
            rule("viewers", &["carol"], &["shop-*"], &[], false),
        ])
    }

    #[test]
    fn no_rules_allow_everything() {
        let p = Policy::default();
        assert!(p.can_see(&who("x", &[]), "web"));
        assert_eq!(p.authorize(&who("x", &[]), "web", Action::Toggle), Ok(()));
    }

    #[test]
    fn a_reviewed_identity_gets_only_what_a_rule_names_it_for() {
        let stray = Identity::reviewed("system:serviceaccount:kube-system:default", vec![]);
        let open = Policy::default();
        assert!(!open.can_see(&stray, "web"), "no rules: nothing for it");
        let err = open.authorize(&stray, "web", Action::Move).unwrap_err();
        assert!(
            err.to_string().contains("no policy rule grants it"),
            "{err}"
        );
        let anyone = Policy::new(vec![rule("all", &["*"], &["*"], &Action::ALL, false)]);
        assert!(!anyone.can_see(&stray, "web"), "\"*\" does not name it");
        assert!(anyone.authorize(&stray, "web", Action::Move).is_err());
        assert!(anyone.can_see(&who("alice", &[]), "web"));

        let ops = Identity::reviewed("system:serviceaccount:ops:frank", vec!["ops".into()]);
        let p = policy();
        assert_eq!(p.authorize(&ops, "web", Action::Move), Ok(()), "by group");
        let named = Policy::new(vec![rule(
            "frank",
            &["system:serviceaccount:ops:frank"],
            &["web"],
            &[Action::Move],
            false,
        )]);
        assert_eq!(
            named.authorize(&ops, "web", Action::Move),
            Ok(()),
            "by name"
        );

        let opted = Policy::default().covering_any_reviewed_identity(true);
        assert_eq!(opted.authorize(&stray, "web", Action::Move), Ok(()));
        let opted = anyone.covering_any_reviewed_identity(true);
        assert!(opted.can_see(&stray, "web"));
    }

    #[test]
    fn the_first_matching_rule_decides_and_is_named() {
        let p = policy();
        let alice = who("alice", &["ops"]);
        assert_eq!(p.authorize(&alice, "db", Action::Move), Ok(()));
        let err = p.authorize(&alice, "db", Action::Restart).unwrap_err();
        assert!(err.to_string().contains("rule \"no-db-restart\""), "{err}");
    }

    #[test]
    fn view_only_rules_show_targets_but_grant_nothing() {
        let p = policy();
        let carol = who("carol", &[]);
        assert!(p.can_see(&carol, "shop-web"));
        assert!(!p.can_see(&carol, "web"));
        let err = p.authorize(&carol, "shop-web", Action::Move).unwrap_err();
        assert!(
            err.to_string().contains("no policy rule grants it"),
            "{err}"
        );
    }
}
