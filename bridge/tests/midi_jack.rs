//! MIDI over a real transport: JACK (its dummy backend runs without /dev/snd), with midir's
//! `jack` feature. The test plays the control surface through its own JACK ports: CC in, hot-plug,
//! feedback out, the motor-fader echo not taken as a move, and a third-party sender
//! (python-rtmidi, JACK API) driving a target. python-rtmidi also plays a whole surface
//! ([`support::midi::Peer`]): 14-bit and NRPN motor echoes, encoder clicks equal to the fed-back
//! value, a move back to a value fed back to another device, a toggle pressed during a pending
//! write, each feedback message its own event, no feedback repeated when only the ready count
//! changes. Needs a running JACK server; `.ci/run` starts
//! `jackd -d dummy` and stops it afterwards.
#![cfg(feature = "jack")]

mod support;

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use midir::os::unix::{VirtualInput, VirtualOutput};
use midir::{MidiInput, MidiInputConnection, MidiOutput, MidiOutputConnection};
use support::midi::{Running, WAIT, bridge_port, cc, expect_bytes, midi, port_closed, start};

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
    let connected = bridge_port("kk-replug:surface").await;

    // Unplug: the port goes away until a rescan notices (the bridge closes its end), then comes
    // back.
    drop(port);
    port_closed(&connected).await;
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
    // The same device: JACK names this second "kk-fader" client "kk-fader-01".
    let (_leds, shown) = leds("kk-fader");
    let mut bridge = start(midi(&["kk-fader:surface"], &["kk-fader"], vec![cc(7)])).await;

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
    let connected = bridge_port("kk-ring:leds").await;
    drop((leds_port, shown));
    port_closed(&connected).await;
    bridge.push_handled(10.0, 10.0).await;
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
    // The gateway reports 3 again (someone else); a click is one step of the target: 10 up is 13.
    bridge.push_handled(3.0, 3.0).await;
    bridge.settle().await;
    port.send(&[0xB0, 16, 10]).expect("send encoder");
    let event = tokio::time::timeout(WAIT, bridge.controls.recv())
        .await
        .expect("encoder move in time")
        .expect("events");
    assert_eq!(event.value, 13.0);
    // And 127 is one step down (two's complement).
    port.send(&[0xB0, 16, 127]).expect("send encoder");
    let event = tokio::time::timeout(WAIT, bridge.controls.recv())
        .await
        .expect("encoder move in time")
        .expect("events");
    assert_eq!(event.value, 12.0);
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
fn learn_prints_one_mapping_block_per_control_for_midi_and_osc() {
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
    let want_midi = "[[midi.mappings]]  # from \"kk-learn:surface\", value 99\n\
                     control = \"cc\"\nnumber = 7\nchannel = 3\ntarget = \"TARGET\"\n";
    let want_osc = "[[osc.mappings]]  # [Float(1.0)] from 127.0.0.1:";
    let want_osc_body = "address = \"/2/push3\"\ntarget = \"TARGET\"\n";
    let mut printed = String::new();
    let deadline = std::time::Instant::now() + WAIT;
    while !(printed.contains(want_midi)
        && printed.contains(want_osc)
        && printed.contains(want_osc_body))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "learn printed no block for both; printed:\n{printed}"
        );
        port.send(&[0xB2, 7, 99]).expect("send CC");
        let _ = phone.send_to(&packet, osc_addr);
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            printed.push_str(&line);
            printed.push('\n');
        }
    }
    // However long the control keeps moving, its block is printed once.
    assert_eq!(printed.matches("[[midi.mappings]]").count(), 1, "{printed}");
    let _ = child.kill();
    let _ = child.wait();
}

/// A binding like `cc(0)` on another control, mode and feedback.
fn bind(
    control: kubeknobs_bridge::midi::control::Control,
    mode: kubeknobs_bridge::midi::control::Mode,
    feedback: bool,
) -> kubeknobs_bridge::midi::binding::Binding {
    let mut b = cc(0);
    b.control = control;
    b.mode = mode;
    b.feedback = feedback;
    b.mapping.address = format!("midi ch1 {control:?}");
    b
}

/// `cc 7` without feedback: moving it proves the bridge has connected the surface's port.
fn probe() -> kubeknobs_bridge::midi::binding::Binding {
    let mut b = cc(7);
    b.feedback = false;
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn a_motor_fader_echoing_the_msb_of_14_bit_feedback_is_not_a_move() {
    use kubeknobs_bridge::midi::control::{Control, Mode};
    let mut peer = support::midi::Peer::start("kk-motor14");
    let fader = bind(Control::Cc14(1), Mode::Absolute, true);
    let mut bridge = start(midi(
        &["kk-motor14:surface"],
        &["kk-motor14"],
        vec![fader, probe()],
    ))
    .await;
    // Welcome: 3 of 0..20 is 2457 = MSB 19, LSB 25, as two MIDI events.
    peer.expect(&[&[0xB0, 1, 19], &[0xB0, 33, 25]]);
    bridge.control_while(|| peer.send(&[0xB0, 7, 0])).await;
    bridge.settle().await;

    // Someone else sets 7: 5734 = MSB 44, LSB 102. The motor fader echoes only the MSB, which
    // alone reads as 5632 (6.9): that must not be taken as a move.
    bridge.push_handled(7.0, 7.0).await;
    peer.expect(&[&[0xB0, 1, 44], &[0xB0, 33, 102]]);
    while bridge.controls.try_recv().is_ok() {}
    peer.send(&[0xB0, 1, 44]);
    let echo = bridge.control_within(Duration::from_millis(500)).await;
    assert!(echo.is_none(), "the MSB echo was taken as a move: {echo:?}");
    // An echo of both halves is not a move either.
    bridge.push_handled(12.0, 12.0).await;
    peer.expect(&[&[0xB0, 1, 76], &[0xB0, 33, 102]]);
    peer.send(&[0xB0, 1, 76]);
    peer.send(&[0xB0, 33, 102]);
    let echo = bridge.control_within(Duration::from_millis(500)).await;
    assert!(
        echo.is_none(),
        "the 14-bit echo was taken as a move: {echo:?}"
    );
    // A real move is: MSB 100 then LSB 0 is 16 of 20.
    peer.send(&[0xB0, 1, 100]);
    assert_eq!(bridge.next_control().await.value, 16.0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_nrpn_echo_of_the_data_msb_is_not_a_move() {
    use kubeknobs_bridge::midi::control::{Control, Mode};
    let mut peer = support::midi::Peer::start("kk-motornrpn");
    // NRPN 300 = parameter MSB 2, LSB 44.
    let fader = bind(Control::Nrpn(300), Mode::Absolute, true);
    let mut bridge = start(midi(
        &["kk-motornrpn:surface"],
        &["kk-motornrpn"],
        vec![fader],
    ))
    .await;
    // Feedback is four messages, each its own event.
    peer.expect(&[
        &[0xB0, 99, 2],
        &[0xB0, 98, 44],
        &[0xB0, 6, 19],
        &[0xB0, 38, 25],
    ]);
    // The surface selects the NRPN and moves it to the top (proving the input is connected).
    let event = bridge
        .control_while(|| {
            peer.send(&[0xB0, 99, 2]);
            peer.send(&[0xB0, 98, 44]);
            peer.send(&[0xB0, 6, 127]);
        })
        .await;
    assert_eq!(event.value, 20.0);
    bridge.settle().await;
    bridge.push_handled(7.0, 7.0).await;
    peer.expect(&[
        &[0xB0, 99, 2],
        &[0xB0, 98, 44],
        &[0xB0, 6, 44],
        &[0xB0, 38, 102],
    ]);
    while bridge.controls.try_recv().is_ok() {}
    // The device echoes data entry MSB 44 alone: a 7-bit 44 would be 6.9, but it is our 7.
    peer.send(&[0xB0, 6, 44]);
    let echo = bridge.control_within(Duration::from_millis(500)).await;
    assert!(
        echo.is_none(),
        "the NRPN echo was taken as a move: {echo:?}"
    );
    peer.send(&[0xB0, 6, 0]);
    assert_eq!(bridge.next_control().await.value, 0.0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn encoder_clicks_equal_to_the_fed_back_value_are_clicks() {
    use kubeknobs_bridge::midi::control::{Control, Encoding, Mode};
    let mut peer = support::midi::Peer::start("kk-encoder2");
    let encoder = bind(
        Control::Cc(16),
        Mode::Relative(Encoding::TwosComplement),
        true,
    );
    let mut bridge = start(midi(
        &["kk-encoder2:surface"],
        &["kk-encoder2"],
        vec![encoder, probe()],
    ))
    .await;
    bridge.control_while(|| peer.send(&[0xB0, 7, 0])).await;
    bridge.settle().await;
    // The target is at its top: its LED ring is sent 127, which is also "-1" in two's complement.
    bridge.push_handled(20.0, 20.0).await;
    peer.expect(&[&[0xB0, 16, 127]]);
    while bridge.controls.try_recv().is_ok() {}
    let mut values = Vec::new();
    for _ in 0..3 {
        peer.send(&[0xB0, 16, 127]);
        values.push(bridge.next_control().await.value);
    }
    assert_eq!(
        values,
        [19.0, 18.0, 17.0],
        "one target step per click, none dropped"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_move_back_to_the_fed_back_value_counts_without_any_midi_output() {
    let mut surface = support::midi::Peer::start("kk-nooutput");
    let mut bridge = start(midi(&["kk-nooutput:surface"], &[], vec![cc(7)])).await;
    let event = bridge.control_while(|| surface.send(&[0xB0, 7, 127])).await;
    assert_eq!(event.value, 20.0);
    bridge.settle().await;
    // Someone else sets 10 (CC 64 if it were sent anywhere; it is not): a hand moving the
    // fader to 64 right after is a move.
    bridge.push_handled(10.0, 10.0).await;
    surface.send(&[0xB0, 7, 64]);
    assert_eq!(bridge.next_control().await.value, 10.0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_move_back_to_the_fed_back_value_counts_when_feedback_went_to_another_device() {
    // The surface has no output the bridge writes to; feedback goes to a separate LED device.
    let mut surface = support::midi::Peer::start("kk-noecho");
    let lights = support::midi::Peer::start("kk-otherleds");
    let mut bridge = start(midi(&["kk-noecho:surface"], &["kk-otherleds"], vec![cc(7)])).await;
    lights.expect(&[&[0xB0, 7, 19]]);
    let event = bridge.control_while(|| surface.send(&[0xB0, 7, 127])).await;
    assert_eq!(event.value, 20.0);
    bridge.settle().await;
    bridge.push_handled(10.0, 10.0).await;
    lights.expect(&[&[0xB0, 7, 64]]);
    while bridge.controls.try_recv().is_ok() {}
    // 64 is what was fed back, but not to this surface: it is a hand, not an echo.
    surface.send(&[0xB0, 7, 64]);
    assert_eq!(bridge.next_control().await.value, 10.0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_toggle_pressed_twice_during_a_pending_write_turns_back_off() {
    use kubeknobs_bridge::midi::control::{Control, Mode};
    let mut peer = support::midi::Peer::start("kk-toggle");
    let toggle = bind(Control::Note(37), Mode::Toggle, true);
    let mut bridge = start(midi(
        &["kk-toggle:surface"],
        &["kk-toggle"],
        vec![toggle, probe()],
    ))
    .await;
    // 3 of 0..20 is off: the LED is sent note off (note on, velocity 0).
    peer.expect(&[&[0x90, 37, 0]]);
    bridge.control_while(|| peer.send(&[0xB0, 7, 0])).await;
    bridge.settle().await;
    while bridge.controls.try_recv().is_ok() {}
    peer.send(&[0x90, 37, 127]);
    assert_eq!(bridge.next_control().await.value, 20.0, "first press: on");
    // The write is pending; an unrelated update (the ready count changes) arrives.
    bridge.push_handled(3.0, 2.0).await;
    peer.send(&[0x80, 37, 0]);
    peer.send(&[0x90, 37, 127]);
    assert_eq!(
        bridge.next_control().await.value,
        0.0,
        "second press: off again"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_is_sent_once_and_not_again_when_only_the_ready_count_changes() {
    use kubeknobs_bridge::midi::control::{Control, Mode};
    let peer = support::midi::Peer::start("kk-oncefb");
    let fader = bind(Control::Cc(9), Mode::Absolute, true);
    let bridge = start(midi(&[], &["kk-oncefb"], vec![fader])).await;
    let mut seen = peer.expect(&[&[0xB0, 9, 19]]);
    for ready in [2.0, 1.0, 3.0] {
        bridge.push_handled(3.0, ready).await;
    }
    seen.extend(peer.received_within(Duration::from_millis(500)));
    assert_eq!(seen, [vec![0xB0, 9, 19]], "the state once, as one event");
    // A real change is sent (once).
    bridge.push_handled(10.0, 3.0).await;
    peer.expect(&[&[0xB0, 9, 64]]);
    assert!(peer.received_within(Duration::from_millis(300)).is_empty());
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_motor_fader_moved_by_hand_is_driven_back_when_the_state_is_sent_again() {
    let mut peer = support::midi::Peer::start("kk-driveback");
    let mut bridge = start(midi(
        &["kk-driveback:surface"],
        &["kk-driveback"],
        vec![cc(7)],
    ))
    .await;
    peer.expect(&[&[0xB0, 7, 19]]);
    // A hand moves the fader to the top; the cluster does not follow (refused, say), and the
    // same state is played again: the fader, which now shows 127, is sent back to 19.
    let event = bridge.control_while(|| peer.send(&[0xB0, 7, 127])).await;
    assert_eq!(event.value, 20.0);
    bridge.push_handled(3.0, 3.0).await;
    peer.expect(&[&[0xB0, 7, 19]]);
    bridge.stop().await;
}

/// python-rtmidi playing `moves` (`(cc, value)` on channel 1) over JACK within `seconds`, spread
/// evenly, as a hand on a real surface does; returns when it has sent them all.
async fn rtmidi_flick(client: &str, moves: &[(u8, u8)], seconds: f64) {
    const FLICK: &str = r#"
import sys, time, json, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, sys.argv[1])
out.open_virtual_port("surface")
print("ready", flush=True)
moves, seconds = json.loads(sys.stdin.readline()), float(sys.argv[2])
gap = seconds / max(len(moves), 1)
start = time.monotonic()
for i, (cc, value) in enumerate(moves):
    while time.monotonic() < start + i * gap:
        pass
    out.send_message([0xB0, cc, value])
print("sent", flush=True)
time.sleep(1)
"#;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let python = std::env::var("KUBEKNOBS_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = tokio::process::Command::new(&python)
        .args(["-c", FLICK, client, &seconds.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line()).await;
    assert!(matches!(&line, Ok(Ok(Some(l))) if l == "ready"), "{line:?}");
    // The bridge finds the port by name at its next rescan (every 200 ms here).
    bridge_port(&format!("{client}:surface")).await;
    let json = serde_json::to_string(moves).expect("json");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{json}\n").as_bytes())
        .await
        .expect("moves");
    let line = tokio::time::timeout(WAIT, lines.next_line()).await;
    assert!(matches!(&line, Ok(Ok(Some(l))) if l == "sent"), "{line:?}");
    // Its JACK port delivers what is queued at the next cycles: let it exit by itself.
    let exited = tokio::time::timeout(WAIT, child.wait()).await;
    assert!(
        matches!(&exited, Ok(Ok(status)) if status.success()),
        "{exited:?}"
    );
}

/// Every control event the bridge sends until none has come for a second.
async fn events_until_quiet(bridge: &mut Running) -> Vec<kubeknobs_proto::v1::ControlEvent> {
    let mut events = Vec::new();
    while let Some(e) = bridge.control_within(Duration::from_secs(1)).await {
        events.push(e);
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_midi_flick_of_128_ccs_becomes_a_few_moves_ending_on_the_final_value() {
    let mut bridge = start(midi(&["kk-flick:surface"], &[], vec![cc(7)])).await;
    let moves: Vec<(u8, u8)> = (0..128).map(|v| (7, v as u8)).collect();
    rtmidi_flick("kk-flick", &moves, 0.1).await;
    let events = events_until_quiet(&mut bridge).await;
    let last = events.last().expect("moves reached the gateway");
    assert_eq!(
        (last.target.as_str(), last.value),
        ("web", 20.0),
        "{events:?}"
    );
    assert!(
        events.len() <= 8,
        "128 CCs in 0.1 s are merged per target before the uplink: {} events",
        events.len()
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_midi_faders_thrown_together_each_end_on_their_final_value() {
    let binding = |number: u8, target: &str| {
        let mut b = cc(number);
        b.mapping.target = target.into();
        b
    };
    let bindings = vec![binding(7, "web"), binding(8, "api"), binding(9, "db")];
    let mut bridge = start(midi(&["kk-three:surface"], &[], bindings)).await;
    // ~900 interleaved CCs in 0.4 s, as a nanoKONTROL2 with three faders thrown at once.
    let finals = [(7u8, 127u8), (8, 0), (9, 64)];
    let mut moves = Vec::new();
    for step in 0..300u32 {
        for (i, (cc, last)) in finals.iter().enumerate() {
            let value = if step == 299 {
                *last
            } else {
                ((step * (i as u32 + 3)) % 128) as u8
            };
            moves.push((*cc, value));
        }
    }
    rtmidi_flick("kk-three", &moves, 0.4).await;
    let events = events_until_quiet(&mut bridge).await;
    for (target, want) in [("web", 20.0), ("api", 0.0), ("db", 10.0)] {
        let last = events.iter().rev().find(|e| e.target == target);
        assert_eq!(last.map(|e| e.value), Some(want), "{target}: {events:?}");
    }
    assert!(
        events.len() <= 3 * 16,
        "{} events for 900 CCs",
        events.len()
    );
    bridge.stop().await;
}
