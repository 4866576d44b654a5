//! Process lifecycle end to end: graceful shutdown of each program on SIGTERM, and a bridge that
//! rides out a gateway restart in the middle of a fader sweep.

use kubeknobs_tests::harness::{Gateway, osc_send};
use kubeknobs_tests::pipeline::{connected, gateway_config};

const SANDBOX: &str = "backend = \"sandbox\"";
const WEB: (&str, &str) = ("default", "web");

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

#[test]
fn a_bridge_rides_out_a_gateway_restart_mid_sweep_without_replaying_stale_moves() {
    let mut p = connected(SANDBOX, WEB);
    for value in ["0.1", "0.2", "0.3"] {
        osc_send(p.bridge.osc_port, "/1/fader1", "f", value);
    }
    p.gateway.process.wait_for(&["applied", "value=6"]);

    // The gateway goes away mid-sweep; moves made meanwhile are refused at the bridge.
    let addr = p.gateway.addr;
    p.gateway.process.terminate();
    p.gateway.process.wait_exit();
    osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.4");
    p.bridge.process.wait_for(&["not connected", "/1/fader1"]);

    // It comes back on the same port; the bridge reconnects by itself.
    let config = gateway_config(SANDBOX, WEB.0, WEB.1);
    p.gateway = Gateway::start_at(p.dir.path(), &config, &addr.to_string());
    let reconnected = || {
        p.bridge
            .process
            .output()
            .iter()
            .filter(|l| l.contains("connected to gateway operator=alice"))
            .count()
    };
    let start = std::time::Instant::now();
    while reconnected() < 2 {
        assert!(
            start.elapsed() < kubeknobs_tests::harness::DEADLINE,
            "the bridge did not reconnect"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.5");
    p.gateway.process.wait_for(&["applied", "value=10"]);
    assert!(
        !p.gateway.process.printed("value=8"),
        "the move made while disconnected was not replayed"
    );
}
