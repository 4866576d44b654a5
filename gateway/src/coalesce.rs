//! Latest value wins: turns a flood of control events for one target into a few writes.
//!
//! Each target has one writer task and one pending slot. A new value replaces the pending one
//! (whose sender is told `superseded`); the writer takes whatever is pending, writes it, answers
//! `applied` or `rejected`, then waits out the target's write interval (1 / max_writes_per_second)
//! before taking the next. So at most the configured rate reaches the cluster, and the last value
//! received is always the last one written: nothing is dropped silently.
//!
//! A target with `max_step` walks big jumps in steps (each a write, spaced like any other), so
//! 0 → 100 reaches 100 without ever asking the cluster for more than `max_step` at once; a newer
//! value takes over the walk. With a gateway-wide [`WriteBudget`], each write also waits its turn.
//!
//! Retryable failures (conflicts, throttling, outages, timeouts) are retried with backoff, never
//! faster than the write interval; if a newer value arrives meanwhile, the retry writes that one.
//!
//! A value the target already has (observed by the watch, with every write of ours seen) is not
//! written again: it is answered `applied` ("already at N") with the target's state, and costs
//! no write slot. One-shot targets (restart) always act.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kubeknobs_proto::v1::{self, OutcomeKind, RejectReason, ServerMessage, server_message::Msg};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::audit::Audit;
use crate::catalog::TargetSpec;
use crate::metrics::Metrics;
use crate::ratelimit::WriteBudget;
use crate::state::StateHub;

/// Where a session receives the answers to its events; every outcome sent is counted.
#[derive(Debug, Clone)]
pub struct Reply {
    tx: mpsc::Sender<Result<ServerMessage, Status>>,
    metrics: Metrics,
}

impl Reply {
    /// Outcomes go to `tx` and are counted in `metrics`.
    pub fn new(tx: mpsc::Sender<Result<ServerMessage, Status>>, metrics: Metrics) -> Reply {
        Reply { tx, metrics }
    }

    /// Sends `outcome`, then `truth` (the target's real state) when the event left the cluster
    /// as it was, so the control that sent it can show the truth again; a session that is gone
    /// or hopelessly behind is skipped with a log, so the writer never blocks on a slow bridge.
    pub fn send_outcome(&self, outcome: v1::Outcome, truth: Option<v1::TargetState>) {
        let kind = OutcomeKind::try_from(outcome.kind).unwrap_or(OutcomeKind::Unspecified);
        let reason = RejectReason::try_from(outcome.reason).unwrap_or(RejectReason::Unspecified);
        self.metrics.outcome(
            kind.as_str_name().trim_start_matches("OUTCOME_KIND_"),
            reason.as_str_name().trim_start_matches("REJECT_REASON_"),
        );
        let seq = outcome.seq;
        let msg = ServerMessage {
            msg: Some(Msg::Outcome(outcome)),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(Ok(msg)) {
            tracing::debug!(seq, "session is not reading; outcome not delivered");
            self.metrics.outcome_dropped();
            return;
        }
        if let Some(state) = truth {
            let msg = ServerMessage {
                msg: Some(Msg::State(v1::StateUpdate {
                    states: vec![state],
                })),
            };
            let _ = self.tx.try_send(Ok(msg));
        }
    }
}

/// How long one write may take before it counts as failed (and is retried).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per value before the operator is told the cluster failed.
pub const MAX_ATTEMPTS: u32 = 6;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Who a write is for: the operator and their groups (for impersonation).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The operator's name.
    pub name: &'a str,
    /// The operator's groups.
    pub groups: &'a [String],
}

/// Something that sets a target's value in a cluster.
pub trait Writer: Send + Sync + 'static {
    /// Sets `target` to `value` on behalf of `actor`.
    fn write(
        &self,
        target: &TargetSpec,
        value: i32,
        actor: Actor<'_>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
}

/// A failed write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WriteError {
    /// True when trying again may succeed (409, 429, 5xx, timeouts, connection failures).
    pub retryable: bool,
    /// What went wrong, for the operator.
    pub message: String,
}

/// One operator's request to set a target.
#[derive(Debug)]
pub struct Submission {
    /// The session's sequence number of the event.
    pub seq: u64,
    /// The checked value.
    pub value: i32,
    /// Who asked.
    pub operator: Arc<str>,
    /// The groups of who asked.
    pub groups: Arc<[String]>,
    /// Where to send the outcome.
    pub reply: Reply,
    /// When the gateway received the event (for the audit's latency).
    pub received: Instant,
    /// A warning admission attached (a GitOps tool may revert the value, `when_gitops = "warn"`):
    /// added to the message of the applied outcome.
    pub warning: Option<String>,
}

/// What every target's writer shares with the others.
#[derive(Debug, Clone, Default)]
pub struct WriterShared {
    /// The whole gateway's writes per second.
    pub budget: Option<Arc<WriteBudget>>,
    /// Where applied and rejected outcomes are audited.
    pub audit: Option<Arc<Audit>>,
    /// What the gateway counts (writes and their latency).
    pub metrics: Metrics,
}

impl Submission {
    /// Who the write is for.
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            name: &self.operator,
            groups: &self.groups,
        }
    }
}

/// Handle to one target's writer task.
#[derive(Debug, Clone)]
pub struct Coalescer {
    spec: Arc<SpecCell>,
    slot: Arc<Slot>,
}

/// A target's spec, replaced by config reloads; the writer reads it afresh for every write.
#[derive(Debug)]
struct SpecCell(std::sync::RwLock<Arc<TargetSpec>>);

impl SpecCell {
    fn get(&self) -> Arc<TargetSpec> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[derive(Debug, Default)]
struct Slot {
    pending: Mutex<Option<Submission>>,
    notify: Notify,
}

impl Slot {
    fn take(&self) -> Option<Submission> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

impl Coalescer {
    /// Starts the writer task for `target`; it drains what is pending and stops on `shutdown`.
    pub fn spawn<W: Writer>(
        target: Arc<TargetSpec>,
        writer: Arc<W>,
        hub: Arc<StateHub>,
        shutdown: CancellationToken,
    ) -> (Coalescer, tokio::task::JoinHandle<()>) {
        Coalescer::spawn_with(target, writer, hub, shutdown, WriterShared::default())
    }

    /// Like [`Coalescer::spawn`], with the gateway-wide parts: each write first waits for its
    /// turn in the write budget, and every outcome is audited.
    pub fn spawn_with<W: Writer>(
        target: Arc<TargetSpec>,
        writer: Arc<W>,
        hub: Arc<StateHub>,
        shutdown: CancellationToken,
        shared: WriterShared,
    ) -> (Coalescer, tokio::task::JoinHandle<()>) {
        let WriterShared {
            budget,
            audit,
            metrics,
        } = shared;
        let slot = Arc::new(Slot::default());
        let spec = Arc::new(SpecCell(std::sync::RwLock::new(target.clone())));
        let task = TargetWriter {
            spec: spec.clone(),
            target,
            writer,
            hub,
            metrics,
            slot: slot.clone(),
            budget,
            audit,
            last_written: Mutex::new(None),
        };
        (Coalescer { spec, slot }, tokio::spawn(task.run(shutdown)))
    }

    /// The target as configured now.
    pub fn target(&self) -> Arc<TargetSpec> {
        self.spec.get()
    }

    /// Replaces the target's spec (a config reload): bounds, rate, step, dry run and cooldown
    /// apply from the next write on. The target's name and object stay what they were.
    pub fn reconfigure(&self, target: Arc<TargetSpec>) {
        *self.spec.0.write().unwrap_or_else(|p| p.into_inner()) = target;
    }

    /// Queues `submission`, replacing (and answering as superseded) any value not yet written.
    pub fn submit(&self, submission: Submission) {
        let replaced = self
            .slot
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(submission);
        if let Some(old) = replaced {
            let (kind, reason) = (OutcomeKind::Superseded, RejectReason::Unspecified);
            let message = SUPERSEDED.to_owned();
            answer(&self.target().name, &old, kind, reason, message, None);
        }
        self.slot.notify.notify_one();
    }
}

struct TargetWriter<W> {
    spec: Arc<SpecCell>,
    /// The spec of the write in progress, read from `spec` when it starts, so one write and
    /// its outcome never mix the settings before and after a config reload.
    target: Arc<TargetSpec>,
    writer: Arc<W>,
    hub: Arc<StateHub>,
    metrics: Metrics,
    slot: Arc<Slot>,
    budget: Option<Arc<WriteBudget>>,
    audit: Option<Arc<Audit>>,
    /// The last value this writer wrote successfully: where a walk in steps continues from
    /// when the watch has not reported the object yet.
    last_written: Mutex<Option<i32>>,
}

impl<W: Writer> TargetWriter<W> {
    async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = self.slot.notify.notified() => {}
                () = shutdown.cancelled() => {
                    if let Some(last) = self.slot.take() {
                        self.target = self.spec.get();
                        self.write_latest(last, self.interval()).await;
                    }
                    return;
                }
            }
            if let Some(submission) = self.slot.take() {
                // Read per write: a config reload may have changed the spec.
                self.target = self.spec.get();
                if self.already_there(&submission) {
                    continue;
                }
                let interval = self.interval();
                let next_allowed = match self.step_toward(submission.value) {
                    Ok(Some(step)) => self.write_step(submission, step, interval).await,
                    Ok(None) => self.write_latest(submission, interval).await,
                    Err(failure) => {
                        self.reject(self.desired(), &submission, &failure);
                        continue;
                    }
                };
                sleep_until(next_allowed).await;
            }
        }
    }

    /// The least time between two writes of this target (`max_writes_per_second`).
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.target.max_writes_per_second)
    }

    /// Writes `current` (or whatever replaces it during retries) and answers its sender.
    /// Returns when the next write may start.
    async fn write_latest(&self, mut current: Submission, interval: Duration) -> Instant {
        let old = self.desired();
        let mut backoff = BACKOFF_START;
        let mut attempt = 1;
        loop {
            self.wait_for_budget().await;
            let started = Instant::now();
            self.hub
                .record_write(&self.target.name, current.value, current.operator.clone());
            let result = match timeout(
                WRITE_TIMEOUT,
                self.writer
                    .write(&self.target, current.value, current.actor()),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(WriteError {
                    retryable: true,
                    message: format!("the API server did not answer within {WRITE_TIMEOUT:?}"),
                }),
            };
            let next_allowed = started + interval;
            let took = started.elapsed().as_secs_f64();
            self.metrics.write(&self.target.name, result.is_ok(), took);
            match result {
                Ok(()) => {
                    self.metrics
                        .event_to_write(current.received.elapsed().as_secs_f64());
                    self.set_last_written(current.value);
                    if !self.target.dry_run {
                        self.hub.wrote(&self.target.name, current.value);
                    }
                    tracing::info!(target_name = %self.target.name, value = current.value, operator = %current.operator, "applied");
                    self.finish_from(
                        old,
                        &current,
                        OutcomeKind::Applied,
                        RejectReason::Unspecified,
                        String::new(),
                    );
                    return next_allowed;
                }
                Err(err) if err.retryable && attempt < MAX_ATTEMPTS => {
                    tracing::warn!(target_name = %self.target.name, value = current.value, attempt, cause = %err, "write failed; retrying");
                    sleep_until(started + backoff.max(interval)).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    attempt += 1;
                    if let Some(newer) = self.slot.take() {
                        self.supersede(&current);
                        current = newer;
                    }
                }
                Err(err) => {
                    tracing::warn!(target_name = %self.target.name, value = current.value, cause = %err, "write rejected");
                    let failure = WriteFailure::Failed {
                        value: current.value,
                        object: self.target.describe(),
                        attempts: attempt,
                        cause: err,
                    };
                    self.reject(old, &current, &failure);
                    return next_allowed;
                }
            }
        }
    }
}

impl<W: Writer> TargetWriter<W> {
    pub(super) async fn wait_for_budget(&self) {
        if let Some(budget) = &self.budget {
            budget.acquire().await;
        }
    }

    pub(super) fn set_last_written(&self, value: i32) {
        *self.last_written.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
    }
}

mod outcome;
mod step;

pub use outcome::SUPERSEDED;
use outcome::{WriteFailure, answer};

#[cfg(test)]
mod tests;
