//! Touch and arm events of a session: taking and releasing holds (see `crate::touch`), and the
//! arm switch.
//!
//! Both count against the operator's event rate like moves do (`limits`), so a client cannot
//! send them faster than moves. What is ignored (over the rate, unknown, forbidden) is logged
//! through one [`LogSummary`]: the first of each kind per operator in a [`SUMMARY_EVERY`] window,
//! then one summary line; names the client chose are clipped.

use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use kubeknobs_proto::v1;

use super::Session;
use crate::summary::{self, LogSummary};
use crate::telemetry::clip;

/// How often ignored touches and arms are summarised.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Ignored touches and arms of every session, by operator and reason.
static IGNORED: LazyLock<Mutex<LogSummary>> =
    LazyLock::new(|| Mutex::new(LogSummary::new(SUMMARY_EVERY)));

impl Session {
    /// Takes or releases the hold on a target this operator may change; a touch on anything else
    /// (unknown, invisible, forbidden, held by someone else, over the rate) changes nothing.
    pub(super) fn touch(&self, touch: v1::TouchEvent) {
        if let Err(err) = self.permit.check_event() {
            return self.ignored("touch", "over the event rate", &err.to_string());
        }
        let view = self.control.view();
        let target = view
            .catalog
            .get(&touch.target)
            .filter(|t| view.policy.can_see(&self.identity, &t.name));
        let Some(target) = target else {
            let why = format!("no target named {}", clip(&touch.target));
            return self.ignored("touch", "unknown target", &why);
        };
        let action = target.kind.action();
        if let Err(err) = view.policy.authorize(&self.identity, &target.name, action) {
            return self.ignored("touch", "forbidden", &err.to_string());
        }
        match self
            .control
            .holds
            .touch(&target.name, &self.operator, self.member.id, touch.touched)
        {
            Ok(()) => {
                tracing::debug!(operator = %self.operator, target_name = %target.name, touched = touch.touched, "touch")
            }
            Err(err) => self.ignored("touch", "held by another", &err.to_string()),
        }
    }

    /// Sets the arm switch, within the operator's event rate.
    pub(super) fn arm(&self, arm: v1::ArmEvent) {
        if let Err(err) = self.permit.check_event() {
            return self.ignored("arm", "over the event rate", &err.to_string());
        }
        tracing::debug!(operator = %self.operator, armed = arm.armed, "arm");
        self.armed
            .store(arm.armed, std::sync::atomic::Ordering::Relaxed);
    }

    /// Logs an ignored `what` (touch, arm) for `reason`: the first per operator and reason in a
    /// window in full (`detail`), the rest in the window's summary.
    fn ignored(&self, what: &str, reason: &str, detail: &str) {
        let key = format!("{what} of {} ignored: {reason}", self.operator);
        let (ended, first) = {
            let mut ignored = IGNORED.lock().unwrap_or_else(PoisonError::into_inner);
            let ended = ignored.take_if_over();
            (ended, ignored.note(&key))
        };
        if let Some(counted) = ended {
            tracing::warn!(
                "in the last {SUMMARY_EVERY:?}, also ignored: {}",
                summary::describe(&counted)
            );
        }
        if first {
            tracing::warn!(operator = %self.operator, cause = %detail, "{what} ignored: {reason} (more are counted and summarised every {SUMMARY_EVERY:?})");
        }
    }
}
