//! "Latest value wins, final value never lost", seen from a raw gRPC client that ignores every
//! answer: whatever the limits, the last value an operator sends for a target is applied (or
//! refused for a reason that is not about speed), a value the target already has is not written
//! again, and a move that leaves the cluster unchanged is answered with the target's real state.

use std::collections::HashMap;
use std::time::Duration;

use kubeknobs_proto::v1::{OutcomeKind, RejectReason, server_message::Msg};
use kubeknobs_tests::grpc::{DEADLINE, Gateway, control, next, outcome, state_until};

/// Default `[limits]` (100 events/s per operator), targets at the default write rate.
const DEFAULTS: &str = r#"
[targets.web]
kind = "deployment-replicas"
name = "web"
max = 20
initial = 0
[targets.api]
kind = "deployment-replicas"
name = "api"
max = 20
initial = 0
[targets.db]
kind = "deployment-replicas"
name = "db"
max = 20
initial = 0
[targets.dry]
kind = "deployment-replicas"
name = "dry"
max = 20
initial = 3
dry_run = true
"#;

/// Reads outcomes until every `seq` in `want` has one; returns them by seq.
async fn outcomes(
    rx: &mut tonic::Streaming<kubeknobs_proto::v1::ServerMessage>,
    want: impl IntoIterator<Item = u64>,
) -> HashMap<u64, kubeknobs_proto::v1::Outcome> {
    let mut want: std::collections::HashSet<u64> = want.into_iter().collect();
    let mut got = HashMap::new();
    while !want.is_empty() {
        if let Msg::Outcome(o) = next(rx).await {
            want.remove(&o.seq);
            assert!(got.insert(o.seq, o).is_none(), "one outcome per event");
        }
    }
    got
}

#[tokio::test]
async fn a_client_that_ignores_rate_limits_still_gets_its_final_values_applied() {
    let gw = Gateway::start(DEFAULTS).await;
    let (alice, mut rx, _) = gw.welcome("alice-token").await;
    // Three faders thrown together, as fast as the stream takes them: 3 x 300 interleaved moves,
    // far over 100 events/s, each fader ending on its own final value.
    let finals = [("web", 17.0), ("api", 5.0), ("db", 11.0)];
    let mut seq = 0;
    let mut last_seq = HashMap::new();
    for step in 0..300 {
        for (target, last) in finals {
            seq += 1;
            let value = if step == 299 {
                last
            } else {
                f64::from(step % 20)
            };
            alice.send(control(seq, target, value)).await.expect("send");
            last_seq.insert(target, seq);
        }
    }
    let answers = outcomes(&mut rx, 1..=seq).await;
    for (target, last) in finals {
        let o = &answers[&last_seq[target]];
        assert_eq!(
            (o.kind, o.value),
            (OutcomeKind::Applied as i32, last),
            "the final move of {target} is applied: {o:?}"
        );
    }
    let limited = answers
        .values()
        .filter(|o| o.reason == RejectReason::RateLimited as i32)
        .count();
    assert_eq!(limited, 0, "speed alone never refuses a move");
    for (target, last) in finals {
        state_until(&mut rx, |s| s.target == target && s.desired == Some(last)).await;
    }
}

#[tokio::test]
async fn a_value_the_target_already_has_is_not_written_again() {
    let gw = Gateway::start(DEFAULTS).await;
    let (alice, mut rx, _) = gw.welcome("alice-token").await;
    alice.send(control(1, "web", 4.0)).await.expect("send");
    assert_eq!(outcome(&mut rx, 1).await.kind, OutcomeKind::Applied as i32);
    state_until(&mut rx, |s| s.target == "web" && s.desired == Some(4.0)).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // past the target's write interval
    alice.send(control(2, "web", 4.0)).await.expect("send");
    let again = outcome(&mut rx, 2).await;
    assert_eq!(again.kind, OutcomeKind::Applied as i32, "{again:?}");
    assert!(
        again.message.contains("already at 4"),
        "a no-op says so: {again:?}"
    );
}

#[tokio::test]
async fn a_move_that_leaves_the_cluster_unchanged_is_answered_with_the_real_state() {
    let gw = Gateway::start(DEFAULTS).await;
    let (alice, mut rx, _) = gw.welcome("alice-token").await;
    // Out of range: refused, and the session is told the truth again for its control.
    alice.send(control(1, "web", 99.0)).await.expect("send");
    let mut refused = false;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no state after refusal"
        );
        match next(&mut rx).await {
            Msg::Outcome(o) if o.seq == 1 => {
                assert_eq!(o.kind, OutcomeKind::Rejected as i32);
                refused = true;
            }
            Msg::State(update)
                if refused
                    && update
                        .states
                        .iter()
                        .any(|s| s.target == "web" && s.desired == Some(0.0)) =>
            {
                break;
            }
            _ => {}
        }
    }
    // A dry run changes nothing either: the real state (3) comes back after the outcome.
    alice.send(control(2, "dry", 9.0)).await.expect("send");
    let dry = outcome(&mut rx, 2).await;
    assert!(dry.message.contains("dry run"), "{dry:?}");
    state_until(&mut rx, |s| s.target == "dry" && s.desired == Some(3.0)).await;
}

#[tokio::test]
async fn a_flood_of_refused_moves_leaves_a_bounded_audit_that_still_counts_them_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let gw = Gateway::start(&format!(
        "[audit]\nfile = {:?}\n{DEFAULTS}",
        path.display().to_string()
    ))
    .await;
    let (alice, mut rx, _) = gw.welcome("alice-token").await;
    const FLOOD: u64 = 2000;
    for seq in 1..=FLOOD {
        alice.send(control(seq, "web", 99.0)).await.expect("send");
    }
    let answers = outcomes(&mut rx, 1..=FLOOD).await;
    // Over the event rate, moves wait their turn and newer ones supersede them; each that is
    // looked at is refused.
    let refused = answers
        .values()
        .filter(|o| o.reason == RejectReason::OutOfRange as i32)
        .count() as u64;
    assert!(
        answers
            .values()
            .all(|o| o.kind != OutcomeKind::Applied as i32),
        "nothing out of range is applied"
    );
    assert!(refused >= 100, "{refused} refused");
    // The summary of the second comes when it is over.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let lines = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
            .collect();
        let counted: u64 = lines.iter().map(|l| l["count"].as_u64().unwrap_or(1)).sum();
        if counted >= refused {
            assert_eq!(counted, refused, "each refusal is counted once: {lines:?}");
            break lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{counted} of {refused} refusals audited: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        lines.len() <= 10,
        "{refused} refusals in a few seconds are a few audit lines, not {}",
        lines.len()
    );
    assert_eq!(lines[0]["reason"], "out of range");
    assert_eq!(lines[0]["new"], 99.0);
}
