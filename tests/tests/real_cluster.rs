//! The end-to-end pipeline against a real cluster, when one is configured: `KUBECONFIG` names a
//! kubeconfig and `KUBEKNOBS_E2E_NAMESPACE` a namespace where the test may create (and then
//! deletes) the Deployments `kubeknobs-e2e`, `kubeknobs-e2e-other` and `kubeknobs-e2e-scaled`, the
//! HorizontalPodAutoscaler `kubeknobs-e2e-scaled`, the ServiceAccount
//! `kubeknobs-e2e-gateway`, and (cluster-wide) the RBAC `kubeknobs-gateway rbac` prints for it.
//! Without them it says loudly that it skipped.
//!
//! The RBAC test applies `rbac`'s output for the pipeline's catalog, runs the gateway with only
//! that ServiceAccount's token, and asks the API server with SubjectAccessReviews that the
//! account can do its job and nothing more: no uncatalogued object, no `system:masters`.

use std::io::Write;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kubeknobs_tests::harness::osc_send;
use kubeknobs_tests::pipeline::connected;

const OBJECT: &str = "kubeknobs-e2e";

fn deployment() -> Deployment {
    deployment_named(OBJECT)
}

fn deployment_named(name: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": { "app": name } },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
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
    // What the fake API server models of managedFields, checked on the real one: the write
    // through the scale subresource makes kubeknobs the only owner of spec.replicas.
    assert_eq!(
        replicas_owners(&api).await,
        [("kubeknobs".to_owned(), true)]
    );

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
    assert_eq!(replicas_owners(&api).await, [("kubectl".to_owned(), true)]);

    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        api.delete(OBJECT, &DeleteParams::default()),
    )
    .await;
}

/// The managers owning `spec.replicas` of the test Deployment, each with whether its entry was
/// written through the scale subresource.
async fn replicas_owners(api: &Api<Deployment>) -> Vec<(String, bool)> {
    let object = api.get(OBJECT).await.expect("get the test Deployment");
    let fields = object.metadata.managed_fields.unwrap_or_default();
    for f in &fields {
        println!(
            "managedFields: {:?} {:?} subresource={:?} time={:?}",
            f.manager, f.operation, f.subresource, f.time
        );
    }
    fields
        .into_iter()
        .filter(|f| {
            f.fields_v1
                .as_ref()
                .is_some_and(|v| v.0.pointer("/f:spec/f:replicas").is_some())
        })
        .map(|f| {
            let scale = f.subresource.as_deref() == Some("scale");
            (f.manager.unwrap_or_default(), scale)
        })
        .collect()
}

/// The uncatalogued Deployment the gateway's account must not touch.
const OTHER: &str = "kubeknobs-e2e-other";
/// The gateway's ServiceAccount in the test namespace.
const ACCOUNT: &str = "kubeknobs-e2e-gateway";

/// Applies every document of `yaml` (Roles, ClusterRoles and their bindings) server-side.
async fn apply_rbac(client: &kube::Client, yaml: &str) {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).expect("rbac parses");
    let params = PatchParams::apply("kubeknobs-e2e").force();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let name = doc["metadata"]["name"].as_str().expect("name").to_owned();
        let ns = doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let patch = Patch::Apply(&doc);
        let c = client.clone();
        let applied = match doc["kind"].as_str() {
            Some("Role") => Api::<Role>::namespaced(c, &ns)
                .patch(&name, &params, &patch)
                .await
                .map(drop),
            Some("RoleBinding") => Api::<RoleBinding>::namespaced(c, &ns)
                .patch(&name, &params, &patch)
                .await
                .map(drop),
            Some("ClusterRole") => Api::<ClusterRole>::all(c)
                .patch(&name, &params, &patch)
                .await
                .map(drop),
            Some("ClusterRoleBinding") => Api::<ClusterRoleBinding>::all(c)
                .patch(&name, &params, &patch)
                .await
                .map(drop),
            other => panic!("rbac printed an unexpected kind {other:?}"),
        };
        applied.unwrap_or_else(|e| panic!("apply {name}: {e}"));
    }
}

/// Deletes what `apply_rbac` made for `namespaces` (best effort).
async fn delete_rbac(client: &kube::Client, namespaces: &[&str], name: &str) {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    let dp = DeleteParams::default();
    for ns in namespaces {
        let _ = Api::<Role>::namespaced(client.clone(), ns)
            .delete(name, &dp)
            .await;
        let _ = Api::<RoleBinding>::namespaced(client.clone(), ns)
            .delete(name, &dp)
            .await;
    }
    let _ = Api::<ClusterRole>::all(client.clone())
        .delete(name, &dp)
        .await;
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .delete(name, &dp)
        .await;
}

/// Whether the API server lets the gateway's ServiceAccount in `ns` do `verb` on `resource`
/// (`group`, `subresource`, `name` and the object's namespace as given).
async fn account_may(
    client: &kube::Client,
    ns: &str,
    verb: &str,
    (group, resource, subresource): (&str, &str, &str),
    object_ns: Option<&str>,
    name: Option<&str>,
) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{ns}:{ACCOUNT}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource: (!subresource.is_empty()).then(|| subresource.into()),
                namespace: object_ns.map(str::to_owned),
                name: name.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("SubjectAccessReview");
    answer.status.is_some_and(|s| s.allowed)
}

/// Like [`account_may`], but waits up to 10 s for a grant just applied to reach the authorizer.
async fn eventually_may(
    client: &kube::Client,
    ns: &str,
    verb: &str,
    resource: (&str, &str, &str),
    object_ns: Option<&str>,
    name: Option<&str>,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if account_may(client, ns, verb, resource, object_ns, name).await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A kubeconfig for the current context's cluster that authenticates with `token` only.
fn token_kubeconfig(dir: &std::path::Path, token: &str) -> std::path::PathBuf {
    let config = kube::config::Kubeconfig::read().expect("read KUBECONFIG");
    let current = config.current_context.clone().expect("current-context");
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.clone())
        .expect("the current context");
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .expect("the current context's cluster");
    let text = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{ "name": ACCOUNT, "user": { "token": token } }],
        "contexts": [{ "name": ACCOUNT, "context": { "cluster": cluster.name, "user": ACCOUNT } }],
        "current-context": ACCOUNT,
    });
    let path = dir.join("gateway-kubeconfig.json");
    std::fs::write(&path, text.to_string()).expect("write kubeconfig");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_rbac_lets_the_gateway_do_its_job_and_nothing_more() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kubeknobs_gateway::config::{Config, TlsIdentity};
    use kubeknobs_gateway::rbac;
    let (Ok(_), Ok(namespace)) = (
        std::env::var("KUBECONFIG"),
        std::env::var("KUBEKNOBS_E2E_NAMESPACE"),
    ) else {
        skipped("set KUBECONFIG and KUBEKNOBS_E2E_NAMESPACE to run it");
        return;
    };
    let ns = namespace.as_str();
    let client = kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    for name in [OBJECT, OTHER] {
        let _ = deployments.delete(name, &DeleteParams::default()).await;
        deployments
            .create(&PostParams::default(), &deployment_named(name))
            .await
            .expect("create a test Deployment");
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let account: ServiceAccount =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": ACCOUNT } }))
            .expect("ServiceAccount");
    let _ = accounts.create(&PostParams::default(), &account).await;
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request(ACCOUNT, &PostParams::default(), &request)
        .await
        .expect("a token for the gateway's ServiceAccount")
        .status
        .expect("token status")
        .token;

    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = token_kubeconfig(dir.path(), &token);
    let cluster = format!(
        "backend = \"kube\"\nkubeconfig = {:?}",
        kubeconfig.display().to_string()
    );
    let parse = |text: &str| {
        Config::parse_with_tls(text, &dir.path().join("gw.toml"), TlsIdentity::default())
            .expect("config")
    };
    let config = parse(&kubeknobs_tests::pipeline::gateway_config(
        &cluster, ns, OBJECT,
    ));
    let name = rbac::object_name(ACCOUNT, ns);
    apply_rbac(
        &client,
        &rbac::manifests(&config, ACCOUNT, ns).expect("rbac"),
    )
    .await;

    let scale = ("apps", "deployments", "scale");
    let whole = ("apps", "deployments", "");
    assert!(eventually_may(&client, ns, "patch", scale, Some(ns), Some(OBJECT)).await);
    assert!(eventually_may(&client, ns, "watch", whole, Some(ns), Some(OBJECT)).await);
    assert!(
        !account_may(&client, ns, "patch", scale, Some(ns), Some(OTHER)).await,
        "an uncatalogued Deployment"
    );
    assert!(
        !account_may(&client, ns, "list", whole, Some(ns), None).await,
        "every Deployment"
    );
    assert!(
        !account_may(&client, ns, "patch", whole, Some(ns), Some(OBJECT)).await,
        "only its scale"
    );
    assert!(!account_may(&client, ns, "list", ("", "nodes", ""), None, None).await);

    // The gateway with that token only: the fader scales the catalogued Deployment.
    let owned_ns = namespace.clone();
    let p = tokio::task::spawn_blocking(move || {
        let p = connected(&cluster, (&owned_ns, OBJECT));
        osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.1");
        p.gateway.process.wait_for(&["applied", "value=2"]);
        p
    })
    .await
    .expect("fader move");
    assert_eq!(replicas(&deployments).await, Some(2));
    let other = deployments
        .get_scale(OTHER)
        .await
        .expect("scale of the other");
    assert_eq!(other.spec.and_then(|s| s.replicas), Some(1), "untouched");
    drop(p);

    // With impersonation: exactly the operators the config names, never system:masters.
    let impersonating = kubeknobs_tests::pipeline::gateway_config(
        "backend = \"kube\"\nimpersonate = true",
        ns,
        OBJECT,
    ) + &format!(
        "\n[auth]\ntoken_review = true\n[[policy]]\noperators = [\"alice\", \"system:serviceaccount:{ns}:bridge\"]\ntargets = [\"web\"]\n"
    );
    apply_rbac(
        &client,
        &rbac::manifests(&parse(&impersonating), ACCOUNT, ns).expect("rbac"),
    )
    .await;
    let users = ("", "users", "");
    let groups = ("", "groups", "");
    let accounts_ = ("", "serviceaccounts", "");
    assert!(eventually_may(&client, ns, "impersonate", users, None, Some("alice")).await);
    assert!(!account_may(&client, ns, "impersonate", users, None, Some("mallory")).await);
    assert!(
        !account_may(
            &client,
            ns,
            "impersonate",
            groups,
            None,
            Some("system:masters")
        )
        .await,
        "never system:masters"
    );
    assert!(
        eventually_may(
            &client,
            ns,
            "impersonate",
            accounts_,
            Some(ns),
            Some("bridge")
        )
        .await
    );
    assert!(
        !account_may(
            &client,
            ns,
            "impersonate",
            accounts_,
            Some(ns),
            Some("default")
        )
        .await
    );
    assert!(
        !account_may(
            &client,
            ns,
            "impersonate",
            accounts_,
            Some("kube-system"),
            Some("bridge")
        )
        .await
    );
    let reviews = ("authentication.k8s.io", "tokenreviews", "");
    assert!(eventually_may(&client, ns, "create", reviews, None, None).await);

    delete_rbac(&client, &[ns], &name).await;
    let _ = accounts.delete(ACCOUNT, &DeleteParams::default()).await;
    for object in [OBJECT, OTHER] {
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            deployments.delete(object, &DeleteParams::default()),
        )
        .await;
    }
}

/// The Deployment and the HPA the autoscaler test creates (and deletes).
const SCALED: &str = "kubeknobs-e2e-scaled";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscaled_deployment_refuses_the_fader_and_the_hpa_floor_moves_instead() {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use kubeknobs_proto::v1::{OutcomeKind, RejectReason};
    use kubeknobs_tests::grpc::{Gateway, control, outcome};
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
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client, &namespace);
    let _ = deployments.delete(SCALED, &DeleteParams::default()).await;
    let _ = hpas.delete(SCALED, &DeleteParams::default()).await;
    deployments
        .create(&PostParams::default(), &deployment_named(SCALED))
        .await
        .expect("create the scaled Deployment");
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": SCALED },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": SCALED },
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [{ "type": "Resource", "resource": { "name": "cpu",
                "target": { "type": "Utilization", "averageUtilization": 80 } } }],
        },
    }))
    .expect("valid HPA");
    hpas.create(&PostParams::default(), &hpa)
        .await
        .expect("create the HPA");

    let text = format!(
        "[cluster]\nbackend = \"kube\"\nkubeconfig = {kubeconfig:?}\n{}\n\
         [targets.scaled]\nkind = \"deployment-replicas\"\nnamespace = {namespace:?}\nname = {SCALED:?}\nmax = 3\n\
         [targets.floor]\nkind = \"hpa-min-replicas\"\nnamespace = {namespace:?}\nname = {SCALED:?}\nmax = 3\n",
        kubeknobs_tests::grpc::operators_toml()
    );
    let config = kubeknobs_gateway::config::Config::parse_with_tls(
        &text,
        std::path::Path::new("e2e.toml"),
        kubeknobs_gateway::config::TlsIdentity::default(),
    )
    .expect("config");
    let gw = Gateway::start_config(config).await;
    let (tx, mut rx, _) = gw.welcome("alice-token").await;

    // The HPA watch may not have reported yet: retry the move until it is refused as managed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seq = 0;
    let refused = loop {
        seq += 1;
        tx.send(control(seq, "scaled", 2.0)).await.expect("send");
        let o = outcome(&mut rx, seq).await;
        if o.reason == RejectReason::Managed as i32 {
            break o;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(refused.message.contains(SCALED), "{}", refused.message);

    seq += 1;
    tx.send(control(seq, "floor", 2.0)).await.expect("send");
    let moved = outcome(&mut rx, seq).await;
    assert_eq!(moved.kind, OutcomeKind::Applied as i32, "{moved:?}");
    let floor = hpas
        .get(SCALED)
        .await
        .expect("the HPA")
        .spec
        .and_then(|s| s.min_replicas);
    assert_eq!(floor, Some(2));

    let _ = hpas.delete(SCALED, &DeleteParams::default()).await;
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        deployments.delete(SCALED, &DeleteParams::default()),
    )
    .await;
}
