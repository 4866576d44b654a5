//! Control events of a session: the operator's event rate first (an over-rate move is parked,
//! see [`super::parked`]), then admission in one place — visibility, policy, arm, hold, bounds,
//! other owners (autoscaler, GitOps, an HPA's min/max: [`crate::ownership`]), cooldown — and
//! the hand-off to the target's coalescer. Every event gets one outcome; one that leaves the
//! cluster as it was is answered with the target's real state too, so the control that sent it
//! shows the truth again.

use kubeknobs_proto::v1::{self, OutcomeKind, RejectReason};
use tokio::time::Instant;

use super::Session;
use super::parked::{Parked, Waiting};
use crate::audit::{self, Record};
use crate::coalesce::Submission;
use crate::ownership::{self, Verdict};

impl Session {
    /// A control event from the bridge.
    pub(super) fn control(&self, event: v1::ControlEvent, parked: &mut Parked) {
        self.shared.metrics.event_received();
        let waiting = Waiting {
            event,
            received: Instant::now(),
        };
        if parked.holds(&waiting.event.target) {
            // An older move of this target waits for the rate: this one must not overtake it.
            let wake = parked.wake().unwrap_or_else(Instant::now);
            return self.park(waiting, parked, wake);
        }
        match self.permit.try_event() {
            Ok(()) => self.admit(waiting),
            Err(wait) if self.parkable(&waiting.event.target) => {
                self.park(waiting, parked, Instant::now() + wait)
            }
            // Not a target this session may move: admission refuses it without spending a token.
            Err(_) => self.admit(waiting),
        }
    }

    /// Looks at the parked moves again, oldest first, as far as the operator's rate allows.
    pub(super) fn unpark(&self, parked: &mut Parked) {
        while let Some(waiting) = parked.pop() {
            match self.permit.try_event() {
                Ok(()) => self.admit(waiting),
                Err(wait) => return parked.unpop(waiting, Instant::now() + wait),
            }
        }
    }

    /// True when `target` is one this session may see: only those are worth a parking slot.
    fn parkable(&self, target: &str) -> bool {
        let view = self.shared.view();
        view.catalog.get(target).is_some() && view.policy.can_see(&self.identity, target)
    }

    fn park(&self, waiting: Waiting, parked: &mut Parked, wake: Instant) {
        tracing::trace!(operator = %self.operator, target_name = %waiting.event.target, "move parked over the event rate");
        if let Some(old) = parked.park(waiting, wake) {
            if self.noise().note("merged") {
                tracing::info!(
                    operator = %self.operator, target_name = %old.event.target,
                    "moves from {} arrive faster than limits.events_per_second: the latest per target waits its turn, older ones are superseded",
                    self.operator
                );
            }
            let outcome = outcome(
                &old.event,
                OutcomeKind::Superseded,
                RejectReason::Unspecified,
            );
            self.reply
                .send_outcome(outcome("a later value replaced it".into()), None);
        }
    }

    /// Admission: checks `waiting` against the view in force and hands it to its coalescer, or
    /// answers it with the one reason it is refused.
    pub(super) fn admit(&self, waiting: Waiting) {
        let Waiting { event, received } = waiting;
        let view = self.shared.view();
        let visible = view.policy.can_see(&self.identity, &event.target);
        let Some(target) = view.catalog.get(&event.target).filter(|_| visible) else {
            let message = format!("no target named {:?} in the catalog", event.target);
            return self.reject(&event, RejectReason::UnknownTarget, message);
        };
        let action = target.kind.action();
        if let Err(err) = view.policy.authorize(&self.identity, &target.name, action) {
            return self.reject(&event, RejectReason::Forbidden, err.to_string());
        }
        if target.requires_arm && !self.armed.load(std::sync::atomic::Ordering::Relaxed) {
            let message = format!(
                "target {} is destructive: hold the arm control while changing it",
                target.name
            );
            return self.reject(&event, RejectReason::NotArmed, message);
        }
        if let Err(err) = self.shared.holds.check(&target.name, &self.operator) {
            return self.reject(&event, RejectReason::Held, err.to_string());
        }
        let value = match target.check(event.value) {
            Ok(value) => value,
            Err(refusal) => return self.reject(&event, refusal.reason, refusal.message),
        };
        // Other owners: an autoscaler or GitOps tool the target's rules say not to fight, and
        // an HPA's min that would pass its max.
        let hub = &self.shared.hub;
        let warning = match ownership::decide(target, &hub.owners(&target.name)) {
            Verdict::Admit => None,
            Verdict::Warn(warning) => Some(warning),
            Verdict::Refuse(message) => return self.reject(&event, RejectReason::Managed, message),
        };
        if let Err(refusal) =
            ownership::check_hpa_bounds(target, value, hub.hpa_bounds(&target.name))
        {
            return self.reject(&event, refusal.reason, refusal.message);
        }
        if target.kind.is_one_shot() {
            if value == 0 {
                return self.released(&event);
            }
            if let Err(left) = self
                .shared
                .cooldowns
                .try_start(&target.name, target.cooldown)
            {
                let message = format!(
                    "rate limited: cooldown: target {} acted less than {:?} ago (cooldown_ms); try again in {} ms",
                    target.name,
                    target.cooldown,
                    left.as_millis().max(1)
                );
                return self.reject(&event, RejectReason::RateLimited, message);
            }
        }
        tracing::debug!(operator = %self.operator, target_name = %target.name, value, seq = event.seq, "control");
        if let Some(coalescer) = self.shared.coalescers.get(&target.name) {
            coalescer.submit(Submission {
                seq: event.seq,
                value,
                operator: self.operator.clone(),
                groups: self.identity.groups.clone(),
                reply: self.reply.clone(),
                received,
                warning,
            });
        }
    }

    /// Refuses `event`: audited, answered with the reason (and, for a target the session may
    /// see, its real state), and logged as the first of its kind this second or counted.
    pub(super) fn reject(&self, event: &v1::ControlEvent, reason: RejectReason, message: String) {
        let snapshot = self.shared.hub.snapshot();
        let truth = snapshot.get(&event.target);
        if self.noise().note(reason.as_str_name()) {
            let target = crate::telemetry::clip(&event.target);
            tracing::warn!(operator = %self.operator, target_name = %target, value = event.value, reason = reason.as_str_name(), %message, "rejected");
            self.shared.audit.record(&Record {
                time: Record::now(),
                operator: &self.operator,
                target: &target,
                old: truth.and_then(|s| s.desired),
                new: Some(event.value).filter(|v| v.is_finite()),
                outcome: "rejected",
                reason: Some(audit::reason_name(reason)),
                message: &message,
                latency_ms: 0.0,
                dry_run: false,
                count: None,
            });
        }
        // An unknown target may be one the policy hides: its state is not this session's to see.
        let truth = truth
            .filter(|_| reason != RejectReason::UnknownTarget)
            .cloned();
        let outcome = outcome(event, OutcomeKind::Rejected, reason);
        self.reply.send_outcome(outcome(message), truth);
    }

    /// Answers the release (0) of a one-shot button: nothing to do, nothing changed.
    fn released(&self, event: &v1::ControlEvent) {
        let outcome = outcome(event, OutcomeKind::Applied, RejectReason::Unspecified);
        self.reply
            .send_outcome(outcome("button released: nothing to do".to_owned()), None);
    }

    fn noise(&self) -> std::sync::MutexGuard<'_, crate::summary::LogSummary> {
        self.noise.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the rejected and merged moves counted so far are due to be summarised.
    pub(super) fn noise_due(&self) -> Option<Instant> {
        self.noise().due()
    }

    /// Logs (and, for refusals, audits) one line per kind of move that was only counted in the
    /// interval just ended.
    pub(super) fn log_summary(&self) {
        let (counted, interval) = {
            let mut noise = self.noise();
            (noise.take(), noise.interval())
        };
        for (kind, n) in counted {
            let Some(reason) = RejectReason::from_str_name(&kind) else {
                tracing::info!(operator = %self.operator, count = n, "{n} more moves from {} superseded under limits.events_per_second in the last {interval:?} (the latest per target is kept)", self.operator);
                continue;
            };
            let message = format!(
                "{n} more moves from {} rejected ({kind}) in the last {interval:?}",
                self.operator
            );
            tracing::warn!(operator = %self.operator, reason = %kind, count = n, "{message}");
            self.shared.audit.record(&Record {
                time: Record::now(),
                operator: &self.operator,
                target: "*",
                old: None,
                new: None,
                outcome: "rejected",
                reason: Some(audit::reason_name(reason)),
                message: &message,
                latency_ms: 0.0,
                dry_run: false,
                count: Some(n),
            });
        }
    }
}

/// An outcome of `event`, waiting for its message.
fn outcome(
    event: &v1::ControlEvent,
    kind: OutcomeKind,
    reason: RejectReason,
) -> impl FnOnce(String) -> v1::Outcome + '_ {
    move |message| v1::Outcome {
        seq: event.seq,
        target: event.target.clone(),
        value: event.value,
        kind: kind as i32,
        reason: reason as i32,
        message,
    }
}
