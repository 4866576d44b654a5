//! Helpers for the MIDI tests: a bridge config with MIDI bindings, a running bridge wired to the
//! fake gateway, and the control events it sends, forwarded to a channel (so waiting for one
//! with a timeout never cancels a read half-way).

use std::net::SocketAddr;
use std::time::Duration;

use kubeknobs_bridge::config::MidiConfig;
use kubeknobs_bridge::mapping::{Mapping, Range};
use kubeknobs_bridge::midi::binding::{Binding, Curve};
use kubeknobs_bridge::midi::control::{Control, Mode};
use kubeknobs_proto::v1::{
    ControlEvent, ServerMessage, StateUpdate, client_message, server_message,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use super::{Session, server, start_gateway, state};

/// How long anything may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// `cc N` on channel 1 driving `web`, with feedback.
pub fn cc(number: u8) -> Binding {
    Binding {
        control: Control::Cc(number),
        channel: Some(0),
        mode: Mode::Absolute,
        invert: false,
        curve: Curve::Linear,
        pickup: false,
        feedback: true,
        encoder: Default::default(),
        mapping: Mapping {
            address: format!("midi ch1 cc{number}"),
            target: "web".into(),
            range: Range::default(),
            label: None,
        },
    }
}

/// A MIDI config that rescans every 200 ms.
pub fn midi(inputs: &[&str], outputs: &[&str], bindings: Vec<Binding>) -> MidiConfig {
    MidiConfig {
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        rescan: Duration::from_millis(200),
        serial: Vec::new(),
        bindings,
    }
}

/// A running bridge, its gateway session, and the control events it sends.
pub struct Running {
    pub to_bridge: mpsc::Sender<Result<ServerMessage, tonic::Status>>,
    pub controls: mpsc::UnboundedReceiver<ControlEvent>,
    pub osc: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<kubeknobs_bridge::Result<()>>,
    _stop_gateway: oneshot::Sender<()>,
}

/// Starts the fake gateway and a bridge with `midi` and OSC `/1/fader1` → `web`; waits for the
/// session.
pub async fn start(midi: MidiConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let gateway = listener.local_addr().expect("gateway addr");
    let (mut sessions, stop_gateway) = start_gateway(listener);
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind osc");
    let osc_addr = socket.local_addr().expect("osc addr");
    let config = super::bridge_config(gateway, osc_addr, 9, None, midi);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(kubeknobs_bridge::run_with_socket(config, socket, async {
        let _ = stopped.await;
    }));
    let Session {
        hello,
        to_bridge,
        mut from_bridge,
    } = timeout(WAIT, sessions.recv())
        .await
        .expect("session in time")
        .expect("gateway running");
    assert_eq!(hello.bridge_id, "test-bridge");
    let (tx, controls) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(m)) = from_bridge.message().await {
            if let Some(client_message::Msg::Control(c)) = m.msg {
                let _ = tx.send(c);
            }
        }
    });
    Running {
        to_bridge,
        controls,
        osc: osc_addr,
        stop,
        task,
        _stop_gateway: stop_gateway,
    }
}

impl Running {
    /// Calls `poke` (e.g. "send a CC") every 100 ms until a control event arrives; returns it.
    /// Until a device is connected its messages go nowhere, so a test keeps moving the control.
    pub async fn control_while(&mut self, mut poke: impl FnMut()) -> ControlEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no control event in time"
            );
            poke();
            if let Ok(Some(c)) = timeout(Duration::from_millis(100), self.controls.recv()).await {
                return c;
            }
        }
    }

    /// Pushes a state update for `web`.
    pub async fn push_state(&self, desired: f64) {
        let update = StateUpdate {
            states: vec![state(desired, desired)],
        };
        self.to_bridge
            .send(Ok(server(server_message::Msg::State(update))))
            .await
            .expect("send state");
    }

    /// Stops the bridge and checks it ended cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let result = timeout(WAIT, self.task)
            .await
            .expect("bridge stops in time")
            .expect("no panic");
        assert!(result.is_ok(), "bridge failed: {result:?}");
    }
}

/// Waits until `rx` yields `want` as a contiguous run of bytes; returns everything seen.
pub fn expect_bytes(rx: &std::sync::mpsc::Receiver<Vec<u8>>, want: &[u8]) -> Vec<u8> {
    let deadline = std::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(bytes);
            if seen.windows(want.len()).any(|w| w == want) {
                return seen;
            }
        }
    }
    panic!("never saw {want:02X?}; saw {seen:02X?}");
}
