//! Prometheus metrics for the gateway: what came in, what was written, what was refused and why,
//! how many sessions are open, and how long an event took to reach the cluster.
//!
//! One [`Metrics`] per gateway, cloned into the places that count; `prometheus-client` (the
//! Prometheus project's Rust client) does the bookkeeping and the text exposition format.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    target: String,
    result: &'static str,
}

/// The gateway's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Inner {
    registry: Registry,
    events: Counter,
    outcomes_dropped: Counter,
    outcomes: Family<OutcomeLabels, Counter>,
    writes: Family<WriteLabels, Counter>,
    sessions: Gauge,
    event_to_write: Histogram,
    write_duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every gateway metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kubeknobs_gateway");
        let events = Counter::default();
        registry.register(
            "control_events",
            "Control events received from bridges",
            events.clone(),
        );
        let outcomes_dropped = Counter::default();
        registry.register(
            "outcomes_dropped",
            "Outcomes not delivered because the session was not reading its stream",
            outcomes_dropped.clone(),
        );
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "outcomes",
            "Outcomes sent for control events, by outcome and reject reason",
            outcomes.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "writes",
            "Writes sent to the cluster, by target and result",
            writes.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions", "Bridge sessions open now", sessions.clone());
        let event_to_write = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "event_to_write_seconds",
            "Time from receiving a control event to the cluster accepting its value",
            event_to_write.clone(),
        );
        let write_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "write_duration_seconds",
            "Duration of one write to the API server",
            write_duration.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                events,
                outcomes_dropped,
                outcomes,
                writes,
                sessions,
                event_to_write,
                write_duration,
            }),
        }
    }

    /// A control event arrived.
    pub fn event_received(&self) {
        self.inner.events.inc();
    }

    /// An outcome was sent: `outcome` is applied/superseded/rejected, `reason` the reject reason or "".
    pub fn outcome(&self, outcome: &'static str, reason: &'static str) {
        self.inner
            .outcomes
            .get_or_create(&OutcomeLabels { outcome, reason })
            .inc();
    }

    /// An outcome was not delivered: its session was not reading.
    pub fn outcome_dropped(&self) {
        self.inner.outcomes_dropped.inc();
    }

    /// One write attempt finished after `seconds`.
    pub fn write(&self, target: &str, ok: bool, seconds: f64) {
        let labels = WriteLabels {
            target: target.to_owned(),
            result: if ok { "ok" } else { "error" },
        };
        self.inner.writes.get_or_create(&labels).inc();
        self.inner.write_duration.observe(seconds);
    }

    /// A value reached the cluster `seconds` after its event arrived.
    pub fn event_to_write(&self, seconds: f64) {
        self.inner.event_to_write.observe(seconds);
    }

    /// Counts a session as open until the guard is dropped.
    pub fn session(&self) -> SessionGuard {
        self.inner.sessions.inc();
        SessionGuard {
            sessions: self.inner.sessions.clone(),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

/// Keeps a session counted in `kubeknobs_gateway_sessions` while alive.
pub struct SessionGuard {
    sessions: Gauge,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.event_received();
        metrics.outcome("rejected", "out_of_range");
        metrics.write("web", true, 0.004);
        metrics.event_to_write(0.25);
        let guard = metrics.session();
        let text = metrics.encode();
        assert!(
            text.contains("kubeknobs_gateway_control_events_total 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "kubeknobs_gateway_outcomes_total{outcome=\"rejected\",reason=\"out_of_range\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("kubeknobs_gateway_writes_total{target=\"web\",result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("kubeknobs_gateway_sessions 1"), "{text}");
        assert!(
            text.contains("kubeknobs_gateway_event_to_write_seconds_count 1"),
            "{text}"
        );
        drop(guard);
        assert!(metrics.encode().contains("kubeknobs_gateway_sessions 0"));
    }
}
