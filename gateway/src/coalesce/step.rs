//! Walking a big jump in steps of at most `max_step`, each step a write spaced like any other;
//! a newer value takes over the walk.

use std::time::Duration;

use tokio::time::{Instant, timeout};

use super::outcome::WriteFailure;
use super::{Submission, TargetWriter, WRITE_TIMEOUT, Writer};

impl<W: Writer> TargetWriter<W> {
    /// The intermediate value to write when `value` is more than `max_step` away from the
    /// target's current desired value (observed, else last written); `None` to write it as is.
    /// Refused while the current value is unknown: a jump of unknown size is not walked blind.
    pub(super) fn step_toward(&self, value: i32) -> Result<Option<i32>, WriteFailure> {
        let Some(step) = self.target.max_step else {
            return Ok(None);
        };
        let observed = self
            .hub
            .snapshot()
            .get(&self.target.name)
            .and_then(|s| s.desired);
        let last = *self.last_written.lock().unwrap_or_else(|p| p.into_inner());
        let Some(base) = observed.map(|d| d as i32).or(last) else {
            return Err(WriteFailure::UnknownStart {
                object: self.target.describe(),
                step,
            });
        };
        Ok(((value - base).abs() > step).then(|| base + step * (value - base).signum()))
    }

    /// Writes one step towards `submission`, then puts it back to continue the walk (unless a
    /// newer value arrived meanwhile, which then continues the walk instead). A failed step
    /// rejects the submission: a walk does not retry through an outage.
    pub(super) async fn write_step(
        &self,
        submission: Submission,
        step: i32,
        interval: Duration,
    ) -> Instant {
        self.wait_for_budget().await;
        let started = Instant::now();
        self.hub
            .record_write(&self.target.name, step, submission.operator.clone());
        let result = timeout(
            WRITE_TIMEOUT,
            self.writer.write(&self.target, step, submission.actor()),
        )
        .await;
        match result {
            Ok(Ok(())) => {
                self.set_last_written(step);
                tracing::info!(target_name = %self.target.name, step, value = submission.value, operator = %submission.operator, "stepped");
                let mut pending = self.slot.pending.lock().unwrap_or_else(|p| p.into_inner());
                if pending.is_none() {
                    *pending = Some(submission);
                    drop(pending);
                    self.slot.notify.notify_one();
                } else {
                    drop(pending);
                    self.supersede(&submission);
                }
            }
            Ok(Err(err)) => self.reject_step(&submission, step, &err.to_string()),
            Err(_) => self.reject_step(&submission, step, "the API server did not answer in time"),
        }
        started + interval
    }

    pub(super) fn reject_step(&self, submission: &Submission, step: i32, cause: &str) {
        let failure = WriteFailure::Step {
            object: self.target.describe(),
            value: submission.value,
            max_step: self.target.max_step.unwrap_or_default(),
            step,
            cause: cause.to_owned(),
        };
        tracing::warn!(target_name = %self.target.name, step, cause, "step rejected");
        self.reject(self.desired(), submission, &failure);
    }
}
