//! The gateway's kube backend through the real kube client against the fake API server:
//! writes through the scale subresource, state from the watch, and injected 409/429/500/slow
//! answers after which the final value still lands, or the operator is told why it did not.

use std::time::Duration;

use kubeknobs_gateway::catalog::{TargetKind, TargetSpec};
use kubeknobs_proto::v1::{OutcomeKind, RejectReason};
use kubeknobs_tests::fakeapi::{Fault, Kind};
use kubeknobs_tests::rig::{self, Rig};

fn target(name: &str, kind: TargetKind, rate: f64) -> TargetSpec {
    rig::target(name, kind, "default", 50, rate)
}

async fn rig(targets: Vec<TargetSpec>) -> Rig {
    Rig::start(targets, false).await
}

async fn rig_with(targets: Vec<TargetSpec>, impersonate: bool) -> Rig {
    Rig::start(targets, impersonate).await
}

#[tokio::test]
async fn a_write_goes_through_the_scale_subresource_and_comes_back_through_the_watch() {
    let mut rig = rig(vec![target("web", TargetKind::DeploymentReplicas, 10.0)]).await;
    rig.api.add(Kind::Deployment, "default", "web", 2);
    rig.state_where("the initial 2 replicas", |s| s["web"].desired == Some(2.0))
        .await;

    rig.set("web", 1, 6);
    assert_eq!(rig.outcome(1).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(
        rig.api.replicas(Kind::Deployment, "default", "web"),
        Some(6)
    );
    let patch = rig.first_patch();
    assert!(
        patch
            .path
            .ends_with("/namespaces/default/deployments/web/scale"),
        "{}",
        patch.path
    );
    assert!(
        patch.query.contains("fieldManager=kubeknobs"),
        "{}",
        patch.query
    );
    let state = rig
        .state_where("6 desired, credited to alice", |s| {
            s["web"].desired == Some(6.0)
        })
        .await;
    assert_eq!(state["web"].changed_by, "alice");

    rig.api
        .scale_externally(Kind::Deployment, "default", "web", 3, "kubectl");
    let state = rig
        .state_where("kubectl's change", |s| s["web"].desired == Some(3.0))
        .await;
    assert_eq!(state["web"].changed_by, "kubectl");
}

#[tokio::test]
async fn statefulsets_are_scaled_the_same_way() {
    let mut rig = rig(vec![target("db", TargetKind::StatefulSetReplicas, 10.0)]).await;
    rig.api.add(Kind::StatefulSet, "default", "db", 1);
    rig.set("db", 1, 3);
    assert_eq!(rig.outcome(1).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(
        rig.api.replicas(Kind::StatefulSet, "default", "db"),
        Some(3)
    );
    rig.state_where("3 desired", |s| s["db"].desired == Some(3.0))
        .await;
}

#[tokio::test]
async fn after_409_429_500_and_a_slow_answer_the_final_value_still_lands() {
    let mut rig = rig(vec![target("web", TargetKind::DeploymentReplicas, 20.0)]).await;
    rig.api.add(Kind::Deployment, "default", "web", 1);
    rig.api
        .inject("PATCH", "/deployments/web/scale", Fault::Status(409), 1);
    rig.api
        .inject("PATCH", "/deployments/web/scale", Fault::Status(429), 1);
    rig.api
        .inject("PATCH", "/deployments/web/scale", Fault::Status(500), 1);
    rig.api.inject(
        "PATCH",
        "/deployments/web/scale",
        Fault::Delay(Duration::from_millis(700)),
        1,
    );
    for (seq, value) in [(1, 10), (2, 20), (3, 30)] {
        rig.set("web", seq, value);
    }
    let last = rig.outcome(3).await;
    assert_eq!(last.kind, OutcomeKind::Applied as i32, "{last:?}");
    assert_eq!(
        rig.api.replicas(Kind::Deployment, "default", "web"),
        Some(30)
    );
    assert_eq!(rig.api.write_count(), 1, "only the final value was written");
    rig.state_where("30 desired", |s| s["web"].desired == Some(30.0))
        .await;
}

#[tokio::test]
async fn a_missing_object_is_reported_to_the_operator_and_in_the_state() {
    let mut rig = rig(vec![target("ghost", TargetKind::DeploymentReplicas, 10.0)]).await;
    let state = rig
        .state_where("an error", |s| s["ghost"].error.contains("not found"))
        .await;
    assert!(
        state["ghost"].error.contains("deployment default/ghost"),
        "{}",
        state["ghost"].error
    );
    rig.set("ghost", 1, 2);
    let outcome = rig.outcome(1).await;
    assert_eq!(outcome.kind, OutcomeKind::Rejected as i32);
    assert_eq!(outcome.reason, RejectReason::ClusterError as i32);
    assert!(outcome.message.contains("404"), "{}", outcome.message);
}

#[tokio::test]
async fn a_persistent_outage_is_reported_as_a_cluster_error() {
    let mut rig = rig(vec![target("web", TargetKind::DeploymentReplicas, 20.0)]).await;
    rig.api.add(Kind::Deployment, "default", "web", 1);
    rig.api
        .inject("PATCH", "/deployments/web/scale", Fault::Status(503), 100);
    rig.set("web", 1, 5);
    let outcome = rig.outcome(1).await;
    assert_eq!(outcome.reason, RejectReason::ClusterError as i32);
    assert!(
        outcome.message.contains("503") && outcome.message.contains("attempt"),
        "{}",
        outcome.message
    );
    assert_eq!(
        rig.api.replicas(Kind::Deployment, "default", "web"),
        Some(1),
        "nothing half-applied"
    );
}

#[tokio::test]
async fn the_watch_catches_up_after_the_api_server_comes_back() {
    let rig = rig(vec![target("web", TargetKind::DeploymentReplicas, 10.0)]).await;
    rig.api.add(Kind::Deployment, "default", "web", 2);
    rig.state_where("the initial 2 replicas", |s| s["web"].desired == Some(2.0))
        .await;
    rig.api.stop().await;
    rig.api
        .scale_externally(Kind::Deployment, "default", "web", 7, "kubectl");
    rig.api.restart().await;
    let state = rig
        .state_where("kubectl's change made during the outage", |s| {
            s["web"].desired == Some(7.0) && s["web"].error.is_empty()
        })
        .await;
    assert_eq!(state["web"].changed_by, "kubectl");
}

#[tokio::test]
async fn a_write_during_a_short_outage_lands_when_the_api_server_returns() {
    let mut rig = rig(vec![target("web", TargetKind::DeploymentReplicas, 10.0)]).await;
    rig.api.add(Kind::Deployment, "default", "web", 2);
    rig.state_where("the initial 2 replicas", |s| s["web"].desired == Some(2.0))
        .await;
    rig.api.stop().await;
    rig.set("web", 1, 9);
    // The writer has met the outage (a failed attempt) before the API server returns, so what
    // follows is its retry, not a first write that happened to come late.
    rig.a_write_failed("web").await;
    assert_eq!(
        rig.api.write_count(),
        0,
        "nothing was written while the API server was down"
    );
    rig.api.restart().await;
    let outcome = rig.outcome(1).await;
    assert_eq!(outcome.kind, OutcomeKind::Applied as i32, "{outcome:?}");
    assert_eq!(
        rig.api.replicas(Kind::Deployment, "default", "web"),
        Some(9)
    );
    rig.state_where("9 desired after the outage", |s| {
        s["web"].desired == Some(9.0)
    })
    .await;
}

#[tokio::test]
async fn a_dry_run_target_sends_dry_run_all_and_changes_nothing() {
    let mut dry = target("web", TargetKind::DeploymentReplicas, 10.0);
    dry.dry_run = true;
    let mut rig = rig(vec![dry]).await;
    rig.api.add(Kind::Deployment, "default", "web", 2);
    rig.set("web", 1, 7);
    let o = rig.outcome(1).await;
    assert_eq!(o.kind, OutcomeKind::Applied as i32);
    assert!(o.message.contains("dry run"), "{}", o.message);
    let patch = rig.first_patch();
    assert_eq!(patch.query_param("dryRun").as_deref(), Some("All"));
    assert_eq!(
        rig.api.replicas(Kind::Deployment, "default", "web"),
        Some(2)
    );
    assert_eq!(rig.api.write_count(), 0, "nothing persisted");
}

#[tokio::test]
async fn with_impersonation_each_write_names_the_operator_and_groups() {
    let mut rig = rig_with(
        vec![target("web", TargetKind::DeploymentReplicas, 10.0)],
        true,
    )
    .await;
    rig.api.add(Kind::Deployment, "default", "web", 2);
    rig.set("web", 1, 4);
    assert_eq!(rig.outcome(1).await.kind, OutcomeKind::Applied as i32);
    let patch = rig.first_patch();
    assert_eq!(patch.header("impersonate-user"), Some("alice"));
    assert_eq!(patch.header_all("impersonate-group"), ["ops"]);
    assert!(
        rig.api
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .all(|r| r.header("impersonate-user").is_none()),
        "watches stay the gateway's own"
    );
}

#[tokio::test]
async fn impersonation_sends_only_the_groups_the_config_names_and_none_for_service_accounts() {
    use kubeknobs_gateway::backend::KubeBackend;
    use kubeknobs_gateway::coalesce::Actor;
    use kubeknobs_tests::fakeapi::FakeApiServer;
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "default", "web", 2);
    let web = target("web", TargetKind::DeploymentReplicas, 10.0);
    let named = ["stage".to_owned()].into();
    let backend = KubeBackend::from_config(api.config(), "fake")
        .expect("client")
        .impersonating()
        .impersonating_only_groups(named);
    let write = |name: &'static str, groups: Vec<String>, value: i32| {
        let (backend, web) = (&backend, &web);
        async move {
            let actor = Actor {
                name,
                groups: &groups,
            };
            backend.write(web, value, actor).await.expect("written");
        }
    };
    let groups = |list: &[&str]| list.iter().map(|g| g.to_string()).collect::<Vec<_>>();
    write("alice", groups(&["stage", "devs", "system:masters"]), 3).await;
    // A ServiceAccount: the API server gives it its own groups and checks `serviceaccounts`.
    let sa_groups = groups(&[
        "system:serviceaccounts",
        "system:serviceaccounts:ops",
        "stage",
    ]);
    write("system:serviceaccount:ops:frank", sa_groups, 4).await;

    let patches: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[0].header("impersonate-user"), Some("alice"));
    assert_eq!(
        patches[0].header_all("impersonate-group"),
        ["stage"],
        "unnamed groups and system:masters are never sent"
    );
    assert_eq!(
        patches[1].header("impersonate-user"),
        Some("system:serviceaccount:ops:frank")
    );
    assert!(patches[1].header_all("impersonate-group").is_empty());
    assert_eq!(api.replicas(Kind::Deployment, "default", "web"), Some(4));
}

#[tokio::test]
async fn every_request_names_the_gateway_as_its_user_agent() {
    let mut rig = rig(vec![target("web", TargetKind::DeploymentReplicas, 10.0)]).await;
    rig.api.add(Kind::Deployment, "default", "web", 2);
    rig.set("web", 1, 3);
    assert_eq!(rig.outcome(1).await.kind, OutcomeKind::Applied as i32);
    let expected = format!("kubeknobs-gateway/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        kubeknobs_gateway::backend::USER_AGENT,
        expected,
        "the workspace shares one version"
    );
    let requests = rig.api.requests();
    assert!(requests.len() >= 2, "a watch and a write: {requests:?}");
    for request in requests {
        assert_eq!(
            request.header_all("user-agent"),
            [expected.as_str()],
            "{} {}",
            request.method,
            request.path
        );
    }
}

#[tokio::test]
async fn a_pause_toggle_patches_spec_paused_and_the_watch_shows_it() {
    let mut rig = rig(vec![target("web", TargetKind::DeploymentPaused, 10.0)]).await;
    rig.api.add(Kind::Deployment, "default", "web", 3);
    rig.state_where("running (0)", |s| s["web"].desired == Some(0.0))
        .await;
    rig.set("web", 1, 1);
    assert_eq!(rig.outcome(1).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(rig.api.paused("default", "web"), Some(true));
    let patch = rig.first_patch();
    assert!(
        patch.path.ends_with("/namespaces/default/deployments/web"),
        "the object, not its scale: {}",
        patch.path
    );
    let state = rig
        .state_where("paused (1), credited to alice", |s| {
            s["web"].desired == Some(1.0)
        })
        .await;
    assert_eq!(state["web"].changed_by, "alice");
    assert_eq!(
        rig.api.replicas(Kind::Deployment, "default", "web"),
        Some(3),
        "replicas untouched"
    );
    rig.set("web", 2, 0);
    assert_eq!(rig.outcome(2).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(rig.api.paused("default", "web"), Some(false));
    rig.state_where("resumed (0)", |s| s["web"].desired == Some(0.0))
        .await;
}

#[tokio::test]
async fn a_restart_button_annotates_the_pod_template_like_kubectl() {
    let mut rig = rig(vec![target("web", TargetKind::DeploymentRestart, 10.0)]).await;
    rig.api.add(Kind::Deployment, "default", "web", 3);
    assert_eq!(rig.api.restarted_at("default", "web"), None);
    rig.set("web", 1, 1);
    assert_eq!(rig.outcome(1).await.kind, OutcomeKind::Applied as i32);
    let at = rig.api.restarted_at("default", "web").expect("annotated");
    assert!(at.ends_with('Z'), "an RFC 3339 time: {at}");
    assert_eq!(
        rig.api.replicas(Kind::Deployment, "default", "web"),
        Some(3)
    );
    rig.state_where("the restart by kubeknobs", |s| {
        s["web"].changed_by == "kubeknobs" || s["web"].changed_by == "alice"
    })
    .await;
}
