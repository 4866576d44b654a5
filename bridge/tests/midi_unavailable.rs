//! The default (ALSA) build on a machine without a MIDI system (no /dev/snd, as in CI): the
//! bridge says so clearly, and keeps serving OSC. Skipped where an ALSA sequencer exists.
#![cfg(not(feature = "jack"))]

mod support;

use std::path::Path;

use rosc::{OscMessage, OscPacket, OscType};
use support::midi::{cc, midi, start};

fn alsa_present() -> bool {
    let present = Path::new("/dev/snd/seq").exists();
    if present {
        println!("SKIPPED: /dev/snd/seq exists here, so the MIDI system is not missing");
    }
    present
}

#[test]
fn ports_says_the_midi_system_is_missing() {
    if alsa_present() {
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubeknobs-bridge"))
        .arg("ports")
        .output()
        .expect("run kubeknobs-bridge ports");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("MIDI system unavailable (ALSA sequencer)")
            && stderr.contains("/dev/snd/seq"),
        "stderr: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn osc_keeps_working_without_a_midi_system() {
    if alsa_present() {
        return;
    }
    let mut bridge = start(midi(&["nanoKONTROL2"], &["nanoKONTROL2"], vec![cc(0)])).await;
    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let packet = OscPacket::Message(OscMessage {
        addr: "/1/fader1".into(),
        args: vec![OscType::Float(0.5)],
    });
    let bytes = rosc::encoder::encode(&packet).expect("encode");
    let osc = bridge.osc;
    let event = bridge
        .control_while(|| {
            let _ = phone.try_send_to(&bytes, osc);
        })
        .await;
    assert_eq!(event.value, 10.0);
    bridge.stop().await;
}
