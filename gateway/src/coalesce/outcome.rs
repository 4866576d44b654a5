//! Outcomes of a target's writes: answered to the session that sent the event, and audited
//! when they are final (applied or rejected). A value the cluster did not take is refused as
//! `CLUSTER_ERROR` with its [`WriteFailure`], here only.

use kubeknobs_proto::v1::{self, OutcomeKind, RejectReason};

use super::{Submission, TargetWriter, WriteError, Writer};
use crate::audit::{self, Record};

/// What a value superseded before it was written is answered.
pub const SUPERSEDED: &str = "a later value replaced it";

/// Why the cluster did not take a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteFailure {
    /// A walk in steps needs the current value, which is not known yet.
    #[error(
        "the current replicas of {object} are not known yet, so a move cannot be walked in steps of {step}; try again"
    )]
    UnknownStart {
        /// The target's object, described.
        object: String,
        /// The target's `max_step`.
        step: i32,
    },
    /// Every attempt failed, or a failure that no retry mends.
    #[error("{value} of {object} failed after {attempts} attempt(s): {cause}")]
    Failed {
        /// The value.
        value: i32,
        /// The target's object, described.
        object: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        cause: WriteError,
    },
    /// One step of a walk failed (a walk does not retry through an outage).
    #[error(
        "walking {object} towards {value} in steps of at most {max_step}: writing {step} failed: {cause}"
    )]
    Step {
        /// The target's object, described.
        object: String,
        /// Where the walk was going.
        value: i32,
        /// The target's `max_step`.
        max_step: i32,
        /// The step that failed.
        step: i32,
        /// Why.
        cause: String,
    },
}

impl<W: Writer> TargetWriter<W> {
    /// The target's desired value as last observed.
    pub(super) fn desired(&self) -> Option<f64> {
        self.hub.snapshot().get(&self.target.name)?.desired
    }

    /// Answers `s` as applied without a write when the target already has its value (and the
    /// watch has shown every write of ours); true if so.
    pub(super) fn already_there(&self, s: &Submission) -> bool {
        if self.target.kind.is_one_shot() || self.hub.settled(&self.target.name) != Some(s.value) {
            return false;
        }
        let message = format!("already at {}: nothing to write", s.value);
        let truth = self.hub.snapshot().get(&self.target.name).cloned();
        answer(
            &self.target.name,
            s,
            OutcomeKind::Applied,
            RejectReason::Unspecified,
            message,
            truth,
        );
        true
    }

    /// Refuses `s`: the cluster did not take it. `old` is the value before.
    pub(super) fn reject(&self, old: Option<f64>, s: &Submission, failure: &WriteFailure) {
        let (kind, reason) = (OutcomeKind::Rejected, RejectReason::ClusterError);
        self.finish_from(old, s, kind, reason, failure.to_string());
    }

    /// Answers `s` as superseded: a newer value took its place before it was written.
    pub(super) fn supersede(&self, s: &Submission) {
        let (kind, reason) = (OutcomeKind::Superseded, RejectReason::Unspecified);
        self.finish(s, kind, reason, SUPERSEDED.to_owned());
    }

    /// Answers `s` (and audits applied and rejected outcomes), from the current desired value.
    pub(super) fn finish(
        &self,
        s: &Submission,
        kind: OutcomeKind,
        reason: RejectReason,
        message: String,
    ) {
        self.finish_from(self.desired(), s, kind, reason, message);
    }

    /// Answers `s` (and audits applied and rejected outcomes); `old` is the value before.
    pub(super) fn finish_from(
        &self,
        old: Option<f64>,
        s: &Submission,
        kind: OutcomeKind,
        reason: RejectReason,
        mut message: String,
    ) {
        if kind == OutcomeKind::Applied && self.target.dry_run {
            message = "dry run: the cluster accepted it, nothing was changed".to_owned();
        }
        if let (OutcomeKind::Applied, Some(warning)) = (kind, &s.warning) {
            message = format!("{message}; {warning}");
        }
        if let (Some(audit), OutcomeKind::Applied | OutcomeKind::Rejected) = (&self.audit, kind) {
            audit.record(&Record {
                time: Record::now(),
                operator: &s.operator,
                target: &self.target.name,
                old,
                new: Some(f64::from(s.value)),
                outcome: if kind == OutcomeKind::Applied {
                    "applied"
                } else {
                    "rejected"
                },
                reason: (kind == OutcomeKind::Rejected).then(|| audit::reason_name(reason)),
                message: &message,
                latency_ms: Record::latency_since(s.received),
                dry_run: self.target.dry_run,
                count: None,
            });
        }
        // A refusal or a dry run leaves the cluster as it was: show the sender the truth again.
        let unchanged =
            kind == OutcomeKind::Rejected || (kind == OutcomeKind::Applied && self.target.dry_run);
        let truth = unchanged
            .then(|| self.hub.snapshot().get(&self.target.name).cloned())
            .flatten();
        answer(&self.target.name, s, kind, reason, message, truth);
    }
}

/// Sends the outcome of `s` to its session, without ever blocking the writer.
pub(super) fn answer(
    target: &str,
    s: &Submission,
    kind: OutcomeKind,
    reason: RejectReason,
    message: String,
    truth: Option<v1::TargetState>,
) {
    let outcome = v1::Outcome {
        seq: s.seq,
        target: target.to_owned(),
        value: f64::from(s.value),
        kind: kind as i32,
        reason: reason as i32,
        message,
    };
    s.reply.send_outcome(outcome, truth);
}
