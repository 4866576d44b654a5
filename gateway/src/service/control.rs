//! Control events of a session: a move waits while an older move of its target is parked
//! (see [`super::parked`]); otherwise admission decides ([`super::admit`]: the operator's
//! event rate, visibility, policy, arm, hold, bounds, other owners, cooldown), and the move
//! goes to its target's coalescer, waits for the rate, or is refused. Every event gets one
//! outcome; one that leaves the cluster as it was is answered with the target's real state
//! too, so the control that sent it shows the truth again.

use std::time::Duration;

use kubeknobs_proto::v1::{self, OutcomeKind, RejectReason};
use tokio::time::Instant;

use super::Session;
use super::admit::{Decision, Gate, Rate, Refusal};
use super::parked::{Parked, Waiting};
use crate::audit::{self, Record};
use crate::coalesce::{SUPERSEDED, Submission};

impl Session {
    /// A control event from the bridge.
    pub(super) fn control(&self, event: v1::ControlEvent, parked: &mut Parked) {
        self.report.metrics.event_received();
        let waiting = Waiting {
            event,
            received: Instant::now(),
        };
        if parked.holds(&waiting.event.target) {
            // An older move of this target waits for the rate: this one must not overtake it.
            let wake = parked.wake().unwrap_or_else(Instant::now);
            return self.park(waiting, parked, wake);
        }
        if let Err((waiting, wait)) = self.admit(waiting, Rate::New(&self.permit)) {
            self.park(waiting, parked, Instant::now() + wait);
        }
    }

    /// Looks at the parked moves again, oldest first, as far as the operator's rate allows.
    pub(super) fn unpark(&self, parked: &mut Parked) {
        while let Some(waiting) = parked.pop() {
            if let Err((waiting, wait)) = self.admit(waiting, Rate::Parked(&self.permit)) {
                return parked.unpop(waiting, Instant::now() + wait);
            }
        }
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
            self.reply.send_outcome(outcome(SUPERSEDED.into()), None);
        }
    }

    /// Admits `waiting` against the view in force and acts on the decision: hands it to its
    /// coalescer, answers it, or refuses it. A move over the operator's event rate is handed
    /// back with how long it must wait.
    pub(super) fn admit(
        &self,
        waiting: Waiting,
        rate: Rate<'_>,
    ) -> Result<(), (Waiting, Duration)> {
        let view = self.control.view();
        let gate = Gate {
            view: &view,
            identity: &self.identity,
            armed: self.armed.load(std::sync::atomic::Ordering::Relaxed),
            holds: &self.control.holds,
            hub: &self.feeds.hub,
            cooldowns: &self.control.cooldowns,
        };
        let event = &waiting.event;
        match gate.admit(event, rate) {
            Decision::Write {
                target,
                value,
                warning,
            } => {
                tracing::debug!(operator = %self.operator, target_name = %target.name, value, seq = event.seq, "control");
                if let Some(coalescer) = self.control.coalescers.get(&target.name) {
                    coalescer.submit(Submission {
                        seq: event.seq,
                        value,
                        operator: self.operator.clone(),
                        groups: self.identity.groups.clone(),
                        reply: self.reply.clone(),
                        received: waiting.received,
                        warning,
                    });
                }
            }
            Decision::Release => self.released(event),
            Decision::Refuse(refusal) => self.reject(event, &refusal),
            Decision::Wait(wait) => return Err((waiting, wait)),
        }
        Ok(())
    }

    /// Refuses `event`: audited, answered with the reason (and, for a target the session may
    /// see, its real state), and logged as the first of its kind this second or counted.
    pub(super) fn reject(&self, event: &v1::ControlEvent, refusal: &Refusal) {
        let (reason, message) = (refusal.reason(), refusal.to_string());
        let snapshot = self.feeds.hub.snapshot();
        let truth = snapshot.get(&event.target);
        if self.noise().note(reason.as_str_name()) {
            let target = crate::telemetry::clip(&event.target);
            tracing::warn!(operator = %self.operator, target_name = %target, value = event.value, reason = reason.as_str_name(), %message, "rejected");
            self.report.audit.record(&Record {
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
            .filter(|_| !matches!(refusal, Refusal::UnknownTarget(_)))
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
            self.report.audit.record(&Record {
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
