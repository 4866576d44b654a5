//! How fast a session is sent state, over real gRPC/TLS on loopback: state updates at most at
//! the session's frame rate (`server.state_updates_per_second`), and the end of a burst always
//! delivered. (That the gateway's connections have Nagle off is `listener`'s unit test; the
//! load benchmark, `tests/benches/load`, shows the outcome latencies.)

use std::time::Duration;

use kubeknobs_proto::v1::server_message::Msg;
use kubeknobs_tests::grpc::{DEADLINE, Gateway, control};
use tokio::time::Instant;

/// Ten targets of 0..=20 that take up to 100 writes a second each.
fn targets() -> String {
    (0..10)
        .map(|i| {
            format!(
                "[targets.t{i}]\nkind = \"deployment-replicas\"\nname = \"t{i}\"\nmax = 20\n\
                 max_writes_per_second = 100\ninitial = 0\n"
            )
        })
        .collect()
}

#[tokio::test]
async fn a_session_gets_at_most_its_frame_rate_and_always_the_last_state() {
    let gw = Gateway::start(&format!(
        "[server]\nstate_updates_per_second = 5\n\
         [limits]\nevents_per_second = 1000\nwrites_per_second = 1000\n{}",
        targets()
    ))
    .await;
    let (tx, _driver, _) = gw.welcome("alice-token").await;
    let (_watch, mut watching, _) = gw.welcome("bob-token").await;
    let finals: Vec<f64> = (0..10).map(|t| ((t * 3 + 1) % 21) as f64).collect();
    // The watcher reads from the start, so each update is timed as it comes.
    let expected = finals.clone();
    let watcher = tokio::spawn(async move {
        let mut updates = Vec::new();
        let mut desired = [None; 10];
        let deadline = Instant::now() + DEADLINE;
        while desired.iter().zip(&expected).any(|(d, f)| *d != Some(*f)) {
            let message = tokio::time::timeout_at(deadline, watching.message())
                .await
                .unwrap_or_else(|_| panic!("the last values never arrived: {desired:?}"))
                .expect("stream ok")
                .expect("stream open");
            if let Some(Msg::State(update)) = message.msg {
                updates.push(Instant::now());
                for state in update.states {
                    let t: usize = state.target[1..].parse().expect("t<n>");
                    desired[t] = state.desired.or(desired[t]);
                }
            }
        }
        updates
    });
    // Two seconds of moves on every target: each write and each "pod" the sandbox readies after
    // it is a change, many more than 5 a second.
    let start = Instant::now();
    let mut seq = 0;
    while start.elapsed() < Duration::from_secs(2) {
        for t in 0..10 {
            seq += 1;
            tx.send(control(seq, &format!("t{t}"), (seq % 21) as f64))
                .await
                .expect("send");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (t, value) in finals.iter().enumerate() {
        seq += 1;
        tx.send(control(seq, &format!("t{t}"), *value))
            .await
            .expect("send");
    }
    let updates = watcher.await.expect("the watcher saw the last values");
    let span = updates[updates.len() - 1] - updates[0];
    // One frame every 200 ms: at most span / 200 ms + 1 updates (and a few ms of timer slack).
    let allowed = (span.as_secs_f64() / 0.2).floor() as usize + 2;
    assert!(
        updates.len() <= allowed,
        "{} StateUpdates in {span:?}: more than 5 a second",
        updates.len()
    );
    assert!(updates.len() >= 5, "only {} StateUpdates", updates.len());
}
