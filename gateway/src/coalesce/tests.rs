use std::collections::{HashMap, VecDeque};

use super::*;
use crate::catalog::{Catalog, TargetKind};
use kubeknobs_proto::v1::{self, server_message::Msg};

/// A cluster that records writes and fails them as scripted.
#[derive(Default)]
struct Recorder {
    writes: Mutex<Vec<(i32, Instant)>>,
    script: Mutex<VecDeque<Result<(), WriteError>>>,
    /// When set, successful writes are reported here, as a watch would.
    watch: Mutex<Option<Arc<StateHub>>>,
}

fn observed(desired: i32) -> crate::state::Observed {
    crate::state::Observed {
        desired,
        current: None,
        ready: None,
        manager: None,
        ..Default::default()
    }
}

impl Writer for Recorder {
    async fn write(&self, target: &TargetSpec, value: i32, _: Actor<'_>) -> Result<(), WriteError> {
        self.writes.lock().unwrap().push((value, Instant::now()));
        let result = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
        if let (Ok(()), Some(hub)) = (&result, self.watch.lock().unwrap().as_ref()) {
            hub.observe(&target.name, observed(value));
        }
        result
    }
}

impl Recorder {
    fn failing(errors: impl IntoIterator<Item = WriteError>) -> Recorder {
        Recorder {
            script: Mutex::new(errors.into_iter().map(Err).collect()),
            ..Default::default()
        }
    }

    fn values(&self) -> Vec<i32> {
        self.writes
            .lock()
            .unwrap()
            .iter()
            .map(|(v, _)| *v)
            .collect()
    }
}

fn retryable(message: &str) -> WriteError {
    WriteError {
        retryable: true,
        message: message.into(),
    }
}

fn web(rate: f64) -> Arc<TargetSpec> {
    Arc::new(TargetSpec {
        max_writes_per_second: rate,
        ..TargetSpec::for_test("web", TargetKind::DeploymentReplicas, "default", 500)
    })
}

struct Harness {
    coalescer: Coalescer,
    task: tokio::task::JoinHandle<()>,
    writer: Arc<Recorder>,
    shutdown: CancellationToken,
    reply: Reply,
    outcomes: mpsc::Receiver<Result<ServerMessage, Status>>,
    /// States sent after outcomes that left the cluster unchanged.
    truths: Vec<v1::TargetState>,
}

fn harness(rate: f64, writer: Recorder) -> Harness {
    harness_for(web(rate), writer)
}

fn harness_for(target: Arc<TargetSpec>, writer: Recorder) -> Harness {
    let mut catalog = Catalog::default();
    catalog.insert((*target).clone());
    let writer = Arc::new(writer);
    let shutdown = CancellationToken::new();
    let hub = Arc::new(StateHub::new(&catalog));
    hub.observe(&target.name, observed(0));
    *writer.watch.lock().unwrap() = Some(hub.clone());
    let (coalescer, task) = Coalescer::spawn(target, writer.clone(), hub, shutdown.clone());
    let (tx, outcomes) = mpsc::channel(1024);
    let reply = Reply::new(tx, Metrics::new());
    Harness {
        coalescer,
        task,
        writer,
        shutdown,
        reply,
        outcomes,
        truths: Vec::new(),
    }
}

impl Harness {
    fn submit(&self, seq: u64, value: i32) {
        self.coalescer.submit(Submission {
            seq,
            value,
            operator: "alice".into(),
            groups: vec!["ops".to_owned()].into(),
            reply: self.reply.clone(),
            received: tokio::time::Instant::now(),
            warning: None,
        });
    }

    /// Every outcome received so far, by seq.
    fn outcomes(&mut self) -> HashMap<u64, v1::Outcome> {
        let mut all = HashMap::new();
        while let Ok(Ok(msg)) = self.outcomes.try_recv() {
            match msg.msg {
                Some(Msg::Outcome(o)) => {
                    assert!(all.insert(o.seq, o).is_none(), "one outcome per event")
                }
                // The truth sent after an outcome that left the cluster unchanged.
                Some(Msg::State(update)) => self.truths.extend(update.states),
                other => panic!("not an outcome or state: {other:?}"),
            }
        }
        all
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_500_ends_with_the_last_value_written_within_the_rate() {
    let mut h = harness(2.0, Recorder::default());
    let start = Instant::now();
    for seq in 1..=500u64 {
        h.submit(seq, (seq % 97) as i32);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.submit(501, 42);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let elapsed = start.elapsed().as_secs_f64();

    let writes = h.writer.writes.lock().unwrap().clone();
    assert_eq!(
        writes.last().map(|w| w.0),
        Some(42),
        "the last value is the one written"
    );
    let allowed = (elapsed * 2.0).floor() as usize + 1;
    assert!(
        writes.len() <= allowed,
        "{} writes in {elapsed:.1}s exceeds 2/s",
        writes.len()
    );
    assert!(
        writes.len() >= 8,
        "writes keep flowing during the sweep: {}",
        writes.len()
    );
    for pair in writes.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= Duration::from_millis(500),
            "writes at least 1/rate apart"
        );
    }

    let outcomes = h.outcomes();
    assert_eq!(outcomes.len(), 501, "every event is answered");
    assert_eq!(outcomes[&501].kind, OutcomeKind::Applied as i32);
    let applied = outcomes
        .values()
        .filter(|o| o.kind == OutcomeKind::Applied as i32)
        .count();
    let superseded = outcomes
        .values()
        .filter(|o| o.kind == OutcomeKind::Superseded as i32)
        .count();
    assert_eq!(applied, writes.len());
    assert_eq!(applied + superseded, 501);
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_until_the_value_lands() {
    let mut h = harness(
        10.0,
        Recorder::failing([
            retryable("409 Conflict"),
            retryable("429 Too Many Requests"),
        ]),
    );
    h.submit(1, 7);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.writer.values(), vec![7, 7, 7]);
    assert_eq!(h.outcomes()[&1].kind, OutcomeKind::Applied as i32);
}

#[tokio::test(start_paused = true)]
async fn a_newer_value_replaces_one_being_retried() {
    let mut h = harness(
        10.0,
        Recorder::failing([retryable("500 Internal Server Error")]),
    );
    h.submit(1, 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.submit(2, 9);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.writer.values(), vec![3, 9]);
    let outcomes = h.outcomes();
    assert_eq!(outcomes[&1].kind, OutcomeKind::Superseded as i32);
    assert_eq!(outcomes[&2].kind, OutcomeKind::Applied as i32);
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_reach_the_operator_with_the_reason() {
    let not_found = WriteError {
        retryable: false,
        message: "deployments.apps \"web\" not found".into(),
    };
    let mut h = harness(10.0, Recorder::failing([not_found]));
    h.submit(1, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.writer.values(), vec![4], "not retried");
    let outcome = &h.outcomes()[&1];
    assert_eq!(outcome.kind, OutcomeKind::Rejected as i32);
    assert_eq!(outcome.reason, RejectReason::ClusterError as i32);
    assert!(outcome.message.contains("not found"), "{}", outcome.message);
    assert_eq!(
        h.truths
            .iter()
            .map(|s| s.target.as_str())
            .collect::<Vec<_>>(),
        ["web"],
        "a refusal is followed by the target's real state"
    );
}

#[tokio::test(start_paused = true)]
async fn a_value_the_watch_shows_already_is_answered_without_a_write() {
    let mut h = harness(10.0, Recorder::default());
    h.submit(1, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.submit(2, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.writer.values(), vec![4], "the second 4 is not written");
    let outcomes = h.outcomes();
    assert_eq!(outcomes[&2].kind, OutcomeKind::Applied as i32);
    assert!(
        outcomes[&2].message.contains("already at 4"),
        "{:?}",
        outcomes[&2]
    );
    assert_eq!(h.truths.len(), 1, "the no-op is answered with the state");
}

#[tokio::test(start_paused = true)]
async fn giving_up_after_max_attempts_is_reported() {
    let mut h = harness(
        10.0,
        Recorder::failing((0..MAX_ATTEMPTS).map(|_| retryable("503 Service Unavailable"))),
    );
    h.submit(1, 4);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(h.writer.values().len(), MAX_ATTEMPTS as usize);
    let outcome = &h.outcomes()[&1];
    assert_eq!(outcome.reason, RejectReason::ClusterError as i32);
    assert!(outcome.message.contains("503"), "{}", outcome.message);
}

#[tokio::test(start_paused = true)]
async fn shutdown_still_writes_the_pending_value() {
    let mut h = harness(1.0, Recorder::default());
    h.submit(1, 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    h.submit(2, 2);
    h.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), &mut h.task)
        .await
        .expect("stops")
        .expect("no panic");
    assert_eq!(h.writer.values(), vec![1, 2]);
    assert_eq!(h.outcomes()[&2].kind, OutcomeKind::Applied as i32);
}

#[tokio::test(start_paused = true)]
async fn a_big_jump_is_walked_in_steps_and_a_newer_value_takes_over() {
    let mut target = (*web(10.0)).clone();
    target.max_step = Some(10);
    let mut h = harness_for(Arc::new(target), Recorder::default());
    h.submit(1, 35);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        h.writer.values(),
        [10, 20, 30, 35],
        "walked from the observed value"
    );
    assert_eq!(h.outcomes()[&1].kind, OutcomeKind::Applied as i32);
    let writes = h.writer.writes.lock().unwrap().clone();
    for pair in writes.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= Duration::from_millis(100),
            "steps keep the rate"
        );
    }

    h.submit(2, 100);
    tokio::time::sleep(Duration::from_millis(150)).await;
    h.submit(3, 50);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let values = h.writer.values();
    assert_eq!(values.last(), Some(&50), "{values:?}");
    assert!(
        values.windows(2).all(|p| (p[1] - p[0]).abs() <= 10),
        "{values:?}"
    );
    let outcomes = h.outcomes();
    assert_eq!(outcomes[&2].kind, OutcomeKind::Superseded as i32);
    assert_eq!(outcomes[&3].kind, OutcomeKind::Applied as i32);
}
