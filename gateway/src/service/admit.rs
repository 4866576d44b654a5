//! Admission of one control event, in one place: the operator's event rate, then visibility,
//! policy, arm, hold, bounds (the target's, other owners' — autoscaler, GitOps: see
//! [`crate::ownership`] — and an HPA's min/max), cooldown. The first check that fails is the
//! one refusal; [`Refusal::reason`] is the only place a refusal's `RejectReason` is chosen.
//!
//! The event rate decides *when* a move is looked at, never whether: over the rate, a move of
//! a target the session may see waits ([`Decision::Wait`], see `super::parked`).

use std::sync::Arc;
use std::time::Duration;

use kubeknobs_proto::v1::{ControlEvent, RejectReason};

use super::View;
use crate::catalog::{BadValue, TargetSpec};
use crate::identity::Identity;
use crate::ownership::{self, CrossedBounds, Verdict};
use crate::policy;
use crate::ratelimit::{Cooldowns, SessionPermit};
use crate::state::StateHub;
use crate::touch::{self, Holds};

/// What admission reads: the session's view and operator, and what every session shares.
pub(super) struct Gate<'a> {
    /// The catalog and policy in force.
    pub view: &'a View,
    /// Who sent the event.
    pub identity: &'a Identity,
    /// True while the bridge's arm control is held.
    pub armed: bool,
    /// Who holds which target's control.
    pub holds: &'a Holds,
    /// Other owners and HPA bounds, as last observed.
    pub hub: &'a StateHub,
    /// When each one-shot target last acted.
    pub cooldowns: &'a Cooldowns,
}

/// How the operator's event rate applies to a move.
#[derive(Clone, Copy)]
pub(super) enum Rate<'a> {
    /// A new move spends one event; over the rate it waits if its target is one the session
    /// may see (only those are worth a parking slot), and is refused at once if not.
    New(&'a SessionPermit),
    /// A parked move spends one event, or waits again.
    Parked(&'a SessionPermit),
    /// The session is ending: its last moves are the operator's to keep, whatever the rate.
    Exempt,
}

/// What admission does with a move.
#[derive(Debug)]
pub(super) enum Decision<'a> {
    /// Hand `value` to the target's coalescer; `warning` goes with the applied outcome.
    Write {
        /// The target.
        target: &'a TargetSpec,
        /// The checked value.
        value: i32,
        /// Another owner may undo it (`when_gitops = "warn"`).
        warning: Option<String>,
    },
    /// The release (0) of a one-shot button: nothing to do.
    Release,
    /// Over the operator's event rate: look again after this long.
    Wait(Duration),
    /// Refused, for one reason.
    Refuse(Refusal),
}

/// Why a move is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No such target, or one the policy hides from this operator.
    #[error("no target named {0:?} in the catalog")]
    UnknownTarget(String),
    /// The policy forbids the action.
    #[error(transparent)]
    Forbidden(policy::Error),
    /// The target needs the arm control held.
    #[error("target {0} is destructive: hold the arm control while changing it")]
    NotArmed(String),
    /// Another operator is touching the target's control.
    #[error(transparent)]
    Held(touch::Error),
    /// Not a number, or outside the target's bounds.
    #[error(transparent)]
    Value(BadValue),
    /// Another owner (autoscaler, GitOps tool) the target's rules say not to fight.
    #[error("{0}")]
    Managed(String),
    /// An HPA's min above its max, or its max below its min.
    #[error(transparent)]
    Crossed(CrossedBounds),
    /// A one-shot target acted less than its cooldown ago.
    #[error(
        "rate limited: cooldown: target {target} acted less than {cooldown:?} ago (cooldown_ms); try again in {} ms",
        left.as_millis().max(1)
    )]
    Cooldown {
        /// The target.
        target: String,
        /// Its `cooldown_ms`.
        cooldown: Duration,
        /// How long until it may act again.
        left: Duration,
    },
}

impl Refusal {
    /// The reason code the bridge gets.
    pub fn reason(&self) -> RejectReason {
        match self {
            Refusal::UnknownTarget(_) => RejectReason::UnknownTarget,
            Refusal::Forbidden(_) => RejectReason::Forbidden,
            Refusal::NotArmed(_) => RejectReason::NotArmed,
            Refusal::Held(_) => RejectReason::Held,
            Refusal::Value(BadValue::NotANumber { .. }) => RejectReason::InvalidValue,
            Refusal::Value(BadValue::BelowMin { .. } | BadValue::AboveMax { .. })
            | Refusal::Crossed(_) => RejectReason::OutOfRange,
            Refusal::Managed(_) => RejectReason::Managed,
            Refusal::Cooldown { .. } => RejectReason::RateLimited,
        }
    }
}

impl<'a> Gate<'a> {
    /// Admission of `event`: the checks in order, the first that fails refusing it. A one-shot
    /// target's cooldown starts when a press is admitted.
    pub fn admit(&self, event: &ControlEvent, rate: Rate<'_>) -> Decision<'a> {
        let (view, who) = (self.view, self.identity);
        let visible = view
            .catalog
            .get(&event.target)
            .filter(|_| view.policy.can_see(who, &event.target));
        let over_rate = match rate {
            Rate::New(permit) => permit.try_event().err().filter(|_| visible.is_some()),
            Rate::Parked(permit) => permit.try_event().err(),
            Rate::Exempt => None,
        };
        if let Some(wait) = over_rate {
            return Decision::Wait(wait);
        }
        match self.check(event, visible) {
            Ok(decision) => decision,
            Err(refusal) => Decision::Refuse(refusal),
        }
    }

    /// The checks after the rate, for a move of `target` (`None`: unknown or hidden).
    fn check(
        &self,
        event: &ControlEvent,
        target: Option<&'a Arc<TargetSpec>>,
    ) -> Result<Decision<'a>, Refusal> {
        let target = target.ok_or_else(|| Refusal::UnknownTarget(event.target.clone()))?;
        let action = target.kind.action();
        (self.view.policy)
            .authorize(self.identity, &target.name, action)
            .map_err(Refusal::Forbidden)?;
        if target.requires_arm && !self.armed {
            return Err(Refusal::NotArmed(target.name.clone()));
        }
        (self.holds)
            .check(&target.name, &self.identity.name)
            .map_err(Refusal::Held)?;
        let value = target.check(event.value).map_err(Refusal::Value)?;
        let warning = match ownership::decide(target, &self.hub.owners(&target.name)) {
            Verdict::Admit => None,
            Verdict::Warn(warning) => Some(warning),
            Verdict::Refuse(message) => return Err(Refusal::Managed(message)),
        };
        ownership::check_hpa_bounds(target, value, self.hub.hpa_bounds(&target.name))
            .map_err(Refusal::Crossed)?;
        if target.kind.is_one_shot() {
            if value == 0 {
                return Ok(Decision::Release);
            }
            let cooldown = target.cooldown;
            (self.cooldowns)
                .try_start(&target.name, cooldown)
                .map_err(|left| Refusal::Cooldown {
                    target: target.name.clone(),
                    cooldown,
                    left,
                })?;
        }
        Ok(Decision::Write {
            target,
            value,
            warning,
        })
    }
}

#[cfg(test)]
mod tests;
