//! Process lifecycle end to end: graceful shutdown of each program on SIGTERM, and a bridge that
//! rides out a gateway restart in the middle of a fader sweep: its final value lands after the
//! reconnect, unless it has gone stale by then.

use kubeknobs_tests::harness::{Gateway, osc_send};
use kubeknobs_tests::pipeline::{Pipeline, connected, gateway_config};

const SANDBOX: &str = "backend = \"sandbox\"";
const WEB: (&str, &str) = ("default", "web");
/// The bridge's count of moves sent into a live session.
const SENT: &str = "kubeknobs_bridge_moves_total{result=\"sent\"}";
/// Moves that met no live session (held for the next one, or dropped).
const NOT_CONNECTED: &str = "kubeknobs_bridge_moves_total{result=\"not_connected\"}";
/// Held moves dropped on reconnect as older than `gateway.resend_within_ms`.
const STALE: &str = "kubeknobs_bridge_moves_total{result=\"stale\"}";

#[test]
fn the_gateway_shuts_down_on_sigterm_and_tells_the_bridge() {
    let p = connected(SANDBOX, WEB);
    p.gateway.process.terminate();
    assert_eq!(
        p.gateway.process.wait_exit(),
        Some(0),
        "a graceful shutdown exits 0"
    );
    p.gateway
        .process
        .wait_for(&["session closed", "gateway shutting down"]);
    p.bridge.process.wait_for(&["gateway is shutting down"]);
    assert!(
        p.bridge.process.is_running(),
        "the bridge keeps running and will reconnect"
    );
}

#[test]
fn the_bridge_shuts_down_on_sigterm_and_the_gateway_sees_the_session_end() {
    let p = connected(SANDBOX, WEB);
    p.bridge.process.terminate();
    assert_eq!(p.bridge.process.wait_exit(), Some(0));
    p.gateway
        .process
        .wait_for(&["session closed", "operator=alice"]);
    assert!(p.gateway.process.is_running());
}

/// Stops the gateway, runs `meanwhile`, and starts it again on the same port.
fn restart_gateway(p: &mut Pipeline, meanwhile: impl FnOnce(&Pipeline)) {
    let addr = p.gateway.addr;
    p.gateway.process.terminate();
    p.gateway.process.wait_exit();
    meanwhile(p);
    let config = gateway_config(SANDBOX, WEB.0, WEB.1);
    p.gateway = Gateway::start_at(p.dir.path(), &config, &addr.to_string());
}

#[test]
fn a_bridge_rides_out_a_gateway_restart_mid_sweep_and_the_final_value_lands() {
    let mut p = connected(SANDBOX, WEB);
    for value in ["0.1", "0.2", "0.3"] {
        osc_send(p.bridge.osc_port, "/1/fader1", "f", value);
    }
    p.gateway.wait_for_applied("alice", "web", 6.0);
    // 0.3 was the sweep's last move and it landed: nothing more is on its way.
    let sent = p.bridge.metric(SENT);

    // The gateway goes away mid-sweep: both moves meet no session.
    restart_gateway(&mut p, |p| {
        let missed = p.bridge.metric(NOT_CONNECTED);
        for value in ["0.35", "0.4"] {
            osc_send(p.bridge.osc_port, "/1/fader1", "f", value);
        }
        p.bridge.wait_for_metric(NOT_CONNECTED, missed + 2.0);
    });

    // Back on the same port: the bridge reconnects by itself and the final value lands, sent
    // once; the sweep's 0.35 (7 replicas) is not replayed.
    p.gateway.wait_for_applied("alice", "web", 8.0);
    assert_eq!(
        p.bridge.metric(SENT),
        sent + 1.0,
        "only the final value is sent after the reconnect, not the sweep"
    );
    assert_eq!(p.gateway.applied_values("web"), [8.0]);
}

#[test]
fn a_move_held_longer_than_resend_within_is_dropped_as_stale() {
    let mut p = connected(SANDBOX, WEB);
    let path = p.dir.path().join("bridge.toml");
    let config = std::fs::read_to_string(&path).expect("bridge.toml");
    let config = config.replace("[gateway]\n", "[gateway]\nresend_within_ms = 300\n");
    std::fs::write(&path, config).expect("write bridge.toml");
    p.bridge.process.wait_for(&["config reloaded"]);
    p.bridge
        .process
        .wait_for_nth(&["connected to gateway", "operator=alice"], 2);

    restart_gateway(&mut p, |p| {
        let missed = p.bridge.metric(NOT_CONNECTED);
        osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.4");
        p.bridge.wait_for_metric(NOT_CONNECTED, missed + 1.0);
        // Deliberately let real time pass: the held move grows older than resend_within_ms.
        std::thread::sleep(std::time::Duration::from_millis(800));
    });
    p.bridge.wait_for_metric(STALE, 1.0);
    osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.5");
    p.gateway.wait_for_applied("alice", "web", 10.0);
    assert_eq!(
        p.gateway.applied_values("web"),
        [10.0],
        "the stale move (8 replicas) was not sent"
    );
}
