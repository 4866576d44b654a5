//! Other owners of a value, end to end over real gRPC/TLS against the fake API server: an HPA
//! (or GitOps labels) appearing and going away while a session is open reaches it as state at
//! once; moves are refused, warned about or allowed per `when_autoscaled`/`when_gitops`; the
//! `hpa-min-replicas`/`hpa-max-replicas` kinds move an HPA's bounds, never min above max; and
//! the proto and the gateway's config reference (docs/gateway-config.md) document all of it.

use kubeknobs_gateway::ownership::gitops::{ARGO_TRACKING_ID, FLUX_KUSTOMIZE};
use std::collections::HashMap;

use kubeknobs_proto::v1::{
    ClientMessage, Outcome, OutcomeKind, RejectReason, ServerMessage, TargetState, Welcome,
    server_message::Msg,
};
use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
use kubeknobs_tests::grpc::{Gateway, control, next};
use tokio::sync::mpsc;
use tonic::Streaming;

/// One session, remembering the latest state of every target, whatever message it came in.
struct Session {
    tx: mpsc::Sender<ClientMessage>,
    rx: Streaming<ServerMessage>,
    states: HashMap<String, TargetState>,
    welcome: Welcome,
}

impl Session {
    async fn open(gw: &Gateway) -> Session {
        let (tx, rx, welcome) = gw.welcome("alice-token").await;
        let states = welcome
            .targets
            .iter()
            .filter_map(|t| t.state.clone())
            .map(|s| (s.target.clone(), s))
            .collect();
        Session {
            tx,
            rx,
            states,
            welcome,
        }
    }

    async fn send(&self, seq: u64, target: &str, value: f64) {
        self.tx
            .send(control(seq, target, value))
            .await
            .expect("send");
    }

    /// The next message, with its states remembered.
    async fn next(&mut self) -> Msg {
        let msg = next(&mut self.rx).await;
        if let Msg::State(update) = &msg {
            for s in &update.states {
                self.states.insert(s.target.clone(), s.clone());
            }
        }
        msg
    }

    async fn outcome(&mut self, seq: u64) -> Outcome {
        loop {
            if let Msg::Outcome(o) = self.next().await
                && o.seq == seq
            {
                return o;
            }
        }
    }

    /// The latest state of `target` once it satisfies `pred` (within the messages' deadline).
    async fn state(&mut self, target: &str, pred: impl Fn(&TargetState) -> bool) -> TargetState {
        loop {
            if let Some(s) = self.states.get(target).filter(|s| pred(s)) {
                return s.clone();
            }
            self.next().await;
        }
    }
}

/// A gateway on `api` with the standard operators and `targets`.
async fn gateway(api: &FakeApiServer, targets: &str) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path());
    let text = format!(
        "[cluster]\nbackend = \"kube\"\nkubeconfig = {:?}\n{}\n{targets}",
        kubeconfig.display().to_string(),
        kubeknobs_tests::grpc::operators_toml(),
    );
    let config = kubeknobs_gateway::config::Config::parse_with_tls(
        &text,
        dir.path().join("gw.toml").as_path(),
        kubeknobs_gateway::config::TlsIdentity::default(),
    )
    .expect("config");
    (Gateway::start_config(config).await, dir)
}

const SCALED: &str = r#"
[targets.web]
kind = "deployment-replicas"
namespace = "shop"
name = "web"
max = 20
[targets.api]
kind = "deployment-replicas"
namespace = "shop"
name = "api"
max = 20
when_autoscaled = "allow"
when_gitops = "refuse"
[targets.db]
kind = "statefulset-replicas"
namespace = "shop"
name = "db"
max = 20
when_gitops = "allow"
"#;

#[tokio::test]
async fn an_hpa_appearing_and_going_away_reaches_the_open_session_and_decides_the_move() {
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "shop", "web", 2);
    api.add(Kind::Deployment, "shop", "api", 2);
    api.add(Kind::StatefulSet, "shop", "db", 1);
    let (gw, _dir) = gateway(&api, SCALED).await;
    let mut session = Session::open(&gw).await;
    session.state("web", |s| s.desired == Some(2.0)).await;

    session.send(1, "web", 3.0).await;
    assert_eq!(session.outcome(1).await.kind, OutcomeKind::Applied as i32);

    api.add_hpa("shop", "web-hpa", Kind::Deployment, "web", 2, 10);
    let web = session.state("web", |s| !s.managed_by.is_empty()).await;
    assert_eq!(web.managed_by, "HorizontalPodAutoscaler web-hpa (2..10)");
    session.send(2, "web", 5.0).await;
    let refused = session.outcome(2).await;
    assert_eq!(refused.kind, OutcomeKind::Rejected as i32, "{refused:?}");
    assert_eq!(refused.reason, RejectReason::Managed as i32, "{refused:?}");
    assert!(
        refused
            .message
            .contains("HorizontalPodAutoscaler web-hpa (2..10)")
            && refused.message.contains("move the HPA's bounds instead"),
        "says who and what to move instead: {}",
        refused.message
    );
    assert_eq!(
        api.replicas(Kind::Deployment, "shop", "web"),
        Some(3),
        "unchanged"
    );

    // KEDA's HPA on api: named after its ScaledObject; api allows moves when autoscaled.
    api.add_hpa("shop", "keda-hpa-api", Kind::Deployment, "api", 1, 20);
    api.label(
        Kind::HorizontalPodAutoscaler,
        "shop",
        "keda-hpa-api",
        "scaledobject.keda.sh/name",
        "api",
    );
    session
        .state("api", |s| {
            s.managed_by == "KEDA ScaledObject api (HPA keda-hpa-api, 1..20)"
        })
        .await;
    session.send(3, "api", 7.0).await;
    let allowed = session.outcome(3).await;
    assert_eq!(allowed.kind, OutcomeKind::Applied as i32, "{allowed:?}");
    assert_eq!(api.replicas(Kind::Deployment, "shop", "api"), Some(7));

    assert!(api.remove(Kind::HorizontalPodAutoscaler, "shop", "web-hpa"));
    session.state("web", |s| s.managed_by.is_empty()).await;
    session.send(4, "web", 6.0).await;
    let freed = session.outcome(4).await;
    assert_eq!(freed.kind, OutcomeKind::Applied as i32, "{freed:?}");
    assert_eq!(api.replicas(Kind::Deployment, "shop", "web"), Some(6));
}

#[tokio::test]
async fn gitops_ownership_warns_refuses_or_allows_per_target() {
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "shop", "web", 2);
    api.add(Kind::Deployment, "shop", "api", 2);
    api.add(Kind::StatefulSet, "shop", "db", 1);
    let (gw, _dir) = gateway(&api, SCALED).await;
    let mut session = Session::open(&gw).await;
    session.state("db", |s| s.desired == Some(1.0)).await;

    // web: Flux labels; the default warns and applies.
    api.label(Kind::Deployment, "shop", "web", FLUX_KUSTOMIZE.0, "web");
    api.label(Kind::Deployment, "shop", "web", FLUX_KUSTOMIZE.1, "apps");
    session
        .state("web", |s| s.managed_by == "Flux Kustomization apps/web")
        .await;
    session.send(1, "web", 4.0).await;
    let warned = session.outcome(1).await;
    assert_eq!(warned.kind, OutcomeKind::Applied as i32, "{warned:?}");
    assert!(
        warned.message.contains("Flux Kustomization apps/web")
            && warned.message.contains("may revert"),
        "{}",
        warned.message
    );
    assert_eq!(api.replicas(Kind::Deployment, "shop", "web"), Some(4));

    // api: Argo CD's tracking annotation; this target refuses.
    api.annotate(
        Kind::Deployment,
        "shop",
        "api",
        ARGO_TRACKING_ID,
        "shop:apps/Deployment:shop/api",
    );
    session
        .state("api", |s| s.managed_by == "Argo CD application shop")
        .await;
    session.send(2, "api", 5.0).await;
    let refused = session.outcome(2).await;
    assert_eq!(refused.reason, RejectReason::Managed as i32, "{refused:?}");
    assert!(
        refused.message.contains("change it in Git instead"),
        "{}",
        refused.message
    );
    assert_eq!(
        api.replicas(Kind::Deployment, "shop", "api"),
        Some(2),
        "unchanged"
    );

    // Taken out of GitOps while the session is open: moves go through again.
    api.clear_labels(Kind::Deployment, "shop", "api");
    session.state("api", |s| s.managed_by.is_empty()).await;
    session.send(3, "api", 5.0).await;
    assert_eq!(session.outcome(3).await.kind, OutcomeKind::Applied as i32);

    // db: found by helm-controller's field manager alone; this target allows, without a word.
    api.scale_externally(Kind::StatefulSet, "shop", "db", 3, "helm-controller");
    session
        .state("db", |s| {
            s.managed_by == "Flux (field manager helm-controller)"
        })
        .await;
    session.send(4, "db", 2.0).await;
    let allowed = session.outcome(4).await;
    assert_eq!(allowed.kind, OutcomeKind::Applied as i32, "{allowed:?}");
    assert!(!allowed.message.contains("warning"), "{}", allowed.message);
    assert_eq!(api.replicas(Kind::StatefulSet, "shop", "db"), Some(2));
}

const BOUNDS: &str = r#"
[targets.web]
kind = "deployment-replicas"
namespace = "shop"
name = "web"
max = 20
[targets.floor]
kind = "hpa-min-replicas"
namespace = "shop"
name = "web-hpa"
max = 20
[targets.ceiling]
kind = "hpa-max-replicas"
namespace = "shop"
name = "web-hpa"
max = 20
[targets.ceiling-rehearsal]
kind = "hpa-max-replicas"
namespace = "shop"
name = "web-hpa"
max = 20
dry_run = true
"#;

#[tokio::test]
async fn hpa_bound_targets_move_the_hpa_never_min_above_max() {
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "shop", "web", 3);
    api.add_hpa("shop", "web-hpa", Kind::Deployment, "web", 2, 10);
    api.set_hpa_status("shop", "web-hpa", 3, 4);
    let (gw, _dir) = gateway(&api, BOUNDS).await;
    let mut session = Session::open(&gw).await;
    let welcome = session.welcome.clone();
    let kinds: Vec<(String, i32)> = welcome
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.kind))
        .collect();
    assert!(
        kinds.contains(&(
            "floor".into(),
            kubeknobs_proto::v1::TargetKind::HpaMinReplicas as i32
        )),
        "{kinds:?}"
    );
    let floor = session.state("floor", |s| s.desired.is_some()).await;
    assert_eq!(
        (floor.desired, floor.current, floor.autoscaler_desired),
        (Some(2.0), Some(3.0), Some(4.0)),
        "the floor, and the HPA's current and desired replicas: {floor:?}"
    );

    session.send(1, "floor", 4.0).await;
    assert_eq!(session.outcome(1).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(api.hpa_bounds("shop", "web-hpa"), Some((4, 10)));
    let patch = api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .expect("a patch");
    assert!(
        patch
            .path
            .ends_with("/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web-hpa"),
        "the HPA itself: {}",
        patch.path
    );
    let floor = session.state("floor", |s| s.desired == Some(4.0)).await;
    assert_eq!(floor.changed_by, "alice");
    session
        .state("web", |s| {
            s.managed_by == "HorizontalPodAutoscaler web-hpa (4..10)"
        })
        .await;

    session.send(2, "floor", 11.0).await;
    let above = session.outcome(2).await;
    assert_eq!(above.reason, RejectReason::OutOfRange as i32, "{above:?}");
    assert!(
        above.message.contains("above the maxReplicas 10"),
        "{}",
        above.message
    );
    session.send(3, "ceiling", 3.0).await;
    let below = session.outcome(3).await;
    assert_eq!(below.reason, RejectReason::OutOfRange as i32, "{below:?}");
    assert!(
        below.message.contains("below the minReplicas 4"),
        "{}",
        below.message
    );
    assert_eq!(
        api.hpa_bounds("shop", "web-hpa"),
        Some((4, 10)),
        "nothing half-applied"
    );

    session.send(4, "ceiling-rehearsal", 15.0).await;
    let dry = session.outcome(4).await;
    assert_eq!(dry.kind, OutcomeKind::Applied as i32, "{dry:?}");
    assert!(dry.message.contains("dry run"), "{}", dry.message);
    assert_eq!(
        api.hpa_bounds("shop", "web-hpa"),
        Some((4, 10)),
        "a dry run persists nothing"
    );

    session.send(5, "ceiling", 12.0).await;
    assert_eq!(session.outcome(5).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(api.hpa_bounds("shop", "web-hpa"), Some((4, 12)));
    session
        .state("web", |s| {
            s.managed_by == "HorizontalPodAutoscaler web-hpa (4..12)"
        })
        .await;
}

#[test]
fn the_proto_and_config_reference_document_other_owners() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |path: &str| std::fs::read_to_string(root.join(path)).expect(path);
    let proto = read("proto/kubeknobs/v1/session.proto");
    for needle in [
        "string managed_by = 7;",
        "optional double autoscaler_desired = 8;",
        "REJECT_REASON_MANAGED = 9;",
        "TARGET_KIND_HPA_MIN_REPLICAS = 7;",
        "TARGET_KIND_HPA_MAX_REPLICAS = 8;",
        "when_autoscaled",
    ] {
        assert!(proto.contains(needle), "the proto documents {needle}");
    }
    let reference = read("docs/gateway-config.md");
    for needle in [
        "(ownership.md)",
        "`targets.NAME.when_autoscaled`",
        "`targets.NAME.when_gitops`",
        "`cluster.when_autoscaled`",
        "`cluster.when_gitops`",
        "\"hpa-min-replicas\"",
        "\"hpa-max-replicas\"",
        "REJECT_REASON_MANAGED",
    ] {
        assert!(
            reference.contains(needle),
            "docs/gateway-config.md mentions {needle}"
        );
    }
    let page = read("docs/ownership.md");
    for needle in [
        ARGO_TRACKING_ID,
        kubeknobs_gateway::ownership::gitops::ARGO_INSTANCE,
        FLUX_KUSTOMIZE.0,
        FLUX_KUSTOMIZE.1,
        kubeknobs_gateway::ownership::gitops::FLUX_HELM.0,
        kubeknobs_gateway::ownership::hpa::KEDA_SCALED_OBJECT,
        "argocd-controller",
        "kustomize-controller",
        "helm-controller",
        "managed_by",
    ] {
        assert!(page.contains(needle), "docs/ownership.md names {needle}");
    }
}

/// Runs the real gateway binary with `args` and a config file holding `config`.
fn gateway_cli(args: &[&str], config: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).expect("write config");
    let out = std::process::Command::new(kubeknobs_tests::harness::binary("kubeknobs-gateway"))
        .args(args)
        .arg(&path)
        .output()
        .expect("run kubeknobs-gateway");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn check_explains_other_owners_per_target_and_rbac_names_the_hpas() {
    let config = format!(
        "[cluster]\nbackend = \"kube\"\nwhen_gitops = \"refuse\"\n{}\n{BOUNDS}",
        kubeknobs_tests::grpc::operators_toml()
    );
    let (ok, out, err) = gateway_cli(&["check", "--insecure", "--config"], &config);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("target web: deployment shop/web, replicas 0..=20, at most 2 writes/s\n    when autoscaled: refuses moves (move the HPA's bounds instead); when GitOps-managed: refuses moves (change it in Git instead)\n"),
        "{out}"
    );
    assert!(
        out.contains("target floor: horizontalpodautoscaler shop/web-hpa, HPA minReplicas 1..=20, at most 2 writes/s\n    when GitOps-managed: refuses moves"),
        "{out}"
    );

    let (ok, out, err) = gateway_cli(&["rbac", "--config"], &config);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("    resources: [\"horizontalpodautoscalers\"]\n    resourceNames: [\"web-hpa\"]\n    verbs: [\"list\", \"patch\", \"watch\"]\n"),
        "the HPA-bound targets' HPA by name: {out}"
    );
    assert!(
        out.contains("# list and watch on horizontalpodautoscalers cannot be limited by name"),
        "says why the HPA watch names nothing: {out}"
    );

    let bad = config.replace("when_gitops = \"refuse\"", "when_gitops = \"sometimes\"");
    let (ok, _, err) = gateway_cli(&["check", "--insecure", "--config"], &bad);
    assert!(!ok);
    assert!(
        err.contains(":3: cluster.when_gitops: unknown value `sometimes`, expected one of `warn`, `refuse`, `allow`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_is_not_ready_until_it_has_listed_the_hpas_of_its_replica_targets() {
    use kubeknobs_tests::fakeapi::Fault;
    use kubeknobs_tests::harness::{self, address_after, gen_certs, wait_for_http};
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "default", "web", 2);
    // As with RBAC from before HPAs were watched: the first lists are forbidden.
    api.inject("GET", "/horizontalpodautoscalers", Fault::Status(403), 5);
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    let kubeconfig = api.kubeconfig(dir.path());
    let cluster = format!(
        "backend = \"kube\"\nkubeconfig = {:?}",
        kubeconfig.display().to_string()
    );
    let config = kubeknobs_tests::pipeline::gateway_config(&cluster, "default", "web")
        .replace("[server]\n", "[server]\nops_listen = \"127.0.0.1:0\"\n");
    let path = dir.path().to_owned();
    let (not_ready, ready, _gateway) = tokio::task::spawn_blocking(move || {
        let gateway = harness::Gateway::start(&path, &config);
        let line = gateway.process.wait_for(&["ops listening on"]);
        let ops = address_after(&line, "ops listening on");
        let not_ready = wait_for_http(ops, "/readyz", 503);
        let ready = wait_for_http(ops, "/readyz", 200);
        (not_ready, ready, gateway)
    })
    .await
    .expect("gateway");
    assert!(
        not_ready.contains("HorizontalPodAutoscalers of default: "),
        "says what it waits for: {not_ready}"
    );
    assert_eq!(ready, "ready\n", "ready once the HPAs are listed");
}
