//! Touch ownership, presence and arming: over gRPC with two sessions, and end to end with real
//! bridges whose phones are liblo's `oscsend`/`oscdump`.

use std::path::Path;

use kubeknobs_proto::v1::{
    ClientMessage, OutcomeKind, RejectReason, TouchEvent, client_message, server_message::Msg,
};
use kubeknobs_tests::grpc::{self, control, next, outcome};
use kubeknobs_tests::harness::{Bridge, Gateway, OscDump, gen_certs, osc_send, token_hash};
use kubeknobs_tests::pipeline::{TOKEN, bridge_config, gateway_config};

const WEB: &str = r#"
[limits]
touch_grace_ms = 200
[targets.web]
kind = "deployment-replicas"
name = "web"
max = 20
max_writes_per_second = 20
"#;

fn touch(target: &str, touched: bool) -> ClientMessage {
    ClientMessage {
        msg: Some(client_message::Msg::Touch(TouchEvent {
            target: target.into(),
            touched,
        })),
    }
}

#[tokio::test]
async fn a_touched_target_is_held_against_other_operators_until_release_and_grace() {
    let gw = grpc::Gateway::start(WEB).await;
    let (alice, mut alice_rx, _) = gw.welcome("alice-token").await;
    let (bob, mut bob_rx, _) = gw.welcome("bob-token").await;
    alice.send(touch("web", true)).await.expect("send");
    // Touches have no outcome; alice's own move after the touch shows it was processed.
    alice.send(control(1, "web", 3.0)).await.expect("send");
    assert_eq!(
        outcome(&mut alice_rx, 1).await.kind,
        OutcomeKind::Applied as i32
    );
    bob.send(touch("web", true)).await.expect("send");
    bob.send(control(1, "web", 9.0)).await.expect("send");
    let o = outcome(&mut bob_rx, 1).await;
    assert_eq!(
        (o.kind, o.reason),
        (OutcomeKind::Rejected as i32, RejectReason::Held as i32)
    );
    assert!(o.message.starts_with("held by alice"), "{}", o.message);

    alice.send(touch("web", false)).await.expect("send");
    alice.send(control(2, "web", 4.0)).await.expect("send");
    outcome(&mut alice_rx, 2).await;
    // Bob tries again every 50 ms until the release plus the 200 ms grace has passed.
    let released = std::time::Instant::now();
    let mut seq = 2;
    let freed = loop {
        bob.send(control(seq, "web", 9.0)).await.expect("send");
        let o = outcome(&mut bob_rx, seq).await;
        if o.reason != RejectReason::Held as i32 {
            break o;
        }
        assert!(
            released.elapsed() < grpc::DEADLINE,
            "a released touch held the target for good: {o:?}"
        );
        seq += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(freed.kind, OutcomeKind::Applied as i32, "{freed:?}");
    assert!(seq >= 3, "the grace period held bob off at least once");
}

#[tokio::test]
async fn every_session_is_told_who_is_connected() {
    let gw = grpc::Gateway::start(WEB).await;
    let (_alice, mut alice_rx, _) = gw.welcome("alice-token").await;
    let (bob, _bob_rx, _) = gw.welcome("bob-token").await;
    let names = loop {
        if let Msg::Presence(p) = next(&mut alice_rx).await {
            let names: Vec<String> = p.operators.into_iter().map(|o| o.name).collect();
            if names.len() == 2 {
                break names;
            }
        }
    };
    assert_eq!(names, ["alice", "bob"]);
    drop(bob);
    drop(_bob_rx);
    loop {
        if let Msg::Presence(p) = next(&mut alice_rx).await
            && p.operators.len() == 1
        {
            assert_eq!(p.operators[0].name, "alice");
            break;
        }
    }
}

/// A bridge in its own directory (config, token, CA), sending feedback to `phone`.
fn bridge(dir: &Path, gateway: &Gateway, phone: &OscDump, token: &str, extra: &str) -> Bridge {
    let own = dir.join(token);
    std::fs::create_dir_all(own.join("certs")).expect("mkdir");
    std::fs::copy(dir.join("certs/ca.pem"), own.join("certs/ca.pem")).expect("copy ca");
    let config = bridge_config(&own, gateway, phone.port, token)
        .replace("[osc]\n", &format!("[osc]\n{extra}\n"));
    Bridge::start(&own, &config)
}

/// A gateway (sandbox, touch grace 300 ms) with operators alice and bob, each on a bridge of
/// their own with a phone; bob's phone shows the presence label.
struct TwoOperators {
    dir: tempfile::TempDir,
    gateway: Gateway,
    alice: Bridge,
    bob: Bridge,
    bob_phone: OscDump,
    _alice_phone: OscDump,
}

fn two_operators() -> TwoOperators {
    kubeknobs_tests::harness::require_tool("oscsend");
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    let config = format!(
        "{}\n[[operators]]\nname = \"bob\"\ntoken_sha256 = \"{}\"\n[limits]\ntouch_grace_ms = 300\n",
        gateway_config("backend = \"sandbox\"", "default", "web"),
        token_hash("bob-secret")
    );
    let gateway = Gateway::start(dir.path(), &config);
    let (alice_phone, bob_phone) = (OscDump::start(), OscDump::start());
    let alice = bridge(dir.path(), &gateway, &alice_phone, TOKEN, "");
    alice.process.wait_for(&["connected", "alice"]);
    let bob = bridge(
        dir.path(),
        &gateway,
        &bob_phone,
        "bob-secret",
        "presence_label = \"/1/presence\"",
    );
    bob.process.wait_for(&["connected", "bob"]);
    alice
        .process
        .wait_for(&["connected operators", "alice, bob"]);
    TwoOperators {
        dir,
        gateway,
        alice,
        bob,
        bob_phone,
        _alice_phone: alice_phone,
    }
}

/// Alice touches the fader and moves it to 5; bob's move is then refused as held by alice.
fn alice_holds_the_fader(t: &TwoOperators, nth_refusal: usize) {
    osc_send(t.alice.osc_port, "/1/fader1/z", "f", "1");
    osc_send(t.alice.osc_port, "/1/fader1", "f", "0.25");
    t.gateway.wait_for_applied("alice", "web", 5.0);
    bob_is_held_off(t, nth_refusal);
}

fn bob_is_held_off(t: &TwoOperators, nth: usize) {
    osc_send(t.bob.osc_port, "/1/fader1", "f", "0.5");
    // The audit and the logs show the first refusal of a second in full and count the rest into
    // a summary line, which names the reason too.
    t.gateway
        .process
        .wait_for_nth(&["\"operator\":\"bob\"", "\"reason\":\"held\""], nth);
    t.bob.process.wait_for_nth(&["REJECT_REASON_HELD"], nth);
}

#[test]
fn two_bridges_a_touch_on_one_phone_holds_the_fader_against_the_other() {
    let t = two_operators();
    alice_holds_the_fader(&t, 1);
    // Bob's phone shows who is connected.
    t.bob_phone.wait_for("/1/presence", "\"alice bob\"");
}

#[test]
fn a_bridge_reload_that_keeps_the_gateway_session_keeps_the_touch() {
    let t = two_operators();
    alice_holds_the_fader(&t, 1);
    let path = t.dir.path().join(TOKEN).join("bridge.toml");
    let config = std::fs::read_to_string(&path).expect("alice's bridge.toml");
    std::fs::write(&path, config.replace("/1/label1", "/1/label9")).expect("edit");
    t.alice.process.hang_up();
    t.alice
        .process
        .wait_for(&["config reloaded", "the gateway session stays"]);
    // Deliberately longer than the touch grace (300 ms): a new session would have released the
    // touch by now.
    std::thread::sleep(std::time::Duration::from_millis(600));
    bob_is_held_off(&t, 2);
}

#[test]
fn a_bridge_arm_button_unlocks_a_destructive_target_while_held() {
    kubeknobs_tests::harness::require_tool("oscsend");
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    let config = gateway_config("backend = \"sandbox\"", "default", "web")
        .replace("initial = 2", "initial = 2\nrequires_arm = true");
    let gateway = Gateway::start(dir.path(), &config);
    let phone = OscDump::start();
    let alice = bridge(
        dir.path(),
        &gateway,
        &phone,
        TOKEN,
        "arm_address = \"/1/push1\"",
    );
    alice.process.wait_for(&["connected", "alice"]);
    osc_send(alice.osc_port, "/1/fader1", "f", "0.5");
    gateway.wait_for_audit("alice's move refused as not armed", |r| {
        r["operator"] == "alice" && r["outcome"] == "rejected" && r["reason"] == "not armed"
    });
    osc_send(alice.osc_port, "/1/push1", "f", "1");
    osc_send(alice.osc_port, "/1/fader1", "f", "0.5");
    gateway.wait_for_applied("alice", "web", 10.0);
}
