//! A target's rules about other owners of its value (`when_autoscaled`, `when_gitops`): part of
//! the catalog, so the catalog needs nothing from [`crate::ownership`], which applies them.

use super::TargetKind;
use crate::policy::Action;

/// What a move of an autoscaled replica target does (`when_autoscaled = "refuse"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenAutoscaled {
    /// Refused as `MANAGED`, with the HPA's bounds as the knob to move instead (the default).
    #[default]
    Refuse,
    /// Written anyway; the autoscaler will likely put its own value back.
    Allow,
}

/// What a change of a GitOps-managed target does (`when_gitops = "warn"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenGitops {
    /// Written, and the outcome says the GitOps tool may revert it (the default).
    #[default]
    Warn,
    /// Refused as `MANAGED`: change it in Git instead.
    Refuse,
    /// Written without a word.
    Allow,
}

/// A target's rules about other owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rules {
    /// For replica kinds: when an HPA scales the object.
    pub when_autoscaled: WhenAutoscaled,
    /// When a GitOps tool manages the object.
    pub when_gitops: WhenGitops,
}

impl Rules {
    /// What a target of `kind` does under these rules, for `check`, in the kind's own words: a
    /// fader's moves, a toggle's changes, a button's restarts.
    pub fn explain(&self, kind: TargetKind) -> String {
        let changes = match kind.action() {
            Action::Move => "moves",
            Action::Toggle => "changes",
            Action::Restart => "restarts",
        };
        let gitops = match self.when_gitops {
            WhenGitops::Warn => format!(
                "when GitOps-managed: applies {changes} and warns that Argo CD/Flux may revert them"
            ),
            WhenGitops::Refuse => {
                format!("when GitOps-managed: refuses {changes} (change it in Git instead)")
            }
            WhenGitops::Allow => {
                format!("when GitOps-managed: applies {changes} without a warning")
            }
        };
        if !kind.is_autoscalable() {
            return gitops;
        }
        let autoscaled = match self.when_autoscaled {
            WhenAutoscaled::Refuse => {
                "when autoscaled: refuses moves (move the HPA's bounds instead)"
            }
            WhenAutoscaled::Allow => {
                "when autoscaled: applies moves (the autoscaler will likely undo them)"
            }
        };
        format!("{autoscaled}; {gitops}")
    }
}
