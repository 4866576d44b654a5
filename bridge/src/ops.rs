//! The bridge's optional operations port (`[ops] listen`): Prometheus `/metrics`, `/healthz`
//! (the process serves) and `/readyz` (a gateway session is live).
//!
//! [`Metrics`] is cloned into the parts that count: the OSC receiver (packets by result), the
//! link (moves by result, whatever sent them: OSC or MIDI) and the uplink (connected or not).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The bridge's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    packets: Family<ResultLabel, Counter>,
    moves: Family<ResultLabel, Counter>,
    connected: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every bridge metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kubeknobs_bridge");
        let packets = Family::<ResultLabel, Counter>::default();
        registry.register(
            "osc_packets",
            "OSC datagrams received, by result (ok, malformed)",
            packets.clone(),
        );
        let moves = Family::<ResultLabel, Counter>::default();
        registry.register(
            "moves",
            "Control moves, by result (sent, not_connected, stale, unmapped, invalid, unknown_address)",
            moves.clone(),
        );
        let connected = Gauge::default();
        registry.register(
            "gateway_connected",
            "1 while a gateway session is live",
            connected.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                packets,
                moves,
                connected,
            }),
        }
    }

    /// An OSC datagram was received: `ok` or `malformed`.
    pub fn packet(&self, result: &'static str) {
        self.inner
            .packets
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// A control moved and was `sent`, or dropped for the given reason.
    pub fn moved(&self, result: &'static str) {
        self.inner
            .moves
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Whether a gateway session is live.
    pub fn set_connected(&self, live: bool) {
        self.inner.connected.set(i64::from(live));
    }

    fn connected(&self) -> bool {
        self.inner.connected.get() == 1
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Metrics>| async move { m.encode() }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(metrics): State<Metrics>) -> (StatusCode, &'static str) {
    if metrics.connected() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no gateway session\n",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition() {
        let m = Metrics::new();
        m.packet("malformed");
        m.moved("sent");
        m.moved("sent");
        m.set_connected(true);
        let text = m.encode();
        assert!(
            text.contains("kubeknobs_bridge_osc_packets_total{result=\"malformed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kubeknobs_bridge_moves_total{result=\"sent\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("kubeknobs_bridge_gateway_connected 1"),
            "{text}"
        );
    }
}
