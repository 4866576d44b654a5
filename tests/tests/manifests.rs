//! The deploy manifests, parsed as the Kubernetes types they claim to be and checked against the
//! code: the RBAC grants exactly what the catalog in the ConfigMap needs (no more), the gateway
//! runs locked down, names line up across files, and the bridge's systemd unit is unprivileged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kubeknobs_gateway::config::{Config, TlsIdentity};
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every document of every resource the kustomization lists, by kind.
fn documents() -> BTreeMap<String, Vec<Value>> {
    let dir = deploy_dir();
    let kustomization: Value = serde_saphyr::from_str(&read(&dir.join("kustomization.yaml")))
        .expect("kustomization parses");
    let resources = kustomization["resources"]
        .as_array()
        .expect("resources list");
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for resource in resources {
        let file = dir.join(resource.as_str().expect("resource path"));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&read(&file))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: a document without kind", file.display()))
                .to_owned();
            by_kind.entry(kind).or_default().push(doc);
        }
    }
    by_kind
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn typed<T: serde::de::DeserializeOwned>(
    docs: &BTreeMap<String, Vec<Value>>,
    kind: &str,
) -> Vec<T> {
    docs.get(kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/"))
        .iter()
        .map(|d| {
            serde_json::from_value(d.clone())
                .unwrap_or_else(|e| panic!("{kind} does not parse as {kind}: {e}"))
        })
        .collect()
}

fn gateway_config(docs: &BTreeMap<String, Vec<Value>>) -> Config {
    let maps: Vec<ConfigMap> = typed(docs, "ConfigMap");
    let text = maps[0]
        .data
        .as_ref()
        .and_then(|d| d.get("gateway.toml"))
        .expect("gateway.toml in the ConfigMap");
    // The TLS files exist only inside the pod; everything else is validated as the gateway would.
    Config::parse_with_tls(
        text,
        Path::new("deploy/gateway/configmap.yaml#gateway.toml"),
        TlsIdentity::default(),
    )
    .expect("the ConfigMap's gateway.toml is valid")
}

#[test]
fn every_manifest_parses_as_its_kubernetes_type() {
    let docs = documents();
    let kinds: BTreeSet<_> = docs.keys().map(String::as_str).collect();
    let expected = [
        "ConfigMap",
        "Deployment",
        "Namespace",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ];
    assert_eq!(
        kinds,
        expected.into_iter().collect(),
        "the kustomization installs exactly these kinds"
    );
    let _: Vec<NetworkPolicy> = typed(&docs, "NetworkPolicy");
    let _: Vec<ServiceAccount> = typed(&docs, "ServiceAccount");
    gateway_config(&docs);
}

/// One granted rule: API group, resource, verbs, resource names (empty: all).
type Grant = (String, String, BTreeSet<String>, BTreeSet<String>);

#[test]
fn rbac_grants_exactly_what_the_catalog_needs() {
    let docs = documents();
    let config = gateway_config(&docs);
    let needed: BTreeMap<String, BTreeSet<Grant>> =
        kubeknobs_gateway::rbac::namespace_rules(&config)
            .into_iter()
            .map(|(ns, rules)| {
                let rules = rules
                    .into_iter()
                    .map(|r| {
                        (
                            r.api_group.to_owned(),
                            r.resource.to_owned(),
                            r.verbs.iter().map(|v| v.to_string()).collect(),
                            r.resource_names,
                        )
                    })
                    .collect();
                (ns, rules)
            })
            .collect();
    let mut granted: BTreeMap<String, BTreeSet<Grant>> = BTreeMap::new();
    for role in typed::<Role>(&docs, "Role") {
        let ns = role.metadata.namespace.clone().expect("Role namespace");
        for rule in role.rules.unwrap_or_default() {
            let groups = rule.api_groups.unwrap_or_default();
            let resources = rule.resources.unwrap_or_default();
            assert!(!rule.verbs.iter().any(|v| v == "*"), "no wildcard verbs");
            for group in &groups {
                for resource in &resources {
                    assert_ne!(resource, "*", "no wildcard resources");
                    granted.entry(ns.clone()).or_default().insert((
                        group.clone(),
                        resource.clone(),
                        rule.verbs.iter().cloned().collect(),
                        rule.resource_names.iter().flatten().cloned().collect(),
                    ));
                }
            }
        }
    }
    assert_eq!(
        granted, needed,
        "deploy/gateway/rbac.yaml must be `kubeknobs-gateway rbac` of the ConfigMap's catalog"
    );

    let sa: Vec<ServiceAccount> = typed(&docs, "ServiceAccount");
    let sa_name = sa[0].metadata.name.clone().expect("ServiceAccount name");
    let sa_namespace = sa[0]
        .metadata
        .namespace
        .clone()
        .expect("ServiceAccount namespace");
    let object_name = kubeknobs_gateway::rbac::object_name(&sa_name, &sa_namespace);
    for role in typed::<Role>(&docs, "Role") {
        assert_eq!(
            role.metadata.name.as_ref(),
            Some(&object_name),
            "named after the account"
        );
    }
    for binding in typed::<RoleBinding>(&docs, "RoleBinding") {
        assert_eq!(binding.metadata.name.as_ref(), Some(&object_name));
        let subject = &binding.subjects.as_ref().expect("subjects")[0];
        assert_eq!(subject.kind, "ServiceAccount");
        assert_eq!(subject.name, sa_name);
        assert_eq!(subject.namespace.as_ref(), Some(&sa_namespace));
        assert_eq!(binding.role_ref.kind, "Role");
        assert_eq!(binding.role_ref.name, object_name);
    }
    assert!(
        kubeknobs_gateway::rbac::cluster_rules(&config).is_empty(),
        "deploy/ has no ClusterRole, so its config must need none"
    );

    // Byte for byte what `rbac` prints for the ConfigMap's config, below the file's header.
    let file = read(&deploy_dir().join("gateway/rbac.yaml"));
    let generated =
        kubeknobs_gateway::rbac::manifests(&config, &sa_name, &sa_namespace).expect("valid names");
    let body = file.find("---").map(|at| &file[at..]).expect("documents");
    assert_eq!(
        body, generated,
        "regenerate: kubeknobs-gateway rbac --config gateway.toml > deploy/gateway/rbac.yaml"
    );
}

#[test]
fn every_deployed_rule_names_its_objects_unless_kubernetes_cannot() {
    let docs = documents();
    for role in typed::<Role>(&docs, "Role") {
        for rule in role.rules.unwrap_or_default() {
            let names = rule.resource_names.clone().unwrap_or_default();
            let create_only = rule.verbs == ["create"];
            // Which HPA scales a replica target is not known in advance: read namespace-wide.
            let hpa_watch = rule.verbs == ["list", "watch"]
                && rule.resources.as_deref() == Some(&["horizontalpodautoscalers".to_owned()][..]);
            assert!(
                !names.is_empty() || create_only || hpa_watch,
                "{:?}: a rule without resourceNames: {rule:?}",
                role.metadata.namespace
            );
            assert!(names.iter().all(|n| !n.contains('*')), "{rule:?}");
        }
    }
}

#[test]
fn the_gateway_runs_locked_down_with_one_writer() {
    let docs = documents();
    let deployment = typed::<Deployment>(&docs, "Deployment").remove(0);
    let spec = deployment.spec.expect("spec");
    let config = gateway_config(&docs);
    let replicas = spec.replicas.unwrap_or(1);
    assert!(
        replicas == 1 || config.leader_election.is_some(),
        "{replicas} gateways without leader election would each write at the configured rate"
    );
    assert_eq!(
        spec.strategy.and_then(|s| s.type_).as_deref(),
        Some("Recreate"),
        "a rolling update would wait forever for a standby to become ready"
    );
    let pod = spec.template.spec.expect("pod spec");
    let env = pod.containers[0].env.clone().unwrap_or_default();
    let pod_name = env.iter().find(|e| e.name == "POD_NAME").expect("POD_NAME");
    let field = pod_name
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref());
    assert_eq!(
        field.map(|f| f.field_path.as_str()),
        Some("metadata.name"),
        "the Lease identity is the pod's name"
    );
    let pod_security = pod.security_context.expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security.seccomp_profile.map(|s| s.type_).as_deref(),
        Some("RuntimeDefault")
    );
    let sa: Vec<ServiceAccount> = typed(&docs, "ServiceAccount");
    assert_eq!(pod.service_account_name, sa[0].metadata.name);

    let container = &pod.containers[0];
    let security = container
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_owned()])
    );
    let resources = container.resources.as_ref().expect("resources");
    for (what, set) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        let set = set.as_ref().unwrap_or_else(|| panic!("resource {what}"));
        assert!(
            set.contains_key("cpu") && set.contains_key("memory"),
            "cpu and memory {what}"
        );
    }
    assert!(
        container.liveness_probe.is_some() && container.readiness_probe.is_some(),
        "probes"
    );

    // The volumes point at the ConfigMap and the TLS secret the config's paths expect.
    let maps: Vec<ConfigMap> = typed(&docs, "ConfigMap");
    let volumes = pod.volumes.expect("volumes");
    assert!(
        volumes
            .iter()
            .any(|v| v.config_map.as_ref().map(|c| &c.name) == maps[0].metadata.name.as_ref())
    );
    assert!(
        volumes
            .iter()
            .any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref())
                == Some("kubeknobs-gateway-tls"))
    );
    let args = container.args.clone().unwrap_or_default().join(" ");
    let mounts = container.volume_mounts.clone().unwrap_or_default();
    let config_mount = mounts
        .iter()
        .find(|m| m.name == "config")
        .expect("config mount");
    assert!(
        args.contains(&format!("{}/gateway.toml", config_mount.mount_path)),
        "{args}"
    );

    let service = typed::<Service>(&docs, "Service").remove(0);
    let selector = service.spec.and_then(|s| s.selector).expect("selector");
    let labels = spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .expect("pod labels");
    assert!(
        selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "the Service selects the gateway pods"
    );
}

#[test]
fn the_image_is_a_static_non_root_gateway() {
    let dockerfile = read(&deploy_dir().join("Dockerfile"));
    assert!(dockerfile.contains("-p kubeknobs-gateway") && dockerfile.contains("--locked"));
    assert!(dockerfile.contains("linux-musl"), "a static binary");
    assert!(dockerfile.contains("distroless/static") && dockerfile.contains("USER 65532"));
}

#[test]
fn the_bridge_unit_runs_unprivileged_and_restarts() {
    let unit = read(&deploy_dir().join("bridge/kubeknobs-bridge.service"));
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key}= missing"))
            .to_owned()
    };
    assert_ne!(value("User"), "root");
    assert_eq!(value("Restart"), "on-failure");
    let groups = value("SupplementaryGroups");
    assert!(
        groups.contains("audio") && groups.contains("dialout"),
        "{groups}"
    );
    assert!(
        value("ExecStart").ends_with("kubeknobs-bridge run --config /etc/kubeknobs/bridge.toml")
    );
    assert_eq!(value("WantedBy"), "multi-user.target");
}
