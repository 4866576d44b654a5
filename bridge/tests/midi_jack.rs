//! MIDI over a real transport: JACK (its dummy backend runs without /dev/snd), with midir's
//! `jack` feature. The test plays the control surface through its own JACK ports: CC in, hot-plug,
//! feedback out, the motor-fader echo not taken as a move, and a third-party sender
//! (python-rtmidi, JACK API) driving a target. Needs a running JACK server; `.ci/run` starts
//! `jackd -d dummy` and stops it afterwards.
#![cfg(feature = "jack")]

mod support;

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use midir::os::unix::{VirtualInput, VirtualOutput};
use midir::{MidiInput, MidiInputConnection, MidiOutput, MidiOutputConnection};
use support::midi::{WAIT, cc, expect_bytes, midi, start};

/// A JACK output port named `client:surface` that the test sends from.
fn surface(client: &str) -> MidiOutputConnection {
    MidiOutput::new(client)
        .expect("JACK server running (start one with `jackd -d dummy`, as .ci/run does)")
        .create_virtual("surface")
        .expect("create JACK output port")
}

/// A JACK input port named `client:leds` whose bytes arrive on the returned channel.
fn leds(client: &str) -> (MidiInputConnection<()>, std_mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = std_mpsc::channel();
    let conn = MidiInput::new(client)
        .expect("JACK server running (start one with `jackd -d dummy`, as .ci/run does)")
        .create_virtual(
            "leds",
            move |_, bytes, _| {
                let _ = tx.send(bytes.to_vec());
            },
            (),
        )
        .expect("create JACK input port");
    (conn, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cc_drives_a_target_and_a_replugged_device_is_picked_up_again() {
    let mut port = surface("kk-replug");
    let mut bridge = start(midi(&["kk-replug:surface"], &[], vec![cc(7)])).await;

    let event = bridge
        .control_while(|| port.send(&[0xB0, 7, 127]).expect("send CC"))
        .await;
    assert_eq!((event.target.as_str(), event.value), ("web", 20.0));

    // Unplug: the port goes away long enough for a rescan to notice, then comes back.
    drop(port);
    tokio::time::sleep(Duration::from_millis(800)).await;
    while bridge.controls.try_recv().is_ok() {}
    let mut port = surface("kk-replug");
    let event = bridge
        .control_while(|| port.send(&[0xB0, 7, 0]).expect("send CC"))
        .await;
    assert_eq!(event.value, 0.0, "moves after the replug arrive");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_reaches_the_leds_and_its_echo_is_not_a_move() {
    let mut port = surface("kk-fader");
    // A second client: JACK would rename a second "kk-fader" to "kk-fader-01".
    let (_leds, shown) = leds("kk-lights");
    let mut bridge = start(midi(
        &["kk-fader:surface"],
        &["kk-lights:leds"],
        vec![cc(7)],
    ))
    .await;

    // The Welcome's state (desired 3 of 0..20) is shown as soon as the output is connected.
    expect_bytes(&shown, &[0xB0, 7, 19]);
    // A move once the input is connected.
    let event = bridge
        .control_while(|| port.send(&[0xB0, 7, 127]).expect("send move"))
        .await;
    assert_eq!(event.value, 20.0);

    // Someone else sets 10: the fader is sent to 64. A motor fader follows and reports where it
    // went: that echo must not become a move.
    bridge.push_state(10.0).await;
    expect_bytes(&shown, &[0xB0, 7, 64]);
    while bridge.controls.try_recv().is_ok() {}
    port.send(&[0xB0, 7, 64]).expect("send echo");
    let echo = tokio::time::timeout(Duration::from_millis(500), bridge.controls.recv()).await;
    assert!(echo.is_err(), "the echo was taken as a move: {echo:?}");
    // A real move after it is.
    port.send(&[0xB0, 7, 100]).expect("send move");
    let event = tokio::time::timeout(WAIT, bridge.controls.recv())
        .await
        .expect("move in time")
        .expect("events");
    assert_eq!(event.value, 16.0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replugged_output_is_shown_the_state_again() {
    let (leds_port, shown) = leds("kk-ring");
    let bridge = start(midi(&[], &["kk-ring:leds"], vec![cc(7)])).await;
    expect_bytes(&shown, &[0xB0, 7, 19]);
    drop((leds_port, shown));
    bridge.push_state(10.0).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Plugged back in: it gets the state that changed while it was away, without a new update.
    let (_leds, shown) = leds("kk-ring");
    expect_bytes(&shown, &[0xB0, 7, 64]);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn relative_encoders_and_pitch_bend_over_jack() {
    use kubeknobs_bridge::midi::control::{Control, Encoding, Mode};
    let mut encoder = cc(16);
    encoder.mode = Mode::Relative(Encoding::TwosComplement);
    let mut bend = cc(0);
    bend.control = Control::PitchBend;
    bend.mapping.address = "midi ch1 pitchbend".into();
    let mut port = surface("kk-encoder");
    let mut bridge = start(midi(&["kk-encoder:surface"], &[], vec![encoder, bend])).await;

    // A pitch bend to the top drives the target to its max (and proves the port is connected).
    let event = bridge
        .control_while(|| port.send(&[0xE0, 0x7F, 0x7F]).expect("send bend"))
        .await;
    assert_eq!(event.value, 20.0);
    // The gateway reports 3 again (someone else); 10 steps up from 3/20 = 0.15 is 0.229 → 5.
    bridge.push_state(3.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    while bridge.controls.try_recv().is_ok() {}
    port.send(&[0xB0, 16, 10]).expect("send encoder");
    let event = tokio::time::timeout(WAIT, bridge.controls.recv())
        .await
        .expect("encoder move in time")
        .expect("events");
    assert_eq!(event.value, 5.0);
    // And 127 is one step down (two's complement): 0.229 - 0.008 = 0.221 → 4.
    port.send(&[0xB0, 16, 127]).expect("send encoder");
    let event = tokio::time::timeout(WAIT, bridge.controls.recv())
        .await
        .expect("encoder move in time")
        .expect("events");
    assert_eq!(event.value, 4.0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_rtmidi_drives_a_target_through_jack() {
    const SENDER: &str = r#"
import sys, time, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "kk-python")
out.open_virtual_port("surface")
print("ready", flush=True)
deadline = time.time() + 30
while time.time() < deadline:
    out.send_message([0xB0, 7, 127])
    time.sleep(0.1)
"#;
    let python = std::env::var("KUBEKNOBS_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(SENDER)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    // Its JACK port exists once it says so; then the bridge finds it by name.
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let ready = tokio::time::timeout(WAIT, lines.next_line()).await;
    assert!(
        matches!(&ready, Ok(Ok(Some(line))) if line == "ready"),
        "python-rtmidi did not open its JACK port: {ready:?}"
    );
    let mut bridge = start(midi(&["kk-python:surface"], &[], vec![cc(7)])).await;
    let event = tokio::time::timeout(WAIT, bridge.controls.recv())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no control event from python-rtmidi; is it installed for {python}? \
                 (.ci/run installs it and sets KUBEKNOBS_PYTHON)"
            )
        })
        .expect("events");
    assert_eq!((event.target.as_str(), event.value), ("web", 20.0));
    let _ = child.kill().await;
    bridge.stop().await;
}

#[test]
fn learn_prints_mapping_lines_for_midi_and_osc() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("learn.toml");
    std::fs::write(
        &config,
        "[midi]\ninputs = [\"kk-learn:surface\"]\nrescan_ms = 200\n",
    )
    .expect("write config");
    let osc = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe port");
    let osc_addr = osc.local_addr().expect("addr");
    drop(osc);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kubeknobs-bridge"))
        .args(["learn", "--config"])
        .arg(&config)
        .arg("--osc-listen")
        .arg(osc_addr.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run kubeknobs-bridge learn");
    let (tx, lines) = std_mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut port = surface("kk-learn");
    let phone = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind phone");
    let packet = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: "/2/push3".into(),
        args: vec![rosc::OscType::Float(1.0)],
    }))
    .expect("encode");
    let want_midi = r#"{ control = "cc", number = 7, channel = 3, target = "TARGET" },  # midi: 99 from "kk-learn:surface""#;
    let want_osc = r#"{ address = "/2/push3", target = "TARGET" },"#;
    let (mut saw_midi, mut saw_osc) = (false, false);
    let deadline = std::time::Instant::now() + WAIT;
    while !(saw_midi && saw_osc) {
        assert!(
            std::time::Instant::now() < deadline,
            "learn printed no line for both"
        );
        port.send(&[0xB2, 7, 99]).expect("send CC");
        let _ = phone.send_to(&packet, osc_addr);
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            saw_midi |= line == want_midi;
            saw_osc |= line.starts_with(want_osc);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
