//! The cronjob-suspended and node-cordoned toggles through the real kube client against the
//! fake API server: a write lands on the object (1 then 0), and a change made by someone else
//! shows up through the watch in the state hub, credited to its field manager.

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kubeknobs_gateway::catalog::{TargetKind, TargetSpec};
use kubeknobs_proto::v1::OutcomeKind;
use kubeknobs_tests::fakeapi::FakeApiServer;
use kubeknobs_tests::rig::{self, Rig};

#[tokio::test]
async fn a_cronjob_toggle_patches_spec_suspend_and_the_watch_shows_it() {
    let mut rig = Rig::start(
        vec![toggle("nightly", TargetKind::CronJobSuspended, "jobs")],
        false,
    )
    .await;
    rig.api.add_cronjob("jobs", "nightly");
    rig.state_where("scheduling (0)", |s| s["nightly"].desired == Some(0.0))
        .await;

    rig.set("nightly", 1, 1);
    assert_eq!(rig.outcome(1).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(rig.api.suspended("jobs", "nightly"), Some(true));
    let patch = rig.last_patch();
    assert!(
        patch.ends_with("/apis/batch/v1/namespaces/jobs/cronjobs/nightly"),
        "the CronJob itself: {patch}"
    );
    let state = rig
        .state_where("suspended (1), credited to alice", |s| {
            s["nightly"].desired == Some(1.0)
        })
        .await;
    assert_eq!(state["nightly"].changed_by, "alice");

    rig.set("nightly", 2, 0);
    assert_eq!(rig.outcome(2).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(rig.api.suspended("jobs", "nightly"), Some(false));
    rig.state_where("resumed (0)", |s| s["nightly"].desired == Some(0.0))
        .await;

    rig.api
        .suspend_externally("jobs", "nightly", true, "kubectl-patch");
    let state = rig
        .state_where("suspended by kubectl", |s| {
            s["nightly"].desired == Some(1.0) && s["nightly"].changed_by == "kubectl-patch"
        })
        .await;
    assert_eq!(state["nightly"].desired, Some(1.0));
}

#[tokio::test]
async fn a_node_toggle_cordons_through_the_cluster_scoped_api_and_the_watch_shows_it() {
    let mut rig = Rig::start(vec![toggle("worker", TargetKind::NodeCordoned, "")], false).await;
    rig.api.add_node("worker");
    rig.state_where("schedulable (0)", |s| s["worker"].desired == Some(0.0))
        .await;

    rig.set("worker", 1, 1);
    assert_eq!(rig.outcome(1).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(rig.api.unschedulable("worker"), Some(true));
    let patch = rig.last_patch();
    assert!(
        patch.ends_with("/api/v1/nodes/worker"),
        "the Node, outside any namespace: {patch}"
    );
    let state = rig
        .state_where("cordoned (1), credited to alice", |s| {
            s["worker"].desired == Some(1.0)
        })
        .await;
    assert_eq!(state["worker"].changed_by, "alice");

    rig.set("worker", 2, 0);
    assert_eq!(rig.outcome(2).await.kind, OutcomeKind::Applied as i32);
    assert_eq!(rig.api.unschedulable("worker"), Some(false));
    rig.state_where("uncordoned (0)", |s| s["worker"].desired == Some(0.0))
        .await;

    rig.api.cordon_externally("worker", true, "kubectl-cordon");
    rig.state_where("cordoned by kubectl", |s| {
        s["worker"].desired == Some(1.0) && s["worker"].changed_by == "kubectl-cordon"
    })
    .await;
    let watches: Vec<_> = rig
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path)
        .collect();
    assert!(
        watches.iter().all(|p| p.starts_with("/api/v1/nodes")),
        "lists and watches of nodes only: {watches:?}"
    );
}

#[tokio::test]
async fn a_missing_node_is_reported_in_the_state() {
    let rig = Rig::start(vec![toggle("ghost", TargetKind::NodeCordoned, "")], false).await;
    let state = rig
        .state_where("not found", |s| s["ghost"].error.contains("not found"))
        .await;
    assert!(
        state["ghost"].error.contains("node ghost not found"),
        "{:?}",
        state["ghost"]
    );
}

#[tokio::test]
async fn the_fake_serves_cronjobs_and_nodes_and_patches_only_their_own_field() {
    let fake = FakeApiServer::start().await;
    fake.add_cronjob("jobs", "nightly");
    fake.add_node("worker");
    let cronjobs = Api::<CronJob>::namespaced(fake.client(), "jobs");
    let nodes = Api::<Node>::all(fake.client());

    let cronjob = cronjobs.get("nightly").await.expect("a CronJob");
    let spec = cronjob.spec.expect("spec");
    assert_eq!(
        (spec.suspend, spec.schedule.as_str()),
        (Some(false), "0 3 * * *")
    );
    let node = nodes.get("worker").await.expect("a Node");
    assert_eq!(node.metadata.namespace, None, "cluster-scoped");

    let missing = nodes.get("ghost").await.expect_err("no such node");
    assert!(
        matches!(&missing, kube::Error::Api(s) if s.code == 404 && s.message == "nodes \"ghost\" not found"),
        "{missing}"
    );

    let dry = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let cordon = Patch::Merge(serde_json::json!({ "spec": { "unschedulable": true } }));
    let answer = nodes.patch("worker", &dry, &cordon).await.expect("dry run");
    assert_eq!(answer.spec.and_then(|s| s.unschedulable), Some(true));
    assert_eq!(
        fake.unschedulable("worker"),
        Some(false),
        "a dry run stores nothing"
    );

    let wrong = cronjobs
        .patch("nightly", &PatchParams::default(), &cordon)
        .await
        .expect_err("a CronJob has no spec.unschedulable");
    assert!(
        matches!(&wrong, kube::Error::Api(s) if s.code == 422),
        "{wrong}"
    );
    assert_eq!(fake.write_count(), 0);
}

fn toggle(name: &str, kind: TargetKind, namespace: &str) -> TargetSpec {
    rig::target(name, kind, namespace, 1, 10.0)
}
