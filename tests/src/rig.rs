//! The gateway's kube backend wired as the server wires it (watchers, one writer per target, a
//! state hub) against a [`FakeApiServer`], for tests that drive writes and read state and
//! outcomes without gRPC in between. Every wait has a deadline.

use std::sync::Arc;
use std::time::Duration;

use kubeknobs_gateway::backend::{Backend, KubeBackend};
use kubeknobs_gateway::catalog::{Catalog, TargetKind, TargetSpec};
use kubeknobs_gateway::coalesce::{Coalescer, Reply, Submission, WriterShared};
use kubeknobs_gateway::metrics::Metrics;
use kubeknobs_gateway::state::{Snapshot, StateHub};
use kubeknobs_proto::v1::{Outcome, ServerMessage, server_message::Msg};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::fakeapi::{FakeApiServer, Request};

/// How long a rig waits for an outcome or a state.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A target `name` of `kind` in `namespace` (object of the same name), 0..=`max`, at `rate` writes/s.
pub fn target(name: &str, kind: TargetKind, namespace: &str, max: i32, rate: f64) -> TargetSpec {
    TargetSpec {
        name: name.into(),
        kind,
        namespace: namespace.into(),
        object: name.into(),
        min: 0,
        max,
        max_writes_per_second: rate,
        sandbox_initial: 0,
        max_step: None,
        dry_run: false,
        cooldown: Duration::ZERO,
        requires_arm: false,
        ownership: Default::default(),
    }
}

/// A fake API server, the backend and writers for `targets`, and operator alice's reply channel.
pub struct Rig {
    /// The fake API server the backend talks to.
    pub api: FakeApiServer,
    /// Observed state of every target.
    pub hub: Arc<StateHub>,
    /// What the writers count: every write attempt, by target and result.
    pub metrics: Metrics,
    coalescers: Vec<(String, Coalescer)>,
    outcomes: mpsc::Receiver<Result<ServerMessage, tonic::Status>>,
    reply: Reply,
    shutdown: CancellationToken,
}

impl Rig {
    /// Starts a fake API server and the backend for `targets`; `impersonate` writes as alice.
    pub async fn start(targets: Vec<TargetSpec>, impersonate: bool) -> Rig {
        let api = FakeApiServer::start().await;
        let mut catalog = Catalog::default();
        for t in targets {
            catalog.insert(t);
        }
        let kube = KubeBackend::from_config(api.config(), "fake").expect("client");
        let kube = if impersonate {
            kube.impersonating()
        } else {
            kube
        };
        let backend = Arc::new(Backend::Kube(Arc::new(kube)));
        let hub = Arc::new(StateHub::new(&catalog));
        let shutdown = CancellationToken::new();
        backend.spawn_watchers(&catalog, hub.clone(), shutdown.clone());
        let metrics = Metrics::new();
        let coalescers = catalog
            .iter()
            .map(|t| {
                let shared = WriterShared {
                    metrics: metrics.clone(),
                    ..WriterShared::default()
                };
                let (coalescer, _) = Coalescer::spawn_with(
                    t.clone(),
                    backend.clone(),
                    hub.clone(),
                    shutdown.clone(),
                    shared,
                );
                (t.name.clone(), coalescer)
            })
            .collect();
        let (tx, outcomes) = mpsc::channel(1024);
        Rig {
            api,
            hub,
            reply: Reply::new(tx, metrics.clone()),
            metrics,
            coalescers,
            outcomes,
            shutdown,
        }
    }

    /// Operator alice (group `ops`) sets `target` to `value` as event `seq`.
    pub fn set(&self, target: &str, seq: u64, value: i32) {
        let (_, coalescer) = self
            .coalescers
            .iter()
            .find(|(n, _)| n == target)
            .expect("target");
        coalescer.submit(Submission {
            seq,
            value,
            operator: "alice".into(),
            groups: vec!["ops".to_owned()].into(),
            reply: self.reply.clone(),
            received: tokio::time::Instant::now(),
            warning: None,
        });
    }

    /// The outcome of event `seq`, skipping others.
    pub async fn outcome(&mut self, seq: u64) -> Outcome {
        loop {
            let msg = timeout(DEADLINE, self.outcomes.recv())
                .await
                .expect("an outcome in time")
                .expect("open")
                .expect("ok");
            if let Some(Msg::Outcome(o)) = msg.msg
                && o.seq == seq
            {
                return o;
            }
        }
    }

    /// Waits until the state satisfies `pred` (described by `what` if it never does).
    pub async fn state_where(&self, what: &str, pred: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let mut rx = self.hub.subscribe();
        let found = timeout(DEADLINE, async {
            loop {
                let now = rx.borrow_and_update().clone();
                if pred(&now) {
                    return now;
                }
                rx.changed().await.expect("hub open");
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("state never showed {what}: {:?}", self.hub.snapshot()))
    }

    /// Write attempts of `target` that failed so far (`kubeknobs_gateway_writes_total`).
    pub fn failed_writes(&self, target: &str) -> u64 {
        let series =
            format!("kubeknobs_gateway_writes_total{{target=\"{target}\",result=\"error\"}} ");
        self.metrics
            .encode()
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0, |n| n.trim().parse().expect("a count"))
    }

    /// Waits until a write attempt of `target` has failed (the writer met the outage).
    pub async fn a_write_failed(&self, target: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while self.failed_writes(target) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no write of {target} was attempted: {}",
                self.metrics.encode()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The first PATCH the fake received.
    pub fn first_patch(&self) -> Request {
        self.patches().next().expect("a PATCH")
    }

    /// The path of the last PATCH the fake received.
    pub fn last_patch(&self) -> String {
        self.patches().last().map(|r| r.path).expect("a PATCH")
    }

    fn patches(&self) -> impl Iterator<Item = Request> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
