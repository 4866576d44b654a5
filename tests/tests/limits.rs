//! Limits and guardrails over real gRPC/TLS: an operator's flood is cut without slowing anyone
//! else, sessions per operator are capped, big jumps are walked in steps, and bad session input
//! (no Hello, oversized messages) ends the session with a clear status and changes nothing.
//!
//! The exact timing of each limit is unit-tested under `tokio::time::pause` (gateway `ratelimit`
//! and `coalesce`); these tests show the same limits hold end to end.

use std::time::{Duration, Instant};

use kubeknobs_proto::v1::{
    OutcomeKind, RejectReason, knobs_client::KnobsClient, server_message::Msg,
};
use kubeknobs_tests::grpc::{DEADLINE, Gateway, control, next, outcome, state_until};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

const CONFIG: &str = r#"
[server]
hello_timeout_ms = 300
max_message_bytes = 1024
# Sessions are told every step of a walk (50 writes/s), not the latest at 30 frames/s.
state_updates_per_second = 1000

[limits]
events_per_second = 20
sessions_per_operator = 2

[targets.web]
kind = "deployment-replicas"
name = "web"
max = 100
max_writes_per_second = 50
initial = 0
[targets.big]
kind = "deployment-replicas"
name = "big"
max = 100
max_step = 10
max_writes_per_second = 50
initial = 0
"#;

#[tokio::test]
async fn a_flood_is_merged_under_the_rate_the_other_operator_is_not_starved_and_the_final_value_lands()
 {
    let gw = Gateway::start(CONFIG).await;
    let (alice, mut alice_rx, _) = gw.welcome("alice-token").await;
    let (bob, mut bob_rx, _) = gw.welcome("bob-token").await;
    const FLOOD: u64 = 400;
    let started = Instant::now();
    for seq in 1..=FLOOD {
        alice
            .send(control(seq, "web", (seq % 90) as f64))
            .await
            .expect("send");
    }
    bob.send(control(1, "big", 42.0)).await.expect("send");
    let bob_outcome = outcome(&mut bob_rx, 1).await;
    assert_eq!(
        bob_outcome.kind,
        OutcomeKind::Applied as i32,
        "{bob_outcome:?}"
    );

    // Outcomes come in any order (a passed event is answered when it is written or replaced).
    let mut outcomes = std::collections::HashMap::new();
    while outcomes.len() < FLOOD as usize {
        if let Msg::Outcome(o) = next(&mut alice_rx).await {
            assert!(outcomes.insert(o.seq, o).is_none(), "one outcome per event");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    for o in outcomes.values() {
        assert_ne!(
            o.kind,
            OutcomeKind::Rejected as i32,
            "speed never refuses: {o:?}"
        );
    }
    let last = &outcomes[&FLOOD];
    assert_eq!(
        (last.kind, last.value),
        (OutcomeKind::Applied as i32, (FLOOD % 90) as f64),
        "the last move of the flood is the one applied: {last:?}"
    );
    assert!(elapsed < 10.0, "the flood is answered at once, not queued");
    state_until(&mut bob_rx, |s| {
        s.target == "web" && s.desired == Some((FLOOD % 90) as f64)
    })
    .await;
}

#[tokio::test]
async fn sessions_per_operator_are_capped_with_resource_exhausted() {
    let gw = Gateway::start(CONFIG).await;
    let _one = gw.welcome("alice-token").await;
    let _two = gw.welcome("alice-token").await;
    let Err(err) = gw.open("alice-token").await else {
        panic!("a third session must be refused")
    };
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("already has 2 session(s)"),
        "{}",
        err.message()
    );
    let _bob = gw.welcome("bob-token").await;
}

#[tokio::test]
async fn a_big_jump_walks_up_in_steps_and_the_final_value_lands() {
    let gw = Gateway::start(CONFIG).await;
    let (alice, mut alice_rx, _) = gw.welcome("alice-token").await;
    let (_bob, mut bob_rx, _) = gw.welcome("bob-token").await;
    alice.send(control(1, "big", 100.0)).await.expect("send");
    let o = outcome(&mut alice_rx, 1).await;
    assert_eq!(
        (o.kind, o.value),
        (OutcomeKind::Applied as i32, 100.0),
        "{o:?}"
    );
    let mut seen = vec![0.0];
    while seen.last() != Some(&100.0) {
        if let Msg::State(update) = next(&mut bob_rx).await {
            for s in update.states.into_iter().filter(|s| s.target == "big") {
                let d = s.desired.expect("desired");
                if Some(&d) != seen.last() {
                    seen.push(d);
                }
            }
        }
    }
    for pair in seen.windows(2) {
        assert!(
            pair[1] - pair[0] <= 10.0,
            "no step above max_step: {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_hello_that_never_comes_times_out_with_a_clear_error() {
    let gw = Gateway::start(CONFIG).await;
    let (_tx, rx) = mpsc::channel::<kubeknobs_proto::v1::ClientMessage>(1);
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert(
        "authorization",
        "Bearer alice-token".parse().expect("ascii"),
    );
    let started = Instant::now();
    let err = tokio::time::timeout(
        DEADLINE,
        KnobsClient::new(gw.channel().await).session(request),
    )
    .await
    .expect("answered in time")
    .expect_err("refused");
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert!(
        err.message().contains("no Hello within"),
        "{}",
        err.message()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_oversized_message_ends_the_session_and_changes_nothing() {
    let gw = Gateway::start(CONFIG).await;
    let (alice, mut alice_rx, _) = gw.welcome("alice-token").await;
    alice
        .send(control(1, &"w".repeat(4096), 5.0))
        .await
        .expect("send");
    let status = loop {
        match tokio::time::timeout(DEADLINE, alice_rx.message())
            .await
            .expect("in time")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the session must end with a status"),
            Err(status) => break status,
        }
    };
    assert!(status.message().contains("too large"), "{status:?}");
    let (_p, _pr, probe) = gw.welcome("bob-token").await;
    assert!(
        probe
            .targets
            .iter()
            .all(|t| t.state.as_ref().and_then(|s| s.desired) == Some(0.0))
    );
}

#[tokio::test]
async fn a_restart_button_acts_once_per_cooldown_and_its_release_changes_nothing() {
    let config = r#"
[targets.roll]
kind = "deployment-restart"
name = "web"
cooldown_ms = 60000
"#;
    let gw = Gateway::start(config).await;
    let (alice, mut alice_rx, welcome) = gw.welcome("alice-token").await;
    let bounds = welcome.targets[0].bounds.expect("bounds");
    assert_eq!((bounds.min, bounds.max), (0.0, 1.0));
    alice.send(control(1, "roll", 1.0)).await.expect("send");
    assert_eq!(
        outcome(&mut alice_rx, 1).await.kind,
        OutcomeKind::Applied as i32
    );
    alice.send(control(2, "roll", 0.0)).await.expect("send");
    let released = outcome(&mut alice_rx, 2).await;
    assert_eq!(released.kind, OutcomeKind::Applied as i32);
    assert!(
        released.message.contains("released"),
        "{}",
        released.message
    );
    let (bob, mut bob_rx, _) = gw.welcome("bob-token").await;
    bob.send(control(1, "roll", 1.0)).await.expect("send");
    let o = outcome(&mut bob_rx, 1).await;
    assert_eq!(o.reason, RejectReason::RateLimited as i32, "{o:?}");
    assert!(o.message.contains("cooldown"), "{}", o.message);
}

#[tokio::test]
async fn a_destructive_target_needs_the_arm_control_held() {
    use kubeknobs_proto::v1::{ArmEvent, ClientMessage, client_message};
    let arm = |armed| ClientMessage {
        msg: Some(client_message::Msg::Arm(ArmEvent { armed })),
    };
    let config = r#"
[targets.web]
kind = "deployment-replicas"
name = "web"
max = 10
initial = 3
requires_arm = true
"#;
    let gw = Gateway::start(config).await;
    let (alice, mut alice_rx, _) = gw.welcome("alice-token").await;
    alice.send(control(1, "web", 0.0)).await.expect("send");
    let o = outcome(&mut alice_rx, 1).await;
    assert_eq!(o.reason, RejectReason::NotArmed as i32, "{o:?}");
    assert!(o.message.contains("hold the arm control"), "{}", o.message);
    alice.send(arm(true)).await.expect("send");
    alice.send(control(2, "web", 0.0)).await.expect("send");
    assert_eq!(
        outcome(&mut alice_rx, 2).await.kind,
        OutcomeKind::Applied as i32
    );
    alice.send(arm(false)).await.expect("send");
    alice.send(control(3, "web", 5.0)).await.expect("send");
    assert_eq!(
        outcome(&mut alice_rx, 3).await.reason,
        RejectReason::NotArmed as i32
    );
}
