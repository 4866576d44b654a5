//! `kubeknobs-bridge demo` as a library call: the embedded gateway (sandbox) and the bridge over
//! real gRPC with TLS on loopback, driven by a real OSC packet, answered by real feedback.
#![cfg(feature = "demo")]

use std::net::SocketAddr;
use std::time::Duration;

use kubeknobs_bridge::demo::{self, Options};
use rosc::{OscMessage, OscPacket, OscType};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};

#[tokio::test]
async fn a_fader_move_scales_the_sandbox_and_comes_back() {
    let feedback = UdpSocket::bind("127.0.0.1:0").await.expect("bind feedback");
    let phone = UdpSocket::bind("127.0.0.1:0").await.expect("bind phone");
    // A free UDP port for the demo's OSC side (bound and released: nothing else races for it here).
    let osc: SocketAddr = {
        let probe = UdpSocket::bind("127.0.0.1:0").await.expect("probe port");
        probe.local_addr().expect("probe addr")
    };
    let options = Options {
        osc_listen: Some(osc),
        feedback_port: Some(feedback.local_addr().expect("feedback addr").port()),
        web_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..Options::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let demo = tokio::spawn(demo::run(options, async {
        let _ = stopped.await;
    }));

    // Keep moving the fader until the label shows the sandbox's desired replicas at 10 (0.5 of
    // 0..20): the session may not be live yet, and the phone learns its feedback port from a move.
    let move_half = rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: "/1/fader1".into(),
        args: vec![OscType::Float(0.5)],
    }))
    .expect("encode");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; rosc::decoder::MTU];
    let mut seen = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no feedback with desired 10; saw {seen:?}"
        );
        phone.send_to(&move_half, osc).await.expect("send OSC");
        let Ok(received) = timeout(Duration::from_millis(300), feedback.recv_from(&mut buf)).await
        else {
            continue;
        };
        let (len, _) = received.expect("recv feedback");
        let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..len]) else {
            continue;
        };
        if m.addr == "/1/label1"
            && matches!(&m.args[..], [OscType::String(s)] if s.ends_with("/10"))
        {
            break;
        }
        seen.push(m);
    }

    let _ = stop.send(());
    let result = timeout(Duration::from_secs(15), demo)
        .await
        .expect("demo stops in time")
        .expect("no panic");
    assert!(result.is_ok(), "demo failed: {result:?}");
}
