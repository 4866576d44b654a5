//! The end-to-end pipeline against a real cluster, when one is configured: `KUBECONFIG` names a
//! kubeconfig and `KUBEKNOBS_E2E_NAMESPACE` a namespace where the test may create (and then
//! deletes) a Deployment `kubeknobs-e2e`. Without them it says loudly that it skipped.

use std::io::Write;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kubeknobs_tests::harness::osc_send;
use kubeknobs_tests::pipeline::connected;

const OBJECT: &str = "kubeknobs-e2e";

fn deployment() -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": OBJECT, "labels": { "app": OBJECT } },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": OBJECT } },
            "template": {
                "metadata": { "labels": { "app": OBJECT } },
                "spec": { "containers": [{ "name": "pause", "image": "registry.k8s.io/pause:3.10" }] }
            }
        }
    }))
    .expect("valid Deployment")
}

async fn replicas(api: &Api<Deployment>) -> Option<i32> {
    api.get_scale(OBJECT)
        .await
        .ok()
        .and_then(|s| s.spec)
        .and_then(|s| s.replicas)
}

/// Says the test skipped on stderr directly: the harness captures only the print macros, so
/// unlike `eprintln!` this shows in every run, passing or not.
fn skipped(why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED real-cluster end-to-end test: {why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fader_scales_a_real_deployment_and_kubectl_changes_come_back() {
    let (Ok(kubeconfig), Ok(namespace)) = (
        std::env::var("KUBECONFIG"),
        std::env::var("KUBEKNOBS_E2E_NAMESPACE"),
    ) else {
        skipped("set KUBECONFIG and KUBEKNOBS_E2E_NAMESPACE to run it");
        return;
    };
    let client = kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG");
    let api: Api<Deployment> = Api::namespaced(client, &namespace);
    let _ = api.delete(OBJECT, &DeleteParams::default()).await;
    api.create(&PostParams::default(), &deployment())
        .await
        .expect("create the test Deployment");

    let cluster = format!("backend = \"kube\"\nkubeconfig = {kubeconfig:?}");
    let ns = namespace.clone();
    let p = tokio::task::spawn_blocking(move || {
        let p = connected(&cluster, (&ns, OBJECT));
        osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.1");
        p.gateway.process.wait_for(&["applied", "value=2"]);
        p
    })
    .await
    .expect("fader move");
    assert_eq!(replicas(&api).await, Some(2));

    let params = PatchParams {
        field_manager: Some("kubectl".into()),
        ..Default::default()
    };
    let patch = Patch::Merge(serde_json::json!({ "spec": { "replicas": 3 } }));
    api.patch_scale(OBJECT, &params, &patch)
        .await
        .expect("scale like kubectl");
    tokio::task::spawn_blocking(move || p.phone.wait_for("/1/fader1", "f 0.150000"))
        .await
        .expect("feedback");

    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        api.delete(OBJECT, &DeleteParams::default()),
    )
    .await;
}
