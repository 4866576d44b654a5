//! The bridge end to end with real sockets on 127.0.0.1: OSC packets in (encoded with rosc and
//! sent from a UDP socket playing the phone), control events out to a scripted fake gateway
//! (a real tonic server speaking kubeknobs.v1), state back as OSC feedback to a second UDP socket.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use kubeknobs_bridge::config::Config;
use kubeknobs_proto::v1::{
    ControlEvent, PROTOCOL_VERSION, StateUpdate, client_message, server_message,
};
use rosc::{OscMessage, OscPacket, OscType};
use support::{Session, bridge_config, server, start_gateway, state};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// A bridge config: `/1/fader1` → `web` with label `/1/label1`, feedback to `feedback_port`.
fn config(gateway: SocketAddr, feedback_port: u16) -> Config {
    let osc_listen = "127.0.0.1:0".parse().expect("addr");
    bridge_config(
        gateway,
        osc_listen,
        feedback_port,
        Some("/1/label1"),
        Default::default(),
    )
}

/// The bridge under test, and the sockets playing the phone.
struct Rig {
    phone: UdpSocket,
    feedback: UdpSocket,
    bridge: SocketAddr,
    /// Its ops port (`/metrics`).
    ops: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<kubeknobs_bridge::Result<()>>,
}

async fn start_bridge(gateway: SocketAddr) -> Rig {
    start_bridge_with(gateway, kubeknobs_bridge::config::DEFAULT_RESEND_WITHIN).await
}

/// Like [`start_bridge`], holding moves made while disconnected for `resend_within`.
async fn start_bridge_with(gateway: SocketAddr, resend_within: Duration) -> Rig {
    let feedback = UdpSocket::bind("127.0.0.1:0").await.expect("bind feedback");
    let phone = UdpSocket::bind("127.0.0.1:0").await.expect("bind phone");
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind bridge");
    let bridge = socket.local_addr().expect("bridge addr");
    let ops = TcpListener::bind("127.0.0.1:0").await.expect("bind ops");
    let ops_addr = ops.local_addr().expect("ops addr");
    let mut config = config(
        gateway,
        feedback.local_addr().expect("feedback addr").port(),
    );
    config.gateway.resend_within = resend_within;
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let options = kubeknobs_bridge::Options {
        socket: Some(socket),
        ops: Some(ops),
        ..Default::default()
    };
    let task = tokio::spawn(kubeknobs_bridge::run(config, options, shutdown));
    Rig {
        phone,
        feedback,
        bridge,
        ops: ops_addr,
        stop,
        task,
    }
}

impl Rig {
    async fn send(&self, addr: &str, arg: OscType) {
        let packet = OscPacket::Message(OscMessage {
            addr: addr.into(),
            args: vec![arg],
        });
        let bytes = rosc::encoder::encode(&packet).expect("encode");
        self.phone
            .send_to(&bytes, self.bridge)
            .await
            .expect("send OSC");
    }

    /// The next feedback message the phone receives.
    async fn feedback(&self) -> OscMessage {
        let mut buf = vec![0u8; rosc::decoder::MTU];
        let (len, _) = timeout(WAIT, self.feedback.recv_from(&mut buf))
            .await
            .expect("feedback in time")
            .expect("recv feedback");
        match rosc::decoder::decode_udp(&buf[..len])
            .expect("feedback is OSC")
            .1
        {
            OscPacket::Message(m) => m,
            OscPacket::Bundle(b) => panic!("unexpected bundle {b:?}"),
        }
    }

    /// Expects feedback showing `web` with the fader at `fader` and the label `label`. Earlier
    /// states may still be in flight (a phone that appears while a session starts can get the
    /// same state twice, which is harmless), so they are skipped.
    async fn expect_state(&self, fader: f32, label: &str) {
        let mut last_fader = None;
        loop {
            let m = self.feedback().await;
            match (m.addr.as_str(), &m.args[..]) {
                ("/1/fader1", [OscType::Float(v)]) => last_fader = Some(*v),
                ("/1/label1", [OscType::String(text)]) if text == label => break,
                ("/1/label1", _) => {}
                _ => panic!("unexpected feedback {m:?}"),
            }
        }
        assert_eq!(
            last_fader,
            Some(fader),
            "fader position sent with label {label:?}"
        );
    }

    /// Expects no feedback but (repeats of) the state `web` had before, for a short while.
    async fn expect_no_echo(&self, fader: f32, label: &str) {
        let mut buf = vec![0u8; rosc::decoder::MTU];
        let quiet = Duration::from_millis(300);
        while let Ok(received) = timeout(quiet, self.feedback.recv_from(&mut buf)).await {
            let (len, _) = received.expect("recv feedback");
            let (_, packet) = rosc::decoder::decode_udp(&buf[..len]).expect("feedback is OSC");
            let OscPacket::Message(m) = packet else {
                panic!("unexpected bundle")
            };
            let old_fader = [OscType::Float(fader)];
            let old_label = [OscType::String(label.into())];
            assert!(
                m.args[..] == old_fader || m.args[..] == old_label,
                "echoed a move: {m:?}"
            );
        }
    }

    /// Waits (within [`WAIT`]) until the bridge's `/metrics` has the line `line`.
    async fn wait_for_metric(&self, line: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut ops = tokio::net::TcpStream::connect(self.ops)
                .await
                .expect("connect to the ops port");
            ops.write_all(b"GET /metrics HTTP/1.1\r\nHost: bridge\r\nConnection: close\r\n\r\n")
                .await
                .expect("request /metrics");
            let mut response = String::new();
            ops.read_to_string(&mut response)
                .await
                .expect("read /metrics");
            if response.lines().any(|l| l == line) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {line:?} in time; /metrics said:\n{response}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let result = timeout(WAIT, self.task)
            .await
            .expect("bridge stops in time")
            .expect("no panic");
        assert!(result.is_ok(), "bridge failed: {result:?}");
    }
}

async fn next_session(sessions: &mut mpsc::UnboundedReceiver<Session>) -> Session {
    timeout(WAIT, sessions.recv())
        .await
        .expect("session in time")
        .expect("gateway running")
}

async fn next_control(session: &mut Session) -> ControlEvent {
    let message = timeout(WAIT, session.from_bridge.message())
        .await
        .expect("control event in time")
        .expect("stream ok")
        .expect("stream open");
    match message.msg {
        Some(client_message::Msg::Control(c)) => c,
        other => panic!("expected a control event, got {other:?}"),
    }
}

#[tokio::test]
async fn moves_go_up_and_state_comes_back_as_feedback() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let gateway = listener.local_addr().expect("gateway addr");
    let (mut sessions, _stop_gateway) = start_gateway(listener);
    let rig = start_bridge(gateway).await;

    // Garbage first: logged and skipped, the loop goes on.
    rig.phone
        .send_to(b"\x00\x01 definitely not OSC", rig.bridge)
        .await
        .expect("send garbage");
    // An unknown address registers the phone as a client and sends nothing up.
    rig.send("/1/push9", OscType::Float(1.0)).await;

    let mut session = next_session(&mut sessions).await;
    assert_eq!(session.hello.bridge_id, "test-bridge");
    assert_eq!(session.hello.protocol_version, PROTOCOL_VERSION);
    // The phone shows the cluster's state (desired 3 of 0..20) as soon as the session is up.
    rig.expect_state(0.15, "web 3/3").await;

    rig.send("/1/fader1", OscType::Float(0.5)).await;
    let event = next_control(&mut session).await;
    assert_eq!(
        (event.seq, event.target.as_str(), event.value),
        (1, "web", 10.0)
    );
    rig.send("/1/fader1", OscType::Bool(true)).await;
    let event = next_control(&mut session).await;
    assert_eq!((event.seq, event.value), (2, 20.0));
    // Nothing is echoed: feedback waits for the gateway's state.
    rig.expect_no_echo(0.15, "web 3/3").await;

    let update = StateUpdate {
        states: vec![state(10.0, 7.0)],
    };
    session
        .to_bridge
        .send(Ok(server(server_message::Msg::State(update))))
        .await
        .expect("send state");
    rig.expect_state(0.5, "web 7/10").await;

    rig.stop().await;
    // The bridge closed its side of the session.
    let end = timeout(WAIT, session.from_bridge.message())
        .await
        .expect("stream ends in time");
    assert!(
        !matches!(end, Ok(Some(_))),
        "expected the stream to end, got {end:?}"
    );
}

/// Starts the bridge while no gateway serves its port, moves the fader twice (0.25, then 0.5),
/// and once the bridge has taken both moves as made while disconnected, brings the gateway up
/// after `outage`; returns the bridge, its first session and the gateway's stop handle.
async fn moves_during_an_outage(
    resend_within: Duration,
    outage: Duration,
) -> (Rig, Session, oneshot::Sender<()>) {
    // The gateway's port is bound but nobody serves it yet: the bridge's connection waits in the
    // listen queue with no session, as behind a gateway that is still starting. (Binding it now
    // and serving the same socket later leaves no moment for another program to take the port.)
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gateway's port");
    let gateway = listener.local_addr().expect("gateway addr");
    let rig = start_bridge_with(gateway, resend_within).await;
    rig.send("/1/fader1", OscType::Float(0.25)).await;
    rig.send("/1/fader1", OscType::Float(0.5)).await;
    rig.wait_for_metric("kubeknobs_bridge_moves_total{result=\"not_connected\"} 2")
        .await;
    // The moves are this old at least when the session starts: one held longer goes stale.
    tokio::time::sleep(outage).await;

    let (mut sessions, stop_gateway) = start_gateway(listener);
    let session = next_session(&mut sessions).await;
    (rig, session, stop_gateway)
}

#[tokio::test]
async fn only_the_last_move_made_while_disconnected_is_sent_after_connecting() {
    let (rig, mut session, _gateway) =
        moves_during_an_outage(Duration::from_secs(10), Duration::ZERO).await;
    let event = next_control(&mut session).await;
    assert_eq!(
        (event.seq, event.value),
        (1, 10.0),
        "the final value (0.5 of 0..20) goes first, the sweep before it (5) never"
    );
    rig.expect_state(0.15, "web 3/3").await;
    rig.send("/1/fader1", OscType::Float(1.0)).await;
    let event = next_control(&mut session).await;
    assert_eq!((event.seq, event.value), (2, 20.0));
    rig.stop().await;
}

#[tokio::test]
async fn a_held_move_older_than_resend_within_is_never_replayed() {
    let (rig, mut session, _gateway) =
        moves_during_an_outage(Duration::from_millis(100), Duration::from_millis(400)).await;
    // The phone was seen before the session: the Welcome's state reaches it.
    rig.expect_state(0.15, "web 3/3").await;
    rig.send("/1/fader1", OscType::Float(1.0)).await;
    let event = next_control(&mut session).await;
    assert_eq!(
        (event.seq, event.value),
        (1, 20.0),
        "the stale move (10) must not be replayed"
    );
    rig.stop().await;
}

/// OSC over UDP allows any datagram size: a bundle bigger than rosc's 1,536-byte `MTU` reaches
/// the bridge whole, so its last move is sent, and a big single message is not "malformed".
#[tokio::test]
async fn datagrams_bigger_than_1536_bytes_are_received_whole() {
    use rosc::{OscBundle, OscTime};
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let gateway = listener.local_addr().expect("gateway addr");
    let (mut sessions, _stop_gateway) = start_gateway(listener);
    let rig = start_bridge(gateway).await;
    let mut session = next_session(&mut sessions).await;
    rig.send("/1/push9", OscType::Float(1.0)).await;
    rig.expect_state(0.15, "web 3/3").await;

    // A message of 1,924 bytes: the fader at 0.25 with a long second argument.
    let big = OscPacket::Message(OscMessage {
        addr: "/1/fader1".into(),
        args: vec![OscType::Float(0.25), OscType::String("x".repeat(1900))],
    });
    let bytes = rosc::encoder::encode(&big).expect("encode");
    assert!(bytes.len() > 1536, "{} bytes", bytes.len());
    rig.phone.send_to(&bytes, rig.bridge).await.expect("send");
    let event = next_control(&mut session).await;
    assert_eq!(event.value, 5.0, "the big message is a move, not malformed");

    // A bundle of 100 moves (2,400 bytes): the last one, 1.0 → 20, is there.
    let content = (0..100)
        .map(|i| {
            OscPacket::Message(OscMessage {
                addr: "/1/fader1".into(),
                args: vec![OscType::Float(if i == 99 { 1.0 } else { 0.5 })],
            })
        })
        .collect();
    let bundle = OscPacket::Bundle(OscBundle {
        timetag: OscTime {
            seconds: 0,
            fractional: 1,
        },
        content,
    });
    let bytes = rosc::encoder::encode(&bundle).expect("encode");
    assert!(bytes.len() > 2000, "{} bytes", bytes.len());
    rig.phone.send_to(&bytes, rig.bridge).await.expect("send");
    loop {
        let event = next_control(&mut session).await;
        if event.value == 20.0 {
            break;
        }
        assert_eq!(event.value, 10.0, "only the bundle's moves arrive");
    }
    rig.stop().await;
}
